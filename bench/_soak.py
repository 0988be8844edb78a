"""The soak run: `driftbot run` in its own process against the fake Kubernetes API servers and the
fake Slack, a steady rate of changes, random faults, SIGKILLs and restarts; then what should have
been announced against what Slack accepted.

The service is the real thing (`python -m bot.app.cli run --config ... --state ...`), so a kill is a
real SIGKILL and a restart opens the same state file. The driver (this module) owns the fakes:

- two clusters (each a `FakeKubeAPI`) of Argo CD Applications, Kustomizations, HelmReleases and
  GitRepositories built from the tests' builders, each object cycling through a few states;
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
resource again; during one, an object is changed at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import re
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import yaml  # noqa: E402

from bench._soak_fork import ForkServer  # noqa: E402
from bench._soak_slack import SoakSlack, notification_of  # noqa: E402
from bot.delivery.receivers import Notification  # noqa: E402
from bot.delivery.slack_receiver import plan_slack  # noqa: E402
from bot.pipeline.runner import Pipeline  # noqa: E402
from bot.pipeline.sources import WATCHED  # noqa: E402
from bot.store.store import Store  # noqa: E402
from config.schema import Config  # noqa: E402
from tests.builders_argocd import DIFF_CACHE, LIVE_CHILD, argocd_app  # noqa: E402
from tests.builders_flux import REV2, helmrelease, kustomization, source  # noqa: E402
from tests.fakes.kube_api import FakeKubeAPI  # noqa: E402
from tests.fakes.slack_api import VALID_TOKEN, Fault  # noqa: E402
from watchers.replay import dump_line  # noqa: E402

__all__ = ["SoakOptions", "SoakReport", "run_soak"]

CLUSTERS = ("prod", "staging")
CHANNELS = {"alpha": "C0SOAKALPHA", "beta": "C0SOAKBETA", "gamma": "C0SOAKGAMMA"}
KUBE_FAULTS = {"drop": 3.0, "410": 1.0, "500": 2.0, "restart": 1.0, "hang": 0.5}
SLACK_FAULTS = {"429": 2.0, "slack-500": 2.0, "slack-drop": 1.0, "stall": 0.5}

Say = Callable[[str], None]


@dataclass(frozen=True)
class SoakOptions:
    seconds: float = 120.0
    rate: float = 1.0
    """Changes per second, over all objects."""
    seed: int = 1
    apps: int = 60
    """Objects per cluster: half Argo CD Applications, the rest Flux objects."""
    kill_every: float = 30.0
    """Mean seconds between SIGKILLs (0: never)."""
    kill_until: float = 0.5
    """Kills happen in this first fraction of the run."""
    kill_while_starting: float = 0.2
    """The chance that a restarted process is killed again while it starts (and lists)."""
    fault_every: float = 5.0
    """Mean seconds between injected faults (0: none)."""
    kube_faults: tuple[str, ...] = tuple(KUBE_FAULTS)
    slack_faults: tuple[str, ...] = tuple(SLACK_FAULTS)
    slack_stall: float = 35.0
    """How long a stalled Slack call is held: past the client's 30 s time-out by default."""
    guard: float = 5.0
    """Seconds before a blind window's fault from which changes count as inside it."""
    report_every: float = 30.0
    sample_every: float = 2.0
    drain_timeout: float = 240.0
    workdir: Path | None = None
    fork: bool = False
    """Fork each service process from a server with the imports done (see ServiceProcess)."""


