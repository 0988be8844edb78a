"""Moving a policy state from one set of lanes to another: a state kept per route by an older
version becomes one kept per receiver."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from core.policy.state import (
    PolicyState,
    RecentIds,
    _rid,
)


def relane(state: PolicyState, lanes: Callable[[str], tuple[str, ...]]) -> PolicyState:
    """`state` with everything kept under one lane moved to the lanes `lanes` names for it
    (pure): an older state, kept per route, becomes one kept per receiver, each route's alerts,
    held problems, groups, flaps and remembered ids going to every receiver the route names.
    A lane mapped to no lane is dropped; mutes are kept as they are. The same state (`is`)
    when `lanes` maps every lane to itself."""
    names = {h.route for h in state.held.values()} | {a.route for a in state.open.values()}
    names |= {g.route for g in state.groups.values()} | {k[0] for k in state.flaps}
    moved = {name: lanes(name) for name in names}
    if all(to == (name,) for name, to in moved.items()):
        return state

    def to(name: str) -> tuple[str, ...]:
        if name not in moved:
            moved[name] = lanes(name)
        return moved[name]

    def regroup(group_id: str, old: str, new: str) -> str:
        return _rid(new, group_id[len(old) + 1 :]) if group_id.startswith(f"{old}/") else group_id

    held = [
        dataclasses.replace(h, route=lane) for h in state.held.values() for lane in moved[h.route]
    ]
    opened = [
        dataclasses.replace(a, route=lane, group=regroup(a.group, a.route, lane))
        for a in state.open.values()
        for lane in moved[a.route]
    ]
    groups = [
        dataclasses.replace(g, id=regroup(g.id, g.route, lane), route=lane, key=(lane, *g.key[1:]))
        for g in state.groups.values()
        for lane in moved[g.route]
    ]
    flaps = [
        ((lane, key[1]), dataclasses.replace(f, notice_group=regroup(f.notice_group, key[0], lane)))
        for key, f in state.flaps.items()
        for lane in moved[key[0]]
    ]
    texts = [
        ((lane, key[1], key[2]), seen) for key, seen in state.texts.items() for lane in to(key[0])
    ]
    recent: list[tuple[str, datetime]] = []
    for rid, at in state.recent.items():
        old, sep, event_id = rid.partition("/")
        if not sep:
            recent.append((rid, at))
            continue
        recent.extend((_rid(lane, event_id), at) for lane in to(old))
    return PolicyState.of(
        held,
        opened,
        RecentIds.of(recent),
        groups=groups,
        flaps=flaps,
        mutes=state.mutes.values(),
        texts=texts,
    )
