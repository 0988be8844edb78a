"""`driftbot run` with its chat sides wired: alerts posted to Slack, the slash command answered
and able to mute, Teams outgoing-webhook questions answered — all on one server, against the
fake Kubernetes API server and the fake Slack Web API."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
import orjson

from bot.chat.teams_inbound import sign as teams_sign
from bot.store.store import Store
from core.commands import active_mutes
from tests.bot.service_world import VirtualClock, make_config, serving, until, until_ready
from tests.bot.test_slack_app import CHANNEL, OPERATOR, SECRET, command_body, signed_form
from tests.builders_flux import T0
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi
from tests.world import Obj, World, argocd_full_states, fakes

TEAMS_KEY = b"teams outgoing webhook key"


async def test_run_posts_alerts_to_slack_and_answers_slack_and_teams(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    async with fakes("prod") as apis, FakeSlackApi() as slack:
        world = World(apis, clock)
        app = Obj("prod", "Application", "checkout", argocd_full_states)
        world.put(app)
        config = make_config(
            {"prod": apis["prod"].write_kubeconfig(tmp_path / "kubeconfig")},
            receivers=[{"name": "oncall", "slack": {"channel": CHANNEL}}],
            routes=[{"receivers": ["oncall"]}],
            slack={"mode": "http", "api_url": slack.url},
            rbac={"operators": {"users": [OPERATOR]}},
            teams={"outgoing_webhook_secret_env": "TEAMS_SECRET"},
        )
        environ = {
            "SLACK_BOT_TOKEN": VALID_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "TEAMS_SECRET": base64.b64encode(TEAMS_KEY).decode(),
        }
        async with (
            serving(config, tmp_path / "state.sqlite", clock, environ=environ) as base,
            aiohttp.ClientSession() as http,
        ):
            await until_ready(http, base)

            clock.advance()
            world.change(app)
            await until(lambda: bool(slack.messages(CHANNEL)))
            assert "checkout" in slack.messages(CHANNEL)[0]["text"]

            async def command(text: str) -> int:
                body = command_body(text, OPERATOR, CHANNEL, f"{base}/unused")
                headers = signed_form(body)
                async with http.post(f"{base}/slack/events", data=body, headers=headers) as r:
                    return r.status

            assert await command("status") == 200
            await until(lambda: len(slack.ephemeral) >= 1)
            assert "prod" in str(slack.ephemeral[0])
            assert await command("mute checkout 1h deploying a fix") == 200
            await until(lambda: len(slack.ephemeral) >= 2)

            activity = orjson.dumps(
                {"type": "message", "text": "<at>driftbot</at> drift", "from": {"name": "Pat"}}
            )
            headers = {"Authorization": teams_sign(activity, TEAMS_KEY)}
            async with http.post(f"{base}/webhooks/teams", data=activity, headers=headers) as r:
                assert r.status == 200
                answer = await r.json()
            assert "checkout" in orjson.dumps(answer).decode()
            async with http.post(f"{base}/webhooks/teams", data=activity) as r:
                assert r.status == 401

    store = await Store.open(tmp_path / "state.sqlite")
    try:
        policy = await store.load_policy()
    finally:
        await store.close()
    mutes = active_mutes(policy, T0)
    assert [(m.target, m.who, m.reason) for m in mutes] == [
        ("checkout", OPERATOR, "deploying a fix")
    ]
