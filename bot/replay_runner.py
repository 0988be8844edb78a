"""`driftbot replay` and `driftbot demo`: a recorded stream through the whole pipeline.

The clock is each line's `at`. Bad lines are reported with their number on stderr and skipped;
the run goes on. At the end of the stream, problems still within their grace are taken to
persist and are announced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.pipeline import Pipeline
from bot.receivers import ConsoleReceiver, Receiver
from bot.store import Store
from config.schema import Config
from watchers.replay import ReplayError, read_replay

logger = logging.getLogger(__name__)


class CliError(Exception):
    """A failure the CLI reports as one line on stderr, with a non-zero exit."""


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    lines: int
    skipped: int
    sent: int


def build_receivers(
    config: Config, output: str | None, stream: TextIO | None = None
) -> dict[str, Receiver]:
    """Receivers named in the config. `output` (text|jsonl), when given, sets the format of
    every console receiver."""
    receivers: dict[str, Receiver] = {}
    for rc in config.receivers:
        if rc.console is not None:
            fmt = output or rc.console.format
            receivers[rc.name] = ConsoleReceiver(rc.name, fmt, stream)
        else:
            logger.warning(
                "receiver %r (%s) cannot be delivered to by this build; its notifications "
                "are skipped",
                rc.name,
                rc.type,
            )
    return receivers


async def replay_lines(
    lines: Iterable[str | bytes], source: str, pipeline: Pipeline
) -> ReplaySummary:
    """Feed recorded lines through `pipeline`; bad lines are logged with `source:line`."""
    count = skipped = 0
    before = pipeline.stats["sent"]
    for item in read_replay(lines):
        count += 1
        if isinstance(item, ReplayError):
            skipped += 1
            logger.warning("%s:%d: %s; line skipped", source, item.lineno, item.reason)
            continue
        await pipeline.advance(item.at)
        if item.type == "NOTIFICATION":
            outcome = await pipeline.notify(item.payload, item.cluster, item.at)
        else:
            outcome = await pipeline.observe(item.payload, item.cluster, item.type, item.at)
        if outcome.startswith("rejected"):
            skipped += 1
            logger.warning("%s:%d: %s; line skipped", source, item.lineno, outcome)
    await pipeline.finish()
    return ReplaySummary(count, skipped, pipeline.stats["sent"] - before)


def replay_file(
    path: Path,
    config: Config,
    state_path: Path,
    output: str | None,
    stream: TextIO | None = None,
) -> ReplaySummary:
    """Replay the recorded stream in `path` with the store at `state_path` (runs its own loop)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        return asyncio.run(
            _replay_with_store(handle, str(path), config, state_path, output, stream)
        )


async def _replay_with_store(
    lines: Iterable[bytes],
    source: str,
    config: Config,
    state_path: Path,
    output: str | None,
    stream: TextIO | None,
) -> ReplaySummary:
    store = await Store.open(state_path)
    try:
        pipeline = Pipeline(store, config, build_receivers(config, output, stream))
        await pipeline.load()
        try:
            return await replay_lines(lines, source, pipeline)
        finally:
            await pipeline.close()
    finally:
        await store.close()
