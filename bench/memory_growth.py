"""Where memory grows: a recorded stream (the soak's `changes.jsonl`) replayed through the
pipeline under tracemalloc, with snapshots after each third of it; prints the Python memory
traced at each snapshot and the lines that grew most between them.

The replay runs the same pipeline as `driftbot run` (normalize, detect, route, policy, the
store), on the stream's own clock, without watches or chat: Slack and Teams receivers of the
config are replaced by console receivers writing nowhere, so nothing leaves the machine. What
grows here between the second and the last third is what grows in a long-running service.

    python3 tasks.py bench bench/memory_growth.py WORKDIR/changes.jsonl \
        --config WORKDIR/driftbot.yaml       # WORKDIR: the soak's --workdir
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import sys
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from bot.app.replay import replay_stream
from config.loader import load_config
from config.schema import Config


def console_only(text: str) -> Config:
    """The config with every receiver made a console receiver (jsonl), chat settings dropped."""
    data = yaml.safe_load(text) or {}
    for receiver in data.get("receivers", []):
        for kind in ("slack", "teams"):
            receiver.pop(kind, None)
        receiver["console"] = {"format": "jsonl"}
    for key in ("slack", "teams", "server"):
        data.pop(key, None)
    return load_config(yaml.safe_dump(data), file="config (console only)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stream", type=Path)
    parser.add_argument("--config", type=Path, help="default: built-in defaults")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    config = console_only(args.config.read_text()) if args.config else Config()
    lines = args.stream.read_bytes().splitlines()
    marks = {len(lines) // 3: "first third", 2 * len(lines) // 3: "second third"}
    snapshots: list[tuple[str, tracemalloc.Snapshot]] = []

    def take(name: str) -> None:
        gc.collect()
        snapshots.append((name, tracemalloc.take_snapshot()))

    def fed() -> Iterator[bytes]:
        for i, line in enumerate(lines):
            if i in marks:
                take(marks[i])
            yield line
        take("end")

    tracemalloc.start(5)
    with tempfile.TemporaryDirectory() as tmp, open("/dev/null", "w") as nowhere:
        summary = asyncio.run(
            replay_stream(
                fed(), str(args.stream), config, Path(tmp) / "state.sqlite", "jsonl", nowhere
            )
        )
    tracemalloc.stop()
    print(f"{summary.lines} lines, {summary.sent} notifications")
    for name, snapshot in snapshots:
        traced = sum(s.size for s in snapshot.statistics("filename"))
        print(f"after the {name}: {traced / 2**20:.2f} MiB traced")
    for (before_name, before), (after_name, after) in itertools.pairwise(snapshots):
        print(f"grew most from the {before_name} to the {after_name}:")
        for stat in after.compare_to(before, "lineno")[: args.top]:
            print(f"  {stat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
