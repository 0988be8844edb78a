"""Self-service routing end to end: an app team annotates its Application (and its AppProject)
as Argo CD's docs write subscriptions, and the team's Slack channel gets the app's alerts, with
nothing in the central config but the allow-list. The real kubernetes_asyncio client watches
the fake Kubernetes API (AppProjects too), the real slack_sdk client posts to the fake Slack
Web API; the same runs against a real kube-apiserver in test_annotation_routing_envtest.py."""

from __future__ import annotations

import copy
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.app.service import Service
from config.schema import Config
from tests.bot.service_world import VirtualClock, until, watching_service
from tests.builders_argocd import DIFF_CACHE, argocd_app
from tests.builders_flux import T0, helmrelease
from tests.fakes.kube_api import FakeKubeAPI
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi
from tests.upstream import load_fixture
from tests.world import install_crds

ONCALL = "C0ONCALL"


def shop(name: str) -> dict[str, Any]:
    items = load_fixture("argocd/applications-shop.yaml")["items"]
    found: dict[str, Any] = next(i for i in items if i["metadata"]["name"] == name)
    return found


def payments(health: str = "Healthy") -> dict[str, Any]:
    """The real diff-cache Application, named payments, of project shop, with the
    subscriptions the demo's payments app has (on-health-degraded and on-sync-failed to
    shop-alerts; on-sync-failed to oncall too)."""
    app = argocd_app("payments", base=DIFF_CACHE, health=health)
    app["metadata"]["namespace"] = "argocd"
    app["metadata"]["annotations"] = {
        **app["metadata"].get("annotations", {}),
        **shop("payments")["metadata"]["annotations"],
    }
    app["spec"]["project"] = "shop"
    return app


def project() -> dict[str, Any]:
    """The demo's AppProject shop, whose subscription this test points at degraded health."""
    obj = copy.deepcopy(shop("shop"))
    obj["metadata"]["annotations"] = {
        "notifications.argoproj.io/subscribe.on-health-degraded.slack": "shop-deploys"
    }
    return obj


def config(
    kubeconfig: Path, slack_url: str, allow: list[str], **central: list[dict[str, Any]]
) -> Config:
    """The central config: oncall hears of deletions only (`central` may add receivers and
    set routes); annotations may send to `allow`."""
    return Config.model_validate(
        {
            "clusters": [{"name": "prod", "kubeconfig": str(kubeconfig)}],
            "receivers": [
                {"name": "oncall", "slack": {"channel": ONCALL}},
                *central.get("receivers", []),
            ],
            "routes": central.get(
                "routes", [{"match": {"kinds": ["deleted"]}, "receivers": ["oncall"]}]
            ),
            "routing": {"annotations": True, "allow": allow},
            "slack": {"mode": "http", "api_url": slack_url},
            "policy": {"grace": "0s", "group_wait": "0s", "flap": {"flips": 0}, "repeat": "0s"},
        }
    )


@asynccontextmanager
async def running(settings: Config, tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Service]:
    """The service on `settings` over the fakes, posting with the fake Slack's token, ready."""
    environ = {"SLACK_BOT_TOKEN": VALID_TOKEN}
    async with watching_service(
        settings, tmp_path / "s.sqlite", clock, io.StringIO(), environ=environ
    ) as service:
        yield service


def texts(slack: FakeSlackApi, channel: str) -> list[str]:
    """The channel's top-level messages as they read now (edits applied, replies left out)."""
    return [m["text"] for m in slack.messages(channel) if not m.get("thread_ts")]


async def test_an_annotated_app_alerts_its_team_channel_and_resolves_there(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(T0)
    async with FakeKubeAPI() as api, FakeSlackApi() as slack:
        install_crds(api)
        api.install_crd("argoproj.io", "appprojects", kind="AppProject")
        api.put(project())
        api.put(payments())
        allow = ["slack:shop-alerts", "slack:shop-deploys"]
        settings = config(api.write_kubeconfig(tmp_path / "kubeconfig"), slack.url, allow)
        async with running(settings, tmp_path, clock) as service:
            assert service.pipeline.projects == {
                ("prod", "shop"): project()["metadata"]["annotations"]
            }
            clock.advance()
            api.put(payments(health="Degraded"))
            await until(
                lambda: bool(texts(slack, "shop-alerts")) and bool(texts(slack, "shop-deploys"))
            )
            clock.advance()
            api.put(payments(health="Healthy"))
            await until(lambda: service.pipeline.stats["detected.health_recovered"] == 1)
            await service.pipeline.advance(clock.advance(600))  # the group's interval
            await until(lambda: len(slack.calls_to("chat.update")) >= 2)
    # the app's annotation and the project's each sent the alert to their channel, once
    assert [t for t in texts(slack, "shop-alerts") if "payments" in t] == texts(
        slack, "shop-alerts"
    )
    assert len(texts(slack, "shop-alerts")) == 1
    assert len(texts(slack, "shop-deploys")) == 1
    # oncall is named by an annotation for sync failures only, and is not allowed anyway
    assert texts(slack, ONCALL) == []
    # the recovery edited both alerts in place, in their channels
    updated = {c.params.get("channel") for c in slack.calls_to("chat.update")}
    assert updated == {"shop-alerts", "shop-deploys"}


async def test_without_the_allow_list_the_annotation_sends_nothing(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    async with FakeKubeAPI() as api, FakeSlackApi() as slack:
        install_crds(api)
        api.install_crd("argoproj.io", "appprojects", kind="AppProject")
        api.put(payments())
        settings = config(api.write_kubeconfig(tmp_path / "kubeconfig"), slack.url, [])
        async with running(settings, tmp_path, clock) as service:
            clock.advance()
            api.put(payments(health="Degraded"))
            await until(lambda: service.pipeline.stats["detected.health_degraded"] == 1)
            await service.pipeline.advance(clock.advance())
    assert slack.calls_to("chat.postMessage") == []


async def test_a_watched_helmrelease_is_routed_by_its_source_and_its_notify_annotation(
    tmp_path: Path,
) -> None:
    """What routing reads of a Flux object comes through the watch: the chart's source and
    the object's annotations (a decoder that dropped them would send nothing here)."""
    clock = VirtualClock(T0)

    def release(ready: str) -> dict[str, Any]:
        obj = helmrelease(
            ready=ready, reason="UpgradeSucceeded" if ready == "True" else "UpgradeFailed"
        )
        obj["metadata"]["annotations"] = {"driftbot.dev/notify.deploy_failed": "slack:podinfo-team"}
        return obj

    async with FakeKubeAPI() as api, FakeSlackApi() as slack:
        install_crds(api)
        api.put(release("True"))
        settings = config(
            api.write_kubeconfig(tmp_path / "kubeconfig"),
            slack.url,
            ["slack:podinfo-team"],
            receivers=[{"name": "by-source", "slack": {"channel": "C0SOURCE"}}],
            routes=[{"match": {"tool": "flux", "source": "podinfo"}, "receivers": ["by-source"]}],
        )
        async with running(settings, tmp_path, clock):
            clock.advance()
            api.put(release("False"))
            await until(
                lambda: bool(texts(slack, "C0SOURCE")) and bool(texts(slack, "podinfo-team"))
            )
    assert len(texts(slack, "C0SOURCE")) == len(texts(slack, "podinfo-team")) == 1
    assert "podinfo" in texts(slack, "podinfo-team")[0]
