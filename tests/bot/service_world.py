"""The service's world for tests: over the fleet of tests/world.py (fake Kubernetes API
servers with the CRDs installed, objects that step through states, the record of every change),
a virtual clock, the config that sends everything to a JSON Lines console, and the service or
the whole server running over them (`watching_service`, `serving`); a replay of the recorded
changes to hold the live run against.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from bot.app.replay import build_receivers, replay_lines
from bot.app.server import serve
from bot.app.service import Service, open_service
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.schema import Config
from watchers.backoff import Backoff

Announced = tuple[str, str, str, str]


async def _no_wait(_: float) -> None:
    await asyncio.sleep(0)


WATCHER_OPTIONS: dict[str, Any] = {
    "sleep": _no_wait,
    "backoff": Backoff(initial=0.001, cap=0.001),
    "absent_recheck": 0.0,
}


class VirtualClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 60) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def make_config(clusters: dict[str, Path], *, grace: str = "0s", **extra: Any) -> Config:
    return Config.model_validate(
        {
            "clusters": [
                {"name": name, "kubeconfig": str(path)} for name, path in clusters.items()
            ],
            "receivers": [{"name": "out", "console": {"format": "jsonl"}}],
            "routes": [{"receivers": ["out"]}],
            # No grace, flap damping or reminders; the first event of a group goes at once,
            # the next ones of the group wait out its group_interval (5 min by default).
            "policy": {"grace": grace, "group_wait": "0s", "flap": {"flips": 0}, "repeat": "0s"},
            **extra,
        }
    )


def announced(text: str) -> Counter[Announced]:
    """(kind, cluster, name, revision) of every event told of, each event once: a grouped
    notification (a storm) tells of its members, and a group that grew is sent again with
    the members it had, so events are counted by their id."""
    seen: dict[str, Announced] = {}
    for line in text.splitlines():
        note = json.loads(line)
        for event in note["events"] if note["kind"] == "group" else [note]:
            key = (event["kind"], event["cluster"], event["name"], event.get("revision") or "")
            seen.setdefault(event["id"], key)
    return Counter(seen.values())


async def until(predicate: Callable[[], bool], within: float = 30.0) -> None:
    """Poll the service's state until the fake's output has been processed."""
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.002)


async def replay(lines: list[bytes], config: Config, state: Path) -> str:
    out = io.StringIO()
    store = await Store.open(state)
    try:
        pipeline = Pipeline(store, config, build_receivers(config, None, out))
        await pipeline.load()
        await replay_lines(lines, "recorded", pipeline)
        await pipeline.close()
    finally:
        await store.close()
    return out.getvalue()


# --- the service and the server over the fakes -----------------------------------------------


@asynccontextmanager
async def watching_service(
    config: Config,
    state: Path,
    clock: Callable[[], datetime],
    out: TextIO,
    **options: Any,
) -> AsyncIterator[Service]:
    """`open_service` over the fakes the config's clusters point at, on the virtual clock,
    with fast watch retries and no policy ticks of its own; yielded once every watch has
    listed. `options` go to `open_service` (watcher_options replaces the fast ones)."""
    options = {"watcher_options": WATCHER_OPTIONS, "tick_interval": 3600, **options}
    async with open_service(config, state, clock=clock, stream=out, **options) as service:
        await until(lambda: not service.not_ready())
        yield service


@asynccontextmanager
async def serving(
    config: Config,
    state: Path,
    clock: Callable[[], datetime],
    *,
    environ: Mapping[str, str],
    out: TextIO | None = None,
    watcher_options: Mapping[str, Any] = WATCHER_OPTIONS,
) -> AsyncIterator[str]:
    """`serve` (the whole `driftbot run` server) on a free loopback port, yielding its base
    URL once it listens (not yet ready: see `until_ready`). Stopped as SIGTERM would stop it;
    it must then exit with 0."""
    stop = asyncio.Event()
    ports: list[int] = []
    task = asyncio.create_task(
        serve(
            config,
            state,
            host="127.0.0.1",
            port=0,
            stop=stop,
            on_started=ports.append,
            clock=clock,
            stream=out if out is not None else io.StringIO(),
            watcher_options=dict(watcher_options),
            tick_interval=3600,
            environ=dict(environ),
        )
    )
    try:
        await until(lambda: bool(ports) or task.done())
        if task.done():
            raise AssertionError(f"the server stopped before it listened: {task.result()}")
        yield f"http://127.0.0.1:{ports[0]}"
    except BaseException:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        raise
    stop.set()
    assert await task == 0


async def until_ready(http: aiohttp.ClientSession, base: str, within: float = 20) -> None:
    """Poll /readyz until the server says every source has listed."""
    async with asyncio.timeout(within):
        while True:
            async with http.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.01)
