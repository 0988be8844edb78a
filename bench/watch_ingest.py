"""Watch ingest: events per second from a Kubernetes API server through the whole service
(watch loop -> normalize -> detect -> policy -> store -> console receiver to /dev/null), against
the floor: only reading and JSON-parsing the same watch bytes from the same server.

Run: python3 tasks.py bench bench/watch_ingest.py [--objects N] [--changes M]

Both measurements use the fake API server of the tests, in one process and one run: the
objects are listed first (the service's baseline), then M changes are made at once and the
clock runs until the service has handed every one of them to the pipeline; the floor reads
the same M watch events again (a watch from the resourceVersion before the burst) and parses
each line with orjson. The ratio is service / floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import orjson  # noqa: E402

from bot.app.service import open_service  # noqa: E402
from bot.pipeline.sources import WATCHED  # noqa: E402
from config.schema import Config  # noqa: E402
from tests.builders_argocd import argocd_app  # noqa: E402
from tests.builders_flux import REV2, helmrelease, kustomization  # noqa: E402
from tests.fakes.kube_api import FakeKubeAPI  # noqa: E402


def _objects(count: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """(name, its successive states) for `count` objects: half Argo CD, half Flux."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for i in range(count):
        name = f"app-{i:04d}"
        if i % 2 == 0:
            states = [
                argocd_app(name),
                argocd_app(name, sync="OutOfSync", out_of_sync=[("Deployment", "default", name)]),
                argocd_app(name, health="Degraded"),
            ]
        elif i % 4 == 1:
            states = [
                kustomization(name),
                kustomization(name, ready="False", reason="BuildFailed", message="build failed"),
                kustomization(name, applied=REV2),
            ]
        else:
            states = [
                helmrelease(name),
                helmrelease(name, ready="False", reason="UpgradeFailed", message="failed"),
            ]
        out.append((name, states))
    return out


async def _until(done: Callable[[], bool], within: float = 600.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if done():
                return
            await asyncio.sleep(0.001)


async def _floor(api: FakeKubeAPI, since: str, expected: dict[str, int]) -> tuple[int, float]:
    """Read and parse the burst's watch events again, resource by resource, as fast as possible."""
    received = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        for watched in WATCHED:
            wanted = expected.get(watched.spec.plural, 0)
            if not wanted:
                continue
            path, params = watched.spec.path()
            url = api.url + path.format(**params)
            query = {"watch": "true", "resourceVersion": since, "allowWatchBookmarks": "true"}
            got = 0
            async with http.get(url, params=query) as response:
                async for line in response.content:
                    event = orjson.loads(line)
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        got += 1
                        if got == wanted:
                            break
            received += got
    return received, time.perf_counter() - started


async def main(objects: int, changes: int) -> None:
    rng = random.Random(1)
    population = _objects(objects)
    async with FakeKubeAPI() as api:
        for watched in WATCHED:
            if watched.spec.group:
                api.install_crd(watched.spec.group, watched.spec.plural, kind=min(watched.kinds))
        steps = [0] * objects
        for _, states in population:
            api.put(states[0])
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = api.write_kubeconfig(Path(tmp) / "kubeconfig")
            config = Config.model_validate(
                {
                    "clusters": [{"name": "bench", "kubeconfig": str(kubeconfig)}],
                    "receivers": [{"name": "null", "console": {"format": "jsonl"}}],
                    "routes": [{"receivers": ["null"]}],
                    "policy": {"grace": "0s"},
                }
            )
            with open(os.devnull, "w") as devnull:  # noqa: ASYNC230 - opening /dev/null
                async with open_service(
                    config, Path(tmp) / "state.sqlite", stream=devnull, tick_interval=3600
                ) as service:
                    await _until(
                        lambda: not service.not_ready() and api.active_watches == len(WATCHED)
                    )
                    since = api.resource_version
                    expected: dict[str, int] = {}
                    last_rv: dict[str, int] = {}
                    for _ in range(changes):
                        index = rng.randrange(objects)
                        steps[index] += 1
                        states = population[index][1]
                        stored = api.put(states[steps[index] % len(states)])
                        plural = stored["kind"].lower() + "s"
                        expected[plural] = expected.get(plural, 0) + 1
                        last_rv[plural] = int(stored["metadata"]["resourceVersion"])
                    started = time.perf_counter()
                    await _until(
                        lambda: all(
                            int(r.watcher.resource_version or 0)
                            >= last_rv.get(r.watched.spec.plural, 0)
                            for r in service.resources
                        )
                    )
                    service_seconds = time.perf_counter() - started
                    handed = sum(r.watcher.counters.events for r in service.resources)
                    sent = service.pipeline.stats["sent"]
        received, floor_seconds = await _floor(api, since, expected)

    service_rate = changes / service_seconds
    floor_rate = received / floor_seconds
    print(f"objects: {objects}, watch changes: {changes}, cores: {os.cpu_count()}")
    print(
        f"service (watch -> normalize -> detect -> policy -> store -> receiver): "
        f"{service_rate:,.0f} events/s ({handed} events in {service_seconds:.2f}s, "
        f"{sent} notifications)"
    )
    print(
        f"floor (read + JSON-parse the same watch bytes): {floor_rate:,.0f} events/s "
        f"({received} events in {floor_seconds:.2f}s)"
    )
    print(f"ratio service/floor: {service_rate / floor_rate:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=5000)
    options = parser.parse_args()
    asyncio.run(main(options.objects, options.changes))
