"""Policy decisions on virtual time: grace, open alerts, resolve pairing, no second announcement."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import RESOLVED_BY, AppState, EventKind, GitOpsEvent, Tool, make_event
from core.policy import (
    INFORMATIVE_RECOVERIES,
    RESOLVES,
    Action,
    Decision,
    PolicySettings,
    PolicyState,
    Reason,
    flush,
    offer,
    sent,
    tick,
)

K = EventKind
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
DEFAULT = PolicySettings()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def app(name: str = "checkout") -> AppState:
    return AppState(Tool.ARGOCD, "prod", "argocd", "Application", name, T0, revision="1a2b3c")


def ev(kind: EventKind, seconds: float, name: str = "checkout") -> GitOpsEvent:
    return make_event(kind, app(name), at(seconds))


Step = tuple[float, GitOpsEvent | None]
"""At this second: offer the event, or tick when None."""


def run(
    steps: list[Step], settings_: PolicySettings = DEFAULT, state: PolicyState | None = None
) -> tuple[PolicyState, list[Decision]]:
    state = state or PolicyState()
    decisions: list[Decision] = []
    for seconds, event in steps:
        if event is None:
            state, out = tick(state, at(seconds), settings_)
        else:
            state, out = offer(state, event, at(seconds), settings_)
        decisions.extend(out)
    return state, decisions


def summary(decisions: list[Decision]) -> list[tuple[str, str, str]]:
    return [(d.event.kind.value, d.action.value, d.reason.value) for d in decisions]


def offer_once(event: GitOpsEvent) -> list[Step]:
    return [(0, event)]


DRIFT = ev(K.DRIFT_DETECTED, 0)
DRIFT_2 = ev(K.DRIFT_DETECTED, 120)
RESOLVED_30 = ev(K.DRIFT_RESOLVED, 30)
RESOLVED_300 = ev(K.DRIFT_RESOLVED, 300)
FAILED = ev(K.DEPLOY_FAILED, 0)
OUT_OF_SYNC = ev(K.OUT_OF_SYNC, 0)
SUCCEEDED_20 = ev(K.DEPLOY_SUCCEEDED, 20)
SUCCEEDED_300 = ev(K.DEPLOY_SUCCEEDED, 300)

TABLE: list[tuple[str, list[Step], PolicySettings, list[tuple[str, str, str]]]] = [
    (
        "problem held, then released once the grace has passed",
        [(0, DRIFT), (59, None), (60, None), (61, None)],
        DEFAULT,
        [("drift_detected", "hold", "in_grace"), ("drift_detected", "send", "grace_passed")],
    ),
    (
        "recovery within grace drops the problem and itself",
        [(0, DRIFT), (30, RESOLVED_30), (120, None)],
        DEFAULT,
        [
            ("drift_detected", "hold", "in_grace"),
            ("drift_detected", "suppress", "grace"),
            ("drift_resolved", "suppress", "grace"),
        ],
    ),
    (
        "grace 0 sends at once",
        [(0, DRIFT)],
        PolicySettings(grace=timedelta(0)),
        [("drift_detected", "send", "immediate")],
    ),
    (
        "a failed rollback is sent at once",
        [(0, ev(K.ROLLBACK_FAILED, 0))],
        DEFAULT,
        [("rollback_failed", "send", "immediate")],
    ),
    (
        "second problem of the same kind while open",
        [(0, DRIFT), (60, None), (120, DRIFT_2)],
        DEFAULT,
        [
            ("drift_detected", "hold", "in_grace"),
            ("drift_detected", "send", "grace_passed"),
            ("drift_detected", "suppress", "already_open"),
        ],
    ),
    (
        "second problem of the same kind while held",
        [(0, DRIFT), (10, ev(K.DRIFT_DETECTED, 10)), (60, None)],
        DEFAULT,
        [
            ("drift_detected", "hold", "in_grace"),
            ("drift_detected", "suppress", "already_held"),
            ("drift_detected", "send", "grace_passed"),
        ],
    ),
    (
        "recovery after the grace closes the open alert",
        [(0, DRIFT), (60, None), (300, RESOLVED_300)],
        DEFAULT,
        [
            ("drift_detected", "hold", "in_grace"),
            ("drift_detected", "send", "grace_passed"),
            ("drift_resolved", "send", "resolves"),
        ],
    ),
    (
        "a recovery after the due time releases the problem first (offer ticks)",
        [(0, DRIFT), (300, RESOLVED_300)],
        DEFAULT,
        [
            ("drift_detected", "hold", "in_grace"),
            ("drift_detected", "send", "grace_passed"),
            ("drift_resolved", "send", "resolves"),
        ],
    ),
    (
        "pure recovery with nothing open",
        [(0, RESOLVED_30)],
        DEFAULT,
        [("drift_resolved", "suppress", "nothing_open")],
    ),
    *[
        (
            f"pure recovery {kind} with nothing open",
            offer_once(ev(kind, 0)),
            DEFAULT,
            [(kind.value, "suppress", "nothing_open")],
        )
        for kind in (K.HEALTH_RECOVERED, K.SOURCE_RECOVERED, K.RESUMED)
    ],
    (
        "informative recovery with nothing open",
        [(0, SUCCEEDED_20), (1, ev(K.ROLLBACK_SUCCEEDED, 1))],
        DEFAULT,
        [("deploy_succeeded", "send", "new"), ("rollback_succeeded", "send", "new")],
    ),
    (
        "a deploy during the out-of-sync grace: the deploy is news, the flip is not",
        [(0, OUT_OF_SYNC), (20, SUCCEEDED_20), (120, None)],
        DEFAULT,
        [
            ("out_of_sync", "hold", "in_grace"),
            ("out_of_sync", "suppress", "grace"),
            ("deploy_succeeded", "send", "new"),
        ],
    ),
    (
        "deploy succeeded closes a failed deploy",
        [(0, FAILED), (60, None), (300, SUCCEEDED_300)],
        DEFAULT,
        [
            ("deploy_failed", "hold", "in_grace"),
            ("deploy_failed", "send", "grace_passed"),
            ("deploy_succeeded", "send", "resolves"),
        ],
    ),
    (
        "not for another app",
        [(0, DRIFT), (30, ev(K.DRIFT_RESOLVED, 30, name="cart")), (60, None)],
        DEFAULT,
        [
            ("drift_detected", "hold", "in_grace"),
            ("drift_resolved", "suppress", "nothing_open"),
            ("drift_detected", "send", "grace_passed"),
        ],
    ),
    (
        "same id again after it was sent",
        [(0, SUCCEEDED_20), (5, SUCCEEDED_20)],
        DEFAULT,
        [("deploy_succeeded", "send", "new"), ("deploy_succeeded", "suppress", "duplicate")],
    ),
    (
        "same id again while held",
        [(0, DRIFT), (5, DRIFT)],
        DEFAULT,
        [("drift_detected", "hold", "in_grace"), ("drift_detected", "suppress", "duplicate")],
    ),
    (
        "deletion drops held problems",
        [(0, DRIFT), (10, ev(K.DELETED, 10)), (120, None)],
        DEFAULT,
        [
            ("drift_detected", "hold", "in_grace"),
            ("drift_detected", "suppress", "deleted"),
            ("deleted", "send", "new"),
        ],
    ),
    (
        "deploy started and other plain events pass",
        [(0, ev(K.DEPLOY_STARTED, 0))],
        DEFAULT,
        [("deploy_started", "send", "new")],
    ),
]


@pytest.mark.parametrize(
    ("steps", "settings_", "expected"),
    [pytest.param(s, c, e, id=name) for name, s, c, e in TABLE],
)
def test_policy_table(
    steps: list[Step], settings_: PolicySettings, expected: list[tuple[str, str, str]]
) -> None:
    _, decisions = run(steps, settings_)
    assert summary(decisions) == expected


def test_recovery_carries_resolves_and_since() -> None:
    state, decisions = run([(0, DRIFT), (60, None), (300, RESOLVED_300)])
    recovery = decisions[-1]
    assert recovery.event.resolves == DRIFT.id
    assert recovery.event.since == DRIFT.occurred_at
    assert recovery.closes == (DRIFT.id,)
    assert recovery.event.id == RESOLVED_300.id
    assert state.open == {}


def test_open_alert_is_kept_with_id_and_start() -> None:
    state, _ = run([(0, DRIFT), (60, None)])
    alert = state.open[("", DRIFT.key, K.DRIFT_DETECTED)]
    assert alert.id == DRIFT.id
    assert alert.since == at(0)
    assert alert.announced_at == at(60)
    assert state.held == {}


def test_one_recovery_closes_every_alert_it_resolves_the_oldest_named() -> None:
    rollback_failed = ev(K.ROLLBACK_FAILED, 100)
    state, decisions = run([(0, FAILED), (60, None), (100, rollback_failed), (300, SUCCEEDED_300)])
    last = decisions[-1]
    assert (last.action, last.reason) == (Action.SEND, Reason.RESOLVES)
    assert last.event.resolves == FAILED.id
    assert last.closes == (FAILED.id, rollback_failed.id)
    assert state.open == {}


def test_recovery_within_grace_still_closes_an_open_alert() -> None:
    # out_of_sync announced; a drift then held; drift_resolved resolves both kinds.
    out_of_sync = ev(K.OUT_OF_SYNC, 0)
    drift = ev(K.DRIFT_DETECTED, 100)
    resolved = ev(K.DRIFT_RESOLVED, 110)
    state, decisions = run([(0, out_of_sync), (60, None), (100, drift), (110, resolved)])
    assert summary(decisions)[-2:] == [
        ("drift_detected", "suppress", "grace"),
        ("drift_resolved", "send", "resolves"),
    ]
    assert decisions[-1].event.resolves == out_of_sync.id
    assert state.open == {} and state.held == {}


def test_deletion_closes_open_alerts() -> None:
    deleted = ev(K.DELETED, 300)
    state, decisions = run([(0, DRIFT), (60, None), (300, deleted)])
    assert summary(decisions)[-1] == ("deleted", "send", "new")
    assert decisions[-1].closes == (DRIFT.id,)
    assert state.open == {}


def test_flush_releases_everything_held() -> None:
    state, _ = run([(0, DRIFT), (10, ev(K.HEALTH_DEGRADED, 10))])
    state, decisions = flush(state)
    assert summary(decisions) == [
        ("drift_detected", "send", "flushed"),
        ("health_degraded", "send", "flushed"),
    ]
    assert state.held == {}
    assert set(state.open) == {
        ("", DRIFT.key, K.DRIFT_DETECTED),
        ("", DRIFT.key, K.HEALTH_DEGRADED),
    }
    assert state.open[("", DRIFT.key, K.DRIFT_DETECTED)].announced_at == at(60)


def test_replaying_with_the_kept_state_announces_nothing_new() -> None:
    steps: list[Step] = [(0, DRIFT), (60, None), (300, RESOLVED_300), (400, FAILED)]
    state, first = run(steps)
    state, flushed = flush(state)
    assert len(sent(first + flushed)) == 3
    state, second = run(steps, state=state)
    state, flushed = flush(state)
    assert sent(second + flushed) == []


def test_settings_are_per_call() -> None:
    state, first = offer(PolicyState(), DRIFT, at(0), PolicySettings(grace=timedelta(0)))
    _, second = offer(state, ev(K.HEALTH_DEGRADED, 1), at(1), DEFAULT)
    assert summary(first + second) == [
        ("drift_detected", "send", "immediate"),
        ("health_degraded", "hold", "in_grace"),
    ]


def test_offer_does_not_change_the_given_state() -> None:
    state, _ = run([(0, DRIFT), (60, None)])
    before = dataclasses.replace(state)
    offer(state, RESOLVED_300, at(300))
    offer(state, ev(K.HEALTH_DEGRADED, 300), at(300))
    assert state == before
    assert len(state.open) == 1 and state.held == {}


def test_ids_are_forgotten_after_remember_for() -> None:
    started = ev(K.DEPLOY_STARTED, 0)
    state, _ = run([(0, started)])
    assert started.id in state.recent
    week = timedelta(days=7).total_seconds()
    state, _ = run([(week - 1, None)], state=state)
    assert started.id in state.recent
    state, decisions = run([(week + 1, started)], state=state)
    assert summary(decisions) == [("deploy_started", "send", "new")]


def test_ids_are_bounded_by_count() -> None:
    small = PolicySettings(remember_max=300)
    state = PolicyState()
    events = [ev(K.DEPLOY_STARTED, i) for i in range(1000)]
    for i, event in enumerate(events):
        state, _ = offer(state, event, at(i), small)
    state, _ = tick(state, at(1000), small)
    assert len(state.recent) <= 300 + 256
    assert events[0].id not in state.recent
    assert events[-1].id in state.recent
    _, decisions = offer(state, events[0], at(1001), small)
    assert decisions[0].action is Action.SEND


# Property: whatever arrives, in whatever order, nothing is announced twice, no pure recovery
# goes out without its problem, and every offer ends in exactly one final decision.

APPS = ("checkout", "cart")
PURE_RECOVERIES = frozenset(RESOLVES) - INFORMATIVE_RECOVERIES


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PolicySettings, list[tuple[int, GitOpsEvent | None]]]:
    grace = draw(st.sampled_from([0, 30, 60]))
    pool = [
        ev(kind, draw(st.integers(0, 600)), name)
        for kind in EventKind
        for name in APPS
        for _ in range(2)
    ]
    steps: list[tuple[int, GitOpsEvent | None]] = []
    clock = 0
    for _ in range(draw(st.integers(1, 40))):
        clock += draw(st.integers(0, 90))
        steps.append((clock, draw(st.none() | st.sampled_from(pool))))
    return PolicySettings(grace=timedelta(seconds=grace)), steps


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_property_no_second_announcement_no_orphan_recovery(
    scenario: tuple[PolicySettings, list[tuple[int, GitOpsEvent | None]]],
) -> None:
    settings_, steps = scenario
    state, decisions = run([(float(s), e) for s, e in steps], settings_)
    state, flushed = flush(state, settings_)
    decisions += flushed
    assert state.held == {}

    sent_ids = [d.event.id for d in decisions if d.action is Action.SEND]
    assert len(sent_ids) == len(set(sent_ids))

    announced: dict[str, GitOpsEvent] = {}
    resolved: set[str] = set()
    for d in decisions:
        if d.action is not Action.SEND:
            continue
        event = d.event
        if event.kind in PURE_RECOVERIES:
            assert event.resolves in announced
        if event.resolves:
            problem = announced[event.resolves]
            assert problem.key == event.key
            assert event.kind in RESOLVED_BY[problem.kind]
            assert event.since == problem.occurred_at
        for closed in d.closes:
            assert closed in announced and closed not in resolved
            resolved.add(closed)
        announced[event.id] = event

    offers = sum(1 for _, e in steps if e is not None)
    finals = Counter(d.action for d in decisions if d.action is not Action.HOLD)
    assert finals[Action.SEND] + finals[Action.SUPPRESS] == offers
