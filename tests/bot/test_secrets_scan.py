"""No secret leaves `driftbot run`: the real command, with distinctive secrets configured and
DEBUG logs in both formats, is driven through what makes it log (deliveries answered 429, 500
and a fatal error, forged signed requests to every inbound endpoint, a bad webhook body, a bad
Argo CD stream line, config reloads, one of them broken), and everything it printed (stdout,
stderr) or served (/metrics, /readyz, the answers to the forged requests) is searched for every
secret, URL-encoded and base64-encoded too."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import aiohttp
import orjson
import pytest
import yaml

from bot.chat.teams_inbound import sign as teams_sign
from bot.inbound.flux import sign as flux_sign
from tests.bot.run_process import start_driftbot_run
from tests.bot.service_world import VirtualClock
from tests.bot.test_server import _free_port
from tests.builders_flux import T0, notification
from tests.fakes.argocd_api import FakeArgoCDAPI
from tests.fakes.slack_api import FakeSlackApi, Fault
from tests.fakes.teams_webhook import FakeTeamsWebhook
from tests.world import Obj, World, argocd_full_states, fakes

BOT_TOKEN = "xoxb-scan-7f3a9c-bot-token-d41e"
APP_TOKEN = "xapp-scan-1-app-token-93be2c"
SIGNING_SECRET = "scan-signing-secret-41d2e8a7"
FLUX_TOKEN = "scan-flux-hmac-token-5c7d0b"
ARGOCD_TOKEN = "scan-argocd-bearer-2e8f61aa"
TEAMS_KEY = b"scan teams outgoing key 9b1e"
CHANNEL = "C0SCANOK"
GONE = "C0SCANGONE"


def _forms(secret: str) -> set[str]:
    encoded = base64.b64encode(secret.encode()).decode()
    urlsafe = base64.urlsafe_b64encode(secret.encode()).decode()
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        encoded,
        encoded.rstrip("="),
        urlsafe.rstrip("="),
    }


def _config(
    kubeconfig: Path, slack: FakeSlackApi, argocd: FakeArgoCDAPI, grace: str
) -> dict[str, Any]:
    return {
        "clusters": [{"name": "prod", "kubeconfig": str(kubeconfig)}],
        "argocd_api": [{"cluster": "prod", "url": argocd.url, "token_env": "ARGOCD_TOKEN"}],
        "receivers": [
            {"name": "oncall", "slack": {"channel": CHANNEL}},
            {"name": "archive", "slack": {"channel": GONE}},
            {"name": "pm", "teams": {"webhook_env": "TEAMS_HOOK"}},
        ],
        "routes": [{"receivers": ["oncall", "archive", "pm"]}],
        "policy": {"grace": grace, "group_wait": "0s", "flap": {"flips": 0}},
        "slack": {"mode": "http", "api_url": slack.url},
        "teams": {"outgoing_webhook_secret_env": "TEAMS_KEY"},
        "server": {"flux_webhook_token_env": "FLUX_TOKEN"},
    }


def _slack_signature(secret: str, ts: str, body: bytes) -> str:
    base = f"v0:{ts}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_no_secret_in_anything_driftbot_run_prints_or_serves(
    tmp_path: Path, log_format: str
) -> None:
    async with (
        fakes("prod") as apis,
        FakeSlackApi(tokens=(BOT_TOKEN,), missing_channels=(GONE,)) as slack,
        FakeTeamsWebhook(rate=None) as teams,
        FakeArgoCDAPI(token=ARGOCD_TOKEN) as argocd,
    ):
        world = World(apis, VirtualClock(T0))
        app = Obj("prod", "Application", "checkout", argocd_full_states)
        world.put(app)
        kubeconfig = apis["prod"].write_kubeconfig(tmp_path / "kubeconfig")
        config_file = tmp_path / "driftbot.yaml"
        config_file.write_text(yaml.safe_dump(_config(kubeconfig, slack, argocd, "0s")))
        signature = parse_qs(urlsplit(teams.url).query)["sig"][0]
        secrets = [
            BOT_TOKEN,
            APP_TOKEN,
            SIGNING_SECRET,
            FLUX_TOKEN,
            ARGOCD_TOKEN,
            teams.url,
            signature,
            base64.b64encode(TEAMS_KEY).decode(),
            TEAMS_KEY.decode(),
        ]
        port = _free_port()
        env = {
            **os.environ,
            "DRIFTBOT_SERVER__PORT": str(port),
            "DRIFTBOT_LOG_FORMAT": log_format,
            "DRIFTBOT_LOG_LEVEL": "DEBUG",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "TEAMS_HOOK": teams.url,
            "TEAMS_KEY": base64.b64encode(TEAMS_KEY).decode(),
            "FLUX_TOKEN": FLUX_TOKEN,
            "ARGOCD_TOKEN": ARGOCD_TOKEN,
        }
        proc = await start_driftbot_run(config_file, tmp_path / "state.sqlite", env)
        assert proc.stdout is not None and proc.stderr is not None
        stdout_task = asyncio.ensure_future(proc.stdout.read())
        logged: list[str] = []

        async def read_stderr() -> None:
            assert proc.stderr is not None
            async for line in proc.stderr:
                logged.append(line.decode())

        async def until_logged(text: str) -> None:
            async with asyncio.timeout(20):
                while True:
                    if any(text in line for line in logged):
                        return
                    await asyncio.sleep(0.02)

        stderr_task = asyncio.ensure_future(read_stderr())
        served: list[str] = []
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:

                async def get(path: str) -> tuple[int, str]:
                    try:
                        async with http.get(base + path) as response:
                            return response.status, await response.text()
                    except aiohttp.ClientConnectionError:
                        return 0, ""

                async def post(path: str, body: bytes, headers: dict[str, str]) -> int:
                    async with http.post(base + path, data=body, headers=headers) as response:
                        served.append(await response.text())
                        return response.status

                async with asyncio.timeout(40):
                    while True:
                        if (await get("/readyz"))[0] == 200:
                            break
                        await asyncio.sleep(0.05)

                # Deliveries: Slack answers 500 once, one channel is gone (fatal); Teams
                # answers 429 then 500.
                slack.inject(Fault.SERVER_ERROR, times=1, method="chat.postMessage")
                teams.fail_next(429, retry_after=0)
                teams.fail_next(500)
                world.change(app)
                async with asyncio.timeout(30):
                    while True:
                        if slack.messages(CHANNEL) and teams.accepted:
                            break
                        await asyncio.sleep(0.02)

                # Forged and bad requests to every inbound endpoint.
                flux_body = orjson.dumps(notification())
                forged_flux = flux_sign(flux_body, b"not the token")
                assert await post("/webhooks/flux", flux_body, {"X-Signature": forged_flux}) == 401
                bad_body = b'["not", "an", "object"]'
                signed_bad = {"X-Signature": flux_sign(bad_body, FLUX_TOKEN.encode())}
                assert await post("/webhooks/flux", bad_body, signed_bad) >= 400
                activity = orjson.dumps({"type": "message", "text": "<at>driftbot</at> drift"})
                forged_teams = {"Authorization": teams_sign(activity, b"not the key")}
                assert await post("/webhooks/teams", activity, forged_teams) == 401
                ts = str(int(time.time()))
                command = b"command=%2Fgitops&text=status&user_id=U0SCAN&channel_id=C0SCANOK"
                forged_slack = {
                    "X-Slack-Request-Timestamp": ts,
                    "X-Slack-Signature": _slack_signature("not the secret", ts, command),
                    "Content-Type": "application/x-www-form-urlencoded",
                }
                assert await post("/slack/events", command, forged_slack) == 401

                # A bad line on the Argo CD stream, and an Argo CD API error.
                argocd.send_raw(b"this is not JSON\n")
                argocd.send_error(500, "injected failure")

                # Config reloads: a broken file, then a good one.
                config_file.write_text("routes: [this is: not valid")
                proc.send_signal(signal.SIGHUP)
                await until_logged("the config in force stays")
                config_file.write_text(yaml.safe_dump(_config(kubeconfig, slack, argocd, "1s")))
                proc.send_signal(signal.SIGHUP)
                await until_logged("reloaded")

                async with asyncio.timeout(20):
                    while True:
                        status, metrics = await get("/metrics")
                        if status == 200 and "driftbot_rate_limited_total" in metrics:
                            break
                        await asyncio.sleep(0.05)
                served.append(metrics)
                served.append((await get("/readyz"))[1])
                served.append((await get("/healthz"))[1])

            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(40):
                code = await proc.wait()
            stdout = (await stdout_task).decode()
            await stderr_task
            stderr = "".join(logged)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    assert code == 0, stderr[-3000:]
    # The run did log what the traffic caused (so there was something to leak).
    for expected in ("channel_not_found", "refused", "reload", "http_500"):
        assert expected in stderr, expected
    assert "DEBUG" in stderr
    if log_format == "json":
        lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
        assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert 'driftbot_notifications_failed_total{fatal="true",receiver="archive"}' in metrics
    everything = {"stdout": stdout, "stderr": stderr, "served": "\n".join(served)}
    for where, text in everything.items():
        for secret in secrets:
            for form in _forms(secret):
                assert form not in text, f"a form of a secret ({form[:6]}...) is in {where}"
