"""`driftbot replay` of a recorded 10,000-app stream against the floor of reading the same file
and parsing each line with orjson, in one run.

Run: python3 tasks.py bench bench/replay_10k.py [--stream changes|realistic] [--apps 10000]
     [--changes 10000] [--minutes 6] [--profile N]

`changes` (bench/common.py, the default): every app once (ADDED), then `--changes` real
changes (every line a change). `realistic` (bench/realistic.py): every app once, then
`--minutes` of the fleet's life: Argo CD refreshes every 3 minutes, Flux reconciles every 1-10
minutes, one real change a second. Either is written as replay lines `{"at", "cluster", "type",
"object"}`, each at its own time. The replay is the CLI itself, `driftbot replay FILE --output
jsonl --state S`, in a child process, its output to /dev/null; its time is the child's wall
time, start-up included (also given apart: `driftbot replay` of an empty file). The floor reads
and parses the file in this process (the better of a pass before and one after the replay).
`--profile N` runs the child under cProfile (a separate run, after the timed one) and prints
its top N functions by own and by cumulative time.
"""

from __future__ import annotations

import argparse
import io
import pstats
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import orjson
from common import (  # type: ignore[import-not-found]
    CLUSTER,
    T0,
    event_time,
    floor,
    machine,
    read_lines,
    write_stream,
)
from realistic import write_realistic  # type: ignore[import-not-found]

from watchers.replay import dump_line

DRIFTBOT = [str(Path(sys.executable).with_name("driftbot"))]


def replay(path: Path, state: Path, profile: Path | None = None) -> float:
    """Seconds `driftbot replay` took (under cProfile, writing to `profile`, when given)."""
    command = DRIFTBOT
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "bot.app.cli"]
    started = time.perf_counter()
    subprocess.run(
        [*command, "replay", str(path), "--output", "jsonl", "--state", str(state)],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def record(tmp: Path, options: argparse.Namespace) -> tuple[Path, str]:
    """The stream as replay lines, and what it holds."""
    watch = tmp / "watch.jsonl"
    if options.stream == "realistic":
        real = write_realistic(watch, options.apps, options.minutes * 60)
        times = [T0 + timedelta(seconds=s) for s in real.times]
        what = (
            f"realistic: {real.apps} apps, {options.minutes:g} min: {real.refreshes} Argo CD "
            f"refreshes, {real.reconciles} Flux reconciles, {real.changes} changes"
        )
    else:
        write_stream(watch, options.apps, options.changes)
        times = [event_time(i) for i in range(options.apps + options.changes)]
        what = f"all changes: {options.apps} apps, {options.changes} changes"
    recorded = tmp / "recorded.jsonl"
    with recorded.open("wb") as out:
        for at, line in zip(times, read_lines(watch), strict=True):
            event = orjson.loads(line)
            out.write(dump_line(at, CLUSTER, event["type"], event["object"]))
            out.write(b"\n")
    watch.unlink()
    return recorded, what


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stream", choices=("changes", "realistic"), default="changes")
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=10_000, help="changes: how many")
    parser.add_argument("--minutes", type=float, default=6.0, help="realistic: its length")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        recorded, what = record(tmp, options)
        empty = tmp / "empty.jsonl"
        empty.write_bytes(b"")
        floor(recorded)  # into the page cache
        startup = replay(empty, tmp / "empty.sqlite")
        floor_s = floor(recorded).seconds
        replay_s = replay(recorded, tmp / "state.sqlite")
        floor_s = min(floor_s, floor(recorded).seconds)
        size = recorded.stat().st_size
        lines = sum(1 for _ in read_lines(recorded))
        profile = tmp / "replay.prof"
        if options.profile:
            replay(recorded, tmp / "profiled.sqlite", profile)
        print(machine())
        print(f"{lines} lines ({what}), {size / 2**20:.0f} MiB")
        print(
            f"driftbot replay: {replay_s:.2f} s ({startup:.2f} s of it starting up), floor "
            f"{floor_s:.2f} s, ratio {floor_s / replay_s:.3f} "
            f"(without start-up {floor_s / max(replay_s - startup, 1e-9):.3f})"
        )
        if options.profile:
            for order in ("tottime", "cumulative"):
                out = io.StringIO()
                stats = pstats.Stats(str(profile), stream=out)
                stats.sort_stats(order).print_stats(options.profile)
                print(out.getvalue())


if __name__ == "__main__":
    main()
