"""The policy state at its caps: announced ids are remembered for 7 days and at most 50,000
(`PolicySettings.remember_for`, `remember_max`), so however long driftbot runs and however much
it announces, that part of its state stays under a fixed size. Filled through the real policy
(`offer`, one announced deploy at a time, on virtual time), measured structurally: the encoded
state (what the store writes) and the memory a loaded state holds (tracemalloc). Never timed.

The figures (docs/reliability.md, "Memory bound of the policy state"): at the 50,000-id cap
the encoded state is about 2.2 MB (44 bytes an id) and a loaded state about 5.4 MiB.
"""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime, timedelta

import orjson

from core.codec import dumps, policy_state_from_dict, policy_state_to_dict
from core.model import AppState, EventKind, Tool, make_event
from core.policy import Action, PolicySettings, PolicyState, offer

T0 = datetime(2026, 11, 27, tzinfo=UTC)
SETTINGS = PolicySettings()
CAP = SETTINGS.remember_max
CHUNK = 256
"""Ids are dropped a chunk at a time (core.policy.RecentIds), so the cap is held to a chunk."""

ENCODED_BOUND = 4 * 1024 * 1024
"""Bytes of the encoded state at the cap: about twice what it measures, for other Pythons."""
LOADED_BOUND = 16 * 1024 * 1024
"""Bytes a loaded state at the cap holds: about three times what it measures."""


def announce(state: PolicyState, first: int, count: int, spacing: timedelta) -> PolicyState:
    """`count` deploys of distinct revisions, each announced (news is sent at once)."""
    for i in range(first, first + count):
        now = T0 + spacing * i
        app = AppState(
            Tool.ARGOCD, "prod", "apps", "Application", f"app-{i % 500}", now, revision=f"{i:040x}"
        )
        state, decisions = offer(state, make_event(EventKind.DEPLOY_SUCCEEDED, app, now), now)
        assert decisions[-1].action is Action.SEND
    return state


def encoded(state: PolicyState) -> bytes:
    return dumps(policy_state_to_dict(state)).encode()


def loaded_size(data: bytes) -> int:
    """Bytes held by the state decoded from `data`, as a start loads it (tracemalloc)."""
    plain = orjson.loads(data)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        state = policy_state_from_dict(plain)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(state.recent) > 0
    return held


def test_the_id_cap_bounds_the_state_however_much_is_announced() -> None:
    second = timedelta(seconds=1)  # 80,000 s: well inside 7 days, so the count cap decides
    state = announce(PolicyState(), 0, 60_000, second)
    assert CAP <= len(state.recent) < CAP + CHUNK
    at_cap = encoded(state)

    state = announce(state, 60_000, 20_000, second)
    assert CAP <= len(state.recent) < CAP + CHUNK
    later = encoded(state)
    assert abs(len(later) - len(at_cap)) < len(at_cap) / 100, "the state grew past its cap"
    newest = T0 + second * 79_999
    assert all(newest - at < timedelta(seconds=CAP + CHUNK) for _, at in state.recent.items())

    assert len(later) < ENCODED_BOUND, f"{len(later):,} bytes encoded at the cap"
    held = loaded_size(later)
    assert held < LOADED_BOUND, f"{held:,} bytes held by a loaded state at the cap"


def test_the_seven_days_bound_the_state_when_fewer_ids_come() -> None:
    spacing = timedelta(minutes=4)  # 360 a day: 30 days make 10,800 ids, 7 days 2,520
    state = announce(PolicyState(), 0, 10_800, spacing)
    now = T0 + spacing * 10_799
    oldest = min(at for _, at in state.recent.items())
    assert now - oldest < SETTINGS.remember_for + spacing * CHUNK
    assert 7 * 360 <= len(state.recent) < 7 * 360 + CHUNK
