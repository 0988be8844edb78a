"""Acting from Slack end to end: signed slash commands, button clicks and view_submission
payloads into /slack/events (HTTP mode), the real Bolt app, the fake Slack recording the modals
(views.open), the thread posts and the answers; the actions land on a real kube-apiserver as the
Helm chart's ServiceAccount with its opt-in actions ClusterRole (a TokenRequest token in a
kubeconfig, as driftbot reads one), or on the fake Argo CD API server.

What the watch sees is fed to the pipeline as the watch feeds it (`Pipeline.observe` of the
object read back from the API server, after the test wrote the status a controller would
write), so the thread's result is the one the watch saw.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubernetes_asyncio.client import CoreV1Api

from bot.actions.kube import REQUESTED_AT
from bot.chat.slack_app import SLACK_EVENTS_PATH, SlackBot, add_slack_routes
from bot.delivery.slack_sender import make_client
from bot.pipeline.runner import Pipeline
from bot.store.store import AuditEntry, Store
from config.schema import Config
from core.model import EventKind, make_event
from core.policy import OpenAlert, PolicyState
from formatters.actions import ACTION_APPROVE, CALLBACK_CONFIRM
from formatters.slack import render_slack
from tests.bot.actions_cluster import NAMESPACE, Cluster, cluster
from tests.bot.chat_support import MemoryControls
from tests.builders_argocd import REV_A, operation_state
from tests.builders_flux import kustomization
from tests.deploy.envtest import ApiServer, api_server
from tests.fakes.argocd_api import FakeArgoCDAPI
from tests.fakes.slack_api import TEAM_ID, VALID_TOKEN, FakeSlackApi, VirtualClock

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DEPLOYER = "U0DEPLOYER"
SECOND = "U0SECOND"
VIEWER = "U0VIEWER"
CHANNEL = "C0ALERTS"
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    with api_server() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kube(server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    async with cluster(server) as made:
        token = await CoreV1Api(made.admin).create_namespaced_service_account_token(
            made.account, NAMESPACE, {"spec": {"expirationSeconds": 3600}}
        )
        path = tmp_path_factory.mktemp("kube") / "driftbot.kubeconfig"
        path.write_text(yaml.safe_dump(_kubeconfig(server, token.status.token)))
        yield made, path


def _kubeconfig(server: ApiServer, token: str) -> dict[str, Any]:
    """The chart's ServiceAccount, as a kubeconfig with its token (never admin)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "prod",
                "cluster": {"server": server.url, "certificate-authority": str(server.ca)},
            }
        ],
        "users": [{"name": "driftbot", "user": {"token": token}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "driftbot"}}],
        "current-context": "prod",
    }


def make_config(kubeconfig: Path, slack_url: str, **actions: Any) -> Config:
    return Config.model_validate(
        {
            "clusters": [{"name": "prod", "kubeconfig": str(kubeconfig)}],
            "receivers": [{"name": "oncall", "slack": {"channel": CHANNEL}}],
            "routes": [{"receivers": []}],
            "rbac": {
                "viewers": {"users": [VIEWER]},
                "deployers": [{"users": [DEPLOYER, SECOND], "clusters": ["prod"]}],
            },
            "actions": {"enabled": True, **actions},
            "slack": {"mode": "http", "api_url": slack_url},
        }
    )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Desk:
    """A Slack app in HTTP mode on the cluster, with its fake Slack and its pipeline."""

    slack: FakeSlackApi
    http: TestClient[web.Request, web.Application]
    bot: SlackBot
    store: Store
    pipeline: Pipeline
    clock: Clock
    kube: Cluster

    async def post(self, body: str) -> int:
        ts = str(int(time.time()))
        base = f"v0:{ts}:{body}".encode()
        headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": "v0="
            + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest(),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        response = await self.http.post(SLACK_EVENTS_PATH, data=body.encode(), headers=headers)
        await self.bot.drain()
        return response.status

    async def command(self, text: str, user: str = DEPLOYER) -> int:
        return await self.post(
            urlencode(
                {
                    "team_id": TEAM_ID,
                    "channel_id": CHANNEL,
                    "channel_name": "alerts",
                    "user_id": user,
                    "command": "/gitops",
                    "text": text,
                    "response_url": str(self.http.make_url("/response")),
                    "trigger_id": self.slack.issue_trigger(),
                }
            )
        )

    async def submit(self, view: dict[str, Any], user: str = DEPLOYER, reason: str = "") -> int:
        """The modal as Slack sends it back when its submit button is pressed."""
        values: dict[str, Any] = {
            "reason": {"reason_input": {"type": "plain_text_input", "value": reason}}
        }
        for block in view["blocks"]:
            if block.get("block_id") == "history":
                chosen = block["element"]["initial_option"]
                values["history"] = {
                    "history_select": {"type": "static_select", "selected_option": chosen}
                }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": "A0DRIFTBOT",
            "trigger_id": self.slack.issue_trigger(),
            "view": {**view, "state": {"values": values}},
        }
        return await self.post(urlencode({"payload": json.dumps(payload)}))

    async def click(self, action_id: str, value: str, message: dict[str, Any], user: str) -> int:
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": "A0DRIFTBOT",
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": CHANNEL},
            "trigger_id": self.slack.issue_trigger(),
            "channel": {"id": CHANNEL, "name": "alerts"},
            "message": message,
            "actions": [{"action_id": action_id, "type": "button", "value": value}],
        }
        return await self.post(urlencode({"payload": json.dumps(payload)}))

    async def watch_sees(self, kind: str, namespace: str, name: str) -> None:
        """The watch's MODIFIED event for the object as the API server has it now."""
        obj = await self.kube.get(kind, namespace, name)
        obj.setdefault("apiVersion", {"Application": "argoproj.io/v1alpha1"}.get(kind, ""))
        await self.pipeline.observe(obj, "prod", "MODIFIED", self.clock())
        await self.bot.desk.follower.drain()

    async def audited(self, *actions: str) -> list[AuditEntry]:
        return [e for e in reversed(await self.store.audit_log()) if e.action in actions]

    def said(self, user: str) -> str:
        return json.dumps([m for m in self.slack.ephemeral if m["user"] == user])

    def posts(self) -> list[dict[str, Any]]:
        """The channel's top-level messages."""
        return [m for m in self.slack.messages(CHANNEL) if "thread_ts" not in m]

    def replies(self, ts: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(CHANNEL) if m.get("thread_ts") == ts]


