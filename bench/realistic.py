"""A realistic watch stream of a 10,000-app fleet: mostly refreshes that change nothing.

What a real fleet sends (the issue's model): 60 % Argo CD Applications at production size
(bench/common.py: ten history entries, a 20-entry resource tree, about 15 KB each), 25 % Flux
Kustomizations and 15 % HelmReleases. Argo CD refreshes every app every 3 minutes (a MODIFIED
event whose only change is `status.reconciledAt`), each Flux object reconciles at its own
interval of 1 to 10 minutes (a MODIFIED event moving the conditions' `lastTransitionTime`, and
for a Kustomization its snapshot's `lastReconciled`, `lastReconciledDuration` and
`totalReconciliations`; `lastHandledReconcileAt` stays: it is the copy of the last
`reconcile.fluxcd.io/requestedAt` annotation handled, and moves only when someone asks for a
reconcile, not at every interval), and once a second one app really changes
(drift, failure, deploy, recovery: the next of its kind's states in bench/common.py). Every
line has a fresh resourceVersion. The apps are first listed (one ADDED line each).

Lines are the bytes a watch delivers, `{"type": ..., "object": ...}`; the placeholder trick of
bench/common.py keeps writing 300 MB of them to a few seconds.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson
from common import PLACEHOLDER, T0, _states, kind_of, name_of  # type: ignore[import-not-found]

ARGO_REFRESH = 180.0
"""Argo CD's default `timeout.reconciliation`: every app is refreshed every 3 minutes."""
FLUX_INTERVALS = (60.0, 600.0)
STAMP = b"ZZ-STAMP-ZZ"
VERSION = b"ZZ-RV-ZZ"


def _stamped(raw: bytes, kind: str) -> bytes:
    """A serialized state with placeholders where a refresh or reconcile writes its time."""
    obj = orjson.loads(raw)
    obj["metadata"]["resourceVersion"] = VERSION.decode()
    status = obj.setdefault("status", {})
    if kind == "Application":
        status["reconciledAt"] = STAMP.decode()
    else:
        status["lastHandledReconcileAt"] = "2026-11-20T08:00:00Z"  # the last request handled
        for cond in status.get("conditions", []):
            cond["lastTransitionTime"] = STAMP.decode()
        if kind == "Kustomization":
            status["history"] = [
                {
                    "digest": "sha256:" + "e59349a6d8cf01d625de9fe73efd94b5" * 2,
                    "firstReconciled": "2026-11-20T08:00:00Z",
                    "lastReconciled": STAMP.decode(),
                    "lastReconciledDuration": "2.1s",
                    "lastReconciledStatus": "ReconciliationSucceeded",
                    "totalReconciliations": 3,
                    "metadata": {"revision": status.get("lastAppliedRevision", "")},
                }
            ]
    return orjson.dumps(obj)


@dataclass
class RealisticStream:
    path: Path
    apps: int
    baseline: int
    refreshes: int
    reconciles: int
    changes: int
    seconds: float
    size: int
    times: list[float]
    """Each line's virtual time (seconds after T0), in file order."""
    kinds: list[str]
    """Each line's object kind, in file order (a watch has one stream per kind)."""

    @property
    def lines(self) -> int:
        return self.refreshes + self.reconciles + self.changes


def write_realistic(path: Path, apps: int, seconds: float, seed: int = 1) -> RealisticStream:
    """The list of `apps` apps, then `seconds` of the fleet's life, as watch lines."""
    states = {kind: [_stamped(s, kind) for s in raws] for kind, raws in _states().items()}
    name = PLACEHOLDER.encode()
    rng = random.Random(seed)
    step = [0] * apps
    version = 1000
    counts = {"refresh": 0, "reconcile": 0, "change": 0}
    times: list[float] = []
    kinds: list[str] = []

    def line(index: int, type_: bytes, at: float) -> bytes:
        nonlocal version
        version += 1
        kind = kind_of(index)
        times.append(at)
        kinds.append(kind)
        variants = states[kind]
        stamp = (T0 + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        body = (
            variants[step[index] % len(variants)]
            .replace(name, name_of(index).encode())
            .replace(STAMP, stamp)
            .replace(VERSION, str(version).encode())
        )
        return b'{"type":"' + type_ + b'","object":' + body + b"}\n"

    # (time, order, app or -1 for a real change): refreshes spread over their period.
    timeline: list[tuple[float, int, int]] = []
    period = {}
    for index in range(apps):
        if kind_of(index) == "Application":
            period[index] = ARGO_REFRESH
        else:
            period[index] = rng.uniform(*FLUX_INTERVALS)
        timeline.append((rng.uniform(0, period[index]), index, index))
    for second in range(int(seconds)):
        timeline.append((second + rng.random(), apps + second, -1))
    heapq.heapify(timeline)
    with path.open("wb") as out:
        for index in range(apps):
            out.write(line(index, b"ADDED", 0.0))
        while timeline:
            at, order, index = heapq.heappop(timeline)
            if at >= seconds:
                continue
            if index < 0:
                changed = rng.randrange(apps)
                step[changed] += 1
                counts["change"] += 1
                out.write(line(changed, b"MODIFIED", at))
                continue
            counts["refresh" if kind_of(index) == "Application" else "reconcile"] += 1
            out.write(line(index, b"MODIFIED", at))
            heapq.heappush(timeline, (at + period[index], order, index))
    return RealisticStream(
        path,
        apps,
        apps,
        counts["refresh"],
        counts["reconcile"],
        counts["change"],
        seconds,
        path.stat().st_size,
        times,
        kinds,
    )
