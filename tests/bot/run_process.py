"""`driftbot run` as a process of its own, as the tests that kill, signal or scan it start it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]

Output = int | IO[Any]


async def start_driftbot_run(
    config: Path,
    state: Path,
    env: Mapping[str, str],
    *,
    stdout: Output = asyncio.subprocess.PIPE,
    stderr: Output = asyncio.subprocess.PIPE,
) -> asyncio.subprocess.Process:
    """`python -m bot.app.cli run --config CONFIG --state STATE` from the checkout, with `env`."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.app.cli",
        "run",
        "--config",
        str(config),
        "--state",
        str(state),
        cwd=ROOT,
        env=dict(env),
        stdout=stdout,
        stderr=stderr,
    )
