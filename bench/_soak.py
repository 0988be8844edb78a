"""The soak run: `driftbot run` in its own process against the fake Kubernetes API servers and the
fake Slack, a steady rate of changes, random faults, SIGKILLs and restarts; then what should have
been announced against what Slack accepted.

The service is the real thing (`python -m bot.app.cli run --config ... --state ...`), so a kill is a
real SIGKILL and a restart opens the same state file. The driver (this module) owns the fakes:

- two clusters (each a `FakeKubeAPI`) of Argo CD Applications, Kustomizations, HelmReleases and
  GitRepositories, each object cycling through a few states: the fleet of tests/world.py, the
  one the service tests run on, each change recorded as a replay line;
- faults at random, seeded: watches dropped, history expired (a 410 on resume), 500s, the API
  server "restarted" with new resourceVersions, a watch that hangs with no bookmark; Slack 429s
  with a Retry-After, 500s, dropped connections, a call stalled past the client's time-out;
- SIGKILL of the service at random times in the first part of the run (`kill_until`), each
  followed by a restart a moment later; the rest of the run is left alone so that memory after
  warm-up can be read from one long-lived process.

What should be announced comes from an oracle: every change is also fed, with the time it was
made, through an in-process pipeline with the same config (what `driftbot replay` of the
recorded changes does; they are written to `changes.jsonl` for that), and each notification is
planned for Slack as the service plans it. A post is known by its channel and its text, less
how long a recovered problem lasted (the live service sees a change later than it was made).

A change the watches cannot see in between (while the service is down, or the API server has
forgotten history, or a watch hangs) is seen only in the next list, as the object's last state,
and so a change of an object in such a window would be folded into the next one. Such "blind"
windows last from a little before the fault (`guard`) until the service has listed every
resource again; during one, an object is changed at most once (bench/_soak_blind.py).

The options and the report are in bench/_soak_report.py, the service process in
bench/_soak_process.py, the fake Slack's soak additions in bench/_soak_slack.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import yaml  # noqa: E402

from bench._soak_blind import BlindWindows, hang_over, list_paths, relisted  # noqa: E402
from bench._soak_process import ServiceProcess, free_port, rss_mib  # noqa: E402
from bench._soak_report import (  # noqa: E402
    CLUSTERS,
    KUBE_FAULTS,
    SLACK_FAULTS,
    SoakOptions,
    SoakReport,
)
from bench._soak_slack import SoakSlack, notification_of  # noqa: E402
from bot.delivery.receivers import Notification  # noqa: E402
from bot.delivery.slack_receiver import plan_slack  # noqa: E402
from bot.pipeline.runner import Pipeline  # noqa: E402
from bot.store.store import Store  # noqa: E402
from config.schema import Config  # noqa: E402
from tests.builders_argocd import DIFF_CACHE, LIVE_CHILD  # noqa: E402
from tests.fakes.kube_api import FakeKubeAPI  # noqa: E402
from tests.fakes.slack_api import Fault  # noqa: E402
from tests.world import Obj, World, argocd_states, fakes, kubeconfigs  # noqa: E402
from tests.world import population as world_population  # noqa: E402

__all__ = ["KUBE_FAULTS", "SLACK_FAULTS", "SoakOptions", "SoakReport", "run_soak"]

CHANNELS = {"alpha": "C0SOAKALPHA", "beta": "C0SOAKBETA", "gamma": "C0SOAKGAMMA"}

Say = Callable[[str], None]


# --- the fleet -----------------------------------------------------------------------------------


def _argocd(name: str, step: int) -> dict[str, Any]:
    # Every tenth Application on the large fixture (the world's default is every fifth).
    return argocd_states(name, step, DIFF_CACHE if name.endswith("0") else LIVE_CHILD)


def population(cluster: str, apps: int) -> list[Obj]:
    """`apps` objects on `cluster`: half Argo CD Applications, a quarter Kustomizations, a
    sixth HelmReleases, the rest GitRepositories."""
    argo, ks = apps // 2, apps // 4
    hr = max(1, apps // 6)
    git = max(1, apps - argo - ks - hr)
    return world_population(
        cluster,
        argo,
        ks,
        hr,
        git,
        prefix=f"{cluster}-",
        source_kinds=("GitRepository",),
        argocd=_argocd,
    )


def soak_config(kubeconfig_files: dict[str, Path], slack_url: str, port: int) -> dict[str, Any]:
    """No grace, no grouping across apps, no flap damping, no reminders: every change the
    detectors call news is one notification, whatever the timing."""
    return {
        "clusters": [{"name": n, "kubeconfig": str(p)} for n, p in kubeconfig_files.items()],
        "receivers": [{"name": n, "slack": {"channel": c}} for n, c in CHANNELS.items()],
        "routes": [
            {
                "match": {"kinds": ["deploy_failed", "health_degraded", "source_failed"]},
                "receivers": ["gamma"],
                "continue": True,
            },
            {"match": {"cluster": "prod"}, "receivers": ["alpha"]},
            {"receivers": ["beta"]},
        ],
        "policy": {
            "grace": "0s",
            "group_wait": "0s",
            "group_interval": "0s",
            "repeat": "0s",
            "group_by": ["cluster", "namespace", "object_kind", "name", "kind"],
            "flap": {"flips": 0},
        },
        "slack": {"mode": "http", "api_url": slack_url},
        "server": {"port": port},
    }


_LASTED = re.compile(r" \(after [^)]*\)$")


def post_key(channel: str, text: str) -> tuple[str, str]:
    """A post as the oracle and the fake both see it: how long a problem lasted ("(after 7
    min)") depends on when the live service saw it, so it is left out."""
    return channel, _LASTED.sub("", text)


