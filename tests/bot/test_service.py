"""The service end to end: the real kubernetes_asyncio client against fake API servers, through
the pipeline, to a console receiver; what it announces is what a replay of the same changes
announces, across a 410, a dropped connection and 500s."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app.replay import build_receivers, replay_lines
from bot.app.service import Service, ServiceError, open_service
from bot.pipeline.runner import Pipeline
from bot.pipeline.sources import WATCHED, is_gitops_event
from bot.store.store import Store
from config.schema import ClusterConfig, Config
from tests.builders_argocd import DIFF_CACHE, LIVE_CHILD, argocd_app
from tests.builders_flux import REV2, T0, flux_event, helmrelease, kustomization, source
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


def _batches(objs: list[Obj], size: int, rng: random.Random) -> Iterator[list[Obj]]:
    while True:
        alive = [o for o in objs if not o.deleted]
        yield rng.sample(alive, min(size, len(alive)))


# --- the done-when test ------------------------------------------------------------------------


@pytest.mark.timeout(300)  # 1,000 apps and 5,000 changes: about 25 s of CPU, more on a busy machine
async def test_live_watches_announce_what_a_replay_of_the_same_changes_announces(
    tmp_path: Path,
) -> None:
    rng = random.Random(7)
    clock = VirtualClock(T0)
    async with fakes("alpha", "beta") as apis:
        world = World(apis, clock)
        objs = population("alpha", 250, 100, 100, 10) + population("beta", 250, 100, 100, 10)
        assert len(objs) == 1000
        for obj in objs:
            world.put(obj)
        # History from before the start: on the initial Event list, not to be announced.
        releases = [o for o in objs if o.kind == "HelmRelease"]
        for obj in releases[:20]:
            world.event(obj.cluster, obj, "RollbackSucceeded", "Helm rollback to previous release")
        world.lines = [line for line in world.lines if b'"Event"' not in line]
        out = io.StringIO()
        config = make_config(kubeconfigs(apis, tmp_path))
        async with open_service(
            config,
            tmp_path / "live.sqlite",
            clock=clock,
            stream=out,
            watcher_options=WATCHER_OPTIONS,
            tick_interval=3600,
        ) as service:
            await until(lambda: not service.not_ready())
            assert out.getvalue() == "", "the initial list is a baseline"

            batches = _batches(objs, 125, rng)
            rounds = 0
            while world.changes < 1000 + 20 + 5000:
                rounds += 1
                clock.advance()
                changed = next(batches)
                for obj in changed:
                    world.change(obj)
                changed_ids = {id(o) for o in changed}
                others = [o for o in objs if id(o) not in changed_ids and not o.deleted]
                targets = [o for o in others if o.kind == "HelmRelease"]
                for about in rng.sample(targets, 10):
                    world.event(about.cluster, about, "DriftDetected", f"drift {rounds}")
                world.noise("alpha")
                if rounds in (10, 15, 20):
                    for api in apis.values():
                        await api.wait_for(functools.partial(watching_all, api))
                if rounds == 10:
                    # A 410 in the middle: the watches lose what they had not read, and the
                    # changes made before they relist are seen only in the lists.
                    apis["alpha"].expire_history()
                    apis["beta"].expire_history()
                    for obj in rng.sample(others, 20):
                        world.change(obj)
                    gone = [o for o in others if o.kind == "Application"][:5]
                    for obj in gone:
                        world.delete(obj)
                    for about in rng.sample(targets, 5):
                        if not about.deleted:
                            world.event(about.cluster, about, "DriftDetected", "in the gap")
                if rounds == 15:
                    apis["alpha"].drop_watches()
                if rounds == 20:
                    apis["beta"].fail_next(500, count=3, on="watch")
                    apis["beta"].drop_watches()
                await until(lambda: world.caught_up(service))
                # What the service's clock task does every second in production.
                await service.gate.advance(clock())
            # A replay ends by letting time pass (Pipeline.finish): groups still waiting out
            # their group_interval are sent. Let the live clock run as far, so that the same
            # groups go out here, by their own timers, before the two are compared.
            waiting = service.pipeline.policy_state
            assert any(g.pending for g in waiting.groups.values()), "groups wait at the end"
            clock.advance(config.policy.group_interval.total_seconds())
            await service.gate.advance(clock())
            waiting = service.pipeline.policy_state
            assert not waiting.held
            assert not any(g.pending for g in waiting.groups.values())
            relists = sum(r.watcher.counters.relists for r in service.resources)
            reconnects = sum(r.watcher.counters.reconnects for r in service.resources)
            errors = sum(r.watcher.counters.errors for r in service.resources)
            assert service.pipeline.stats["rejected"] == 0, "no Event of another kind got in"
            assert service.ignored_events["alpha"] >= rounds

        assert relists >= 9 * 2, "every resource of both clusters relisted after the 410"
        assert reconnects >= 9, "the dropped watches resumed"
        assert errors >= 3, "the 500s were met"
        live = announced(out.getvalue())
        replayed = announced(await replay(world.lines, config, tmp_path / "replay.sqlite"))
        assert sum(live.values()) > 1000
        assert {k for k, _, _, _ in live} >= {
            "drift_detected",
            "deploy_failed",
            "health_degraded",
            "deleted",
        }
        assert live == replayed


# --- smaller properties ------------------------------------------------------------------------


async def test_a_change_made_during_a_410_gap_is_announced_exactly_once(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    async with fakes("prod") as apis:
        world = World(apis, clock)
        app = Obj("prod", "Application", "checkout", _argocd_full)
        world.put(app)
        out = io.StringIO()
        config = make_config(kubeconfigs(apis, tmp_path))
        async with open_service(
            config,
            tmp_path / "s.sqlite",
            clock=clock,
            stream=out,
            watcher_options=WATCHER_OPTIONS,
            tick_interval=3600,
        ) as service:
            await until(lambda: not service.not_ready())
            await apis["prod"].wait_for(lambda: apis["prod"].active_watches == len(WATCHED))
            apps = next(r for r in service.resources if r.watched.spec.plural == "applications")
            apis["prod"].expire_history()
            clock.advance()
            world.change(app)  # OutOfSync while nobody watches
            await until(lambda: world.caught_up(service) and apps.watcher.counters.relists == 1)
            # Another gap with no change: the relist sees the same state, nothing new.
            await apis["prod"].wait_for(lambda: apis["prod"].active_watches == len(WATCHED))
            apis["prod"].drop_watches()
            apis["prod"].touch()
            apis["prod"].expire_history()
            clock.advance()
            await until(lambda: apps.watcher.counters.relists == 2)
            assert apps.watcher.counters.expired >= 1
    assert [(k, n) for k, _, n, _ in announced(out.getvalue()).elements()] == [
        ("drift_detected", "checkout")
    ]


async def test_events_from_before_the_start_are_a_baseline_and_new_ones_are_announced(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(T0)
    async with fakes("prod") as apis:
        world = World(apis, clock)
        release = Obj("prod", "HelmRelease", "podinfo", _helmrelease)
        world.put(release)
        world.event("prod", release, "RollbackSucceeded", "Helm rollback to previous release")
        out = io.StringIO()
        config = make_config(kubeconfigs(apis, tmp_path))
        async with open_service(
            config,
            tmp_path / "s.sqlite",
            clock=clock,
            stream=out,
            watcher_options=WATCHER_OPTIONS,
            tick_interval=3600,
        ) as service:
            await until(lambda: not service.not_ready())
            assert out.getvalue() == ""
            # A relist (410) brings the old Event back in the list: still not news.
            await apis["prod"].wait_for(lambda: apis["prod"].active_watches == len(WATCHED))
            apis["prod"].expire_history()
            clock.advance()
            world.event("prod", release, "DriftDetected", "Deployment/podinfo/podinfo drifted")
            await until(lambda: world.caught_up(service))
    kinds = [k for k, _, _, _ in announced(out.getvalue())]
    assert kinds == ["drift_detected"]


async def test_one_failing_cluster_does_not_stall_the_others(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    async with fakes("good", "bad") as apis:
        world = World(apis, clock)
        good = Obj("good", "Kustomization", "apps", _kustomization)
        world.put(good)
        apis["bad"].fail_next(500, count=10_000)
        out = io.StringIO()
        config = make_config(kubeconfigs(apis, tmp_path))
        async with open_service(
            config,
            tmp_path / "s.sqlite",
            clock=clock,
            stream=out,
            watcher_options={**WATCHER_OPTIONS, "sleep": lambda _: asyncio.sleep(0.01)},
            tick_interval=3600,
        ) as service:
            await until(lambda: all(r.ready for r in service.resources if r.cluster == "good"))
            assert any(name.startswith("bad/") for name in service.not_ready())
            clock.advance()
            world.change(good)
            await until(lambda: world.caught_up(service))
            bad_errors = sum(
                r.watcher.counters.errors for r in service.resources if r.cluster == "bad"
            )
    assert bad_errors > 0
    assert [(k, c, n) for k, c, n, _ in announced(out.getvalue())] == [
        ("deploy_failed", "good", "apps")
    ]


async def test_an_uninstalled_crd_is_skipped_and_picked_up_when_it_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock(T0)
    async with FakeKubeAPI() as api:
        for watched in WATCHED:
            if watched.spec.group and watched.spec.plural != "helmreleases":
                api.install_crd(watched.spec.group, watched.spec.plural, kind=min(watched.kinds))
        world = World({"prod": api}, clock)
        out = io.StringIO()
        config = make_config(kubeconfigs({"prod": api}, tmp_path))
        async with open_service(
            config,
            tmp_path / "s.sqlite",
            clock=clock,
            stream=out,
            watcher_options={**WATCHER_OPTIONS, "sleep": lambda _: asyncio.sleep(0.005)},
            tick_interval=3600,
        ) as service:
            await until(lambda: not service.not_ready())
            releases = next(r for r in service.resources if r.watched.spec.plural == "helmreleases")
            assert releases.watcher.absent
            release = Obj("prod", "HelmRelease", "podinfo", _helmrelease)
            world.put(release)  # installs the CRD with its first object
            await until(lambda: releases.watcher.synced.is_set())
            clock.advance()
            world.change(release)
            await until(lambda: world.caught_up(service))
    absent_lines = [r for r in caplog.records if "is its CRD installed" in r.getMessage()]
    assert len(absent_lines) == 1
    assert [(k, n) for k, _, n, _ in announced(out.getvalue())] == [("deploy_failed", "podinfo")]


async def test_an_unloadable_kubeconfig_is_one_clear_error(tmp_path: Path) -> None:
    config = Config(clusters=(ClusterConfig(name="prod", kubeconfig=str(tmp_path / "nope")),))
    with pytest.raises(ServiceError, match="cluster 'prod': cannot load kubeconfig"):
        async with open_service(config, tmp_path / "s.sqlite"):
            pass
