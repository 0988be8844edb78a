"""Start-up at 10,000 existing apps: from start to ready, and the alerts sent for what was
already there (0 expected).

Run: python3 tasks.py bench bench/startup_10k.py [--apps 10000]

Two starts, each timed from opening the store to the baseline written: a first start on an
empty store (the list of every app handed to `Pipeline.relist`, one resource kind at a
time, as the watchers do once listed), then a restart on the store that start left (states
loaded, the same list again). Both read the stream file and parse it inside the timing. Pending
problems are then let out (`advance` a minute past the list): nothing may be announced.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import orjson
from common import (  # type: ignore[import-not-found]
    CLUSTER,
    event_time,
    machine,
    open_pipeline,
    read_lines,
    write_stream,
)

from bot.app.service import PipelineGate, WriteBehindStore


async def start(path: Path, apps: int, state: Path, minutes: int) -> tuple[float, int, int]:
    """(seconds to ready, notifications sent, events detected) of one start."""
    started = time.perf_counter()
    pipeline, receiver = await open_pipeline(state)
    gate = PipelineGate(pipeline)
    store = pipeline.store
    assert isinstance(store, WriteBehindStore)
    by_kind: dict[str, list[object]] = {}
    for _, line in zip(range(apps), read_lines(path), strict=False):
        obj = orjson.loads(line)["object"]
        by_kind.setdefault(obj["kind"], []).append(obj)
    now = event_time(0) + timedelta(minutes=minutes)
    for kind, objects in by_kind.items():
        await gate.relist(CLUSTER, objects, now, lambda key, k=kind: key.kind == k)
    await store.flush()
    ready = time.perf_counter() - started
    await gate.advance(now + timedelta(minutes=1))
    await pipeline.finish()
    detected = sum(v for k, v in pipeline.stats.items() if k.startswith("detected."))
    await pipeline.close()
    await store.close()
    return ready, receiver.taken, detected


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stream = write_stream(Path(tmp) / "stream.jsonl", options.apps, 0)
        state = Path(tmp) / "state.sqlite"
        first = asyncio.run(start(stream.path, stream.apps, state, 0))
        again = asyncio.run(start(stream.path, stream.apps, state, 10))
    print(machine())
    print(f"apps: {stream.apps}, stream: {stream.size / 2**20:.0f} MiB")
    for label, (ready, sent, detected) in (("first start", first), ("restart", again)):
        print(f"{label}: ready in {ready:.2f} s, alerts sent {sent}, events detected {detected}")


if __name__ == "__main__":
    main()
