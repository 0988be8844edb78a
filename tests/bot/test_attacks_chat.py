"""The attacks of a signed-in Slack user (or anyone holding a captured request), against a real
`driftbot run` in Slack's HTTP mode on loopback, its Web API calls answered by the fake Slack:
a timestamp that is not a number, a signed mute sent three times, Slack's own retry, a button
value that names every app, and a SIGHUP that changes who may do what."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import orjson

from bot.chat.slack_door import sign as slack_sign
from bot.inbound.flux import sign as flux_sign
from bot.store.store import Store
from tests.bot.live_run import LiveRun
from tests.bot.test_slack_app import action_body, command_body
from tests.builders_flux import notification
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi

SECRET = "attack-signing-secret-6d1f"
FLUX_TOKEN = b"attack-flux-token"
CHANNEL = "C0ALERTS"
OPERATOR = "U0OPERATOR"
NEW_OPERATOR = "U0NEWOP"
VIEWER = "U0VIEWER"
OUTSIDER = "U0OUTSIDER"


def _config(slack: FakeSlackApi, rbac: dict[str, Any], mode: str = "http") -> dict[str, Any]:
    return {
        "receivers": [{"name": "oncall", "slack": {"channel": CHANNEL}}],
        "routes": [{"receivers": ["oncall"]}],
        "policy": {"grace": "0s", "group_wait": "0s", "flap": {"flips": 0}},
        "rbac": rbac,
        "slack": {"mode": mode, "api_url": slack.url},
        "server": {
            "flux_webhook_token_env": "FLUX_TOKEN",
            "flux_webhook_clusters": [{"name": "prod"}],
        },
    }


def _headers(body: str, ts: int, **more: str) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": slack_sign(SECRET, str(ts), body.encode()),
        "Content-Type": "application/x-www-form-urlencoded",
        **more,
    }


async def _until(check: Any, within: float = 20) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - the fake Slack's calls, seen from outside
            await asyncio.sleep(0.02)


async def test_attacks_from_slack_on_a_running_driftbot(tmp_path: Path) -> None:
    async with FakeSlackApi() as slack:
        env = {
            "SLACK_BOT_TOKEN": VALID_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "FLUX_TOKEN": FLUX_TOKEN.decode(),
        }
        rbac = {"operators": {"users": [OPERATOR]}}
        async with LiveRun(tmp_path, _config(slack, rbac), env) as run:
            # An alert with its buttons, from a signed Flux event.
            flux = orjson.dumps(notification(name="checkout"))
            status, _ = await run.post(
                "/webhooks/flux", flux, {"X-Signature": flux_sign(flux, FLUX_TOKEN)}
            )
            assert status == 202
            await _until(lambda: bool(slack.messages(CHANNEL)))
            alert = slack.messages(CHANNEL)[0]
            [value] = {
                e["value"]
                for b in alert["blocks"]
                if b["type"] == "actions"
                for e in b["elements"]
                if e.get("action_id") == "driftbot_ack"
            }

            # 8. A timestamp that is not a number: 401, no traceback.
            body = command_body("status", OPERATOR, CHANNEL, f"{run.base}/unused")
            headers = _headers(body, int(time.time()))
            headers["X-Slack-Request-Timestamp"] = "soon"
            assert (await run.post("/slack/events", body.encode(), headers))[0] == 401

            # 5. A signed mute sent three times: done once.
            mute = command_body("mute checkout 1h", OPERATOR, CHANNEL, f"{run.base}/unused")
            ts = int(time.time())
            statuses = [
                (await run.post("/slack/events", mute.encode(), _headers(mute, ts)))[0]
                for _ in range(3)
            ]
            assert statuses == [200, 401, 401]
            await _until(lambda: len(slack.ephemeral) == 1)
            # Slack's own retry of it (same request, X-Slack-Retry-Num): answered, not done.
            retry = _headers(mute, ts, **{"X-Slack-Retry-Num": "1"})
            status, _ = await run.post("/slack/events", mute.encode(), retry)
            assert status == 200

            # 6. A button whose value names every app: refused, audited, nothing muted.
            forged = json.loads(value)
            forged["k"] = ["flux", "*", "*", "*", "*"]
            click = action_body("driftbot_mute_24h", json.dumps(forged), alert, OPERATOR)
            assert (await run.post("/slack/events", click.encode(), _headers(click, ts)))[0] == 200
            await _until(lambda: len(slack.ephemeral) == 2)
            assert "can no longer find" in json.dumps(slack.ephemeral[1])
            # The genuine button acts on the stored alert.
            click = action_body("driftbot_ack", value, alert, OPERATOR)
            assert (await run.post("/slack/events", click.encode(), _headers(click, ts)))[0] == 200
            await _until(lambda: len(slack.calls_to("chat.update")) == 1)

            # 2. SIGHUP: the operator is replaced and viewers are listed; the Slack mode
            # change is said to need a restart.
            rbac = {"operators": {"users": [NEW_OPERATOR]}, "viewers": {"users": [VIEWER]}}
            run.reconfigure(_config(slack, rbac, mode="socket"))
            await run.until_logged("reloaded")
            line = await run.until_logged("slack.mode changed")
            assert "takes effect at the next restart" in line
            ts = int(time.time())
            for text, user in (
                ("mute checkout 2h", OPERATOR),
                ("status", OUTSIDER),
                ("mute checkout 3h", NEW_OPERATOR),
            ):
                body = command_body(text, user, CHANNEL, f"{run.base}/unused")
                assert (await run.post("/slack/events", body.encode(), _headers(body, ts)))[
                    0
                ] == 200
            click = action_body("driftbot_mute_4h", value, alert, OPERATOR)
            assert (await run.post("/slack/events", click.encode(), _headers(click, ts)))[0] == 200
            await _until(lambda: len(slack.ephemeral) == 6)
            said = {m["user"]: json.dumps(m) for m in slack.ephemeral[2:]}
            assert "only operators may mute" in said[OPERATOR]
            assert "not among the people who may ask" in said[OUTSIDER]
            assert "Muted" in said[NEW_OPERATOR]
            assert len(slack.calls_to("chat.update")) == 1
        assert run.code == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stderr, run.stderr[-3000:]

    store = await Store.open(run.state)
    try:
        entries = await store.audit_log(limit=100)
    finally:
        await store.close()
    chat = {"ack", "mute", "unmute", "denied", "button_refused"}
    actions = sorted(e.action for e in entries if e.action in chat)
    assert actions == ["ack", "button_refused", "denied", "denied", "denied", "mute", "mute"]
    mutes = [e for e in entries if e.action == "mute"]
    assert sorted(e.actor for e in mutes) == [NEW_OPERATOR, OPERATOR]
