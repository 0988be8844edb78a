"""The service end to end: the real kubernetes_asyncio client against fake API servers, through
the pipeline, to a console receiver; what it announces is what a replay of the same changes
announces, across a 410, a dropped connection and 500s."""

from __future__ import annotations

import asyncio
import functools
import io
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app.service import ServiceError, open_service
from bot.pipeline.sources import WATCHED
from config.schema import ClusterConfig, Config
from tests.bot.service_world import (
    WATCHER_OPTIONS,
    VirtualClock,
    announced,
    make_config,
    replay,
    until,
    watching_service,
)
from tests.builders_flux import T0
from tests.fakes.kube_api import FakeKubeAPI
from tests.world import (
    Obj,
    World,
    argocd_full_states,
    fakes,
    helmrelease_states,
    kubeconfigs,
    kustomization_states,
    population,
    watching_all,
)


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
        async with watching_service(config, tmp_path / "live.sqlite", clock, out) as service:
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
        app = Obj("prod", "Application", "checkout", argocd_full_states)
        world.put(app)
        out = io.StringIO()
        config = make_config(kubeconfigs(apis, tmp_path))
        async with watching_service(config, tmp_path / "s.sqlite", clock, out) as service:
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
        release = Obj("prod", "HelmRelease", "podinfo", helmrelease_states)
        world.put(release)
        world.event("prod", release, "RollbackSucceeded", "Helm rollback to previous release")
        out = io.StringIO()
        config = make_config(kubeconfigs(apis, tmp_path))
        async with watching_service(config, tmp_path / "s.sqlite", clock, out) as service:
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
        good = Obj("good", "Kustomization", "apps", kustomization_states)
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
        async with watching_service(
            config,
            tmp_path / "s.sqlite",
            clock,
            out,
            watcher_options={**WATCHER_OPTIONS, "sleep": lambda _: asyncio.sleep(0.005)},
        ) as service:
            releases = next(r for r in service.resources if r.watched.spec.plural == "helmreleases")
            assert releases.watcher.absent
            release = Obj("prod", "HelmRelease", "podinfo", helmrelease_states)
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
