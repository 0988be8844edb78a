"""Memory at 10,000 apps: resident set size after the initial list, and its growth per 1,000.

Run: python3 tasks.py bench bench/memory_10k.py [--apps 10000] [--step 1000]

The apps of the stream (bench/common.py) are handed to `Pipeline.relist` in lists of `--step`
objects of one kind (as a paged list would arrive), with the write-behind store flushed after
each; RSS (VmRSS of /proc/self/status) is read after each step once the parsed list is dropped.
The peak (ru_maxrss) includes the parsed lists themselves. The goal: at most 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
from pathlib import Path

import orjson
from common import (  # type: ignore[import-not-found]
    CLUSTER,
    event_time,
    machine,
    open_pipeline,
    peak_rss_mb,
    read_lines,
    rss_mb,
    write_stream,
)

from bot.service import PipelineGate, WriteBehindStore


async def run(path: Path, apps: int, step: int, state: Path) -> list[tuple[int, float]]:
    pipeline, _ = await open_pipeline(state)
    gate = PipelineGate(pipeline)
    store = pipeline.store
    assert isinstance(store, WriteBehindStore)
    gc.collect()
    points = [(0, rss_mb())]
    lines = read_lines(path)
    done = 0
    while done < apps:
        batch: dict[str, list[object]] = {}
        for _, line in zip(range(min(step, apps - done)), lines, strict=False):
            obj = orjson.loads(line)["object"]
            batch.setdefault(obj["kind"], []).append(obj)
            done += 1
        for kind, objects in batch.items():
            # Only this page's apps are covered: earlier pages are not taken for deleted.
            names = {o["metadata"]["name"] for o in objects}  # type: ignore[index]
            await gate.relist(
                CLUSTER,
                objects,
                event_time(done),
                lambda k, kd=kind, n=names: k.kind == kd and k.name in n,
            )
        del batch
        await store.flush()
        gc.collect()
        points.append((done, rss_mb()))
    await pipeline.close()
    await store.close()
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--step", type=int, default=1_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stream = write_stream(Path(tmp) / "stream.jsonl", options.apps, 0)
        gc.collect()
        points = asyncio.run(run(stream.path, stream.apps, options.step, Path(tmp) / "s.sqlite"))
    print(machine())
    print(f"apps: {stream.apps}, stream: {stream.size / 2**20:.0f} MiB")
    for apps, rss in points:
        print(f"  after {apps:>6} apps: RSS {rss:7.1f} MiB")
    (_, start), (_, end) = points[0], points[-1]
    per = (end - start) / max(1, options.apps) * 1000
    print(f"RSS after the initial list: {end:.1f} MiB (pipeline empty: {start:.1f} MiB)")
    print(f"growth per 1,000 apps: {per:.1f} MiB; peak RSS: {peak_rss_mb():.1f} MiB")


if __name__ == "__main__":
    main()
