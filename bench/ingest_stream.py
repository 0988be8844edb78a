"""Ingest of a 10,000-app fleet's watch stream through the service's own path, against the
floor of reading the same bytes and parsing each line with orjson, in one run.

Run: python3 tasks.py bench bench/ingest_stream.py [--stream realistic|changes] [--apps 10000]
     [--minutes 6] [--changes 20000] [--profile N]

`realistic` (bench/realistic.py): Argo CD refreshes every 3 minutes, Flux reconciles every 1-10
minutes, one real change a second. `changes` (bench/common.py): every line a real change.
The apps are listed first (the baseline, timed apart), then every line goes the way a watch
line goes in `driftbot run`: the resource's decoder (`watchers.decode.lines`, typed views) ->
its `ObjectFeed` (the "nothing relevant changed" fast path, `watchers.decode.unchanged`) ->
`PipelineGate` -> the pipeline with the write-behind store (flushed every second of the run,
and at the end) and a receiver that only counts. Only the HTTP of the watch is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from common import (  # type: ignore[import-not-found]
    CLUSTER,
    T0,
    Flusher,
    Profiled,
    floor,
    kind_of,
    machine,
    open_pipeline,
    read_lines,
    write_stream,
)
from realistic import write_realistic  # type: ignore[import-not-found]

from bot.app.service import PipelineGate, WriteBehindStore
from bot.pipeline.sources import WATCHED, ObjectFeed
from watchers.decode.lines import decoder_for


class Clock:
    """The line's virtual time, made a datetime only when asked (as the service's clock is
    read only for what reaches the pipeline)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> Any:
        return T0 + timedelta(seconds=self.seconds)


async def service(
    path: Path, apps: int, times: list[float], kinds: list[str], state: Path, profile: int
) -> dict[str, Any]:
    pipeline, receiver = await open_pipeline(state)
    gate = PipelineGate(pipeline)
    store = pipeline.store
    assert isinstance(store, WriteBehindStore)
    clock = Clock()
    by_kind = {min(w.kinds): w for w in WATCHED if w.kinds}
    feeds = {k: ObjectFeed(gate, CLUSTER, w, clock) for k, w in by_kind.items()}
    decoders = {k: decoder_for(w.spec.group, w.spec.plural) for k, w in by_kind.items()}
    lines = read_lines(path)

    started = time.perf_counter()
    listed: dict[str, list[Any]] = {}
    for index, line in zip(range(apps), lines, strict=False):
        kind = kinds[index]
        _, obj = decoders[kind].event(line)
        listed.setdefault(kind, []).append(feeds[kind].prepare(obj))
    for kind, objects in listed.items():
        await feeds[kind].on_list(objects, "1")
    del listed
    await store.flush()
    baseline_seconds = time.perf_counter() - started
    baseline_sent = receiver.taken

    flusher = Flusher(store)
    started = time.perf_counter()
    with Profiled(profile) as profiled:
        for index, line in enumerate(lines, start=apps):
            kind = kinds[index]
            clock.seconds = times[index]
            watch_type, obj = decoders[kind].event(line)
            await feeds[kind].on_event(watch_type, obj)
            await flusher.line()
        await store.flush()
    change_seconds = time.perf_counter() - started
    count = flusher.count
    stats = dict(pipeline.stats)
    await pipeline.close()
    await store.close()
    profiled.print()
    return {
        "baseline_seconds": baseline_seconds,
        "baseline_sent": baseline_sent,
        "lines": count,
        "seconds": change_seconds,
        "sent": receiver.taken - baseline_sent,
        "skipped": sum(f.views.skipped for f in feeds.values()),
        "fallbacks": sum(getattr(d, "fallbacks", 0) for d in decoders.values()),
        "stats": stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stream", choices=("realistic", "changes"), default="realistic")
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=6.0, help="realistic: its length")
    parser.add_argument("--changes", type=int, default=20_000, help="changes: how many")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "stream.jsonl"
        if options.stream == "realistic":
            real = write_realistic(file, options.apps, options.minutes * 60)
            times, kinds = real.times, real.kinds
            what = (
                f"realistic: {real.apps} apps, {options.minutes:g} min: {real.refreshes} "
                f"Argo CD refreshes, {real.reconciles} Flux reconciles, {real.changes} changes"
            )
        else:
            stream = write_stream(file, options.apps, options.changes)
            total = stream.apps + stream.changes
            times = [0.0] * stream.apps + [0.01 * i for i in range(stream.changes)]
            kinds = [kind_of(i) for i in range(stream.apps)]
            kinds += [orjson.loads(line)["object"]["kind"] for line in _tail(file, stream.apps)]
            assert len(kinds) == total
            what = f"all changes: {stream.apps} apps, {stream.changes} changes"
        size = file.stat().st_size
        floor(file, options.apps)  # into the page cache for both
        took = floor(file, options.apps)
        got = asyncio.run(
            service(file, options.apps, times, kinds, Path(tmp) / "s.sqlite", options.profile)
        )
        again = floor(file, options.apps)
    print(machine())
    print(f"{what}; {size / 2**20:.0f} MiB")
    floor_s = min(took.seconds, again.seconds)
    base_floor = min(took.baseline_seconds, again.baseline_seconds)
    lines = got["lines"]
    print(
        f"baseline list: {options.apps} apps in {got['baseline_seconds']:.2f} s, floor "
        f"{base_floor:.2f} s, ratio {base_floor / got['baseline_seconds']:.2f}, "
        f"{got['baseline_sent']} notifications"
    )
    print(
        f"stream: driftbot {lines / got['seconds']:,.0f} lines/s ({lines} in "
        f"{got['seconds']:.2f} s), floor {lines / floor_s:,.0f} lines/s ({floor_s:.2f} s), "
        f"ratio {floor_s / got['seconds']:.2f}"
    )
    print(
        f"dropped as unchanged: {got['skipped']}, full-parse fallbacks: {got['fallbacks']}, "
        f"notifications: {got['sent']}"
    )
    print(f"pipeline counters: {got['stats']}")


def _tail(path: Path, skip: int) -> Any:
    for i, line in enumerate(read_lines(path)):
        if i >= skip:
            yield line


if __name__ == "__main__":
    main()
