"""Mutes and acks: targets, expiry, the suppressed decisions, and the chat command functions."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.commands import ack, active_mutes, mute, unmute
from core.model import EventKind
from core.mutes import MuteTargetError, parse_target, target_matches
from core.policy import Action, PolicySettings, PolicyState, Reason
from tests.core.test_grouping import at, ev, run

K = EventKind
NOW = PolicySettings(grace=timedelta(0), route="r")


@pytest.mark.parametrize(
    ("target", "name", "cluster", "matches"),
    [
        ("checkout", "checkout", "prod", True),
        ("check*", "checkout", "prod", True),
        ("check*", "payments", "prod", False),
        ("argocd/checkout", "checkout", "prod", True),
        ("shop/checkout", "checkout", "prod", False),
        ("cluster:prod", "anything", "prod", True),
        ("cluster:stag*", "anything", "prod", False),
        ("namespace:argocd", "anything", "prod", True),
        ("ns:argocd", "anything", "prod", True),
        ("prod/argocd/checkout", "checkout", "prod", True),
        ("staging/argocd/checkout", "checkout", "prod", False),
        ("env:prod", "anything", "prod", True),
        ("env:staging", "anything", "prod", False),
    ],
)
def test_targets(target: str, name: str, cluster: str, matches: bool) -> None:
    event = ev(K.DRIFT_DETECTED, 0, name, cluster)
    assert target_matches(parse_target(target), event) is matches


@pytest.mark.parametrize(
    "bad", ["", "  ", "a b", "team:x", "cluster:", "a/b/c/d", "/x", "x/", "a//b"]
)
def test_bad_targets_are_refused_with_help(bad: str) -> None:
    with pytest.raises(MuteTargetError, match="cluster:NAME"):
        parse_target(bad)


@given(st.text(max_size=40))
def test_any_target_text_is_parsed_or_refused_clearly(text: str) -> None:
    with contextlib.suppress(MuteTargetError):
        assert parse_target(text) == parse_target(parse_target(text))


def test_a_muted_app_is_suppressed_until_the_mute_ends() -> None:
    state = mute(PolicyState(), "checkout", at(600), "maintenance", "alice", at(0))
    state, decisions = run([(10, ev(K.DRIFT_DETECTED, 10))], NOW, state)
    assert [(d.action, d.reason) for d in decisions] == [(Action.SUPPRESS, Reason.MUTED)]
    _, later = run([(700, ev(K.DRIFT_DETECTED, 700))], NOW, state)
    assert [d.action for d in later] == [Action.SEND]


def test_a_muted_recovery_closes_its_alert_quietly() -> None:
    state, _ = run([(0, ev(K.DRIFT_DETECTED, 0))], NOW)
    state = mute(state, "cluster:prod", at(600), "", "bob", at(5))
    state, decisions = run([(10, ev(K.DRIFT_RESOLVED, 10))], NOW, state)
    assert [d.reason for d in decisions] == [Reason.MUTED]
    assert state.open == {}


def test_mute_unmute_and_listing() -> None:
    state = mute(PolicyState(), "a", at(100), "r1", "alice", at(0))
    state = mute(state, "cluster:prod", at(50), "r2", "bob", at(0))
    assert [m.target for m in active_mutes(state, at(10))] == ["cluster:prod", "a"]
    assert [m.target for m in active_mutes(state, at(60))] == ["a"]
    state, removed = unmute(state, "a", at(10))
    assert removed is not None and removed.who == "alice" and removed.reason == "r1"
    assert active_mutes(state, at(10))[0].target == "cluster:prod"
    state, removed = unmute(state, "nothing", at(10))
    assert removed is None
    with pytest.raises(ValueError, match="end after"):
        mute(state, "a", at(0), "", "alice", at(0))


def test_ack_marks_open_alerts_of_the_app_on_every_route() -> None:
    other = PolicySettings(grace=timedelta(0), route="s")
    state, _ = run([(0, ev(K.DRIFT_DETECTED, 0))], NOW)
    state, _ = run(
        [(0, ev(K.DRIFT_DETECTED, 0)), (1, ev(K.DRIFT_DETECTED, 1, "cart"))], other, state
    )
    state, acked = ack(state, "argocd/checkout", "carol", at(5))
    assert sorted(a.route for a in acked) == ["r", "s"]
    assert all(a.acked_by == "carol" and a.acked_at == at(5) for a in acked)
    assert [a.event.name for a in state.open.values() if not a.acked] == ["cart"]
    same, again = ack(state, "checkout", "carol", at(6))
    assert again == [] and same is state
