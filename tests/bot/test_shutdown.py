"""`driftbot run` on SIGTERM: the watches stop, the outbox is sent within
`server.shutdown_timeout`, the process exits 0; what could not be sent stays in the outbox and
the next run sends it, once. A real `driftbot run` process against the fake Slack Web API."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from bot.delivery.receivers import Notification
from bot.delivery.slack_receiver import plan_slack
from bot.store.store import Store
from config.schema import Config
from core.model import EventKind
from tests.bot.run_process import start_driftbot_run
from tests.bot.service_world import until
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi
from tests.formatters.builders import NOW, argocd_state, event

CHANNEL = "C0ONCALL"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def queue_notifications(state: Path, apps: list[str]) -> None:
    """What an earlier run accepted and did not send: `apps`' alerts in the oncall outbox."""
    async with await Store.open(state) as store:
        for app in apps:
            note = Notification(event(EventKind.DEPLOY_FAILED, argocd_state(name=app)), ("oncall",))
            await store.outbox_add_many("oncall", plan_slack(note), NOW)


def write_config(path: Path, api_url: str, shutdown_timeout: str) -> Path:
    config = {
        "receivers": [{"name": "oncall", "slack": {"channel": CHANNEL}}],
        "routes": [{"receivers": ["oncall"]}],
        "slack": {"mode": "http", "api_url": api_url},
        "server": {"shutdown_timeout": shutdown_timeout},
    }
    Config.model_validate(config)
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Stopped:
    code: int
    seconds: float
    """From SIGTERM to exit."""
    stderr: str


@asynccontextmanager
async def driftbot_run(
    config: Path, state: Path
) -> AsyncIterator[Callable[[], asyncio.Future[Stopped]]]:
    """A `driftbot run` process, ready; the context gives a function that sends it SIGTERM
    and waits for it to exit."""
    port = free_port()
    env = {
        **os.environ,
        "DRIFTBOT_SERVER__PORT": str(port),
        "SLACK_BOT_TOKEN": VALID_TOKEN,
        "SLACK_SIGNING_SECRET": "shutdown-test-signing-secret",
    }
    proc = await start_driftbot_run(config, state, env, stdout=asyncio.subprocess.DEVNULL)

    async def terminate() -> Stopped:
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        async with asyncio.timeout(40):
            _, err = await proc.communicate()
        return Stopped(proc.returncode or 0, time.monotonic() - started, err.decode())

    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert proc.returncode is None, "driftbot run exited before it was ready"
                await asyncio.sleep(0.05)
        yield lambda: asyncio.ensure_future(terminate())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def pending(state: Path) -> list[str]:
    async with await Store.open(state) as store:
        return [str(i.payload["notification"]) for i in await store.outbox_queue("oncall")]


def names_posted(slack: FakeSlackApi) -> list[str]:
    """The app each message is about: the first word after the severity word."""
    return [m["text"].split(" · ", 1)[-1].split(" ")[0] for m in slack.messages(CHANNEL)]


async def test_sigterm_sends_what_is_queued_then_exits_0(tmp_path: Path) -> None:
    apps = [f"app-{i}" for i in range(8)]
    state = tmp_path / "state.sqlite"
    await queue_notifications(state, apps)
    async with FakeSlackApi() as slack:
        # Slack takes about one message a second after a burst of three: most are still
        # queued when the signal comes.
        config = write_config(tmp_path / "driftbot.yaml", slack.url, "20s")
        async with driftbot_run(config, state) as terminate:
            await until(lambda: bool(slack.messages(CHANNEL)))
            stopped = await terminate()
            before = len(slack.calls_to("chat.postMessage"))
        assert stopped.code == 0, stopped.stderr
        assert before == len(slack.calls_to("chat.postMessage"))  # nothing after the exit
        assert names_posted(slack) == apps
    assert "left in the outbox" not in stopped.stderr
    assert await pending(state) == []


async def test_with_slack_unreachable_the_queue_waits_for_the_next_run(tmp_path: Path) -> None:
    apps = ["checkout", "payments", "search"]
    state = tmp_path / "state.sqlite"
    await queue_notifications(state, apps)
    queued = await pending(state)
    unreachable = f"http://127.0.0.1:{free_port()}/api/"
    config = write_config(tmp_path / "down.yaml", unreachable, "2s")
    async with driftbot_run(config, state) as terminate:
        stopped = await terminate()
    assert stopped.code == 0, stopped.stderr
    # The deadline, plus what closing the server and the store takes: not the minute or so
    # of backoff that sending would go on for.
    assert stopped.seconds < 2 + 5, stopped.stderr
    assert "oncall: 3 notifications left in the outbox for the next start" in stopped.stderr
    assert stopped.stderr.count("left in the outbox") == 1
    assert await pending(state) == queued

    async with FakeSlackApi() as slack:
        config = write_config(tmp_path / "up.yaml", slack.url, "20s")
        async with driftbot_run(config, state) as terminate:
            await until(lambda: len(slack.messages(CHANNEL)) == len(apps))
            stopped = await terminate()
        assert stopped.code == 0, stopped.stderr
        assert names_posted(slack) == apps  # each once, in order
        assert len(slack.calls_to("chat.postMessage")) == len(apps)
    assert await pending(state) == []
