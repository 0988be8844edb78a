"""Ingest at 10,000 apps: events per second through normalize -> detect -> policy -> store,
against the floor of only reading and JSON-parsing (orjson) the same bytes, in the same run.

Run: python3 tasks.py bench bench/ingest_10k.py [--apps 10000] [--changes 20000] [--profile N]

The stream (bench/common.py) is written to a file first: a baseline of every app (the initial
list, handed to `Pipeline.relist` one resource at a time, as the watcher does after listing),
then the changes as watch lines, each handed to the pipeline as the service's gate does (time
let pass with `advance`, then `observe`). The pipeline is `driftbot run`'s (write-behind store
on a temporary file, flushed every second of the run as the service does, and at the end);
its receiver is a null one. The floor reads the same file and parses each line, nothing else.
`--profile N` runs the change phase under cProfile and prints its top N entries.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import orjson
from common import (  # type: ignore[import-not-found]
    CLUSTER,
    Flusher,
    Profiled,
    event_time,
    floor,
    machine,
    open_pipeline,
    read_lines,
    write_stream,
)

from bot.app.service import PipelineGate, WriteBehindStore


async def service(path: Path, apps: int, state: Path, profile: int) -> dict[str, float]:
    pipeline, receiver = await open_pipeline(state)
    gate = PipelineGate(pipeline)
    store = pipeline.store
    assert isinstance(store, WriteBehindStore)
    lines = read_lines(path)
    started = time.perf_counter()
    by_kind: dict[str, list[object]] = {}
    for _, line in zip(range(apps), lines, strict=False):
        obj = orjson.loads(line)["object"]
        by_kind.setdefault(obj["kind"], []).append(obj)
    now = event_time(0)
    for kind, objects in by_kind.items():
        await gate.relist(CLUSTER, objects, now, lambda key, k=kind: key.kind == k)
    del by_kind
    await store.flush()
    baseline_seconds = time.perf_counter() - started
    baseline_sent = receiver.taken

    flusher = Flusher(store)
    started = time.perf_counter()
    with Profiled(profile) as profiled:
        for i, line in enumerate(lines, start=apps):
            event = orjson.loads(line)
            await gate.observe(event["object"], CLUSTER, event["type"], event_time(i))
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
        "changes": count,
        "change_seconds": change_seconds,
        "sent": receiver.taken - baseline_sent,
        "flushes": store.flushes,
        "stats": stats,  # type: ignore[dict-item]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=20_000)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stream = write_stream(Path(tmp) / "stream.jsonl", options.apps, options.changes)
        floor(stream.path, stream.apps)  # the file into the page cache for both runs
        took = floor(stream.path, stream.apps)
        got = asyncio.run(
            service(stream.path, stream.apps, Path(tmp) / "state.sqlite", options.profile)
        )
    print(f"{machine()}")
    print(
        f"apps: {stream.apps} (Application {stream.app_bytes['Application']:,} B, "
        f"Kustomization {stream.app_bytes['Kustomization']:,} B, HelmRelease "
        f"{stream.app_bytes['HelmRelease']:,} B), changes: {stream.changes}, "
        f"stream: {stream.size / 2**20:.0f} MiB"
    )
    for phase, lines, floor_s, service_s, sent in (
        (
            "baseline list",
            took.baseline_lines,
            took.baseline_seconds,
            got["baseline_seconds"],
            got["baseline_sent"],
        ),
        ("changes", took.lines, took.seconds, got["change_seconds"], got["sent"]),
    ):
        service_rate = lines / service_s
        floor_rate = lines / floor_s
        print(
            f"{phase}: pipeline {service_rate:,.0f} events/s ({lines} in {service_s:.2f} s, "
            f"{sent:.0f} notifications), floor {floor_rate:,.0f} events/s "
            f"({floor_s:.2f} s), ratio {service_rate / floor_rate:.2f}"
        )
    print(f"pipeline counters: {got['stats']}")


if __name__ == "__main__":
    main()
