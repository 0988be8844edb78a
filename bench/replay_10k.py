"""`driftbot replay` of a recorded 10,000-app stream against the floor of reading the same file
and parsing each line with orjson, in one run.

Run: python3 tasks.py bench bench/replay_10k.py [--apps 10000] [--changes 10000]

The stream (bench/common.py) as replay lines: every app once (ADDED), then `--changes` real
changes (every line a change), one line each `{"at", "cluster", "type", "object"}`. The replay
is the CLI itself, `driftbot replay FILE --output jsonl --state S`, in a child process, its
output to /dev/null; its time is the child's wall time, start-up included (also given apart:
`driftbot replay` of an empty file). The floor reads and parses the file in this process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from common import CLUSTER, event_time, machine, read_lines, write_stream  # type: ignore[import-not-found]

from watchers.replay import dump_line

DRIFTBOT = Path(sys.executable).with_name("driftbot")


def floor(path: Path) -> float:
    started = time.perf_counter()
    for line in read_lines(path):
        orjson.loads(line)
    return time.perf_counter() - started


def replay(path: Path, state: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(DRIFTBOT), "replay", str(path), "--output", "jsonl", "--state", str(state)],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=10_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        watch = write_stream(Path(tmp) / "watch.jsonl", options.apps, options.changes)
        recorded = Path(tmp) / "recorded.jsonl"
        with recorded.open("wb") as out:
            for i, line in enumerate(read_lines(watch.path)):
                event = orjson.loads(line)
                out.write(dump_line(event_time(i), CLUSTER, event["type"], event["object"]))
                out.write(b"\n")
        watch.path.unlink()
        empty = Path(tmp) / "empty.jsonl"
        empty.write_bytes(b"")
        floor(recorded)  # into the page cache
        startup = replay(empty, Path(tmp) / "empty.sqlite")
        floor_s = floor(recorded)
        replay_s = replay(recorded, Path(tmp) / "state.sqlite")
        floor_again = floor(recorded)
        size = recorded.stat().st_size
    lines = options.apps + options.changes
    floor_s = min(floor_s, floor_again)
    print(machine())
    print(f"{lines} lines ({options.apps} apps, {options.changes} changes), {size / 2**20:.0f} MiB")
    print(
        f"driftbot replay: {replay_s:.2f} s ({startup:.2f} s of it starting up), floor "
        f"{floor_s:.2f} s, ratio {floor_s / replay_s:.3f} "
        f"(without start-up {floor_s / max(replay_s - startup, 1e-9):.3f})"
    )


if __name__ == "__main__":
    main()
