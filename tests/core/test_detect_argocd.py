"""Argo CD detection: each transition of a real Application's status yields the right events.

The states are the diff-cache and live-child fixtures with their status edited along a
timeline: a steady app at REV_A, Git moving to REV_B, a deploy, a rollback to REV_A, drift,
a self-heal fight, health, auto-sync and source changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.detect import detect
from core.detect_argocd import SELF_HEAL_FIGHT_ATTEMPTS, from_hint, transitions
from core.model import DEFAULT_SEVERITY, EventKind, GitOpsEvent, ResourceRef, Severity
from tests.builders_argocd import (
    ARGOCD_EVENTS,
    LIVE_CHILD,
    REV_A,
    REV_B,
    REV_OLD,
    app_state,
    argocd_app,
    at,
    history_entry,
    load_fixture,
    operation_state,
    when,
)
from watchers.argocd_events import normalize_event
from watchers.rejected import Rejected

K = EventKind
ALICE = "alice@example.com"
NOW = when(30)

# The timeline. History is oldest first, as Argo CD stores it.
H_A = [
    history_entry(1, REV_OLD, at(-120), username="bob@example.com"),
    history_entry(2, REV_A, at(-60), automated=True),
]
H_B = [*H_A, history_entry(3, REV_B, at(1), started_at=at(0), automated=True)]
H_ROLLED_BACK = [*H_B, history_entry(4, REV_A, at(11), started_at=at(10), username=ALICE)]

OP_A = operation_state("Succeeded", REV_A, started_at=at(-61), finished_at=at(-60), automated=True)
OP_B_RUNNING = operation_state("Running", REV_B, started_at=at(0), automated=True)
OP_B_RUNNING_USER = operation_state("Running", REV_B, started_at=at(0), username=ALICE)
OP_B_OK = operation_state("Succeeded", REV_B, started_at=at(0), finished_at=at(1), automated=True)
APPLY_ERROR = 'one or more objects failed to apply, reason: Deployment.apps "test-lla" is invalid'
OP_B_FAILED = operation_state(
    "Failed", REV_B, started_at=at(0), finished_at=at(1), automated=True, message=APPLY_ERROR
)
OP_B_ERROR = operation_state(
    "Error", REV_B, started_at=at(0), finished_at=at(1), username=ALICE, message="rpc error"
)
OP_ROLLBACK_RUNNING = operation_state("Running", REV_A, started_at=at(10), username=ALICE)
OP_ROLLBACK_OK = operation_state(
    "Succeeded", REV_A, started_at=at(10), finished_at=at(11), username=ALICE
)
OP_ROLLBACK_FAILED = operation_state(
    "Failed", REV_A, started_at=at(10), finished_at=at(11), username=ALICE, message="hook failed"
)
OP_RESYNC_A_RUNNING = operation_state("Running", REV_A, started_at=at(5), automated=True)
OP_RESYNC_A_OK = operation_state(
    "Succeeded", REV_A, started_at=at(5), finished_at=at(6), automated=True
)
DEPLOYMENT = ("Deployment", "test-lla", "test-lla")
NOT_FOUND = "rpc error: code = Unknown desc = repository not found"


def heal(attempts: int, minute: int, phase: str = "Succeeded") -> dict[str, Any]:
    """A self-heal operation: automated re-sync of the deployed REV_A."""
    finished = at(minute + 1) if phase != "Running" else None
    return operation_state(
        phase,
        REV_A,
        started_at=at(minute),
        finished_at=finished,
        automated=True,
        auto_heal_attempts=attempts,
    )


def steady(**edits: Any) -> dict[str, Any]:
    """The diff-cache app, Synced and Healthy at REV_A, auto-sync off, edited by `edits`."""
    args: dict[str, Any] = {"history": H_A, "operation": OP_A, "desired": REV_A}
    args.update(edits)
    return argocd_app(**args)


def deployed_b(**edits: Any) -> dict[str, Any]:
    """The app after REV_B was deployed (history 3, operation Succeeded)."""
    args: dict[str, Any] = {"history": H_B, "operation": OP_B_OK, "desired": REV_B}
    args.update(edits)
    return argocd_app(**args)


PENDING_B = {"sync": "OutOfSync", "desired": REV_B}
DRIFTED = {"sync": "OutOfSync", "out_of_sync": [DEPLOYMENT]}


@dataclass
class Row:
    name: str
    prev: dict[str, Any]
    cur: dict[str, Any]
    kinds: list[EventKind]
    fields: dict[str, Any] = field(default_factory=dict)
    """Expected attributes of the first event."""


ROWS = [
    Row("steady: nothing", steady(), steady(), []),
    # drift
    Row(
        "live drift: OutOfSync at the deployed revision",
        steady(),
        steady(**DRIFTED),
        [K.DRIFT_DETECTED],
        {
            "revision": REV_A,
            "resources": (ResourceRef("Deployment", "test-lla", "test-lla"),),
            "resource_count": 1,
            "severity": Severity.WARNING,
        },
    ),
    Row("drift that stays is announced once", steady(**DRIFTED), steady(**DRIFTED), []),
    Row("drift resolved: OutOfSync -> Synced", steady(**DRIFTED), steady(), [K.DRIFT_RESOLVED]),
    Row(
        "no drift while a sync runs at the deployed revision",
        steady(),
        steady(**DRIFTED, operation=OP_RESYNC_A_RUNNING),
        [],
    ),
    Row(
        "a re-sync of the deployed revision is no deploy",
        steady(**DRIFTED, operation=OP_RESYNC_A_RUNNING),
        steady(operation=OP_RESYNC_A_OK),
        [K.DRIFT_RESOLVED],
    ),
    # pending deploy
    Row(
        "Git moved, auto-sync off: out_of_sync, not drift",
        steady(),
        steady(**PENDING_B),
        [K.OUT_OF_SYNC],
        {"revision": REV_B, "previous_revision": REV_A, "severity": Severity.INFO},
    ),
    Row(
        "Git moved, auto-sync on: nothing, a deploy is coming",
        steady(auto_sync=True),
        steady(**PENDING_B, auto_sync=True),
        [],
    ),
    Row("pending deploy that stays: once", steady(**PENDING_B), steady(**PENDING_B), []),
    # deploy
    Row(
        "deploy started by auto-sync",
        steady(**PENDING_B, auto_sync=True),
        steady(**PENDING_B, auto_sync=True, operation=OP_B_RUNNING),
        [K.DEPLOY_STARTED],
        {"actor": "automated", "revision": REV_B, "previous_revision": REV_A},
    ),
    Row(
        "deploy started by a user",
        steady(**PENDING_B),
        steady(**PENDING_B, operation=OP_B_RUNNING_USER),
        [K.DEPLOY_STARTED],
        {"actor": ALICE, "revision": REV_B},
    ),
    Row(
        "a running operation (retrying) is started once",
        steady(**PENDING_B, operation=OP_B_RUNNING),
        steady(**PENDING_B, operation=OP_B_RUNNING),
        [],
    ),
    Row(
        "deploy succeeded: Succeeded at a new revision and Healthy",
        steady(**PENDING_B, operation=OP_B_RUNNING),
        deployed_b(),
        [K.DEPLOY_SUCCEEDED, K.DRIFT_RESOLVED],
        {"actor": "automated", "revision": REV_B, "previous_revision": REV_A},
    ),
    Row(
        "history written before the phase: still one deploy",
        steady(**PENDING_B, operation=OP_B_RUNNING, history=H_B),
        deployed_b(),
        [K.DEPLOY_SUCCEEDED, K.DRIFT_RESOLVED],
        {"revision": REV_B, "previous_revision": REV_A},
    ),
    Row(
        "right after a deploy the sync status is stale: no drift",
        steady(**PENDING_B, operation=OP_B_RUNNING),
        deployed_b(sync="OutOfSync", reconciled_at=at(0)),
        [K.DEPLOY_SUCCEEDED],
    ),
    Row(
        "a fresh comparison that still finds OutOfSync after the deploy is drift",
        deployed_b(sync="OutOfSync", reconciled_at=at(0)),
        deployed_b(sync="OutOfSync", reconciled_at=at(2), out_of_sync=[DEPLOYMENT]),
        [K.DRIFT_DETECTED],
        {"revision": REV_B, "resource_count": 1},
    ),
    Row(
        "Succeeded while Progressing: no deploy yet",
        steady(**PENDING_B, operation=OP_B_RUNNING),
        deployed_b(health="Progressing"),
        [K.DRIFT_RESOLVED],
    ),
    Row(
        "Progressing -> Healthy after the operation: the deploy succeeds now",
        deployed_b(health="Progressing"),
        deployed_b(),
        [K.DEPLOY_SUCCEEDED, K.HEALTH_RECOVERED],
        {"revision": REV_B, "previous_revision": REV_A},
    ),
    Row("a succeeded deploy seen again: nothing", deployed_b(), deployed_b(), []),
    Row(
        "Degraded -> Healthy after a succeeded deploy: recovery, not a second deploy",
        deployed_b(health="Degraded"),
        deployed_b(),
        [K.HEALTH_RECOVERED],
    ),
    Row(
        "deploy failed: the controller's message",
        steady(**PENDING_B, operation=OP_B_RUNNING),
        steady(**PENDING_B, operation=OP_B_FAILED),
        [K.DEPLOY_FAILED],
        {
            "actor": "automated",
            "revision": REV_B,
            "previous_revision": REV_A,
            "message": APPLY_ERROR,
            "severity": Severity.CRITICAL,
        },
    ),
    Row(
        "deploy error seen without its Running phase",
        steady(**PENDING_B),
        steady(**PENDING_B, operation=OP_B_ERROR),
        [K.DEPLOY_FAILED],
        {"actor": ALICE, "message": "rpc error"},
    ),
    Row(
        "Git moved and a deploy of it failed at once: deploy_failed, not out_of_sync too",
        steady(),
        steady(**PENDING_B, operation=OP_B_FAILED),
        [K.DEPLOY_FAILED],
    ),
    Row(
        "a failure seen twice: once",
        steady(**PENDING_B, operation=OP_B_FAILED),
        steady(**PENDING_B, operation=OP_B_FAILED),
        [],
    ),
    # rollback
    Row(
        "rollback running: no deploy_started, no out_of_sync",
        deployed_b(),
        deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_RUNNING),
        [],
    ),
    Row(
        "rollback succeeded: to an older history revision",
        deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_RUNNING),
        deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_OK, history=H_ROLLED_BACK),
        [K.ROLLBACK_SUCCEEDED],
        {"actor": ALICE, "revision": REV_A, "previous_revision": REV_B},
    ),
    Row(
        "rollback seen only once done: OutOfSync against Git is neither drift nor out_of_sync",
        deployed_b(),
        deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_OK, history=H_ROLLED_BACK),
        [K.ROLLBACK_SUCCEEDED],
        {"actor": ALICE, "revision": REV_A, "previous_revision": REV_B},
    ),
    Row(
        "a rollback done within the second it started is still a rollback",
        deployed_b(),
        deployed_b(
            sync="OutOfSync",
            operation=operation_state(
                "Succeeded", REV_A, started_at=at(10), finished_at=at(10), username=ALICE
            ),
            history=[*H_B, history_entry(4, REV_A, at(10), username=ALICE)],
        ),
        [K.ROLLBACK_SUCCEEDED],
        {"revision": REV_A, "previous_revision": REV_B},
    ),
    Row(
        "rolled back and OutOfSync: stays quiet",
        deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_OK, history=H_ROLLED_BACK),
        deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_OK, history=H_ROLLED_BACK),
        [],
    ),
    Row(
        "rollback failed",
        deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_RUNNING),
        deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_FAILED),
        [K.ROLLBACK_FAILED],
        {
            "actor": ALICE,
            "revision": REV_A,
            "message": "hook failed",
            "severity": Severity.CRITICAL,
        },
    ),
    # self-heal
    Row(
        "one self-heal corrects a one-off drift quietly",
        steady(auto_sync=True, self_heal=True),
        steady(auto_sync=True, self_heal=True, **DRIFTED, operation=heal(1, 5, "Running")),
        [],
    ),
    Row(
        "self-heal fight: autoHealAttemptsCount reaches the threshold",
        steady(auto_sync=True, self_heal=True, operation=heal(SELF_HEAL_FIGHT_ATTEMPTS - 1, 5)),
        steady(
            auto_sync=True,
            self_heal=True,
            **DRIFTED,
            operation=heal(SELF_HEAL_FIGHT_ATTEMPTS, 7, "Running"),
        ),
        [K.DRIFT_DETECTED],
        {"actor": "", "revision": REV_A, "resource_count": 1},
    ),
    Row(
        "the fight goes on: no new drift",
        steady(auto_sync=True, self_heal=True, operation=heal(SELF_HEAL_FIGHT_ATTEMPTS, 7)),
        steady(auto_sync=True, self_heal=True, **DRIFTED, operation=heal(3, 9, "Running")),
        [],
    ),
    Row(
        "Synced for a moment during the fight: not resolved",
        steady(auto_sync=True, self_heal=True, **DRIFTED, operation=heal(3, 9, "Running")),
        steady(auto_sync=True, self_heal=True, operation=heal(3, 9)),
        [],
    ),
    Row(
        "the fight ends when Argo CD's count falls back",
        steady(auto_sync=True, self_heal=True, operation=heal(3, 9)),
        steady(auto_sync=True, self_heal=True, operation=heal(0, 20)),
        [K.DRIFT_RESOLVED],
    ),
    # health
    Row(
        "health degraded",
        steady(),
        steady(health="Degraded"),
        [K.HEALTH_DEGRADED],
        {"severity": Severity.CRITICAL, "message": ""},
    ),
    Row(
        "health degraded says why: the app's health message",
        steady(),
        steady(health="Degraded", health_message="2 of 3 replicas crash"),
        [K.HEALTH_DEGRADED],
        {"message": "2 of 3 replicas crash"},
    ),
    Row(
        "health degraded says why: the unhealthy resources with their messages",
        steady(),
        steady(
            health="Degraded",
            unhealthy=[
                ("Deployment", "test-lla", "test-lla", "Degraded", "exceeded its progress deadline")
            ],
        ),
        [K.HEALTH_DEGRADED],
        {
            "message": "",
            "resources": (
                ResourceRef(
                    "Deployment",
                    "test-lla",
                    "test-lla",
                    "Degraded",
                    "exceeded its progress deadline",
                ),
            ),
            "resource_count": 1,
        },
    ),
    Row("health missing", steady(), steady(health="Missing"), [K.HEALTH_DEGRADED]),
    Row(
        "Degraded -> Missing: still one problem",
        steady(health="Degraded"),
        steady(health="Missing"),
        [],
    ),
    Row("Degraded -> Healthy", steady(health="Degraded"), steady(), [K.HEALTH_RECOVERED]),
    Row("Missing -> Healthy", steady(health="Missing"), steady(), [K.HEALTH_RECOVERED]),
    Row("Healthy -> Progressing: nothing", steady(), steady(health="Progressing"), []),
    Row(
        "Degraded -> Progressing: not recovered yet",
        steady(health="Degraded"),
        steady(health="Progressing"),
        [],
    ),
    # auto-sync
    Row("auto-sync turned off: suspended", steady(auto_sync=True), steady(), [K.SUSPENDED]),
    Row("auto-sync turned on: resumed", steady(), steady(auto_sync=True), [K.RESUMED]),
    Row(
        "auto-sync turned off for a rollback: still suspended",
        deployed_b(auto_sync=True),
        deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_RUNNING, auto_sync=False),
        [K.SUSPENDED],
    ),
    # source
    Row(
        "source failed: Unknown with a ComparisonError",
        steady(),
        steady(sync="Unknown", conditions=[("ComparisonError", NOT_FOUND)]),
        [K.SOURCE_FAILED],
        {"message": NOT_FOUND, "severity": Severity.WARNING},
    ),
    Row(
        "source failure that stays: once",
        steady(sync="Unknown", conditions=[("ComparisonError", NOT_FOUND)]),
        steady(sync="Unknown", conditions=[("ComparisonError", NOT_FOUND)]),
        [],
    ),
    Row(
        "source recovered",
        steady(sync="Unknown", conditions=[("ComparisonError", NOT_FOUND)]),
        steady(),
        [K.SOURCE_RECOVERED],
    ),
    Row("Unknown without a ComparisonError: nothing", steady(), steady(sync="Unknown"), []),
    Row(
        "a warning condition while Synced is no source failure",
        steady(),
        steady(conditions=[("SharedResourceWarning", "shared with app other")]),
        [],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_transition(row: Row) -> None:
    prev = app_state(row.prev, when(0))
    cur = app_state(row.cur, NOW)
    events = transitions(prev, cur, NOW)
    assert [e.kind for e in events] == row.kinds
    for name, value in row.fields.items():
        assert getattr(events[0], name) == value, name
    for event in events:
        assert event.name == "velero-test"
        assert event.namespace == "argo-cd"
        assert event.object_kind == "Application"
        assert event.occurred_at == NOW


def test_fight_message_says_something_keeps_changing_live_state() -> None:
    fight = next(r for r in ROWS if r.name.startswith("self-heal fight"))
    events = transitions(app_state(fight.prev), app_state(fight.cur), NOW)
    assert "keeps changing the live state" in events[0].message


def test_problem_events_default_severity() -> None:
    for row in ROWS:
        for event in transitions(app_state(row.prev), app_state(row.cur), NOW):
            assert event.severity is DEFAULT_SEVERITY[event.kind], row.name


def test_helm_deploy_carries_chart_versions() -> None:
    history = [
        history_entry(1, "0.45.26", at(-60), automated=True),
        history_entry(2, "0.45.27", at(1), started_at=at(0), automated=True),
    ]
    op = operation_state(
        "Succeeded", "0.45.27", started_at=at(0), finished_at=at(1), automated=True
    )
    running = operation_state("Running", "0.45.27", started_at=at(0), automated=True)
    prev = argocd_app(
        "argo-workflows",
        base=LIVE_CHILD,
        sync="OutOfSync",
        desired="0.45.27",
        history=history[:1],
        operation=running,
    )
    cur = argocd_app(
        "argo-workflows", base=LIVE_CHILD, desired="0.45.27", history=history, operation=op
    )
    events = transitions(app_state(prev), app_state(cur), NOW)
    assert [e.kind for e in events] == [K.DEPLOY_SUCCEEDED, K.DRIFT_RESOLVED]
    deploy = events[0]
    assert (deploy.revision, deploy.previous_revision) == ("0.45.27", "0.45.26")
    assert (deploy.chart_version, deploy.previous_chart_version) == ("0.45.27", "0.45.26")
    assert deploy.namespace == "argocd"


def test_same_change_same_ids() -> None:
    row = next(r for r in ROWS if r.name.startswith("deploy succeeded"))
    first = transitions(app_state(row.prev), app_state(row.cur), NOW)
    again = transitions(app_state(row.prev), app_state(row.cur), NOW)
    assert [e.id for e in first] == [e.id for e in again]
    assert len({e.id for e in first}) == len(first)


# Hints


@pytest.mark.parametrize("fixture", ARGOCD_EVENTS)
@pytest.mark.parametrize("with_state", [True, False])
def test_hints_add_nothing_beyond_the_status(fixture: str, with_state: bool) -> None:
    hint = normalize_event(load_fixture(fixture), "prod", NOW)
    assert not isinstance(hint, Rejected)
    state = app_state(deployed_b()) if with_state else None
    assert from_hint(hint, state, NOW) == []


# Properties: detection reacts to changes, never to levels.

_PHASES = st.sampled_from(["Running", "Succeeded", "Failed", "Error", "Terminating"])
_REVS = st.sampled_from([REV_OLD, REV_A, REV_B])


@st.composite
def app_states(draw: st.DrawFn) -> dict[str, Any]:
    history = draw(st.sampled_from([[], H_A, H_B, H_ROLLED_BACK]))
    operation: Any = None
    if draw(st.booleans()):
        operation = operation_state(
            draw(_PHASES),
            draw(_REVS),
            started_at=at(draw(st.integers(-200, 20))),
            finished_at=at(30),
            automated=draw(st.booleans()),
            username=ALICE,
            auto_heal_attempts=draw(st.integers(0, 4)),
        )
    return argocd_app(
        sync=draw(st.sampled_from(["Synced", "OutOfSync", "Unknown"])),
        health=draw(st.sampled_from(["Healthy", "Progressing", "Degraded", "Missing", "?"])),
        desired=draw(_REVS),
        history=history,
        operation=operation,
        auto_sync=draw(st.booleans()),
        self_heal=draw(st.booleans()),
        out_of_sync=draw(st.sampled_from([(), (DEPLOYMENT,)])),
        conditions=draw(st.sampled_from([(), (("ComparisonError", NOT_FOUND),)])),
    )


@settings(max_examples=200, deadline=None)
@given(app_states())
def test_no_change_no_event(raw: dict[str, Any]) -> None:
    state = app_state(raw)
    assert transitions(state, state, NOW) == []


@settings(max_examples=200, deadline=None)
@given(app_states(), app_states())
def test_any_pair_gives_events_about_this_app(a: dict[str, Any], b: dict[str, Any]) -> None:
    prev, cur = app_state(a), app_state(b)
    events: list[GitOpsEvent] = transitions(prev, cur, NOW)
    assert len({e.kind for e in events}) == len(events)
    assert all(e.key == cur.key and e.occurred_at == NOW for e in events)
    assert events == transitions(prev, cur, NOW)


def test_a_day_in_the_life_through_the_dispatcher() -> None:
    """A timeline through core.detect: the first sight is a silent baseline, then one event per
    change, none for states seen again."""
    timeline: list[tuple[dict[str, Any], list[EventKind]]] = [
        (steady(auto_sync=True), []),
        (steady(auto_sync=True), []),
        (steady(**PENDING_B, auto_sync=True), []),
        (steady(**PENDING_B, auto_sync=True, operation=OP_B_RUNNING), [K.DEPLOY_STARTED]),
        (
            deployed_b(auto_sync=True, sync="OutOfSync", health="Progressing", reconciled_at=at(0)),
            [],
        ),
        (deployed_b(auto_sync=True, health="Progressing"), [K.DRIFT_RESOLVED]),
        (deployed_b(auto_sync=True), [K.DEPLOY_SUCCEEDED, K.HEALTH_RECOVERED]),
        (deployed_b(auto_sync=True, **DRIFTED), [K.DRIFT_DETECTED]),
        (deployed_b(auto_sync=True), [K.DRIFT_RESOLVED]),
        (deployed_b(), [K.SUSPENDED]),
        (deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_RUNNING), []),
        (
            deployed_b(sync="OutOfSync", operation=OP_ROLLBACK_OK, history=H_ROLLED_BACK),
            [K.ROLLBACK_SUCCEEDED],
        ),
        (
            deployed_b(
                sync="OutOfSync", operation=OP_ROLLBACK_OK, history=H_ROLLED_BACK, health="Degraded"
            ),
            [K.HEALTH_DEGRADED],
        ),
    ]
    previous = None
    for step, (raw, kinds) in enumerate(timeline):
        now = when(step)
        current = app_state(raw, now)
        assert [e.kind for e in detect(previous, current, now)] == kinds, step
        previous = current
