"""The driftbot service in a process of its own, for benches that time it from outside.

The bench (the parent) runs the fake Kubernetes API and the fake Slack; this module, run as a
child, opens the service the way `driftbot run` does (`bot.app.service.open_service`, with its
receivers, Slack ones included, built from the config) and notes when each watch event
arrives at the pipeline: the service's `Pipeline.observe` is wrapped to record
`time.monotonic()` per (object name, resourceVersion) before it does its work. CLOCK_MONOTONIC
is one clock for every process of the machine, so the parent can subtract its own stamps.

Protocol: the child prints one JSON line `{"phase": "synced"}` once every watch has listed,
then runs until a line arrives on its standard input; it then stops the service (delivering
what it can within the Slack receivers' close timeout), writes the arrivals to the file named
by `--arrivals` (with when the pipeline handed each receiver a notification, by app name)
and prints `{"phase": "exit", ...}` with its pipeline counters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def phase_message(stream: asyncio.StreamReader, who: str) -> dict[str, Any]:
    """The next `{"phase": ...}` line a bench's child prints (other output passed over);
    RuntimeError naming `who` when it exits first."""
    while True:
        raw = await stream.readline()
        if not raw:
            raise RuntimeError(f"{who} exited early (see its stderr above)")
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if isinstance(message, dict) and "phase" in message:
            return message


async def _child(
    config: Any,
) -> tuple[list[tuple[str, str, float]], list[tuple[str, float]], dict[str, int]]:
    from bot.app.service import open_service

    arrivals: list[tuple[str, str, float]] = []
    delivered: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with open_service(config, Path(tmp) / "state.sqlite") as service:
            pipeline = service.pipeline
            observe = pipeline.observe

            async def timed(obj: Any, cluster: str, watch_type: str, now: Any) -> str:
                metadata = obj.get("metadata") if isinstance(obj, dict) else None
                if isinstance(metadata, dict):
                    arrivals.append(
                        (
                            str(metadata.get("name")),
                            str(metadata.get("resourceVersion")),
                            time.monotonic(),
                        )
                    )
                return await observe(obj, cluster, watch_type, now)

            pipeline.observe = timed  # type: ignore[method-assign]
            for receiver in pipeline.receivers.values():
                _time_deliveries(receiver, delivered)
            while True:
                if not service.not_ready():
                    break
                await asyncio.sleep(0.01)
            _say(phase="synced", at=time.monotonic())
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            stats = dict(pipeline.stats)
    return arrivals, delivered, stats


def _time_deliveries(receiver: Any, delivered: list[tuple[str, float]]) -> None:
    """Note when the pipeline hands a receiver a notification, by the app it is about."""
    deliver = receiver.deliver

    async def timed(note: Any) -> None:
        delivered.append((str(note.event.name), time.monotonic()))
        await deliver(note)

    receiver.deliver = timed


def child_main(config_path: Path, arrivals_path: Path) -> None:
    from config.schema import Config

    config = Config.model_validate(json.loads(config_path.read_text()))
    arrivals, delivered, stats = asyncio.run(_child(config))
    arrivals_path.write_text(json.dumps({"arrivals": arrivals, "delivered": delivered}))
    _say(phase="exit", stats=stats)


class ServiceProcess:
    """The parent's handle on a child service: `await start()`, `await stop()`."""

    def __init__(self, config: dict[str, Any], workdir: Path, env: dict[str, str]) -> None:
        self.config_path = workdir / "config.json"
        self.config_path.write_text(json.dumps(config))
        self.arrivals_path = workdir / "arrivals.json"
        self.env = {**os.environ, **env}
        self.process: asyncio.subprocess.Process | None = None
        self.stats: dict[str, int] = {}
        self.delivered: dict[str, float] = {}
        """App name -> when the pipeline first handed a receiver a notification about it."""

    async def _message(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        return await phase_message(self.process.stdout, "the service process")

    async def start(self) -> None:
        """Start the child and return once every watch of the service has listed."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--config",
            str(self.config_path),
            "--arrivals",
            str(self.arrivals_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self.env,
        )
        await self._message()

    async def stop(self) -> dict[tuple[str, str], float]:
        """Stop the service; (name, resourceVersion) -> when it reached the pipeline."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        final = await self._message()
        self.stats = final.get("stats", {})
        await self.process.wait()
        rows = json.loads(self.arrivals_path.read_text())
        for name, at in rows["delivered"]:
            self.delivered.setdefault(name, at)
        return {(name, rv): at for name, rv, at in rows["arrivals"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--arrivals", type=Path, required=True)
    options = parser.parse_args()
    child_main(options.config, options.arrivals)
