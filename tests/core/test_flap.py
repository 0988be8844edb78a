"""Flap damping and text dedup on virtual time: pure policy decisions."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from core.flap import Flap, is_flip, record_flip
from core.model import EventKind
from core.policy import Action, PolicySettings, Reason, flush
from tests.core.test_grouping import Step, at, ev, run

K = EventKind
DAMPED = PolicySettings(
    grace=timedelta(0), route="r", flap_flips=4, flap_window=timedelta(minutes=15)
)


def flips(count: int, every: float = 20) -> list[Step]:
    return [
        (i * every, ev(K.DRIFT_DETECTED if i % 2 == 0 else K.DRIFT_RESOLVED, i * every))
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "expected_sent"),
    [
        (4, ["drift_detected", "drift_resolved", "drift_detected", "drift_resolved"]),
        (5, ["drift_detected", "drift_resolved", "drift_detected", "drift_resolved", "flapping"]),
        (30, ["drift_detected", "drift_resolved", "drift_detected", "drift_resolved", "flapping"]),
    ],
)
def test_more_flips_than_allowed_is_one_flapping_notice(
    count: int, expected_sent: list[str]
) -> None:
    _, decisions = run(flips(count), DAMPED)
    sent = [d.event.kind.value for d in decisions if d.action is Action.SEND]
    assert sent == expected_sent
    if count > 5:
        assert sum(d.reason is Reason.FLAPPING for d in decisions) >= count - 5


def test_stable_for_a_window_then_one_recovery_updating_the_notice() -> None:
    state, decisions = run(flips(8), DAMPED)
    notice = next(d.event for d in decisions if d.event.kind is K.FLAPPING)
    last_flip = 7 * 20
    _, early = run([(last_flip + 899, None)], DAMPED, state)
    assert [d for d in early if d.action is Action.SEND] == []
    _, settled = run([(last_flip + 900, None)], DAMPED, state)
    sent = [d for d in settled if d.action is Action.SEND]
    assert [(d.event.kind, d.event.resolves) for d in sent] == [(K.DRIFT_RESOLVED, notice.id)]


def test_settling_in_the_problem_state_announces_the_problem() -> None:
    state, _ = run(flips(7), DAMPED)
    state, settled = run([(6 * 20 + 900, None)], DAMPED, state)
    sent = [d.event for d in settled if d.action is Action.SEND]
    assert [(e.kind, e.occurred_at) for e in sent] == [(K.DRIFT_DETECTED, at(6 * 20))]
    assert ("r", ev(K.DRIFT_DETECTED, 0).key, K.DRIFT_DETECTED) in state.open


def test_flush_settles_a_flapping_app() -> None:
    state, _ = run(flips(8), DAMPED)
    state, decisions = flush(state, DAMPED)
    assert [d.event.kind for d in decisions if d.action is Action.SEND] == [K.DRIFT_RESOLVED]
    assert state.flaps == {}


def test_record_flip_forgets_old_flips() -> None:
    flap = Flap()
    for seconds in (0, 100, 1000):
        flap = record_flip(flap, at(seconds), timedelta(seconds=500))
    assert flap.flips == (at(1000),)


@pytest.mark.parametrize(
    ("kind", "flip"),
    [
        (K.DRIFT_DETECTED, True),
        (K.DRIFT_RESOLVED, True),
        (K.DEPLOY_SUCCEEDED, False),
        (K.DEPLOY_STARTED, False),
        (K.DELETED, False),
    ],
)
def test_what_counts_as_a_flip(kind: EventKind, flip: bool) -> None:
    assert is_flip(ev(kind, 0)) is flip


TEXT = PolicySettings(grace=timedelta(0), route="r", dedup_window=timedelta(minutes=10))


@pytest.mark.parametrize(
    ("messages", "gap", "expected"),
    [
        (("pod restarted after 3s", "pod restarted after 9s"), 60, ["sent", "dedup_text"]),
        (("pod restarted after 3s", "pod restarted after 9s"), 601, ["sent", "sent"]),
        (("pod restarted", "image pull failed"), 60, ["sent", "sent"]),
    ],
)
def test_text_dedup(messages: tuple[str, str], gap: float, expected: list[str]) -> None:
    first = dataclasses.replace(ev(K.DEPLOY_STARTED, 0), message=messages[0])
    second = dataclasses.replace(ev(K.DEPLOY_STARTED, gap), message=messages[1])
    _, decisions = run([(0, first), (gap, second)], TEXT)
    got = ["sent" if d.action is Action.SEND else d.reason.value for d in decisions]
    assert got == expected
