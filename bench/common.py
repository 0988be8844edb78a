"""The stream of the 10,000-app benchmarks: realistic objects as watch lines, and a pipeline.

The objects are the tests' builders (copies of the upstream fixtures): Argo CD Applications
grown to a production size (ten history entries, as Argo CD keeps by default, and a resource
tree of `ARGO_RESOURCES` entries, about 14 KB of JSON each) and Flux Kustomizations and
HelmReleases. Each state is serialized once with its name as a placeholder, so building a
stream of 10,000 apps takes a second, and the stream is written to a file: what the pipeline
reads is the bytes a watch would deliver, one `{"type": ..., "object": ...}` line per event.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import random
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bot.app.service import WriteBehindStore  # noqa: E402
from bot.delivery.receivers import Notification  # noqa: E402
from bot.pipeline.runner import Pipeline  # noqa: E402
from config.schema import Config  # noqa: E402
from tests.builders_argocd import argocd_app  # noqa: E402
from tests.builders_flux import REV2, helmrelease, kustomization  # noqa: E402

CLUSTER = "bench"
PLACEHOLDER = "zz-bench-name-zz"
ARGO_RESOURCES = 20
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _grow(app: dict[str, Any]) -> dict[str, Any]:
    """An Application with a resource tree of ARGO_RESOURCES entries (Deployments, Services,
    ConfigMaps … of the app's namespace), shaped like the fixture's own entries."""
    status = app["status"]
    resources = status.setdefault("resources", [])
    kinds = [("apps", "Deployment"), ("", "Service"), ("", "ConfigMap"), ("", "Secret")]
    index = 0
    while len(resources) < ARGO_RESOURCES:
        group, kind = kinds[index % len(kinds)]
        entry: dict[str, Any] = {
            "kind": kind,
            "name": f"{PLACEHOLDER}-{kind.lower()}-{index}",
            "namespace": PLACEHOLDER,
            "status": "Synced",
            "version": "v1",
            "health": {"status": "Healthy"} if kind in ("Deployment", "Service") else None,
        }
        if group:
            entry["group"] = group
        if entry["health"] is None:
            del entry["health"]
        resources.append(entry)
        index += 1
    return app


def _states() -> dict[str, list[bytes]]:
    """Per kind, its successive states serialized with the placeholder name."""
    n = PLACEHOLDER
    argo = [
        argocd_app(n),
        argocd_app(n, sync="OutOfSync", out_of_sync=[("Deployment", "default", n)]),
        argocd_app(n, health="Degraded"),
    ]
    return {
        "Application": [orjson.dumps(_grow(a)) for a in argo],
        "Kustomization": [
            orjson.dumps(o)
            for o in (
                kustomization(n),
                kustomization(n, ready="False", reason="BuildFailed", message="build failed"),
                kustomization(n, applied=REV2),
            )
        ],
        "HelmRelease": [
            orjson.dumps(o)
            for o in (
                helmrelease(n),
                helmrelease(n, ready="False", reason="UpgradeFailed", message="failed"),
            )
        ],
    }


def kind_of(index: int) -> str:
    """60 % Argo CD Applications, 25 % Kustomizations, 15 % HelmReleases."""
    slot = index % 20
    return "Application" if slot < 12 else "Kustomization" if slot < 17 else "HelmRelease"


def name_of(index: int) -> str:
    return f"app-{index:05d}"


@dataclass
class Stream:
    """A stream file: `baseline` ADDED lines (every app once), then `changes` MODIFIED lines."""

    path: Path
    apps: int
    baseline: int
    changes: int
    size: int
    app_bytes: dict[str, int]


def write_stream(path: Path, apps: int, changes: int, seed: int = 1) -> Stream:
    states = _states()
    placeholder = PLACEHOLDER.encode()
    rng = random.Random(seed)
    step = [0] * apps

    def line(kind: str, index: int, state: int, type_: bytes) -> bytes:
        body = states[kind][state % len(states[kind])].replace(placeholder, name_of(index).encode())
        return b'{"type":"' + type_ + b'","object":' + body + b"}\n"

    with path.open("wb") as out:
        for index in range(apps):
            out.write(line(kind_of(index), index, 0, b"ADDED"))
        for _ in range(changes):
            index = rng.randrange(apps)
            step[index] += 1
            out.write(line(kind_of(index), index, step[index], b"MODIFIED"))
    sizes = {kind: len(s[0]) for kind, s in states.items()}
    return Stream(path, apps, apps, changes, path.stat().st_size, sizes)


def read_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb", buffering=1 << 20) as source:
        yield from source


@dataclass(frozen=True)
class Floor:
    """What only reading and parsing a stream costs: its first `skip` lines (the baseline
    list) and the rest, timed apart."""

    baseline_lines: int
    baseline_seconds: float
    lines: int
    seconds: float


def floor(path: Path, skip: int = 0) -> Floor:
    """Read the file and parse every line with orjson, nothing else: the floor a pipeline's
    throughput is held against. With `skip` 0, `seconds` is the whole file's."""
    started = time.perf_counter()
    split = started
    total = 0
    for total, line in enumerate(read_lines(path), start=1):
        if total == skip + 1:
            split = time.perf_counter()
        orjson.loads(line)
    ended = time.perf_counter()
    if total <= skip:
        split = ended
    baseline = min(skip, total)
    return Floor(baseline, split - started, total - baseline, ended - split)


class Flusher:
    """Flushes the write-behind store about every `every` seconds of a run, as the service's
    flush task does, checking the time only every 256 lines."""

    def __init__(self, store: WriteBehindStore, every: float = 1.0) -> None:
        self.store = store
        self.every = every
        self.count = 0
        self._last = time.perf_counter()

    async def line(self) -> None:
        self.count += 1
        if self.count % 256 == 0 and time.perf_counter() - self._last >= self.every:
            await self.store.flush()
            self._last = time.perf_counter()


class Profiled:
    """`--profile N`: cProfile over a phase, its top N entries printed by own time and by
    cumulative time; nothing when N is 0."""

    def __init__(self, top: int) -> None:
        self.top = top
        self._profiler = cProfile.Profile() if top else None

    def __enter__(self) -> Profiled:
        if self._profiler is not None:
            self._profiler.enable()
        return self

    def __exit__(self, *_: object) -> None:
        if self._profiler is not None:
            self._profiler.disable()

    def print(self) -> None:
        if self._profiler is None:
            return
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(self._profiler, stream=out).sort_stats(order).print_stats(self.top)
            print(out.getvalue())


def event_time(i: int) -> datetime:
    """The observation time of the i-th line: 10 ms apart."""
    return T0 + timedelta(milliseconds=10 * i)


class NullReceiver:
    """Takes every notification and counts it: delivery cost is not what is measured."""

    name = "null"

    def __init__(self) -> None:
        self.taken = 0

    async def deliver(self, note: Notification) -> None:
        self.taken += 1

    async def close(self) -> None:
        pass


def bench_config() -> Config:
    return Config.model_validate(
        {
            "clusters": [{"name": CLUSTER}],
            "receivers": [{"name": "null", "console": {"format": "jsonl"}}],
            "routes": [{"receivers": ["null"]}],
            "policy": {"grace": "0s"},
        }
    )


async def open_pipeline(state_path: Path) -> tuple[Pipeline, NullReceiver]:
    """The pipeline `driftbot run` builds (its write-behind store), with a null receiver."""
    store = await WriteBehindStore.open(state_path)
    receiver = NullReceiver()
    pipeline = Pipeline(store, bench_config(), {"null": receiver})
    await pipeline.load()
    return pipeline, receiver


def rss_mb() -> float:
    """The process's resident set size now, in MiB (from /proc/self/status)."""
    with open("/proc/self/status") as status:
        for row in status:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"cores: {os.cpu_count()}, load average (1 min): {load:.2f}"
