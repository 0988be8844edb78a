"""`driftbot replay` reads lines as the watchers do (typed views, the "nothing relevant changed"
fast path) and writes exactly what the full parse of every line wrote.

Each stream goes through `replay_lines` twice on a fresh store: typed (what the CLI runs) and
full (`typed=False`: every line parsed with orjson and handed to the pipeline, the path before
the views). Their output, in both console formats, the warnings about bad lines (with their
numbers) and the summaries must be the same. The streams: the shipped demo scenario, every
fixture and builder object of the decode tests (listed, refreshed, changed, deleted, in two
clusters), malformed and unknown-kind lines, times that go backwards, and a small fleet whose
refreshes the fast path drops.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from bot.app.replay import ReplaySummary, build_receivers, replay_lines
from bot.pipeline.runner import Pipeline
from bot.store.write_behind import WriteBehindStore
from config.schema import Config
from tests import builders_argocd as argo
from tests.builders_flux import kustomization
from tests.upstream import load_fixture
from tests.watchers.test_decode import CORPUS
from watchers.decode.base import ObjectView
from watchers.decode.recorded import recorded_line
from watchers.replay import ReplayLine, dump_line, parse_line

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "bot" / "app" / "scenarios" / "demo.jsonl"
T0 = argo.T0

CONFIG = Config.model_validate(
    {
        "receivers": [{"name": "oncall", "console": {"format": "jsonl"}}],
        "routes": [{"receivers": ["oncall"], "grace": "0s"}],
    }
)


def _refreshed(obj: dict[str, Any], at: datetime) -> dict[str, Any]:
    """`obj` after a refresh or reconcile that changes nothing driftbot reads."""
    moved = orjson.loads(orjson.dumps(obj))
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    status = moved.setdefault("status", {})
    if moved.get("kind") == "Application":
        status["reconciledAt"] = stamp
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict):
            cond["lastTransitionTime"] = stamp
    moved["metadata"]["resourceVersion"] = str(int(at.timestamp()))
    return moved


def _fixture_lines() -> list[bytes]:
    """Every object of the decode tests, in two clusters: listed, refreshed twice, changed to
    the next object of its kind, refreshed, and deleted; Events once each."""
    lines: list[bytes] = []
    at = T0
    objects = [obj for _, obj in CORPUS]
    for cluster in ("prod", "staging"):
        for index, obj in enumerate(objects):
            at += timedelta(seconds=7)
            if obj["kind"] == "Event":
                lines.append(dump_line(at, cluster, "ADDED", obj))
                continue
            nxt = next(
                (o for o in objects[index + 1 :] if o["kind"] == obj["kind"]),
                _refreshed(obj, at),
            )
            nxt = {**nxt, "metadata": obj["metadata"]}
            steps = [
                ("ADDED", obj),
                ("MODIFIED", _refreshed(obj, at + timedelta(minutes=3))),
                ("MODIFIED", _refreshed(obj, at + timedelta(minutes=6))),
                ("MODIFIED", nxt),
                ("MODIFIED", _refreshed(nxt, at + timedelta(minutes=9))),
                ("DELETED", nxt),
            ]
            for step, (watch_type, body) in enumerate(steps):
                lines.append(dump_line(at + timedelta(minutes=3 * step), cluster, watch_type, body))
    lines.append(
        dump_line(at, "prod", "NOTIFICATION", load_fixture("flux/generic-webhook-event.json"))
    )
    return lines


def _bad_lines() -> list[bytes]:
    """Lines the replay reports (or rejects) with their numbers, and ones it must pass over."""
    app = orjson.dumps(argo.argocd_app("bad"))
    stamp = b'"2026-11-20T09:00:00Z"'

    def deep(levels: int) -> bytes:  # orjson parses to 1,024 levels; msgspec recurses
        return b"[" * levels + b"]" * levels

    return [
        b"not json",
        b"[1, 2]",
        b"",
        b"   ",
        b"# a comment",
        b'{"cluster": "prod", "object": ' + app + b"}",
        b'{"at": "yesterday", "object": ' + app + b"}",
        b'{"at": 5, "object": ' + app + b"}",
        b'{"at": ' + stamp + b', "cluster": "", "object": ' + app + b"}",
        b'{"at": ' + stamp + b', "cluster": 7, "object": ' + app + b"}",
        b'{"at": ' + stamp + b', "type": "UPDATED", "object": ' + app + b"}",
        b'{"at": ' + stamp + b', "type": ["ADDED"], "object": ' + app + b"}",
        b'{"at": ' + stamp + b', "type": "ADDED"}',
        b'{"at": ' + stamp + b', "object": null}',
        b'{"at": ' + stamp + b', "object": "an app"}',
        b'{"at": ' + stamp + b', "object": {"kind": "Deployment", "apiVersion": "apps/v1"}}',
        b'{"at": ' + stamp + b', "object": {"kind": "Application", "apiVersion": "x.io/v1"}}',
        b'{"at": ' + stamp + b', "object": {"kind": "Application", "metadata": {"name": 3}}}',
        b'{"at": ' + stamp + b', "object": {"kind": "Application", "status": "broken"}}',
        b'{"at": ' + stamp + b', "object": {"apiVersion": "argoproj.io/v1alpha1"}}',
        b'{"at": ' + stamp + b', "object": {"kind": "AppProject", "apiVersion": '
        b'"argoproj.io/v1alpha1", "metadata": {"name": "shop"}}}',
        b'{"at": ' + stamp + b', "object": ' + app + b', "flux_event": {"involvedObject": {}}}',
        b'{"at": ' + stamp + b', "object": ' + app[:-1] + b', "x": "\xff\xfe"}}',
        b'\xef\xbb\xbf{"at": ' + stamp + b', "object": ' + app + b"}",
        b'{"at": ' + stamp + b', "object": ' + app[:-1] + b', "x": ' + deep(1000) + b"}}",
        b'{"at": ' + stamp + b', "object": ' + app[:-1] + b', "x": ' + deep(1100) + b"}}",
        b'{"at": ' + stamp + b', "object": ' + app + b"} trailing",
    ]


def _backwards_lines() -> list[bytes]:
    """A refresh (nothing relevant) at 09:10, then a drift and a deletion recorded at 09:05:
    older than the state the refresh left, so stale; the drift again at 09:20, refreshed twice
    at 09:25, and a recovery recorded at 09:24: stale too."""
    synced = argo.argocd_app("checkout")
    drifted = argo.argocd_app(
        "checkout", sync="OutOfSync", out_of_sync=[("Deployment", "shop", "web")]
    )
    at = T0
    return [
        dump_line(at, "prod", "ADDED", synced),
        dump_line(at + timedelta(minutes=10), "prod", "MODIFIED", _refreshed(synced, at)),
        dump_line(at + timedelta(minutes=5), "prod", "MODIFIED", drifted),
        dump_line(at + timedelta(minutes=5), "prod", "DELETED", drifted),
        dump_line(at + timedelta(minutes=20), "prod", "MODIFIED", drifted),
        dump_line(at + timedelta(minutes=25), "prod", "MODIFIED", _refreshed(drifted, at)),
        dump_line(at + timedelta(minutes=25), "prod", "MODIFIED", _refreshed(drifted, at)),
        dump_line(at + timedelta(minutes=24), "prod", "MODIFIED", synced),
    ]


def _fleet_lines(apps: int = 24, minutes: int = 30) -> list[bytes]:
    """A small fleet: Argo CD refreshes every 3 minutes, Kustomization reconciles every 2, and
    one app a minute moving to its next state (out of sync, degraded, failed, back)."""
    argo_states = [
        argo.argocd_app,
        lambda n: argo.argocd_app(n, sync="OutOfSync", out_of_sync=[("Deployment", "a", n)]),
        lambda n: argo.argocd_app(n, health="Degraded"),
    ]
    flux_states = [
        kustomization,
        lambda n: kustomization(n, ready="False", reason="BuildFailed", message="build failed"),
    ]
    step = [0] * apps

    def state(index: int) -> dict[str, Any]:
        name = f"app-{index:02d}"
        if index % 3:
            return argo_states[step[index] % 3](name)
        return flux_states[step[index] % 2](name)

    lines = [dump_line(T0, "prod", "ADDED", state(i)) for i in range(apps)]
    timeline: list[tuple[float, int]] = []
    for minute in range(minutes):
        for index in range(apps):
            period = 2 if index % 3 == 0 else 3
            if minute % period == index % period:
                timeline.append((minute + index / apps, index))
        timeline.append((minute + 0.5, -1 - (minute * 7) % apps))
    for when, index in sorted(timeline):
        at = T0 + timedelta(minutes=when)
        if index < 0:
            changed = -1 - index
            step[changed] += 1
            lines.append(dump_line(at, "prod", "MODIFIED", state(changed)))
        else:
            lines.append(dump_line(at, "prod", "MODIFIED", _refreshed(state(index), at)))
    return lines


async def _replay(
    lines: list[bytes], tmp: Path, config: Config, output: str, typed: bool
) -> tuple[str, ReplaySummary]:
    out = io.StringIO()
    store = await WriteBehindStore.open(tmp / f"{output}-{typed}.sqlite")
    try:
        pipeline = Pipeline(store, config, build_receivers(config, output, out, store=store))
        await pipeline.load()
        try:
            summary = await replay_lines(iter(lines), "stream.jsonl", pipeline, typed=typed)
        finally:
            await pipeline.close()
    finally:
        await store.close()
    return out.getvalue(), summary


def _both(
    lines: list[bytes], tmp: Path, caplog: pytest.LogCaptureFixture, config: Config, output: str
) -> tuple[tuple[str, ReplaySummary, list[str]], ...]:
    runs = []
    for typed in (False, True):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bot"):
            text, summary = asyncio.run(_replay(lines, tmp, config, output, typed))
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        runs.append((text, summary, warnings))
    return tuple(runs)


STREAMS = {
    "demo": lambda: DEMO.read_bytes().splitlines(),
    "fixtures": _fixture_lines,
    "bad-lines": lambda: _bad_lines() + _fixture_lines()[:12] + _bad_lines(),
    "backwards": _backwards_lines,
    "fleet": _fleet_lines,
}


@pytest.mark.parametrize("output", ["jsonl", "text"])
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_typed_replay_writes_what_the_full_parse_wrote(
    name: str, output: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = STREAMS[name]()
    config = Config() if name == "demo" else CONFIG
    (full, full_summary, full_warnings), (typed, summary, warnings) = _both(
        lines, tmp_path, caplog, config, output
    )
    assert typed == full
    assert warnings == full_warnings
    assert (summary.lines, summary.skipped, summary.sent) == (
        full_summary.lines,
        full_summary.skipped,
        full_summary.sent,
    )
    assert full_summary.unchanged == 0


def test_the_fast_path_drops_refreshes_and_still_writes_every_notification(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = _fleet_lines(apps=24, minutes=30)
    refreshes = len(lines) - 24 - 30  # less the list and one change a minute
    (full, _, _), (typed, summary, _) = _both(lines, tmp_path, caplog, CONFIG, "jsonl")
    assert typed == full
    assert full.count("\n") >= 20
    assert summary.unchanged == refreshes > 200


def test_a_line_older_than_a_dropped_refresh_is_stale_as_on_the_full_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (full, _, _), (typed, summary, _) = _both(_backwards_lines(), tmp_path, caplog, CONFIG, "jsonl")
    kinds = [orjson.loads(line)["kind"] for line in full.splitlines()]
    assert kinds == ["drift_detected"]
    assert typed == full
    assert summary.unchanged == 3


def _lines_of_every_shape() -> Iterator[bytes]:
    yield from _bad_lines()
    yield from _fixture_lines()
    yield from DEMO.read_bytes().splitlines()


def test_recorded_lines_decode_into_views_or_parse_in_full_as_before() -> None:
    views = 0
    for lineno, raw in enumerate(_lines_of_every_shape(), start=1):
        full = parse_line(lineno, raw)
        typed = recorded_line(lineno, raw)
        if isinstance(typed, ReplayLine) and isinstance(typed.payload, ObjectView):
            views += 1
            assert isinstance(full, ReplayLine)
            assert (typed.lineno, typed.at, typed.cluster, typed.type) == (
                full.lineno,
                full.at,
                full.cluster,
                full.type,
            )
            assert typed.payload.__struct_config__.tag == full.payload["kind"]
        elif isinstance(full, ReplayLine) and isinstance(full.payload, dict):
            # (one payload is nested 1,000 deep: too deep for == to compare)
            assert isinstance(typed, ReplayLine) and typed.payload.keys() == full.payload.keys()
            assert typed.lineno == full.lineno and typed.type == full.type
        else:
            assert typed == full
    assert views > 100
