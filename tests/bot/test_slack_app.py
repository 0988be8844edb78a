"""The Slack app end to end over HTTP: signed requests into /slack/events on an aiohttp server,
the real slack_bolt AsyncApp, and its Web API calls answered by the fake Slack.

Covers the signature check (forged, stale, tampered: 401), the slash command answered
ephemerally, RBAC refusals (audited), the buttons on an alert and on a storm (ack, mute, then
chat.update), the response_url fallback, user groups resolved and cached, and the App Home tab.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.chat.slack_app import (
    SLACK_EVENTS_PATH,
    SlackAppError,
    SlackBot,
    add_slack_routes,
    create_slack_bot,
)
from bot.chat.slack_door import Door
from bot.delivery.slack_sender import make_client
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.schema import Config, RbacConfig
from core.grouping import EventGroup, Group
from core.model import EventKind, Health, SyncStatus
from core.policy import OpenAlert, PolicyState
from formatters.chat import BLOCK_NOTE
from formatters.slack import render_slack, render_slack_group
from formatters.slack_actions import ACTION_ACK, ACTION_OPEN, action_value, group_action_value
from tests.bot.chat_support import MemoryControls, fleet
from tests.fakes.slack_api import TEAM_ID, VALID_TOKEN, FakeSlackApi, VirtualClock
from tests.formatters.builders import NOW, event

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OPERATOR = "U0OPERATOR"
VIEWER = "U0VIEWER"
GROUP_MEMBER = "U0ONCALL"
OUTSIDER = "U0OUTSIDER"
ONCALL_GROUP = "S0ONCALL"
CHANNEL = "C0ALERTS"


def make_config(**slack: Any) -> Config:
    return Config.model_validate(
        {
            "receivers": [{"name": "oncall", "slack": {"channel": CHANNEL}}],
            "routes": [{"match": {"cluster": "prod"}, "receivers": ["oncall"]}],
            "rbac": {
                "operators": {"users": [OPERATOR], "groups": [ONCALL_GROUP]},
                "viewers": {"users": [VIEWER]},
            },
            "slack": {"mode": "http", **slack},
        }
    )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    slack: FakeSlackApi
    http: TestClient[web.Request, web.Application]
    bot: SlackBot
    store: Store
    pipeline: Pipeline
    controls: MemoryControls
    clock: Clock
    group_clock: VirtualClock
    responses: list[dict[str, Any]]

    async def post(
        self,
        body: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp_header: str | None = None,
        more_headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "X-Slack-Request-Timestamp": timestamp_header or ts,
            "X-Slack-Signature": signature or sign(body, ts),
            "Content-Type": content_type,
            **(more_headers or {}),
        }
        response = await self.http.post(SLACK_EVENTS_PATH, data=body.encode(), headers=headers)
        text = await response.text()
        return response.status, text

    async def command(self, text: str, user: str = OPERATOR, channel: str = CHANNEL) -> int:
        status, _ = await self.post(command_body(text, user, channel, self.response_url))
        await self.bot.drain()
        return status

    async def click(self, action_id: str, value: str, message: dict[str, Any], user: str) -> int:
        status, _ = await self.post(action_body(action_id, value, message, user))
        await self.bot.drain()
        return status

    @property
    def response_url(self) -> str:
        return str(self.http.make_url("/response"))

    def answers(self, user: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.ephemeral if m["user"] == user]


def sign(body: str, ts: str, secret: str = SECRET) -> str:
    base = f"v0:{ts}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_form(body: str) -> dict[str, str]:
    """The headers of a form `body` Slack signs now with SECRET."""
    ts = str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(body, ts),
        "Content-Type": "application/x-www-form-urlencoded",
    }


_TRIGGERS = itertools.count(13345224609)


def _trigger_id() -> str:
    """Slack gives every command and click a trigger id of its own, so no two requests that
    Slack signs have the same body."""
    return f"{next(_TRIGGERS)}.738474920.8088930838d88f008e0"


def command_body(text: str, user: str, channel: str, response_url: str) -> str:
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "driftbot-test",
            "channel_id": channel,
            "channel_name": "alerts",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/gitops",
            "text": text,
            "api_app_id": "A0DRIFTBOT",
            "response_url": response_url,
            "trigger_id": _trigger_id(),
        }
    )


def action_body(action_id: str, value: str, message: dict[str, Any], user: str) -> str:
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "driftbot-test"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0DRIFTBOT",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": CHANNEL,
            "is_ephemeral": False,
        },
        "trigger_id": _trigger_id(),
        "channel": {"id": CHANNEL, "name": "alerts"},
        "message": message,
        "response_url": "https://hooks.slack.com/actions/T0DRIFT01/1/xyz",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "driftbot_actions",
                "type": "button",
                "value": value,
                "action_ts": "1700000000.000001",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    group_clock = VirtualClock()
    clock = Clock(NOW)
    responses: list[dict[str, Any]] = []
    async with FakeSlackApi(
        clock=VirtualClock(),
        usergroups={ONCALL_GROUP: [GROUP_MEMBER]},
        not_member_channels=["C0PRIVATE"],
    ) as slack:
        store = await Store.open(tmp_path / "state.sqlite")
        config = make_config(api_url=slack.url)
        pipeline = Pipeline(store, config, {})
        pipeline.states = fleet()
        controls = MemoryControls()
        bot = SlackBot(
            config,
            client=make_client(VALID_TOKEN, slack.url),
            fleet=pipeline,
            audit=store,
            controls=controls,
            signing_secret=SECRET,
            clock=clock,
            group_clock=group_clock,
            home_interval=timedelta(seconds=30),
        )

        async def response_url(request: web.Request) -> web.Response:
            responses.append(await request.json())
            return web.Response(text="ok")

        app = web.Application()
        add_slack_routes(app, bot)
        app.router.add_post("/response", response_url)
        async with TestClient(TestServer(app)) as http:
            yield Harness(
                slack, http, bot, store, pipeline, controls, clock, group_clock, responses
            )
        await bot.close()
        await store.close()


def text_of(message: dict[str, Any]) -> str:
    """Everything a person would read in a message or view."""
    return json.dumps(message.get("blocks", []), ensure_ascii=False) + message.get("text", "")


# --- signatures ----------------------------------------------------------------------------------


async def test_a_signed_slash_command_is_answered_ephemerally_with_the_status(
    harness: Harness,
) -> None:
    assert await harness.command("status") == 200
    [answer] = harness.answers(OPERATOR)
    assert answer["channel"] == CHANNEL
    shown = text_of(answer)
    assert "*prod*: 2 of 4 apps need attention" in shown
    assert "payments is failing" in shown
    assert "checkout no longer matches Git" in shown
    assert shown.index("*prod*") < shown.index("*staging*")
    assert harness.slack.calls_to("chat.postEphemeral")[0].ok


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda body, ts: ("v0=" + "0" * 64, ts, body), id="forged signature"),
        pytest.param(lambda body, ts: (sign(body, ts, "not-the-secret"), ts, body), id="wrong key"),
        pytest.param(lambda body, ts: (sign(body, ts), ts - 301, body), id="stale timestamp"),
        pytest.param(
            lambda body, ts: (sign(body, ts), ts, body.replace("status", "mutes")),
            id="tampered body",
        ),
    ],
)
async def test_requests_that_are_not_signed_by_slack_now_are_refused(
    harness: Harness, forge: Any
) -> None:
    body = command_body("status", OPERATOR, CHANNEL, harness.response_url)
    now = int(time.time())
    signature, ts, sent = forge(body, now)
    if ts != now:  # a stale request signed for its own (old) timestamp
        signature = sign(sent, str(ts))
    status, _ = await harness.post(sent, timestamp=ts, signature=signature)
    await harness.bot.drain()
    assert status == 401
    assert harness.slack.ephemeral == []
    assert harness.slack.calls_to("chat.postEphemeral") == []


async def test_a_request_signed_just_within_five_minutes_is_accepted(harness: Harness) -> None:
    body = command_body("help", OPERATOR, CHANNEL, harness.response_url)
    ts = int(time.time()) - 280
    status, _ = await harness.post(body, timestamp=ts, signature=sign(body, str(ts)))
    await harness.bot.drain()
    assert status == 200
    assert "history APP" in text_of(harness.answers(OPERATOR)[0])


async def test_the_command_is_acknowledged_before_slow_work_is_done(harness: Harness) -> None:
    harness.controls.gate = asyncio.Event()
    body = command_body("mute checkout 4h release", OPERATOR, CHANNEL, harness.response_url)
    status, _ = await harness.post(body)
    assert status == 200  # answered while the mute is still waiting
    assert harness.controls.muted == {}
    harness.controls.gate.set()
    await harness.bot.drain()
    assert "checkout" in harness.controls.muted
    assert "Muted" in text_of(harness.answers(OPERATOR)[0])


async def test_unknown_input_gets_usage_help_not_an_error(harness: Harness) -> None:
    assert await harness.command("stauts prod") == 200
    shown = text_of(harness.answers(OPERATOR)[0])
    assert "did you mean `status`?" in shown
    assert "/gitops help" in shown


# --- RBAC ----------------------------------------------------------------------------------------


async def test_someone_who_may_not_view_is_refused_politely_and_audited(
    harness: Harness,
) -> None:
    assert await harness.command("status prod", user=OUTSIDER) == 200
    shown = text_of(harness.answers(OUTSIDER)[0])
    assert "Sorry, you are not among the people who may ask" in shown
    assert "payments" not in shown
    [entry] = await harness.store.audit_log()
    assert (entry.actor, entry.action) == (OUTSIDER, "denied")
    assert entry.detail["command"] == "status"


async def test_a_viewer_may_ask_but_not_mute_and_the_refusal_is_audited(harness: Harness) -> None:
    await harness.command("drift", user=VIEWER)
    await harness.command("mute checkout 1h", user=VIEWER)
    drift, refused = harness.answers(VIEWER)
    assert "checkout on prod: no longer matches Git" in text_of(drift)
    assert "only operators may mute alerts" in text_of(refused)
    assert harness.controls.muted == {}
    [entry] = await harness.store.audit_log()
    assert (entry.actor, entry.action, entry.detail["command"]) == (VIEWER, "denied", "mute")


async def test_a_member_of_an_operator_group_may_mute_and_groups_are_cached(
    harness: Harness,
) -> None:
    await harness.command("mute checkout 4h deploy window", user=GROUP_MEMBER)
    await harness.command("mutes", user=GROUP_MEMBER)
    muted, listed = harness.answers(GROUP_MEMBER)
    assert "Muted `checkout` until" in text_of(muted)
    assert "(deploy window)" in text_of(listed)
    mute = harness.controls.muted["checkout"]
    assert (mute.who, mute.until) == (GROUP_MEMBER, NOW + timedelta(hours=4))
    assert len(harness.slack.calls_to("usergroups.users.list")) == 1
    entries = await harness.store.audit_log()
    assert {e.app.cluster for e in entries if e.app} == {"prod", "staging"}
    assert {e.action for e in entries} == {"mute"}

    harness.group_clock.advance(301)
    await harness.command("mutes", user=GROUP_MEMBER)
    assert len(harness.slack.calls_to("usergroups.users.list")) == 2


async def test_a_user_group_that_cannot_be_read_grants_nothing(harness: Harness) -> None:
    harness.slack.usergroups.clear()
    await harness.command("ack checkout", user=GROUP_MEMBER)
    assert "Sorry, you are not among the people" in text_of(harness.answers(GROUP_MEMBER)[0])
    assert harness.controls.acked == []


# --- answers where the bot cannot post -----------------------------------------------------------


async def test_where_the_bot_may_not_post_the_answer_goes_to_the_response_url(
    harness: Harness,
) -> None:
    await harness.command("versions checkout", channel="C0PRIVATE")
    assert harness.slack.calls_to("chat.postEphemeral")[0].error == "not_in_channel"
    [response] = harness.responses
    assert response["response_type"] == "ephemeral"
    assert "The clusters do not run the same version" in json.dumps(response["blocks"])


# --- buttons -------------------------------------------------------------------------------------


async def _post_alert(harness: Harness) -> tuple[dict[str, Any], str]:
    """The drift alert as driftbot posts it, and the value its buttons carry."""
    state = harness.pipeline.states[
        next(k for k in harness.pipeline.states if k.name == "checkout")
    ]
    drift = event(EventKind.DRIFT_DETECTED, state)
    harness.pipeline.policy_state = PolicyState.of(open=[OpenAlert(drift, NOW)])
    rendered = render_slack(drift)
    client = make_client(VALID_TOKEN, harness.slack.url)
    posted = await client.chat_postMessage(channel=CHANNEL, **rendered)
    return dict(posted["message"]), action_value(drift)


async def test_acknowledge_button_updates_the_alert_and_is_audited(harness: Harness) -> None:
    message, value = await _post_alert(harness)
    harness.controls.open_alerts = {k: 1 for k in harness.pipeline.states if k.name == "checkout"}
    assert await harness.click(ACTION_ACK, value, message, OPERATOR) == 200
    [update] = harness.slack.calls_to("chat.update")
    assert update.ok
    now_shown = harness.slack.message(CHANNEL, message["ts"])
    note = now_shown["blocks"][-1]
    assert note["block_id"] == BLOCK_NOTE
    assert f"Acknowledged by <@{OPERATOR}>" in note["elements"][0]["text"]
    action_ids = [
        e["action_id"] for b in now_shown["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert ACTION_ACK not in action_ids and "driftbot_mute_4h" in action_ids
    assert harness.controls.acked[0][0].name == "checkout"
    [entry] = await harness.store.audit_log()
    assert (entry.actor, entry.action, entry.app and entry.app.name) == (
        OPERATOR,
        "ack",
        "checkout",
    )
    assert entry.detail["alerts"] == 1


async def test_mute_button_mutes_the_app_and_shows_until_when(harness: Harness) -> None:
    message, value = await _post_alert(harness)
    await harness.click("driftbot_mute_4h", value, message, GROUP_MEMBER)
    mute = harness.controls.muted["prod/shop/checkout"]
    assert mute.until == NOW + timedelta(hours=4)
    note = harness.slack.message(CHANNEL, message["ts"])["blocks"][-1]["elements"][0]["text"]
    assert f"Muted by <@{GROUP_MEMBER}> until" in note
    assert str(int(mute.until.timestamp())) in note
    [entry] = await harness.store.audit_log()
    assert (entry.action, entry.detail["target"]) == ("mute", "prod/shop/checkout")


async def test_a_second_click_replaces_the_note_instead_of_adding_one(harness: Harness) -> None:
    message, value = await _post_alert(harness)
    await harness.click(ACTION_ACK, value, message, OPERATOR)
    updated = harness.slack.message(CHANNEL, message["ts"])
    await harness.click("driftbot_mute_1h", value, {**updated, "ts": message["ts"]}, OPERATOR)
    blocks = harness.slack.message(CHANNEL, message["ts"])["blocks"]
    notes = [b for b in blocks if b.get("block_id") == BLOCK_NOTE]
    assert len(notes) == 1 and "Muted by" in notes[0]["elements"][0]["text"]


async def test_a_button_click_by_a_viewer_is_refused_audited_and_changes_nothing(
    harness: Harness,
) -> None:
    message, value = await _post_alert(harness)
    await harness.click("driftbot_mute_24h", value, message, VIEWER)
    assert harness.slack.calls_to("chat.update") == []
    assert harness.controls.muted == {}
    assert "only operators may mute alerts" in text_of(harness.answers(VIEWER)[0])
    [entry] = await harness.store.audit_log()
    assert (entry.actor, entry.action, entry.detail["command"]) == (
        VIEWER,
        "denied",
        "driftbot_mute_24h",
    )


async def test_open_in_argo_cd_is_only_acknowledged(harness: Harness) -> None:
    message, _ = await _post_alert(harness)
    assert await harness.click(ACTION_OPEN, "", message, OUTSIDER) == 200
    assert harness.slack.calls_to("chat.update") == []
    assert harness.slack.ephemeral == []
    assert await harness.store.audit_log() == []


async def test_a_button_value_that_is_not_ours_gets_a_polite_answer(harness: Harness) -> None:
    message, _ = await _post_alert(harness)
    await harness.click(ACTION_ACK, "<!channel> not json", message, OPERATOR)
    assert "can no longer find" in text_of(harness.answers(OPERATOR)[0])
    assert harness.slack.calls_to("chat.update") == []


# --- App Home ------------------------------------------------------------------------------------


def home_opened(user: str) -> str:
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": "A0DRIFTBOT",
            "type": "event_callback",
            "event_id": "Ev0HOME",
            "event_time": 1700000000,
            "event": {
                "type": "app_home_opened",
                "user": user,
                "channel": "D0HOME",
                "tab": "home",
                "event_ts": "1700000000.000100",
            },
        }
    )


async def test_app_home_is_published_on_open_and_republished_when_the_fleet_changes(
    harness: Harness,
) -> None:
    status, _ = await harness.post(home_opened(VIEWER), content_type="application/json")
    await harness.bot.drain()
    assert status == 200
    view = harness.slack.view(VIEWER)
    assert view is not None
    shown = text_of(view)
    assert "*prod*: 4 apps: 2 synced · 1 drifted · 1 failing" in shown
    assert shown.index("*prod*") < shown.index("*staging*")
    assert "payments is failing" in shown

    assert await harness.bot.home.refresh()  # first round for the known viewers
    published = harness.bot.home.publications
    assert not await harness.bot.home.refresh()  # nothing changed
    key = next(k for k in harness.pipeline.states if k.name == "payments")
    healed = harness.pipeline.states[key]
    harness.pipeline.states[key] = replace(healed, health=Health.HEALTHY, sync=SyncStatus.SYNCED)
    harness.clock.now = NOW + timedelta(seconds=10)
    assert not await harness.bot.home.refresh()  # debounced: within 30 s of the last round
    harness.clock.now = NOW + timedelta(seconds=31)
    assert await harness.bot.home.refresh()
    assert harness.bot.home.publications == published + 1
    assert "*prod*: 4 apps: 3 synced · 1 drifted · 0 failing" in text_of(
        harness.slack.view(VIEWER) or {}
    )


async def test_app_home_of_someone_who_may_not_view_shows_no_fleet(harness: Harness) -> None:
    await harness.post(home_opened(OUTSIDER), content_type="application/json")
    await harness.bot.drain()
    shown = text_of(harness.slack.view(OUTSIDER) or {})
    assert "not among the people" in shown
    assert "prod" not in shown


async def test_the_home_refresher_runs_on_the_injected_sleep(harness: Harness) -> None:
    await harness.bot.home.opened(VIEWER)
    ticks = 0

    async def sleep(seconds: float) -> None:
        nonlocal ticks
        ticks += 1
        if ticks > 2:
            await asyncio.Event().wait()  # park: the test is done with it
        await asyncio.sleep(0)

    harness.bot.start(home_every=5.0, sleep=sleep)
    for _ in range(50):
        if ticks > 2:
            break
        await asyncio.sleep(0)
    assert harness.bot.home.published is not None


# --- construction --------------------------------------------------------------------------------


def test_http_mode_needs_the_signing_secret() -> None:
    with pytest.raises(SlackAppError, match="SLACK_SIGNING_SECRET"):
        create_slack_bot(
            make_config(),
            bot_token="xoxb-1",
            signing_secret=None,
            fleet=_NoFleet(),
            audit=_NoAudit(),
            controls=MemoryControls(),
        )


async def test_socket_mode_needs_an_app_level_token(harness: Harness) -> None:
    with pytest.raises(SlackAppError, match="xapp-"):
        await harness.bot.start_socket_mode("xoxb-not-an-app-token")


class _NoFleet:
    states: dict[Any, Any] = {}  # noqa: RUF012
    policy_state = PolicyState()
    projects: dict[Any, Any] = {}  # noqa: RUF012


class _NoAudit:
    async def audit(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("not expected")

    async def audit_log(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


# --- Socket Mode ---------------------------------------------------------------------------------

APP_TOKEN = "xapp-1-A0DRIFTBOT-1-driftbot-test"


async def test_socket_mode_answers_a_slash_command_over_the_websocket(tmp_path: Path) -> None:
    """The real slack_sdk Socket Mode client: apps.connections.open on the fake Slack, then a
    WebSocket that delivers a slash command envelope and expects its acknowledgement."""
    acked: list[dict[str, Any]] = []
    got_ack = asyncio.Event()

    async def link(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1})
        payload = dict(parse_qsl(command_body("drift", OPERATOR, CHANNEL, "")))
        await ws.send_json(
            {
                "envelope_id": "57d6a792-4d35-4d0b-b6aa-3361493e1caf",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": payload,
            }
        )
        async for message in ws:
            acked.append(json.loads(message.data))
            got_ack.set()
        return ws

    socket_app = web.Application()
    socket_app.router.add_get("/link", link)
    async with (
        TestServer(socket_app) as socket_server,
        FakeSlackApi(clock=VirtualClock(), tokens=(VALID_TOKEN, APP_TOKEN)) as slack,
        await Store.open(tmp_path / "state.sqlite") as store,
    ):
        slack.socket_url = str(socket_server.make_url("/link")).replace("http://", "ws://")
        config = make_config(mode="socket", api_url=slack.url)
        pipeline = Pipeline(store, config, {})
        pipeline.states = fleet()
        bot = SlackBot(
            config,
            client=make_client(VALID_TOKEN, slack.url),
            fleet=pipeline,
            audit=store,
            controls=MemoryControls(),
            clock=Clock(NOW),
        )
        try:
            await bot.start_socket_mode(APP_TOKEN)
            await asyncio.wait_for(got_ack.wait(), timeout=20)
            await bot.drain()
        finally:
            await bot.close()
    assert acked[0]["envelope_id"] == "57d6a792-4d35-4d0b-b6aa-3361493e1caf"
    [call] = slack.calls_to("apps.connections.open")
    assert call.token == APP_TOKEN
    [answer] = slack.ephemeral
    assert "checkout on prod: no longer matches Git" in text_of(answer)


async def test_a_failure_behind_a_button_gets_an_apology(harness: Harness) -> None:
    message, value = await _post_alert(harness)
    await harness.store.close()  # the audit log cannot be written
    await harness.click("driftbot_mute_1h", value, message, OPERATOR)
    assert "something went wrong" in text_of(harness.answers(OPERATOR)[0])


async def test_slack_routes_registered_before_the_bot_exists_answer_503_until_it_does(
    harness: Harness,
) -> None:
    holder: list[SlackBot] = []
    app = web.Application()
    add_slack_routes(app, lambda: holder[0] if holder else None)
    body = command_body("help", OPERATOR, CHANNEL, harness.response_url)
    headers = signed_form(body)
    async with TestClient(TestServer(app)) as http:
        early = await http.post(SLACK_EVENTS_PATH, data=body.encode(), headers=headers)
        assert early.status == 503
        holder.append(harness.bot)
        later = await http.post(SLACK_EVENTS_PATH, data=body.encode(), headers=headers)
        assert later.status == 200
    await harness.bot.drain()
    assert "history APP" in text_of(harness.answers(OPERATOR)[0])


# --- the door: timestamps, replays, Slack's retries ----------------------------------------------


@pytest.mark.parametrize("timestamp", ["soon", "1e9", "-1", "17000000000000", " ", "0x1"])
async def test_a_timestamp_that_is_not_a_unix_time_is_401_not_500(
    harness: Harness, timestamp: str
) -> None:
    body = command_body("status", OPERATOR, CHANNEL, harness.response_url)
    status, text = await harness.post(body, timestamp_header=timestamp)
    await harness.bot.drain()
    assert status == 401
    assert "Traceback" not in text
    assert harness.slack.ephemeral == []


async def test_a_signed_request_sent_again_is_refused_and_done_once(harness: Harness) -> None:
    body = command_body("mute checkout 1h", OPERATOR, CHANNEL, harness.response_url)
    ts = int(time.time())
    statuses = [(await harness.post(body, timestamp=ts))[0] for _ in range(3)]
    await harness.bot.drain()
    assert statuses == [200, 401, 401]
    assert list(harness.controls.muted) == ["checkout"]
    assert len(harness.answers(OPERATOR)) == 1
    assert {e.action for e in await harness.store.audit_log()} == {"mute"}
    assert harness.bot.door is not None and harness.bot.door.replays == 2


async def test_a_click_sent_again_acts_once(harness: Harness) -> None:
    message, value = await _post_alert(harness)
    body = action_body("driftbot_mute_1h", value, message, OPERATOR)
    ts = int(time.time())
    first, _ = await harness.post(body, timestamp=ts)
    again, _ = await harness.post(body, timestamp=ts)
    await harness.bot.drain()
    assert (first, again) == (200, 401)
    assert len(harness.slack.calls_to("chat.update")) == 1
    assert [e.action for e in await harness.store.audit_log()] == ["mute"]


async def test_slack_retrying_an_event_already_taken_is_answered_and_not_done_again(
    harness: Harness,
) -> None:
    body = home_opened(VIEWER)
    ts = int(time.time())
    first, _ = await harness.post(body, timestamp=ts, content_type="application/json")
    await harness.bot.drain()
    retried = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    response = await harness.http.post(
        SLACK_EVENTS_PATH,
        data=body.encode(),
        headers={
            "X-Slack-Request-Timestamp": str(ts + 1),
            "X-Slack-Signature": sign(body, str(ts + 1)),
            "Content-Type": "application/json",
            **retried,
        },
    )
    await harness.bot.drain()
    assert (first, response.status) == (200, 200)
    assert response.headers["X-Slack-No-Retry"] == "1"
    assert len(harness.slack.calls_to("views.publish")) == 1
    # The same retry once more, signature and all: still answered, still not done.
    again, _ = await harness.post(
        body, timestamp=ts + 1, content_type="application/json", more_headers=retried
    )
    assert again == 200
    assert len(harness.slack.calls_to("views.publish")) == 1


def test_the_door_forgets_a_request_once_its_window_is_over_and_is_bounded() -> None:
    now = [1_700_000_000.0]
    door = Door(SECRET, clock=lambda: now[0], limit=2)

    def request(n: int) -> tuple[bytes, dict[str, str]]:
        body = f"command=%2Fgitops&text=help&trigger_id={n}".encode()
        ts = str(int(now[0]))
        base = f"v0:{ts}:".encode() + body
        signature = "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
        return body, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}

    first, second, third = request(1), request(2), request(3)
    assert door.check(*first).status is None
    assert door.check(*second).status is None
    assert door.check(*third).status == 503, "full of live entries: refused, not forgotten"
    assert door.check(*first).status == 401
    now[0] += 301
    assert len(door.requests) <= 2
    assert door.check(*first).status == 401, "and now too old to be taken anyway"
    assert door.check(*request(4)).status is None
    assert len(door.requests) == 1


# --- buttons act on what the server stored -------------------------------------------------------


async def test_a_button_value_naming_another_app_is_refused_and_audited(harness: Harness) -> None:
    message, value = await _post_alert(harness)
    forged = json.loads(value)
    forged["k"] = ["argocd", "*", "*", "*", "*"]
    await harness.click("driftbot_mute_24h", json.dumps(forged), message, OPERATOR)
    assert harness.controls.muted == {}
    assert harness.slack.calls_to("chat.update") == []
    [entry] = await harness.store.audit_log()
    assert (entry.actor, entry.action) == (OPERATOR, "button_refused")
    assert entry.app is not None and entry.app.name == "checkout"
    assert entry.detail["named"] == ["argocd", "*", "*", "*", "*"]
    assert "can no longer find" in text_of(harness.answers(OPERATOR)[0])


async def test_a_button_naming_no_stored_alert_does_nothing(harness: Harness) -> None:
    message, value = await _post_alert(harness)
    harness.pipeline.policy_state = PolicyState.of()
    await harness.click(ACTION_ACK, value, message, OPERATOR)
    assert harness.controls.acked == []
    assert harness.slack.calls_to("chat.update") == []
    assert "can no longer find" in text_of(harness.answers(OPERATOR)[0])


async def test_a_button_without_an_app_acts_on_the_stored_alert(harness: Harness) -> None:
    message, value = await _post_alert(harness)
    bare = json.loads(value)
    del bare["k"]
    await harness.click("driftbot_mute_1h", json.dumps(bare), message, OPERATOR)
    assert list(harness.controls.muted) == ["prod/shop/checkout"]


async def test_a_button_on_a_group_acts_on_every_open_member(harness: Harness) -> None:
    message, _ = await _post_alert(harness)
    states = [s for s in harness.pipeline.states.values() if s.cluster == "prod"][:3]
    members = [event(EventKind.DRIFT_DETECTED, s) for s in states]
    group = Group(id="route-0\x00" + members[0].id, route="route-0", key=(), members=tuple(members))
    harness.pipeline.policy_state = PolicyState.of(
        open=[OpenAlert(m, NOW, route="route-0", group=group.id) for m in members],
        groups=[group],
    )
    bare = json.dumps({"v": 1, "e": members[0].id})
    await harness.click("driftbot_mute_4h", bare, message, OPERATOR)
    assert sorted(harness.controls.muted) == sorted(
        f"{s.cluster}/{s.namespace}/{s.name}" for s in states
    )
    assert len(await harness.store.audit_log()) == 3


async def test_a_reloaded_config_reaches_rbac_the_command_and_the_buttons(
    harness: Harness,
) -> None:
    message, value = await _post_alert(harness)
    old = make_config(api_url=harness.slack.url)
    new = old.model_copy(
        update={
            "rbac": RbacConfig.model_validate(
                {"operators": {"users": [VIEWER]}, "viewers": {"users": [GROUP_MEMBER]}}
            ),
            "slack": old.slack.model_copy(update={"command": "/ops"}),
        }
    )
    harness.bot.reconfigure(new)

    async def ops(text: str, user: str) -> int:
        body = command_body(text, user, CHANNEL, harness.response_url)
        status, _ = await harness.post(body.replace("command=%2Fgitops", "command=%2Fops"))
        await harness.bot.drain()
        return status

    assert await ops("mute checkout 1h", OPERATOR) == 200
    await harness.click("driftbot_mute_1h", value, message, OPERATOR)
    assert harness.controls.muted == {}, "the operator removed may no longer mute"
    assert len(harness.answers(OPERATOR)) == 2
    assert await ops("status", OUTSIDER) == 200
    assert "not among the people who may ask" in text_of(harness.answers(OUTSIDER)[0])
    assert await ops("mute checkout 1h", VIEWER) == 200
    assert list(harness.controls.muted) == ["checkout"], "the new operator, by the new command"
    assert await harness.command("status", user=GROUP_MEMBER) == 404, "the old name is gone"


# --- buttons on a storm: every member, found by the notification id the policy recorded ------


async def _post_storm(harness: Harness) -> tuple[dict[str, Any], EventGroup]:
    """A drift storm of two apps as the policy records it and driftbot posts it."""
    drifted = [
        event(EventKind.DRIFT_DETECTED, state)
        for key, state in harness.pipeline.states.items()
        if key.cluster == "prod" and key.name in ("checkout", "guestbook")
    ]
    assert len(drifted) == 2
    group = Group(
        id="oncall/" + drifted[0].id, route="oncall", key=("oncall",), members=tuple(drifted)
    )
    harness.pipeline.policy_state = PolicyState.of(
        open=[OpenAlert(e, NOW, "oncall", group.id) for e in drifted], groups=[group]
    )
    storm = EventGroup.of(drifted)
    client = make_client("xoxb-driftbot-test", harness.slack.url)
    posted = await client.chat_postMessage(channel=CHANNEL, **render_slack_group(storm))
    return dict(posted["message"]), storm


def _button_values(message: dict[str, Any]) -> dict[str, str]:
    return {
        e["action_id"]: e.get("value", "")
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }


async def test_a_storm_message_carries_ack_and_mute_naming_only_its_notification(
    harness: Harness,
) -> None:
    message, storm = await _post_storm(harness)
    values = _button_values(message)
    assert set(values) == {ACTION_ACK, "driftbot_mute_1h", "driftbot_mute_4h", "driftbot_mute_24h"}
    assert {json.loads(v)["e"] for v in values.values()} == {storm.id}
    assert all("k" not in json.loads(v) for v in values.values())


async def test_acknowledge_on_a_storm_acknowledges_every_member(harness: Harness) -> None:
    message, storm = await _post_storm(harness)
    assert await harness.click(ACTION_ACK, group_action_value(storm.id), message, OPERATOR) == 200
    assert sorted(k.name for k, _, _ in harness.controls.acked) == ["checkout", "guestbook"]
    entries = await harness.store.audit_log()
    assert sorted(e.app.name for e in entries if e.app) == ["checkout", "guestbook"]
    assert {e.detail["event"] for e in entries} == {storm.id}
    note = harness.slack.message(CHANNEL, message["ts"])["blocks"][-1]["elements"][0]["text"]
    assert f"Acknowledged by <@{OPERATOR}>" in note


async def test_mute_on_a_storm_mutes_every_member(harness: Harness) -> None:
    message, storm = await _post_storm(harness)
    await harness.click("driftbot_mute_1h", group_action_value(storm.id), message, OPERATOR)
    expected = {f"{e.cluster}/{e.namespace}/{e.name}" for e in storm.events}
    assert set(harness.controls.muted) == expected and len(expected) == 2
    assert all(m.until == NOW + timedelta(hours=1) for m in harness.controls.muted.values())


async def test_a_group_id_the_policy_never_recorded_changes_nothing(harness: Harness) -> None:
    message, _ = await _post_storm(harness)
    await harness.click(ACTION_ACK, group_action_value("made-up"), message, OPERATOR)
    assert harness.controls.acked == []
    assert harness.slack.calls_to("chat.update") == []
    assert harness.answers(OPERATOR), "the clicker is told the button is stale"