@pytest_asyncio.fixture(loop_scope="module")
async def desk(kube: Any, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Desk]:
    made, kubeconfig = kube
    actions = getattr(request, "param", {})
    clock = Clock(NOW)
    async with FakeSlackApi(clock=VirtualClock()) as slack:
        store = await Store.open(tmp_path / "state.sqlite")
        config = make_config(kubeconfig, slack.url, **actions)
        pipeline = Pipeline(store, config, {})
        bot = SlackBot(
            config,
            client=make_client(VALID_TOKEN, slack.url),
            fleet=pipeline,
            audit=store,
            controls=MemoryControls(),
            signing_secret=SECRET,
            clock=clock,
        )
        pipeline.listeners.append(bot.desk.follower.on_state)
        app = web.Application()
        add_slack_routes(app, bot)
        app.router.add_post("/response", _response_url)
        async with TestClient(TestServer(app)) as http:
            made_desk = Desk(slack, http, bot, store, pipeline, clock, made)
            for kind, ns, name in (
                ("Kustomization", "flux-system", "apps"),
                ("Kustomization", "flux-system", "infra"),
                ("Application", "argocd", "checkout"),
                ("Application", "argocd", "payments"),
                ("Application", "argocd", "cart"),
            ):
                await made_desk.watch_sees(kind, ns, name)
            yield made_desk
        await bot.close()
        await store.close()


