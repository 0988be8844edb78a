"""Two replicas of `driftbot run` on one PostgreSQL store and one Lease: the leader is killed with
SIGKILL mid-stream, the standby takes over, and every alert reaches Slack exactly once.

Real processes, the real kubernetes_asyncio client against the fake API server (which holds
the Lease too), the fake Slack with conversations.history (so a message in flight at the kill
is looked for before it is sent again). Lease timings are set short by environment; the only
times asserted are the Lease's own: the standby took over no sooner than the lease allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

from bot.pipeline.sources import WATCHED
from tests.bot.run_process import ROOT, start_driftbot_run
from tests.bot.test_slack_receiver import HistoryFakeSlack
from tests.builders_flux import REV2, kustomization
from tests.fakes.kube_api import FakeKubeAPI
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi

NAMESPACE, LEASE = "driftbot", "driftbot"
LEASE_SECONDS = 3
CHANNEL = "C0ONCALL"
LEASE_ENV = {
    "DRIFTBOT_LEADER_ELECTION__ENABLED": "true",
    "DRIFTBOT_LEADER_ELECTION__LEASE_NAME": LEASE,
    "DRIFTBOT_LEADER_ELECTION__NAMESPACE": NAMESPACE,
    "DRIFTBOT_LEADER_ELECTION__LEASE_DURATION": f"{LEASE_SECONDS}s",
    "DRIFTBOT_LEADER_ELECTION__RENEW_DEADLINE": "2s",
    "DRIFTBOT_LEADER_ELECTION__RETRY_PERIOD": "250ms",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _micro(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class Replica:
    """One `driftbot run` process with its own port and identity; stderr goes to a file."""

    def __init__(self, identity: str, tmp_path: Path, env: dict[str, str]) -> None:
        self.identity = identity
        self.port = _free_port()
        self.log = tmp_path / f"{identity}.log"
        self._env = {
            **env,
            "DRIFTBOT_LEADER_ELECTION__IDENTITY": identity,
            "DRIFTBOT_SERVER__PORT": str(self.port),
        }
        self._tmp = tmp_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("wb") as log:
            self.proc = await start_driftbot_run(
                self._tmp / "driftbot.yaml",
                self._tmp / f"{self.identity}.sqlite",
                self._env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )

    async def get(self, http: aiohttp.ClientSession, path: str) -> tuple[int, str]:
        try:
            async with http.get(f"http://127.0.0.1:{self.port}{path}") as response:
                return response.status, await response.text()
        except aiohttp.ClientConnectionError:
            return 0, ""

    async def until(
        self, http: aiohttp.ClientSession, path: str, wanted: Callable[[int, str], bool]
    ) -> str:
        """Ask `path` until the answer is the one wanted (the process runs on real time)."""
        async with asyncio.timeout(45):
            while True:
                assert self.proc is not None and self.proc.returncode is None, self.logs()
                status, body = await self.get(http, path)
                if wanted(status, body):
                    return body
                await asyncio.sleep(0.05)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    async def stop(self, sig: int) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        async with asyncio.timeout(30):
            return await self.proc.wait()


@contextlib.asynccontextmanager
async def replicas(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[tuple[Replica, Replica]]:
    a, b = Replica("driftbot-a", tmp_path, env), Replica("driftbot-b", tmp_path, env)
    try:
        yield a, b
    finally:
        for replica in (a, b):
            if replica.proc is not None and replica.proc.returncode is None:
                replica.proc.kill()
                await replica.proc.wait()


def _install_crds(api: FakeKubeAPI) -> None:
    for watched in WATCHED:
        if watched.spec.group:
            api.install_crd(watched.spec.group, watched.spec.plural, kind=min(watched.kinds))


def _posts(slack: FakeSlackApi) -> list[dict[str, Any]]:
    return [c.params for c in slack.calls_to("chat.postMessage") if c.ok]


def _top_level_posts_about(slack: FakeSlackApi, name: str) -> list[dict[str, Any]]:
    return [p for p in _posts(slack) if "thread_ts" not in p and name in str(p.get("text"))]


def _failed(name: str) -> dict[str, Any]:
    return kustomization(name, ready="False", reason="BuildFailed", message="kustomize build")


async def test_standby_takes_over_a_killed_leader_and_every_alert_is_sent_once(
    tmp_path: Path, postgres_dsn: str
) -> None:
    async with (
        FakeKubeAPI() as api,
        HistoryFakeSlack() as slack,
        aiohttp.ClientSession() as http,
    ):
        _install_crds(api)
        for name in ("billing", "checkout", "search"):
            api.put(kustomization(name))  # there before anyone watches: the silent baseline
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        (tmp_path / "driftbot.yaml").write_text(
            yaml.safe_dump(
                {
                    "clusters": [{"name": "prod", "kubeconfig": str(kubeconfig)}],
                    "receivers": [{"name": "oncall", "slack": {"channel": CHANNEL}}],
                    "routes": [{"receivers": ["oncall"]}],
                    "policy": {
                        "grace": "0s",
                        "group_wait": "0s",
                        "group_interval": "1s",  # a resolution edits its alert a second later
                        "group_by": ["cluster", "kind", "name"],  # each alert on its own
                        "flap": {"flips": 0},
                    },
                    # The Slack app (commands) over HTTP: Socket Mode would need Slack itself.
                    "slack": {"mode": "http", "api_url": slack.url},
                }
            )
        )
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DRIFTBOT_", "KUBERNETES_SERVICE_"))
        }
        env.update(LEASE_ENV)
        env.update(
            {
                "DRIFTBOT_STORE_DSN": postgres_dsn,
                "SLACK_BOT_TOKEN": VALID_TOKEN,
                "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
                "PYTHONPATH": str(ROOT),
            }
        )
        async with replicas(tmp_path, env) as (a, b):
            await a.start()
            await a.until(http, "/readyz", lambda status, body: '"ready"' in body)
            lease = api.lease(NAMESPACE, LEASE)
            assert lease is not None and lease["spec"]["holderIdentity"] == "driftbot-a"

            await b.start()
            # Ready at once; the leader's name shows once b has read the Lease.
            body = await b.until(
                http, "/readyz", lambda status, body: status == 200 and "driftbot-a" in body
            )
            assert '"standby"' in body
            metrics = await b.until(http, "/metrics", lambda status, _: status == 200)
            assert "driftbot_leader 0.0" in metrics
            assert api.lease(NAMESPACE, LEASE)["spec"]["holderIdentity"] == "driftbot-a"  # type: ignore[index]

            # The leader announces a failure; the standby stays quiet. The leader is killed as
            # soon as its decision is in the store (the alert open), whether or not Slack has
            # answered it yet: the post is then in flight, and the new leader looks it up.
            api.put(_failed("checkout"))
            await _until_recorded_open(postgres_dsn, 1)

            # Killed without a word: no release, no flush, the Lease left to expire.
            assert await a.stop(signal.SIGKILL) == -signal.SIGKILL
            killed = api.lease(NAMESPACE, LEASE)
            assert killed is not None
            last_renewal = _micro(killed["spec"]["renewTime"])

            # Changes while nobody leads: found by the new leader's re-list, announced once.
            api.put(_failed("billing"))
            api.put(kustomization("checkout", applied=REV2))  # checkout recovers, at a new rev

            await api.wait_for(
                lambda: (
                    (api.lease(NAMESPACE, LEASE) or {})["spec"].get("holderIdentity")
                    == "driftbot-b"
                ),
                within=45,
            )
            taken = api.lease(NAMESPACE, LEASE)
            assert taken is not None
            spec = taken["spec"]
            assert spec["leaseTransitions"] == 1
            assert _micro(spec["acquireTime"]) > last_renewal + timedelta(seconds=LEASE_SECONDS)

            await b.until(http, "/readyz", lambda status, body: '"ready"' in body)
            await _until_sent(slack, lambda: bool(_top_level_posts_about(slack, "billing")))

            # Live changes reach the new leader's watches.
            api.put(_failed("search"))
            await _until_sent(slack, lambda: bool(_top_level_posts_about(slack, "search")))
            metrics = await b.until(http, "/metrics", lambda status, _: status == 200)
            assert "driftbot_leader 1.0" in metrics

            # checkout's recovery, seen by the re-list, edits the alert the old leader sent.
            await _until_sent(slack, lambda: any(c.ok for c in slack.calls_to("chat.update")))
            assert await b.stop(signal.SIGTERM) == 0, b.logs()

        released = api.lease(NAMESPACE, LEASE)
        assert released is not None and not released["spec"].get("holderIdentity")

    notifications = Counter(_notification(p) for p in _posts(slack))
    assert notifications and set(notifications.values()) == {1}, notifications
    for name in ("checkout", "billing", "search"):
        assert len(_top_level_posts_about(slack, name)) == 1, (name, _posts(slack))
    # checkout's recovery edits the alert the old leader sent: its message id was in the store.
    checkout_ts = {m["ts"] for m in slack.messages(CHANNEL) if "checkout" in str(m.get("text"))}
    updates = [c.params for c in slack.calls_to("chat.update") if c.ok]
    assert any(u["ts"] in checkout_ts for u in updates), updates


async def _until_recorded_open(dsn: str, count: int) -> None:
    """Until the shared store holds `count` open alerts (the leader's policy state written)."""
    connection = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(30):
            while True:
                if await connection.fetchval("SELECT count(*) FROM policy_open") >= count:
                    return
                await asyncio.sleep(0.02)
    finally:
        await connection.close()


async def _until_sent(slack: FakeSlackApi, done: Callable[[], bool]) -> None:
    try:
        async with asyncio.timeout(30):
            while True:
                if done():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        sent = [(c.method, c.ok, str(c.params.get("text"))[:80]) for c in slack.calls]
        raise AssertionError(f"not sent; Slack got {sent}") from None


def _notification(post: dict[str, Any]) -> str:
    metadata = post.get("metadata") or {}
    return str((metadata.get("event_payload") or {}).get("notification", ""))


@pytest.fixture(autouse=True)
def _no_parent_lease_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process itself must not look like a pod (it would pick the in-cluster API)."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
