"""Memory at 10,000 apps: resident set size after the initial list, and its growth per 1,000.

Run: python3 tasks.py bench bench/memory_10k.py [--apps 10000] [--page 100]

The list of the stream's apps (bench/common.py) arrives as the API server pages it (`--page`
objects, 100 as the watchers ask), and each page is normalized as it arrives, as the service's
watchers do (`ResourceWatcher(prepare=...)`); once listed, the app states go to
`Pipeline.relist`, one kind at a time, and the write-behind store is flushed. RSS (VmRSS of
/proc/self/status) is read after each page and after the relist. The peak (ru_maxrss) includes
a parsed page. The goal: at most 150 MB.
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

from bot.app.service import PipelineGate
from bot.store.write_behind import WriteBehindStore
from watchers.normalize import normalize_object


async def run(path: Path, apps: int, page: int, state: Path) -> list[tuple[int, float]]:
    pipeline, _ = await open_pipeline(state)
    gate = PipelineGate(pipeline)
    store = pipeline.store
    assert isinstance(store, WriteBehindStore)
    gc.collect()
    points = [(0, rss_mb())]
    lines = read_lines(path)
    now = event_time(0)
    listed: dict[str, list[object]] = {}
    done = 0
    while done < apps:
        # One page of the list as the API server sends it, normalized as it arrives (what the
        # service's watchers do with `prepare`); the raw page is dropped before the next.
        body = [orjson.loads(line)["object"] for _, line in zip(range(page), lines, strict=False)]
        for obj in body:
            listed.setdefault(obj["kind"], []).append(normalize_object(obj, CLUSTER, now))
        done += len(body)
        del body
        gc.collect()
        points.append((done, rss_mb()))
    for kind, states in listed.items():
        await gate.relist(CLUSTER, states, now, lambda k, kd=kind: k.kind == kd)
    del listed
    await store.flush()
    gc.collect()
    points.append((done, rss_mb()))
    await pipeline.close()
    await store.close()
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=100)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stream = write_stream(Path(tmp) / "stream.jsonl", options.apps, 0)
        gc.collect()
        points = asyncio.run(run(stream.path, stream.apps, options.page, Path(tmp) / "s.sqlite"))
    print(machine())
    print(f"apps: {stream.apps}, stream: {stream.size / 2**20:.0f} MiB")
    for apps, rss in points[:-1]:
        print(f"  after {apps:>6} apps listed: RSS {rss:7.1f} MiB")
    print(f"  after the relist and the store flush: RSS {points[-1][1]:7.1f} MiB")
    (_, start), (_, end) = points[0], points[-1]
    per = (end - start) / max(1, options.apps) * 1000
    print(f"RSS after the initial list: {end:.1f} MiB (pipeline empty: {start:.1f} MiB)")
    print(f"growth per 1,000 apps: {per:.1f} MiB; peak RSS: {peak_rss_mb():.1f} MiB")


if __name__ == "__main__":
    main()