@dataclass
class SoakReport:
    options: SoakOptions
    workdir: Path
    changes: int = 0
    skipped: int = 0
    """Ticks with no object free to change (all changed once in a blind window)."""
    kills: int = 0
    starts: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    expected: Counter[tuple[str, str]] = field(default_factory=Counter)
    delivered: Counter[tuple[str, str]] = field(default_factory=Counter)
    id_duplicates: int = 0
    pending_rows: int = -1
    failed_rows: int = -1
    rss: list[tuple[float, int, float]] = field(default_factory=list)
    """(seconds since the start, process incarnation, RSS in MiB)."""
    exit_code: int | None = None

    @property
    def events_in(self) -> int:
        return sum(self.expected.values())

    @property
    def events_out(self) -> int:
        return sum(self.delivered.values())

    @property
    def lost(self) -> int:
        return sum((self.expected - self.delivered).values())

    @property
    def duplicated(self) -> int:
        return sum((self.delivered - self.expected).values())

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.id_duplicates == 0

    def memory(self) -> tuple[bool | None, str]:
        """Is RSS flat after warm-up? Read from the last process (it runs the longest without
        a kill): the mean of its last third of samples against its second third."""
        if not self.rss:
            return None, "RSS: no samples"
        last = self.rss[-1][1]
        samples = [(t, mib) for t, inc, mib in self.rss if inc == last]
        if len(samples) < 9:
            return None, f"RSS: too few samples of the last process ({len(samples)}) to judge"
        third = len(samples) // 3
        second = [m for _, m in samples[third : 2 * third]]
        final = [m for _, m in samples[len(samples) - third :]]
        a, b = sum(second) / len(second), sum(final) / len(final)
        growth = b - a
        flat = growth <= max(2.0, 0.05 * a)
        span = samples[-1][0] - samples[0][0]
        return flat, (
            f"RSS {'flat' if flat else 'GROWING'} after warm-up (last process, {span:.0f} s, "
            f"{len(samples)} samples): second third mean {a:.1f} MiB, last third mean {b:.1f} "
            f"MiB, {growth:+.1f} MiB ({100 * growth / a:+.1f} %; flat means within "
            f"max(2 MiB, 5 %)); peak {max(m for _, m in samples):.1f} MiB"
        )

    def summary(self) -> list[str]:
        o = self.options
        pending = "unknown" if self.pending_rows < 0 else str(self.pending_rows)
        failed = "unknown" if self.failed_rows < 0 else str(self.failed_rows)
        lines = [
            f"soak: {o.seconds:.0f} s at {o.rate:g} changes/s, seed {o.seed}, "
            f"{2 * o.apps} objects on {len(CLUSTERS)} clusters; work files in {self.workdir}",
            f"changes made: {self.changes} ({self.skipped} ticks skipped: nothing free to "
            f"change in a blind window)",
            f"service processes: {self.starts} started, {self.kills} killed with SIGKILL; the "
            f"last stopped with SIGTERM, exit code {self.exit_code}",
            "faults: " + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"),
            f"events in (posts the changes call for): {self.events_in}",
            f"events out (posts the fake Slack accepted): {self.events_out}",
            f"lost: {self.lost}   duplicated: {self.duplicated}   "
            f"(notification ids posted twice to a channel: {self.id_duplicates}; outbox rows "
            f"left pending: {pending}, failed: {failed})",
        ]
        for kind, counter in (
            ("lost", self.expected - self.delivered),
            ("duplicated", self.delivered - self.expected),
        ):
            for (channel, text), n in sorted(counter.items())[:10]:
                lines.append(f"  {kind}: {n} x {channel}: {text}")
        lines.append(self.memory()[1])
        return lines


# --- objects and their states --------------------------------------------------------------------


def _argocd(name: str, step: int) -> dict[str, Any]:
    base = DIFF_CACHE if name.endswith("0") else LIVE_CHILD
    variant = step % 3
    if variant == 1:
        return argocd_app(
            name, base=base, sync="OutOfSync", out_of_sync=[("Deployment", "default", name)]
        )
    if variant == 2:
        return argocd_app(name, base=base, health="Degraded")
    return argocd_app(name, base=base)


def _kustomization(name: str, step: int) -> dict[str, Any]:
    variant = step % 3
    if variant == 1:
        return kustomization(name, ready="False", reason="BuildFailed", message="kustomize build")
    if variant == 2:
        return kustomization(name, applied=REV2)
    return kustomization(name)