async def _response_url(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _requested_at(desk: Desk, name: str) -> str:
    obj = await desk.kube.get("Kustomization", "flux-system", name)
    return str((obj["metadata"].get("annotations") or {}).get(REQUESTED_AT, ""))


# --- the typed command, confirmed --------------------------------------------------------------


async def test_a_deployers_reconcile_and_its_submitted_modal_reach_the_real_kustomization(
    desk: Desk,
) -> None:
    before = await _requested_at(desk, "apps")
    assert await desk.command("reconcile apps") == 200
    [modal] = desk.slack.opened
    assert modal["callback_id"] == CALLBACK_CONFIRM
    assert "Reconcile Kustomization *apps* in flux-system on *prod*" in json.dumps(modal)
    assert await _requested_at(desk, "apps") == before, "nothing is done before the confirmation"

    desk.clock.now = NOW + timedelta(minutes=2)
    assert await desk.submit(modal, reason="new image") == 200
    marker = await _requested_at(desk, "apps")
    assert marker and marker != before
    [started] = desk.posts()
    assert started["text"].startswith("Reconciling") and f"<@{DEPLOYER}>" in started["text"]

    done = kustomization("apps")["status"]  # what kustomize-controller writes when it is done
    await desk.kube.replace_status(
        "Kustomization", "flux-system", "apps", {**done, "lastHandledReconcileAt": marker}
    )
    await desk.watch_sees("Kustomization", "flux-system", "apps")
    [reply] = desk.replies(started["ts"])
    assert "succeeded" in reply["text"]
    actions = [
        (e.actor, e.action)
        for e in await desk.audited(
            "action_requested", "action_confirmed", "action_started", "action_succeeded"
        )
    ]
    assert actions == [
        (DEPLOYER, "action_requested"),
        (DEPLOYER, "action_confirmed"),
        (DEPLOYER, "action_started"),
        (DEPLOYER, "action_succeeded"),
    ]
    [confirmed] = await desk.audited("action_confirmed")
    assert confirmed.detail["reason"] == "new image" and confirmed.app is not None

    await desk.command("audit apps")
    shown = desk.said(DEPLOYER)
    for words in ("asked to act", "confirmed an action", "acted", "saw an action succeed"):
        assert words in shown
    assert "reason new image" in shown and "command reconcile" in shown


async def test_a_viewer_gets_no_modal_nothing_changes_and_the_refusal_is_audited(
    desk: Desk,
) -> None:
    before = await _requested_at(desk, "apps")
    assert await desk.command("reconcile apps", user=VIEWER) == 200
    assert desk.slack.opened == []
    assert "Only deployers of apps on prod may reconcile it" in desk.said(VIEWER)
    assert await _requested_at(desk, "apps") == before
    [denied] = await desk.audited("action_denied")
    assert (denied.actor, denied.detail["command"]) == (VIEWER, "reconcile")


async def test_a_stale_confirmation_is_refused_and_a_double_submit_acts_once(desk: Desk) -> None:
    await desk.command("reconcile infra")
    [modal] = desk.slack.opened
    before = await _requested_at(desk, "infra")
    desk.clock.now = NOW + timedelta(minutes=5, seconds=1)
    await desk.submit(modal)
    assert await _requested_at(desk, "infra") == before
    assert "more than 5 minutes old" in desk.said(DEPLOYER)
    [stale] = await desk.audited("action_refused")
    assert stale.detail["why"] == "stale"

    await desk.command("reconcile infra")
    fresh = desk.slack.opened[-1]
    await desk.submit(fresh)
    await desk.submit(fresh)
    assert len(await desk.audited("action_started")) == 1
    assert "already confirmed" in desk.said(DEPLOYER)
    assert len(desk.posts()) == 1


async def test_refusals_come_first_in_plain_words(desk: Desk) -> None:
    await desk.command("rollback cart")
    assert desk.slack.opened == []
    assert "refuses to roll back" in desk.said(DEPLOYER) and "auto-sync" in desk.said(DEPLOYER)
    await desk.command("sync apps")
    assert "Flux Kustomization" in desk.said(DEPLOYER)
    [refused, _] = await desk.audited("action_refused")
    assert refused.detail["why"] == "auto_sync"


# --- the two-person rule -----------------------------------------------------------------------

APPROVAL = {"approval": {"clusters": ["prod"], "within": "15m"}}


@pytest.mark.parametrize("desk", [APPROVAL], indirect=True)
async def test_two_person_rule_same_user_refused_second_deployer_accepted(desk: Desk) -> None:
    before = await _requested_at(desk, "apps")
    await desk.command("reconcile apps")
    [modal] = desk.slack.opened
    assert "second deployer must approve" in json.dumps(modal)
    await desk.submit(modal)
    [waiting] = desk.posts()
    [button] = [e for b in waiting["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == ACTION_APPROVE
    assert await _requested_at(desk, "apps") == before

    await desk.click(ACTION_APPROVE, button["value"], waiting, DEPLOYER)
    assert "another deployer must approve" in desk.said(DEPLOYER)
    assert await _requested_at(desk, "apps") == before
    await desk.click(ACTION_APPROVE, button["value"], waiting, VIEWER)
    assert await _requested_at(desk, "apps") == before

    await desk.click(ACTION_APPROVE, button["value"], waiting, SECOND)
    assert await _requested_at(desk, "apps") != before
    assert "Approved by <@U0SECOND>" in desk.slack.message(CHANNEL, waiting["ts"])["text"]
    [approved] = await desk.audited("action_approved")
    assert (approved.actor, approved.detail["asked_by"]) == (SECOND, DEPLOYER)
    await desk.click(ACTION_APPROVE, button["value"], waiting, SECOND)
    assert len(await desk.audited("action_started")) == 1


@pytest.mark.parametrize("desk", [APPROVAL], indirect=True)
async def test_an_approval_nobody_gives_expires_with_a_clear_message(desk: Desk) -> None:
    before = await _requested_at(desk, "infra")
    await desk.command("reconcile infra")
    await desk.submit(desk.slack.opened[-1])
    [waiting] = desk.posts()
    desk.clock.now = NOW + timedelta(minutes=16)
    await desk.bot.desk.tick(desk.clock.now)
    shown = desk.slack.message(CHANNEL, waiting["ts"])
    assert "Nobody approved" in shown["text"] and "within 15m" in shown["text"]
    assert "actions" not in [b["type"] for b in shown["blocks"]]
    [button] = [e for b in waiting["blocks"] if b["type"] == "actions" for e in b["elements"]]
    await desk.click(ACTION_APPROVE, button["value"], waiting, SECOND)
    assert await _requested_at(desk, "infra") == before
    assert [e.action for e in await desk.audited("action_expired", "action_started")] == [
        "action_expired"
    ]


# --- a rollback clicked on a degraded-deploy alert -----------------------------------------------


async def _degraded_alert(desk: Desk, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    key = next(k for k in desk.pipeline.states if k.name == name)
    state = desk.pipeline.states[key]
    event = make_event(EventKind.HEALTH_DEGRADED, state, NOW, previous_revision=REV_A)
    desk.pipeline.policy_state = PolicyState.of(open=[OpenAlert(event, NOW)])
    client = make_client(VALID_TOKEN, desk.slack.url)
    posted = await client.chat_postMessage(channel=CHANNEL, **render_slack(event, actions=True))
    message = dict(posted["message"])
    [button] = [
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "driftbot_act_rollback"
    ]
    return message, button


async def test_a_rollback_clicked_on_a_degraded_alert_writes_the_operation_and_reports_the_result(
    desk: Desk,
) -> None:
    message, button = await _degraded_alert(desk, "payments")
    assert button["text"]["text"] == "Roll back to ea87599"
    await desk.click("driftbot_act_rollback", button["value"], message, DEPLOYER)
    [modal] = desk.slack.opened
    shown = json.dumps(modal)
    assert "Roll back *payments* on *prod* from `7d2e4f6` to `ea87599`" in shown
    assert "history 40, deployed by carol" in shown
    await desk.submit(modal)

    app = await desk.kube.get("Application", "argocd", "payments")
    assert app["operation"]["sync"]["revision"] == REV_A
    assert app["operation"]["initiatedBy"] == {"username": DEPLOYER}
    [rolling] = desk.replies(message["ts"])
    assert rolling["text"].startswith("Rolling back *payments* on *prod* to `ea87599`")

    failed = operation_state(
        "Failed",
        REV_A,
        started_at="2026-12-06T03:00:05Z",
        finished_at="2026-12-06T03:01:00Z",
        username=DEPLOYER,
        message="one or more synchronization tasks completed unsuccessfully",
    )  # what the application controller writes when the sync it ran failed
    await desk.kube.replace_status("Application", "argocd", "payments", {"operationState": failed})
    await desk.watch_sees("Application", "argocd", "payments")
    _, result = desk.replies(message["ts"])
    assert "failed" in result["text"] and "completed unsuccessfully" in result["text"]
    [failed] = await desk.audited("action_failed")
    assert failed.detail["result"].startswith("one or more")


async def test_a_button_value_naming_another_app_is_refused_and_audited(desk: Desk) -> None:
    message, button = await _degraded_alert(desk, "payments")
    forged = json.loads(button["value"])
    forged["k"][4] = "cart"
    await desk.click("driftbot_act_rollback", json.dumps(forged), message, DEPLOYER)
    assert desk.slack.opened == []
    [refused] = await desk.audited("button_refused")
    assert refused.actor == DEPLOYER


# --- through Argo CD's API server -----------------------------------------------------------------


async def test_with_argocd_api_configured_the_rollback_is_an_api_call(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeArgoCDAPI(token="argocd-secret") as api:
        api.put(await desk.kube.get("Application", "argocd", "checkout"))
        monkeypatch.setenv("DRIFTBOT_TEST_ARGOCD_TOKEN", "argocd-secret")
        config = desk.bot.config.model_copy(
            update={
                "argocd_api": Config.model_validate(
                    {
                        "argocd_api": [
                            {
                                "cluster": "prod",
                                "url": api.url,
                                "token_env": "DRIFTBOT_TEST_ARGOCD_TOKEN",
                            }
                        ]
                    }
                ).argocd_api
            }
        )
        desk.bot.reconfigure(config)
        desk.bot.desk.actor.config = config
        await desk.command("rollback checkout 39")
        [modal] = desk.slack.opened
        await desk.submit(modal)
        [call] = api.of("rollback")
        assert call.status == 200 and call.body["id"] == 39
        assert "operation" not in await desk.kube.get("Application", "argocd", "checkout")
