"""`driftbot run`: the HTTP server with the service behind it, in-process and as the real
command, against a fake Kubernetes API server."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from bot.inbound.flux import sign
from bot.store.store import Store
from config.schema import Config
from tests.bot.run_process import start_driftbot_run
from tests.bot.service_world import (
    WATCHER_OPTIONS,
    VirtualClock,
    make_config,
    serving,
    until,
    until_ready,
)
from tests.builders_flux import T0, notification
from tests.world import Obj, World, argocd_full_states, fakes, kustomization_states


async def test_serve_answers_health_readiness_metrics_and_the_flux_webhook(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    async with fakes("prod") as apis:
        world = World(apis, clock)
        app = Obj("prod", "Application", "checkout", argocd_full_states)
        world.put(app)
        apis["prod"].hang_next(count=1, on="list")  # one source is slow to list
        config = make_config(
            {"prod": apis["prod"].write_kubeconfig(tmp_path / "kubeconfig")},
            server={"flux_webhook_token_env": "FLUX_TOKEN"},
        )
        out = io.StringIO()
        slow_list = {**WATCHER_OPTIONS, "list_timeout": 0.5}
        environ = {"FLUX_TOKEN": "tok"}
        async with (
            serving(
                config,
                tmp_path / "state.sqlite",
                clock,
                environ=environ,
                out=out,
                watcher_options=slow_list,
            ) as base,
            aiohttp.ClientSession() as http,
        ):
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{base}/readyz") as response:
                first = (response.status, await response.json())
            assert first[0] == 503
            assert first[1]["not_ready"], "a source that has not listed is named"
            await until_ready(http, base)

            clock.advance()
            world.change(app)
            await until(lambda: "drift_detected" in out.getvalue())

            body = orjson.dumps(notification())
            async with http.post(
                f"{base}/webhooks/flux", data=body, headers={"X-Signature": sign(body, b"tok")}
            ) as response:
                assert response.status == 202
            async with http.post(f"{base}/webhooks/flux", data=body) as response:
                assert response.status == 401

            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                metrics = await response.text()

    for line in (
        'driftbot_events_total{kind="drift_detected",tool="argocd"} 1.0',
        'driftbot_events_total{kind="deploy_failed",tool="flux"} 1.0',
        'driftbot_watch_relists_total{cluster="prod",resource="applications.argoproj.io"}',
        'driftbot_watch_reconnects_total{cluster="prod",resource="events"}',
        "driftbot_suppressions_total",
        'driftbot_flux_webhooks_total{outcome="refused"} 1.0',
    ):
        assert line in metrics, line
    kinds = [json.loads(line)["kind"] for line in out.getvalue().splitlines()]
    assert kinds == ["drift_detected", "deploy_failed"]
    store = await Store.open(tmp_path / "state.sqlite")
    try:
        states = await store.all_states()
    finally:
        await store.close()
    assert [k.name for k in states] == ["checkout"], "state was saved on shutdown"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_driftbot_run_prints_a_live_change_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    async with fakes("prod") as apis:
        world = World(apis, VirtualClock(T0))
        release = Obj("prod", "Kustomization", "apps", kustomization_states)
        world.put(release)
        config_file = tmp_path / "driftbot.yaml"
        kubeconfig = apis["prod"].write_kubeconfig(tmp_path / "kubeconfig")
        config_file.write_text(
            yaml.safe_dump(
                {
                    "clusters": [{"name": "prod", "kubeconfig": str(kubeconfig)}],
                    "receivers": [{"name": "stdout", "console": {"format": "jsonl"}}],
                    "routes": [{"receivers": ["stdout"]}],
                    "policy": {"grace": "0s", "group_wait": "0s"},
                }
            )
        )
        Config.model_validate(yaml.safe_load(config_file.read_text()))
        port = _free_port()
        env: dict[str, Any] = {**os.environ, "DRIFTBOT_SERVER__PORT": str(port)}
        proc = await start_driftbot_run(config_file, tmp_path / "state.sqlite", env)
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:

                async def status(path: str) -> int:
                    try:
                        async with http.get(base + path) as response:
                            return response.status
                    except aiohttp.ClientConnectionError:
                        return 0

                async with asyncio.timeout(30):
                    while True:
                        if await status("/readyz") == 200:
                            break
                        await asyncio.sleep(0.05)
                assert await status("/healthz") == 200
            world.change(release)
            assert proc.stdout is not None
            async with asyncio.timeout(30):
                line = await proc.stdout.readline()
            event = json.loads(line)
            assert (event["kind"], event["cluster"], event["name"]) == (
                "deploy_failed",
                "prod",
                "apps",
            )
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                code = await proc.wait()
            assert code == 0, (await proc.stderr.read()).decode() if proc.stderr else ""
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