def _helmrelease(name: str, step: int) -> dict[str, Any]:
    if step % 2:
        return helmrelease(name, ready="False", reason="UpgradeFailed", message="upgrade failed")
    return helmrelease(name)


def _gitrepository(name: str, step: int) -> dict[str, Any]:
    variant = step % 3
    if variant == 1:
        return source(
            "GitRepository", name, ready="False", reason="GitOperationFailed", message="denied"
        )
    if variant == 2:
        return source("GitRepository", name, revision=REV2)
    return source("GitRepository", name)


BUILDERS: dict[str, Callable[[str, int], dict[str, Any]]] = {
    "Application": _argocd,
    "Kustomization": _kustomization,
    "HelmRelease": _helmrelease,
    "GitRepository": _gitrepository,
}


@functools.cache
def _built(kind: str, name: str, step: int) -> dict[str, Any]:
    return BUILDERS[kind](name, step)


@dataclass
class Obj:
    cluster: str
    kind: str
    name: str
    step: int = 0
    changed_at: float = float("-inf")


def population(cluster: str, apps: int) -> list[Obj]:
    argo, ks = apps // 2, apps // 4
    hr = max(1, apps // 6)
    git = max(1, apps - argo - ks - hr)
    objs = [Obj(cluster, "Application", f"{cluster}-app-{i:03d}") for i in range(argo)]
    objs += [Obj(cluster, "Kustomization", f"{cluster}-ks-{i:03d}") for i in range(ks)]
    objs += [Obj(cluster, "HelmRelease", f"{cluster}-hr-{i:03d}") for i in range(hr)]
    objs += [Obj(cluster, "GitRepository", f"{cluster}-git-{i:02d}") for i in range(git)]
    return objs


def soak_config(kubeconfigs: dict[str, Path], slack_url: str, port: int) -> dict[str, Any]:
    """No grace, no grouping across apps, no flap damping, no reminders: every change the
    detectors call news is one notification, whatever the timing."""
    return {
        "clusters": [{"name": n, "kubeconfig": str(p)} for n, p in kubeconfigs.items()],
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


# --- the service process -------------------------------------------------------------------------


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for row in status:
                if row.startswith("VmRSS:"):
                    return int(row.split()[1]) / 1024
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """`driftbot run` as a child process, its stderr appended to `log`: started from scratch
    (`python -m bot.app.cli run`), or forked from a `ForkServer` that has the imports done (quick
    restarts for short runs; each is still a process of its own, killed for real)."""

    def __init__(
        self, config_path: Path, state_path: Path, log: Path, port: int, *, fork: bool = False
    ) -> None:
        self.config_path = config_path
        self.state_path = state_path
        self.log = log
        self.port = port
        self.fork = fork
        self.incarnation = 0
        self.pid = 0
        self._wait: Callable[[], Awaitable[int]] | None = None
        self._code: int | None = None
        self._server: ForkServer | None = None
        self._log_file: IO[bytes] | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTBOT_", "SLACK_"))}
        self.env = {
            **env,
            "SLACK_BOT_TOKEN": VALID_TOKEN,
            "SLACK_SIGNING_SECRET": "soak-signing-secret",
            "PYTHONPATH": str(ROOT),
        }

    @property
    def running(self) -> bool:
        return self._wait is not None and self._code is None

    async def start(self) -> None:
        args = ["run", "--config", str(self.config_path), "--state", str(self.state_path)]
        self._code = None
        if self.fork:
            if self._server is None:
                self._log_file = self.log.open("ab")
                self._server = await ForkServer(self.env, stderr=self._log_file).__aenter__()
            child = await self._server.spawn(args)
            self.pid, self._wait = child.pid, child.wait
        else:
            with self.log.open("ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot.app.cli",
                    *args,
                    cwd=ROOT,
                    env=self.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log,
                )
            self.pid, self._wait = proc.pid, proc.wait
        self.incarnation += 1

    async def _ended(self) -> int:
        assert self._wait is not None
        self._code = await self._wait()
        return self._code

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        await self._ended()

    async def stop(self, within: float = 60.0) -> int:
        """SIGTERM, as Kubernetes stops a pod; SIGKILL if it does not end within `within`."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self._ended(), within)
            except TimeoutError:
                await self.kill()
        return -1 if self._code is None else self._code

    async def close(self) -> None:
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
            self._server = None
        if self._log_file is not None:
            self._log_file.close()

    async def ready(self, session: aiohttp.ClientSession) -> bool:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                return response.status == 200
        return False


# --- blind windows -------------------------------------------------------------------------------


@dataclass
class _Window:
    start: float
    done: Callable[[], bool]


class BlindWindows:
    """Windows in which the service cannot see every change as it happens (see the module)."""

    def __init__(self) -> None:
        self.open: dict[str, _Window] = {}
        self._serial = 0

    def add(self, name: str, start: float, done: Callable[[], bool]) -> str:
        self._serial += 1
        key = f"{name}#{self._serial}"
        self.open[key] = _Window(start, done)
        return key

    def update(self) -> None:
        for key in [k for k, w in self.open.items() if w.done()]:
            del self.open[key]

    @property
    def start(self) -> float | None:
        return min((w.start for w in self.open.values()), default=None)


def _list_paths(api: FakeKubeAPI) -> set[str]:
    return {r.path for r in api.list_requests() if r.status == 200}


def relisted(api: FakeKubeAPI, since: int, paths: set[str]) -> Callable[[], bool]:
    """Every one of `paths` listed successfully after request number `since`."""

    def done() -> bool:
        seen = {r.path for r in api.requests[since:] if r.verb == "list" and r.status == 200}
        return paths <= seen

    return done


def hang_over(api: FakeKubeAPI, since: int) -> Callable[[], bool]:
    """The first watch after request `since` (the hung one) has been given up and replaced."""

    def done() -> bool:
        later = api.requests[since:]
        for i, request in enumerate(later):
            if request.verb == "watch":
                return any(r.path == request.path for r in later[i + 1 :])
        return False

    return done


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
        self.changes_file = (workdir / "changes.jsonl").open("wb")
        self.oracle: Oracle | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    async def run(self) -> SoakReport:
        try:
            async with contextlib.AsyncExitStack() as stack:
                for cluster in CLUSTERS:
                    api = await stack.enter_async_context(FakeKubeAPI())
                    for watched in WATCHED:
                        if watched.spec.group:
                            api.install_crd(
                                watched.spec.group, watched.spec.plural, kind=min(watched.kinds)
                            )
                    self.apis[cluster] = api
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
        kubeconfigs = {
            c: api.write_kubeconfig(self.workdir / f"{c}.kubeconfig")
            for c, api in self.apis.items()
        }
        raw = soak_config(kubeconfigs, slack.url, free_port())
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
                await self._put(obj, oracle, "ADDED")
            await service.start()
            self.report.starts += 1
            await self._until(lambda: service.ready(session), 60, "the service to be ready")
            for cluster, api in self.apis.items():
                self.paths[cluster] = _list_paths(api)
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

    async def _put(self, obj: Obj, oracle: Oracle, watch_type: str) -> None:
        api = self.apis[obj.cluster]
        stored = api.put(_built(obj.kind, obj.name, obj.step % 6))
        at = datetime.now(UTC)
        self.changes_file.write(dump_line(at, obj.cluster, watch_type, stored) + b"\n")
        await oracle.feed(at, obj.cluster, watch_type, stored)
        obj.changed_at = time.monotonic()

    def _eligible(self) -> list[Obj]:
        start = self.blind.start
        if start is None:
            return self.objs
        return [obj for obj in self.objs if obj.changed_at < start]

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
                    await self._put(obj, oracle, "MODIFIED")
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