# --- the oracle ----------------------------------------------------------------------------------


class _Capture:
    def __init__(self, oracle: Oracle, name: str) -> None:
        self.name = name
        self._oracle = oracle

    async def deliver(self, note: Notification) -> None:
        channel = CHANNELS[self.name]
        for payload in plan_slack(note):
            if payload["op"] == "post":
                self._oracle.expected[post_key(channel, payload["message"]["text"])] += 1

    async def close(self) -> None:
        pass


class Oracle:
    """The same changes through an in-process pipeline with the same config: what the service
    should post, per channel and text."""

    def __init__(self, config: Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.expected: Counter[tuple[str, str]] = Counter()
        self._pipeline: Pipeline | None = None
        self._store: Store | None = None

    async def open(self) -> None:
        self._store = await Store.open(self.path)
        receivers = {name: _Capture(self, name) for name in CHANNELS}
        self._pipeline = Pipeline(self._store, self.config, receivers)
        await self._pipeline.load()

    async def feed(self, at: datetime, cluster: str, watch_type: str, obj: Any) -> None:
        assert self._pipeline is not None
        await self._pipeline.advance(at)
        await self._pipeline.observe(obj, cluster, watch_type, at)

    async def close(self) -> None:
        if self._pipeline is not None:
            await self._pipeline.close()
        if self._store is not None:
            await self._store.close()


# --- the run -------------------------------------------------------------------------------------


class Soak:
    def __init__(self, options: SoakOptions, workdir: Path, say: Say) -> None:
        self.o = options
        self.workdir = workdir
        self.say = say
        self.rng = random.Random(options.seed)
        self.report = SoakReport(options, workdir)
        self.t0 = time.monotonic()
        self.blind = BlindWindows()
        self.apis: dict[str, FakeKubeAPI] = {}
        self.paths: dict[str, set[str]] = {}
        self.objs: list[Obj] = []
        self.changed_at: dict[tuple[str, str], float] = {}
        """When each object (by cluster and name) was last changed, on the monotonic clock."""
        self.world = World(self.apis, lambda: datetime.now(UTC), keep_lines=False)
        self.changes_file = (workdir / "changes.jsonl").open("wb")
        self.oracle: Oracle | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    async def run(self) -> SoakReport:
        try:
            async with contextlib.AsyncExitStack() as stack:
                self.apis.update(await stack.enter_async_context(fakes(*CLUSTERS)))
                slack = await stack.enter_async_context(SoakSlack())
                session = await stack.enter_async_context(
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
                )
                await self._run(slack, session)
        finally:
            self.changes_file.close()
        return self.report

    async def _run(self, slack: SoakSlack, session: aiohttp.ClientSession) -> None:
        o = self.o
        raw = soak_config(kubeconfigs(self.apis, self.workdir), slack.url, free_port())
        config_path = self.workdir / "driftbot.yaml"
        config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        oracle = self.oracle = Oracle(Config.model_validate(raw), self.workdir / "oracle.sqlite")
        await oracle.open()
        service = ServiceProcess(
            config_path,
            self.workdir / "state.sqlite",
            self.workdir / "service.log",
            raw["server"]["port"],
            fork=o.fork,
        )
        try:
            for cluster in CLUSTERS:
                self.objs += population(cluster, o.apps)
            for obj in self.objs:
                await self._put(obj, oracle)
            await service.start()
            self.report.starts += 1
            await self._until(lambda: service.ready(session), 60, "the service to be ready")
            for cluster, api in self.apis.items():
                self.paths[cluster] = list_paths(api)
            self.t0 = time.monotonic()
            await self._loop(slack, session, oracle, service)
            await self._drain(slack, oracle, service)
        finally:
            if service.running:
                self.report.exit_code = await service.stop()
            await service.close()
            await oracle.close()
        self._count(slack, oracle)
        self._read_outbox(service.state_path)

    async def _until(self, check: Callable[[], Any], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"soak: gave up waiting {within:.0f} s for {what}")

    async def _put(self, obj: Obj, oracle: Oracle) -> None:
        change = self.world.put(obj)
        self.changes_file.write(change.line + b"\n")
        await oracle.feed(change.at, change.cluster, change.watch_type, change.obj)
        self.changed_at[(obj.cluster, obj.name)] = time.monotonic()

    def _eligible(self) -> list[Obj]:
        start = self.blind.start
        if start is None:
            return self.objs
        never = float("-inf")
        return [o for o in self.objs if self.changed_at.get((o.cluster, o.name), never) < start]

    async def _loop(
        self,
        slack: SoakSlack,
        session: aiohttp.ClientSession,
        oracle: Oracle,
        service: ServiceProcess,
    ) -> None:
        o, rng = self.o, self.rng
        now = time.monotonic()
        end = self.t0 + o.seconds
        next_change = now
        next_fault = now + rng.expovariate(1 / o.fault_every) if o.fault_every else float("inf")
        kill_end = self.t0 + o.seconds * o.kill_until
        next_kill = now + rng.expovariate(1 / o.kill_every) if o.kill_every else float("inf")
        restart_at: float | None = None
        early_kill: float | None = None
        down = ""
        next_bookmark = now + 10
        next_sample = now
        next_report = now + o.report_every
        while (now := time.monotonic()) < end:
            self.blind.update()
            if down and down not in self.blind.open:
                # Restarted and listed everything again: the next kill is counted from here.
                down = ""
                next_kill = now + rng.expovariate(1 / o.kill_every)
            if now >= next_change:
                next_change += 1 / o.rate
                free = self._eligible()
                if free:
                    obj = rng.choice(free)
                    obj.step += 1
                    await self._put(obj, oracle)
                    self.report.changes += 1
                else:
                    self.report.skipped += 1
            if now >= next_fault:
                next_fault = now + rng.expovariate(1 / o.fault_every)
                self._fault(slack)
            early = early_kill is not None and now >= early_kill and restart_at is None
            if (early or (not down and now >= next_kill)) and now < kill_end:
                early_kill = None
                await service.kill()
                self.report.kills += 1
                restart_at = now + rng.uniform(0.5, 3.0)
                if down:  # killed again before it had listed: still the same blind window
                    self.blind.open[down].done = lambda: False
                else:
                    down = self.blind.add("down", now - o.guard, lambda: False)
            if restart_at is not None and now >= restart_at:
                restart_at = None
                marks = {c: len(api.requests) for c, api in self.apis.items()}
                await service.start()
                self.report.starts += 1
                self.blind.open[down].done = self._all_relisted(marks)
                if rng.random() < o.kill_while_starting:  # kill the new one while it starts
                    early_kill = now + rng.uniform(0.3, 2.5)
            if now >= next_bookmark:
                next_bookmark = now + 10
                for api in self.apis.values():
                    api.bookmark()
            if now >= next_sample:
                next_sample = now + o.sample_every
                self._sample(service)
            if now >= next_report:
                next_report = now + o.report_every
                self._progress(slack, service)
            await asyncio.sleep(min(0.05, max(0.0, next_change - time.monotonic())))
        if restart_at is not None:
            marks = {c: len(api.requests) for c, api in self.apis.items()}
            await service.start()
            self.report.starts += 1
            self.blind.open[down].done = self._all_relisted(marks)

    def _all_relisted(self, marks: dict[str, int]) -> Callable[[], bool]:
        checks = [relisted(self.apis[c], marks[c], self.paths[c]) for c in self.apis]
        return lambda: all(check() for check in checks)

    def _fault(self, slack: SoakSlack) -> None:
        o, rng = self.o, self.rng
        names = [*o.kube_faults, *o.slack_faults]
        if not names:
            return
        weights = [KUBE_FAULTS.get(n, SLACK_FAULTS.get(n, 1.0)) for n in names]
        fault = rng.choices(names, weights)[0]
        self.report.faults[fault] += 1
        cluster = rng.choice(CLUSTERS)
        api = self.apis[cluster]
        now = time.monotonic()
        mark = len(api.requests)
        if fault == "drop":
            api.drop_watches()
        elif fault == "410":
            self.blind.add("410", now - o.guard, relisted(api, mark, self.paths[cluster]))
            api.expire_history()
        elif fault == "500":
            api.fail_next(500, count=rng.randint(1, 3), message="injected by the soak")
            api.drop_watches()
        elif fault == "restart":
            self.blind.add("restart", now - o.guard, relisted(api, mark, self.paths[cluster]))
            api.restart(jump=rng.randint(100, 5000))
        elif fault == "hang":
            self.blind.add("hang", now - o.guard, hang_over(api, mark))
            api.hang_next(on="watch", after_headers=True)
            api.drop_watches()
        elif fault == "429":
            slack.throttle_next(rng.randint(1, 3), retry_after=rng.choice([1, 2, 3]))
        elif fault == "slack-500":
            slack.inject(Fault.SERVER_ERROR, times=rng.randint(1, 3))
        elif fault == "slack-drop":
            slack.inject(Fault.DROP)
        elif fault == "stall":
            slack.stall_next(o.slack_stall)

    def _sample(self, service: ServiceProcess) -> None:
        if service.running:
            mib = rss_mib(service.pid)
            if mib is not None:
                self.report.rss.append((self.elapsed(), service.incarnation, mib))

    def _progress(self, slack: SoakSlack, service: ServiceProcess) -> None:
        posts = len(slack.accepted_posts())
        rss = self.report.rss[-1][2] if self.report.rss else float("nan")
        expected = sum(self.oracle.expected.values()) if self.oracle is not None else 0
        self.say(
            f"[{self.elapsed():6.0f} s] changes {self.report.changes}  in {expected}  "
            f"out {posts}  backlog {expected - posts}  "
            f"kills {self.report.kills}  faults {sum(self.report.faults.values())}  "
            f"blind windows open {len(self.blind.open)}  "
            f"RSS {rss:.1f} MiB (process {service.incarnation})"
        )

    async def _drain(self, slack: SoakSlack, oracle: Oracle, service: ServiceProcess) -> None:
        """Let the service catch up: every blind window closed, then every expected post
        accepted or nothing new for a while with the outbox empty."""
        deadline = time.monotonic() + self.o.drain_timeout
        self.say(f"[{self.elapsed():6.0f} s] changes stopped; waiting for the service to catch up")
        while self.blind.open and time.monotonic() < deadline:
            self.blind.update()
            for api in self.apis.values():
                api.bookmark()
            await asyncio.sleep(0.5)
        last_change, seen = time.monotonic(), -1
        while time.monotonic() < deadline:
            self._sample(service)
            delivered = Counter(
                post_key(c.params["channel"], c.params.get("text") or "")
                for c in slack.accepted_posts()
            )
            if delivered == oracle.expected:
                break
            total = sum(delivered.values())
            if total != seen:
                seen, last_change = total, time.monotonic()
            quiet = time.monotonic() - last_change
            if quiet > 15 and self._outbox_rows(service.state_path)[0] == 0:
                break
            await asyncio.sleep(0.5)
        self._progress(slack, service)

    def _count(self, slack: SoakSlack, oracle: Oracle) -> None:
        posts = slack.accepted_posts()
        self.report.expected = Counter(oracle.expected)
        self.report.delivered = Counter(
            post_key(c.params["channel"], c.params.get("text") or "") for c in posts
        )
        ids = Counter((c.params["channel"], notification_of(c)) for c in posts)
        self.report.id_duplicates = sum(n - 1 for n in ids.values() if n > 1)
        self.report.faults.update({f"slack-{k}-served": v for k, v in slack.faults_served.items()})

    def _outbox_rows(self, path: Path) -> tuple[int, int]:
        """(pending, failed) outbox rows; (-1, -1) when the file cannot be read now."""
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                (pending,) = conn.execute(
                    "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"
                ).fetchone()
                (failed,) = conn.execute(
                    "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL"
                ).fetchone()
        except sqlite3.Error:
            return -1, -1
        return int(pending), int(failed)

    def _read_outbox(self, path: Path) -> None:
        self.report.pending_rows, self.report.failed_rows = self._outbox_rows(path)


async def run_soak(options: SoakOptions, say: Say = lambda line: None) -> SoakReport:
    """Run the soak (see the module docstring) and return what it counted."""
    workdir = options.workdir
    if workdir is None:
        import tempfile

        workdir = Path(tempfile.mkdtemp(prefix="driftbot-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return await Soak(options, workdir, say).run()
