"""Everything the alert policy remembers survives a restart: groups, flaps, mutes, texts, acks,
in either backend."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.schema import Config
from core.codec import policy_state_from_dict, policy_state_to_dict
from core.commands import ack, mute
from core.grouping import Group
from core.model import EventKind
from core.policy import (
    Action,
    Decision,
    OpenAlert,
    PolicySettings,
    PolicyState,
    RecentIds,
    tick,
)
from tests.core.test_grouping import Step, at, ev, run
from tests.formatters.builders import NOW, argocd_state, event

K = EventKind
SETTINGS = PolicySettings(
    grace=timedelta(0),
    route="r",
    group_by=("cluster", "kind"),
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=5),
    repeat=timedelta(hours=1),
    flap_flips=2,
    dedup_window=timedelta(minutes=10),
)


def busy_state() -> PolicyState:
    steps: list[Step] = [(i, ev(K.DRIFT_DETECTED, i, f"app-{i}")) for i in range(4)]
    steps += [(40, None)]
    steps += [
        (50 + 10 * i, ev(kind, 50 + 10 * i, "flappy"))
        for i, kind in enumerate([K.DEPLOY_FAILED, K.DEPLOY_SUCCEEDED] * 2)
    ]
    steps += [(100, ev(K.DRIFT_DETECTED, 100, "late")), (101, ev(K.DRIFT_RESOLVED, 101, "app-0"))]
    state, _ = run(steps, SETTINGS)
    state = mute(state, "cluster:staging", at(3600), "maintenance", "alice", at(0))
    state, _ = ack(state, "app-1", "bob", at(102))
    return state


def summary(decisions: list[Decision]) -> list[tuple[str, str, int, str]]:
    return [
        (d.action.value, d.event.kind.value, d.group.count if d.group else 1, d.updates)
        for d in decisions
        if d.action in (Action.SEND, Action.REMIND)
    ]


async def test_policy_state_round_trips_through_the_store(store_location: str | Path) -> None:
    state = busy_state()
    assert state.groups and state.mutes and state.texts and state.flaps
    assert any(a.acked for a in state.open.values())
    path = store_location
    async with await Store.open(path) as store:
        await store.save_policy(state)
    async with await Store.open(path) as store:
        loaded = await store.load_policy()
    assert loaded == state
    assert policy_state_from_dict(policy_state_to_dict(state)) == state

    _, before = tick(state, at(4 * 3600), SETTINGS)
    _, after = tick(loaded, at(4 * 3600), SETTINGS)
    assert summary(before) == summary(after)
    assert any(d.action is Action.REMIND for d in after)


async def test_group_saves_write_new_events_only_and_follow_rewrites(
    store_location: str | Path,
) -> None:
    path = store_location
    state = PolicyState()
    async with await Store.open(path) as store:
        for i in range(6):
            state, _ = run([(i, ev(K.DRIFT_DETECTED, i, f"app-{i}"))], SETTINGS, state)
            await store.save_policy(state)
        state, _ = run([(40, None)], SETTINGS, state)
        await store.save_policy(state)
        group = next(iter(state.groups.values()))
        shrunk = dataclasses.replace(group, members=group.members[:2], epoch=group.epoch + 1)
        state = dataclasses.replace(state, groups=state.groups.set(group.id, shrunk))
        await store.save_policy(state)
    async with await Store.open(path) as store:
        loaded = await store.load_policy()
    assert [g.members for g in loaded.groups.values()] == [shrunk.members]


async def test_a_state_kept_per_route_by_an_older_version_is_kept_per_receiver_after_load(
    tmp_path: Path,
) -> None:
    """Before states were kept per receiver they were kept per route (`routes[0]`): after an
    upgrade, an alert announced through a route is updated in each channel the route names."""
    drift = event(EventKind.DRIFT_DETECTED, argocd_state())
    group = Group(
        id="routes[0]/" + drift.id,
        route="routes[0]",
        key=("routes[0]", "prod"),
        members=(drift,),
        sent_members=1,
        flushes=1,
    )
    old = PolicyState.of(
        open=[OpenAlert(drift, NOW, "routes[0]", group.id)],
        recent=RecentIds.of([("routes[0]/" + drift.id, NOW)]),
        groups=[group],
    )
    config = Config.model_validate(
        {
            "receivers": [{"name": n, "console": {}} for n in ("oncall", "pm")],
            "routes": [{"receivers": ["oncall", "pm"]}],
        }
    )
    async with await Store.open(tmp_path / "state.sqlite") as store:
        await store.save_policy(old)
        pipeline = Pipeline(store, config, {})
        await pipeline.load()
    state = pipeline.policy_state
    assert sorted(a.route for a in state.open.values()) == ["oncall", "pm"]
    assert sorted(state.groups) == ["oncall/" + drift.id, "pm/" + drift.id]
    assert all(a.group == f"{a.route}/{drift.id}" for a in state.open.values())
    assert "oncall/" + drift.id in state.recent and "routes[0]/" + drift.id not in state.recent
