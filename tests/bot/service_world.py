"""The service's world for tests: fake Kubernetes API servers with the CRDs installed, objects
that step through states (and the record of every change, to replay), a virtual clock, the
config that sends everything to a JSON Lines console, and the service or the whole server
running over them (`watching_service`, `serving`).
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from bot.app.replay import build_receivers, replay_lines
from bot.app.server import serve
from bot.app.service import Service, open_service
from bot.pipeline.runner import Pipeline
from bot.pipeline.sources import WATCHED, is_gitops_event
from bot.store.store import Store
from config.schema import Config
from tests.builders_argocd import DIFF_CACHE, LIVE_CHILD, argocd_app
from tests.builders_flux import REV2, flux_event, helmrelease, kustomization, source
from tests.fakes.kube_api import FakeKubeAPI
from watchers.backoff import Backoff
from watchers.replay import dump_line

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


def watching_all(api: FakeKubeAPI) -> bool:
    return api.active_watches == len(WATCHED)


def install_crds(api: FakeKubeAPI) -> None:
    for watched in WATCHED:
        if watched.spec.group:
            api.install_crd(watched.spec.group, watched.spec.plural, kind=min(watched.kinds))


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


# --- objects and their successive states --------------------------------------------------------


def _argocd(name: str, step: int, base: str | None = None) -> dict[str, Any]:
    # Most apps are built on the small app-of-apps child fixture, every fifth on the large one
    # with a full status (the fake server deep-copies every object several times).
    if base is None:
        base = DIFF_CACHE if name.endswith(("0", "5")) else LIVE_CHILD
    variant = step % 3
    if variant == 1:
        return argocd_app(
            name, base=base, sync="OutOfSync", out_of_sync=[("Deployment", "default", name)]
        )
    if variant == 2:
        return argocd_app(name, base=base, health="Degraded")
    return argocd_app(name, base=base)


def _argocd_full(name: str, step: int) -> dict[str, Any]:
    return _argocd(name, step, DIFF_CACHE)


def _kustomization(name: str, step: int) -> dict[str, Any]:
    variant = step % 3
    if variant == 1:
        return kustomization(name, ready="False", reason="BuildFailed", message="kustomize build")
    if variant == 2:
        return kustomization(name, applied=REV2)
    return kustomization(name)


def _helmrelease(name: str, step: int) -> dict[str, Any]:
    if step % 2:
        return helmrelease(name, ready="False", reason="UpgradeFailed", message="upgrade failed")
    return helmrelease(name)


def _source(kind: str) -> Callable[[str, int], dict[str, Any]]:
    def build(name: str, step: int) -> dict[str, Any]:
        variant = step % 3
        if variant == 1:
            return source(kind, name, ready="False", reason="GitOperationFailed", message="x")
        if variant == 2:
            return source(kind, name, revision=REV2)
        return source(kind, name)

    return build


SOURCE_KINDS = ("GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket")


@functools.cache
def _built(build: Callable[[str, int], dict[str, Any]], name: str, step: int) -> dict[str, Any]:
    """Objects cycle through a few states: build each once (the fake copies what it stores)."""
    return build(name, step)


@dataclass
class Obj:
    cluster: str
    kind: str
    name: str
    build: Callable[[str, int], dict[str, Any]]
    step: int = 0
    deleted: bool = False
    last: dict[str, Any] = field(default_factory=dict)


def population(
    cluster: str, argo: int, kustomizations: int, releases: int, sources: int
) -> list[Obj]:
    objs = [Obj(cluster, "Application", f"app-{i:03d}", _argocd) for i in range(argo)]
    objs += [
        Obj(cluster, "Kustomization", f"ks-{i:03d}", _kustomization) for i in range(kustomizations)
    ]
    objs += [Obj(cluster, "HelmRelease", f"hr-{i:03d}", _helmrelease) for i in range(releases)]
    for kind in SOURCE_KINDS:
        objs += [
            Obj(cluster, kind, f"{kind.lower()}-{i:02d}", _source(kind)) for i in range(sources)
        ]
    return objs


@dataclass
class World:
    """The fakes, the virtual clock, and the recording of every change made to them."""

    apis: dict[str, FakeKubeAPI]
    clock: VirtualClock
    lines: list[bytes] = field(default_factory=list)
    last_rv: dict[tuple[str, str], int] = field(default_factory=dict)
    changes: int = 0
    event_serial: int = 0

    def _record(self, cluster: str, watch_type: str, obj: dict[str, Any], plural: str) -> None:
        self.last_rv[(cluster, plural)] = int(obj["metadata"]["resourceVersion"])
        self.changes += 1
        if plural != "events" or is_gitops_event(obj):
            self.lines.append(dump_line(self.clock(), cluster, watch_type, obj))

    def put(self, obj: Obj, *, record: bool = True) -> None:
        raw = _built(obj.build, obj.name, obj.step % 6)
        api = self.apis[obj.cluster]
        existed = bool(obj.last)
        stored = api.put(raw)
        obj.last = stored
        if record:
            plural = api._resource_of(stored, None)[1]
            self._record(obj.cluster, "MODIFIED" if existed else "ADDED", stored, plural)

    def change(self, obj: Obj) -> None:
        obj.step += 1
        self.put(obj)

    def delete(self, obj: Obj) -> None:
        api = self.apis[obj.cluster]
        stored = api.delete(obj.last)
        obj.deleted = True
        self._record(obj.cluster, "DELETED", stored, api._resource_of(stored, None)[1])

    def event(self, cluster: str, about: Obj, reason: str, message: str) -> None:
        self.event_serial += 1
        raw = flux_event(
            about.kind,
            about.name,
            about.last["metadata"]["namespace"],
            reason=reason,
            message=message,
            warning=True,
            minutes=self.event_serial,
        )
        stored = self.apis[cluster].put(raw)
        self._record(cluster, "ADDED", stored, "events")

    def noise(self, cluster: str) -> None:
        """An Event about a Pod: not the bot's business."""
        self.event_serial += 1
        stored = self.apis[cluster].put(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"pod-{self.event_serial}", "namespace": "default"},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-0"},
                "reason": "BackOff",
                "message": "Back-off restarting failed container",
                "type": "Warning",
            }
        )
        self._record(cluster, "ADDED", stored, "events")

    def caught_up(self, service: Service) -> bool:
        """Every watcher has handed over everything up to the last change of its resource."""
        for resource in service.resources:
            wanted = self.last_rv.get((resource.cluster, resource.watched.spec.plural))
            have = resource.watcher.resource_version
            if wanted is not None and (have is None or int(have) < wanted):
                return False
        return True


@asynccontextmanager
async def fakes(*names: str) -> AsyncIterator[dict[str, FakeKubeAPI]]:
    async with AsyncExitStack() as stack:
        apis = {name: await stack.enter_async_context(FakeKubeAPI()) for name in names}
        for api in apis.values():
            install_crds(api)
        yield apis


def kubeconfigs(apis: dict[str, FakeKubeAPI], tmp_path: Path) -> dict[str, Path]:
    return {
        name: api.write_kubeconfig(tmp_path / f"{name}.kubeconfig") for name, api in apis.items()
    }


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
