"""`driftbot import` end to end: from the files and from a cluster (the real kubernetes_asyncio
client against the fake API server) to a config that check-config accepts, and through a
replayed scenario to the same channels the old setup sent to (the real slack_sdk client against
the fake Slack, the fake Teams webhook)."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app.audit_view import read_audit
from bot.app.cli import main
from bot.app.replay import replay_stream
from bot.delivery.teams_receiver import TeamsOptions
from bot.store.store import Store
from config.loader import load_config
from config.schema import SlackConfig
from tests import scenarios
from tests.bot.test_slack_receiver import ENV, HistoryFakeSlack, slack_options
from tests.config.import_support import ARGOCD, FLUX, objects, shop_configmap
from tests.fakes.kube_api import FakeKubeAPI
from tests.fakes.slack_api import VirtualClock
from tests.fakes.teams_webhook import FakeTeamsWebhook

APPS = ARGOCD / "applications-shop.yaml"
ALERTS = FLUX / "alerts-staging.yaml"


@pytest.fixture
def configmap_file(tmp_path: Path) -> Path:
    path = tmp_path / "argocd-notifications-cm.yaml"
    cm = shop_configmap()
    cm["metadata"] = {"name": "argocd-notifications-cm", "namespace": "argocd"}
    path.write_text(yaml.safe_dump(cm))
    return path


def _import(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["import", *args]) == 0
    return capsys.readouterr().out


def test_both_imports_print_configs_that_check_config_accepts(
    configmap_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argo = _import(
        capsys,
        "argocd-notifications",
        "--configmap",
        str(configmap_file),
        "--apps",
        str(APPS),
        "--cluster",
        "prod",
    )
    flux = _import(capsys, "flux-alerts", str(ALERTS), "--cluster", "staging")
    for name, text, receivers, routes in (("argo.yaml", argo, 6, 9), ("flux.yaml", flux, 2, 4)):
        (tmp_path / name).write_text(text)
        assert main(["check-config", str(tmp_path / name)]) == 0
        counts = f"0 clusters, {receivers} receivers, {routes} routes"
        assert capsys.readouterr().out == f"{tmp_path / name}: OK ({counts})\n"
    assert f"- ConfigMap argocd-notifications-cm in {configmap_file}" in argo
    assert f"- 3 Application, 1 AppProject in {APPS}" in argo
    # routes explain, with every field an Argo CD subscription depends on
    assert (
        main(
            [
                "routes",
                "explain",
                "--config",
                str(tmp_path / "argo.yaml"),
                "--app",
                "payments",
                "--cluster",
                "prod",
                "--kind",
                "deploy_started",
                "--tool",
                "argocd",
                "--namespace",
                "argocd",
                "--project",
                "shop",
                "--label",
                "env=prod",
                "--label",
                "team=shop",
            ]
        )
        == 0
    )
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == "result: sent to slack-shop-deploys (by routes[8])"
    )
    assert (
        main(
            [
                "routes",
                "explain",
                "--config",
                str(tmp_path / "flux.yaml"),
                "--app",
                "podinfo",
                "--cluster",
                "staging",
                "--kind",
                "deploy_failed",
                "--tool",
                "flux",
                "--namespace",
                "podinfo",
                "--object-kind",
                "HelmRelease",
                "--label",
                "x=y",
            ]
        )
        == 0
    )
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == "result: sent to slack-flux-alerts (by routes[1])"
    )


def test_bad_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: ConfigMap\n  data: [\n")
    assert main(["import", "argocd-notifications", "--configmap", str(broken)]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("broken.yaml:2: not YAML or JSON: mapping values are not allowed here")
    )
    assert (
        main(["import", "argocd-notifications", "--configmap", str(tmp_path / "absent.yaml")]) == 1
    )
    assert "cannot read" in capsys.readouterr().err
    assert main(["import", "argocd-notifications", "--configmap", str(APPS)]) == 1
    assert "expected one ConfigMap, found 0" in capsys.readouterr().err
    assert main(["import", "flux-alerts"]) == 1
    assert "give the files of Alerts and Providers" in capsys.readouterr().err
    nothing = tmp_path / "secret.yaml"
    nothing.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    assert main(["import", "flux-alerts", str(nothing)]) == 1
    out, err = capsys.readouterr()
    assert "# - Secret s: not a Flux Alert or Provider; ignored" in out
    assert "nothing could be imported" in err


# --- the replayed scenario -----------------------------------------------------------------------

ARGO_SENT = {
    # (kind, app) -> where Argo CD Notifications sent it, by the subscriptions in
    # applications-shop.yaml and the shop patch of the ConfigMap
    ("deploy_started", "payments"): {"slack-shop-deploys"},  # AppProject shop on-sync-running
    ("deploy_succeeded", "payments"): {"slack-prod-deploys"},  # default on-deployed, env=prod
    ("health_degraded", "payments"): {"slack-shop-alerts"},  # on-health-degraded
    ("rollback_succeeded", "payments"): {"slack-prod-deploys"},  # the rollback's sync: on-deployed
    ("deploy_failed", "catalog"): {"slack-catalog-team", "teams-pm"},  # on-sync-failed
    ("deploy_succeeded", "catalog"): {"slack-catalog-team", "teams-pm", "slack-prod-deploys"},
}
ARGO_RECOVERIES = {
    ("rollback_succeeded", "payments"): {"slack-shop-alerts"},
    ("health_recovered", "payments"): {"slack-shop-alerts"},
}
"""Where driftbot also tells an app's recovery: in the channel that got the alert it ends (the
rollback after the degraded deploy, then the health back). Argo CD has no recoveries."""

FLUX_SENT = {
    ("deploy_failed", "apps"): {"slack-flux-alerts"},  # Alert failures, Kustomization *, error
    ("deploy_failed", "podinfo"): {"slack-flux-alerts"},  # Alert failures, HelmRelease * in podinfo
    ("drift_detected", "redis"): {"teams-data-team"},  # Alert redis, info
    ("drift_resolved", "redis"): {"teams-data-team"},
}
FLUX_RECOVERIES = {
    ("rollback_succeeded", "podinfo"): {"slack-flux-alerts"},  # Normal event: not an error
    ("deploy_succeeded", "apps"): {"slack-flux-alerts"},
}


def _union(*tables: dict[tuple[str, str], set[str]]) -> dict[tuple[str, str], set[str]]:
    merged: dict[tuple[str, str], set[str]] = {}
    for table in tables:
        for key, receivers in table.items():
            merged.setdefault(key, set()).update(receivers)
    return merged


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=0.0)


async def _replayed(
    text: str, tmp_path: Path, slack: HistoryFakeSlack, teams: FakeTeamsWebhook, clock: VirtualClock
) -> dict[tuple[str, str], set[str]]:
    """Replay the demo scenario through the imported config: who got what, from the audit log."""
    config = load_config(text, "imported.yaml")
    config = config.model_copy(update={"slack": SlackConfig(api_url=slack.url)})
    env = {
        **ENV,
        **{
            rc.teams.webhook_env: teams.url
            for rc in config.receivers
            if rc.teams and rc.teams.webhook_env
        },
    }
    state = tmp_path / f"state-{config.receivers[0].name}.sqlite"
    teams_options = TeamsOptions(monotonic=clock, sleep=clock.sleep, close_timeout=None)
    await replay_stream(
        scenarios.demo_lines(),
        "demo.jsonl",
        config,
        state,
        None,
        environ=env,
        slack=slack_options(clock, None),
        teams=teams_options,
    )
    store = await Store.open(state)
    try:
        entries = await read_audit(store, limit=1000)
    finally:
        await store.close()
    got: dict[tuple[str, str], set[str]] = {}
    for entry in entries:
        if entry.action != "announce":
            continue
        delivered = {name for name, outcome in entry.detail["receivers"].items() if outcome == "ok"}
        assert delivered == set(entry.detail["receivers"]), entry.detail["receivers"]
        for event in entry.detail["events"]:
            got.setdefault((event["kind"], event["name"]), set()).update(delivered)
    return got


async def test_a_replayed_scenario_reaches_the_channels_the_old_setup_sent_to(
    configmap_file: Path, tmp_path: Path, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    argo = _import(
        capsys,
        "argocd-notifications",
        "--configmap",
        str(configmap_file),
        "--apps",
        str(APPS),
        "--cluster",
        "prod",
    )
    flux = _import(capsys, "flux-alerts", str(ALERTS), "--cluster", "staging")
    async with HistoryFakeSlack(clock=clock) as slack, FakeTeamsWebhook(clock=clock) as teams:
        assert await _replayed(argo, tmp_path, slack, teams, clock) == _union(
            ARGO_SENT, ARGO_RECOVERIES
        )
        assert await _replayed(flux, tmp_path, slack, teams, clock) == _union(
            FLUX_SENT, FLUX_RECOVERIES
        )
        # What reached Slack, by channel: the posts and thread replies of those notifications.
        for channel in (
            "shop-deploys",
            "prod-deploys",
            "shop-alerts",
            "catalog-team",
            "flux-alerts",
        ):
            assert slack.messages(channel), channel
        assert slack.messages("oncall") == []  # payments never failed a sync
        # Teams (one fake for both webhooks): catalog's failure and deploy, redis's drift.
        apps = [next(a for a in ("catalog", "redis", "") if a in h) for h in teams.headlines]
        assert set(apps) == {"catalog", "redis"}


# --- from a cluster ----------------------------------------------------------------------------


def _served(api: FakeKubeAPI, objs: list[dict[str, Any]]) -> None:
    for obj in objs:
        api.put(copy.deepcopy(obj))


async def test_from_cluster_reads_the_same_objects_and_prints_the_same_routes(
    configmap_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from_files = _import(
        capsys, "argocd-notifications", "--configmap", str(configmap_file), "--apps", str(APPS)
    )
    flux_from_files = _import(capsys, "flux-alerts", str(ALERTS))
    async with FakeKubeAPI() as api:
        _served(api, [*objects(configmap_file), *objects(APPS), *objects(ALERTS)])
        api.put(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm", "namespace": "argocd"},
                "data": {},
            }
        )
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", context="staging-admin")
        argo_args = [
            "import",
            "argocd-notifications",
            "--from-cluster",
            "staging-admin",
            "--kubeconfig",
            str(kubeconfig),
        ]
        assert await asyncio.to_thread(main, argo_args) == 0
        from_cluster = capsys.readouterr().out
        flux_args = [
            "import",
            "flux-alerts",
            "--from-cluster",
            "staging-admin",
            "--kubeconfig",
            str(kubeconfig),
        ]
        assert await asyncio.to_thread(main, flux_args) == 0
        flux_from_cluster = capsys.readouterr().out
        verbs = {r.verb for r in api.requests}
    assert _body(from_cluster) == _body(from_files)
    assert _body(flux_from_cluster) == _body(flux_from_files)
    assert "- ConfigMap argocd/argocd-notifications-cm of staging-admin" in from_cluster
    assert "- 3 Application, 1 AppProject of context staging-admin" in from_cluster
    assert "- 3 Alert, 2 Provider of context staging-admin" in flux_from_cluster
    assert verbs == {"list"}  # read-only


def _body(text: str) -> list[str]:
    """The lines of the config without its title (which names where the objects came from),
    sorted: a cluster lists objects in its own order."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# Not imported"))
    return sorted(lines[start:])


async def test_from_cluster_errors_are_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeKubeAPI() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", context="dev")
        base = ["--from-cluster", "dev", "--kubeconfig", str(kubeconfig)]
        assert await asyncio.to_thread(main, ["import", "argocd-notifications", *base]) == 1
        assert (
            "context dev has no ConfigMap argocd/argocd-notifications-cm" in capsys.readouterr().err
        )
        assert await asyncio.to_thread(main, ["import", "flux-alerts", *base]) == 1
        assert "the cluster does not serve Alert objects" in capsys.readouterr().err
    assert (
        await asyncio.to_thread(
            main,
            ["import", "flux-alerts", "--from-cluster", "nope", "--kubeconfig", str(kubeconfig)],
        )
        == 1
    )
    assert "cannot use context nope" in capsys.readouterr().err
