"""Storm grouping, quiet hours and reminders on virtual time: pure policy decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from core.commands import ack
from core.grouping import EventGroup, group_key
from core.model import AppState, EventKind, GitOpsEvent, Severity, Tool, make_event
from core.policy import Action, Decision, PolicySettings, PolicyState, Reason, flush, offer, tick

K = EventKind
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
GROUPED = PolicySettings(
    grace=timedelta(0),
    route="r",
    group_by=("cluster", "kind"),
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=5),
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(
    kind: EventKind, seconds: float, name: str = "checkout", cluster: str = "prod"
) -> GitOpsEvent:
    state = AppState(Tool.ARGOCD, cluster, "argocd", "Application", name, T0, revision="1a2b3c")
    return make_event(kind, state, at(seconds))


Step = tuple[float, GitOpsEvent | None]


def run(
    steps: Sequence[Step], settings: PolicySettings = GROUPED, state: PolicyState | None = None
) -> tuple[PolicyState, list[Decision]]:
    state = state or PolicyState()
    out: list[Decision] = []
    for seconds, event in steps:
        if event is None:
            state, got = tick(state, at(seconds), settings)
        else:
            state, got = offer(state, event, at(seconds), settings)
        out += got
    return state, out


def told(decisions: list[Decision]) -> list[tuple[str, int, int, bool]]:
    """(kind or "group", members, resolved, is an update) of every send."""
    rows = []
    for d in decisions:
        if d.action is not Action.SEND:
            continue
        if d.group is not None:
            rows.append(("group", d.group.count, d.group.resolved_count, bool(d.updates)))
        else:
            rows.append((d.event.kind.value, 1, 0, bool(d.event.resolves)))
    return rows


@dataclass
class Case:
    name: str
    steps: list[Step]
    expected: list[tuple[str, int, int, bool]]


DRIFTS = [(i, ev(K.DRIFT_DETECTED, i, f"app-{i}")) for i in range(5)]
RESOLVED = [(400 + i, ev(K.DRIFT_RESOLVED, 400 + i, f"app-{i}")) for i in range(5)]

CASES = [
    Case("nothing is sent before group_wait", [*DRIFTS, (29, None)], []),
    Case("one message for everything gathered", [*DRIFTS, (30, None)], [("group", 5, 0, False)]),
    Case(
        "a group of one is the plain event",
        [(0, ev(K.DRIFT_DETECTED, 0)), (30, None)],
        [("drift_detected", 1, 0, False)],
    ),
    Case(
        "later events update the group at most once per group_interval",
        [
            *DRIFTS,
            (30, None),
            (60, ev(K.DRIFT_DETECTED, 60, "late-1")),
            (90, ev(K.DRIFT_DETECTED, 90, "late-2")),
            (200, None),
            (330, None),
        ],
        [("group", 5, 0, False), ("group", 7, 0, True)],
    ),
    Case(
        "recoveries update the group with the resolved count",
        [*DRIFTS, (30, None), *RESOLVED, (440, None)],
        [("group", 5, 0, False), ("group", 5, 5, True)],
    ),
    Case(
        "other kinds and clusters are other groups",
        [
            (0, ev(K.DRIFT_DETECTED, 0, "a")),
            (1, ev(K.DRIFT_DETECTED, 1, "b")),
            (2, ev(K.DEPLOY_FAILED, 2, "c")),
            (3, ev(K.DRIFT_DETECTED, 3, "d", "staging")),
            (40, None),
        ],
        [("group", 2, 0, False), ("deploy_failed", 1, 0, False), ("drift_detected", 1, 0, False)],
    ),
    Case(
        "a problem and its recovery within the wait are both told",
        [(0, ev(K.DRIFT_DETECTED, 0)), (10, ev(K.DRIFT_RESOLVED, 10)), (30, None)],
        [("drift_detected", 1, 0, False), ("drift_resolved", 1, 0, True)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_grouping(case: Case) -> None:
    _, decisions = run(case.steps)
    assert told(decisions) == case.expected


def test_a_finished_group_is_forgotten() -> None:
    state, _ = run([*DRIFTS, (30, None), *RESOLVED, (1000, None)])
    assert state.groups == {} and state.open == {}


def test_flush_sends_what_waits_at_the_end_of_a_stream() -> None:
    state, _ = run(DRIFTS)
    state, decisions = flush(state, GROUPED)
    assert told(decisions) == [("group", 5, 0, False)]
    assert decisions[-1].route == "r"


def test_routes_keep_their_own_groups() -> None:
    other = PolicySettings(grace=timedelta(0), route="s")
    routes = {"r": GROUPED, "s": other}
    state = PolicyState()
    out: list[Decision] = []
    for seconds, event in DRIFTS:
        for settings in (GROUPED, other):
            state, got = offer(state, event, at(seconds), settings, routes)
            out += got
    state, got = tick(state, at(30), GROUPED, routes)
    out += got
    by_route = {r: told([d for d in out if d.route == r]) for r in ("r", "s")}
    assert by_route["r"] == [("group", 5, 0, False)]
    assert by_route["s"] == [("drift_detected", 1, 0, False)] * 5


@dataclass(frozen=True)
class Quiet:
    start: datetime
    end: datetime
    min_severity: Severity = Severity.CRITICAL

    def active(self, now: datetime) -> bool:
        return self.start <= now < self.end


def test_quiet_hours_hold_non_critical_groups_until_they_end() -> None:
    settings = PolicySettings(
        grace=timedelta(0),
        route="r",
        group_by=("cluster", "kind"),
        group_wait=timedelta(seconds=30),
        quiet=Quiet(at(0), at(3600)),
    )
    steps: list[Step] = [
        (0, ev(K.DRIFT_DETECTED, 0)),
        (1, ev(K.DEPLOY_FAILED, 1, "pay")),
        (60, None),
        (3599, None),
    ]
    state, decisions = run(steps, settings)
    assert told(decisions) == [("deploy_failed", 1, 0, False)]
    assert any(d.reason is Reason.QUIET_HOURS for d in decisions)
    _, later = tick(state, at(3600), settings)
    assert told(later) == [("drift_detected", 1, 0, False)]


def test_reminders_until_acknowledged() -> None:
    settings = PolicySettings(grace=timedelta(0), route="r", repeat=timedelta(hours=1))
    state, decisions = run([(0, ev(K.DRIFT_DETECTED, 0)), (3600, None), (7200, None)], settings)
    reminders = [d for d in decisions if d.action is Action.REMIND]
    assert len(reminders) == 2
    assert all(
        d.updates == decisions[0].event.id and d.reason is Reason.REMINDER for d in reminders
    )
    state, acked = ack(state, "checkout", "alice", at(7300))
    assert [a.acked_by for a in acked] == ["alice"]
    _, later = run([(10800, None), (14400, None)], settings, state)
    assert [d for d in later if d.action is Action.REMIND] == []


def test_no_reminder_once_resolved() -> None:
    settings = PolicySettings(grace=timedelta(0), route="r", repeat=timedelta(hours=1))
    _, decisions = run(
        [(0, ev(K.DRIFT_DETECTED, 0)), (60, ev(K.DRIFT_RESOLVED, 60)), (7200, None)], settings
    )
    assert [d for d in decisions if d.action is Action.REMIND] == []


def test_group_key_uses_the_route_and_its_fields() -> None:
    a = ev(K.DRIFT_DETECTED, 0, "a")
    assert group_key(a, "r", ("cluster", "kind")) == ("r", "prod", "drift_detected")
    assert group_key(a, "r", None) != group_key(ev(K.DRIFT_DETECTED, 1, "b"), "r", None)
    with pytest.raises(ValueError, match="cannot group by"):
        group_key(a, "r", ("colour",))


def test_event_group_counts_resolved() -> None:
    members = [ev(K.DRIFT_DETECTED, 0, "a"), ev(K.DRIFT_DETECTED, 0, "b")]
    group = EventGroup.of(members, resolved=[ev(K.DRIFT_RESOLVED, 9, "a")])
    assert (group.count, group.resolved_count, group.id) == (2, 1, members[0].id)
