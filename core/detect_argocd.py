"""Argo CD detection: what changed between two AppStates of one Application. Decides, does nothing.

Every function here takes data and `now` and returns events; none keeps state. Each event fires
on a transition (the condition is true now and was not in `prev`), so an app that stays broken
produces one event, not one per watch event.

The rules, and the choices where Argo CD leaves room:

- The last operation (`operationState`) is read against the history that existed before it
  started (entries deployed before `startedAt`): the revision deployed before is the newest of
  those. A sync to a revision that is one of the older entries, not the one deployed before, is a
  rollback (`argocd app rollback`, or a sync to an old commit): it yields `rollback_succeeded` /
  `rollback_failed`, never `deploy_*`. A rollback older than the kept history (MAX_HISTORY) reads
  as a deploy.
- `deploy_started`: the operation enters Running for a revision other than the deployed one.
  Retries keep the phase Running, so they do not repeat it.
- `deploy_succeeded`: the operation is Succeeded at a new revision and health is Healthy; when
  health was still Progressing as the operation finished, it fires when health turns Healthy.
  Once per operation: a Degraded/Missing -> Healthy move after the operation succeeded is a
  `health_recovered`, not a second deploy.
- `deploy_failed`: the operation enters Failed or Error (Argo CD keeps it Running while it
  retries, so this is the final failure); the message is the controller's.
- Live drift (`drift_detected`): OutOfSync at the revision already deployed (desired ==
  deployed). Not announced while a sync is running (the app is OutOfSync by design then), nor
  while the sync status is older than the last operation's end (`reconciledAt` < `finishedAt`:
  Argo CD writes the operation's result before it compares again, so right after every deploy
  the status still says OutOfSync for a moment); the next comparison decides.
- Self-heal fight (`drift_detected`, "something keeps changing the live state"): the
  operation's autoHealAttemptsCount reaches SELF_HEAL_FIGHT_ATTEMPTS. A single self-heal is an
  ordinary corrected drift. While the fight lasts, the app's OutOfSync/Synced flips are part of
  it and produce no drift events of their own; it ends when Argo CD's count falls back (a new
  operation that is not a repeated self-heal).
- `drift_resolved`: OutOfSync -> Synced (or a fight's end while Synced), whenever it happens: the
  policy stage announces a recovery only if the problem was announced.
- Pending deploy (`out_of_sync`, info): OutOfSync because Git moved (desired != deployed) while
  auto-sync is off, and the last operation did not target the desired revision (a running or
  failed deploy of it is deploy_* news, not a pending one); revision = the desired one,
  previous_revision = the deployed one. With auto-sync on nothing fires (a deploy is coming).
  While the latest operation is a rollback the app is OutOfSync against Git by intent: neither
  drift nor out_of_sync.
- `health_degraded`: into Degraded or Missing; it says why: the app's health message and the
  unhealthy resources with theirs. `health_recovered`: from any other health into
  Healthy (the policy pairs it with an announced degradation, as for drift_resolved).
- `suspended` / `resumed`: auto-sync on -> off / off -> on. Also when auto-sync was turned off
  for a rollback (Argo CD's UI does so): the app then no longer follows Git until someone turns
  auto-sync back on, which is exactly what people must hear; the rollback event says why.
- `source_failed` / `source_recovered`: sync Unknown with a ComparisonError condition (the
  repo-server could not render the source) appears / goes away.
- actor: "automated" for operations the controller started, else the initiating user.

Kubernetes Events (`from_hint`) add nothing that the Application status does not already carry:
the rollback's user is `operationState.operation.initiatedBy.username`, the automated sync's
revision is the operation's, and the sync/health updates are the status itself. Events are also
lossy (they expire, and may be missed), while the status is authoritative and complete. So hints
yield no events; they stay useful to the caller as an audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.model import (
    AppState,
    EventKind,
    GitOpsEvent,
    Health,
    Hint,
    HistoryEntry,
    Operation,
    SyncStatus,
    make_event,
)

__all__ = ["AUTOMATED", "SELF_HEAL_FIGHT_ATTEMPTS", "from_hint", "transitions"]

AUTOMATED = "automated"
"""The actor of operations the application controller starts by itself."""

SELF_HEAL_FIGHT_ATTEMPTS = 2
"""autoHealAttemptsCount from which self-heal is fighting something, not fixing a one-off drift."""

RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = frozenset({"Failed", "Error"})
BAD_HEALTH = frozenset({Health.DEGRADED, Health.MISSING})
COMPARISON_ERROR = "ComparisonError"


@dataclass(frozen=True, slots=True)
class _OperationView:
    """What a state's last operation means: its identity, target and the revision before it."""

    key: object
    phase: str
    target: str
    before: str
    before_chart_version: str
    rollback: bool
    actor: str
    message: str

    @property
    def deploys_new_revision(self) -> bool:
        return bool(self.target) and self.target != self.before and not self.rollback


def transitions(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    """Events for one Application's move from `prev` to `cur` at `now` (pure)."""
    return [
        *_source_events(prev, cur, now),
        *_auto_sync_events(prev, cur, now),
        *_operation_events(prev, cur, now),
        *_health_events(prev, cur, now),
        *_drift_events(prev, cur, now),
    ]


def from_hint(hint: Hint, state: AppState | None, now: datetime) -> list[GitOpsEvent]:
    """Events an Argo CD Kubernetes Event reveals beyond the status: none (see module doc)."""
    return []


def _operation_events(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    view = _operation_view(cur)
    if view is None:
        return []
    before = _operation_view(prev)
    same = before is not None and before.key == view.key

    def entered(*phases: str) -> bool:
        already = same and before is not None and before.phase in phases
        return view.phase in phases and not already

    def event(kind: EventKind, message: str = "", previous_chart_version: str = "") -> GitOpsEvent:
        return _event(
            kind,
            cur,
            now,
            actor=view.actor,
            revision=view.target,
            previous_revision=view.before,
            previous_chart_version=previous_chart_version,
            message=message,
            with_resources=kind is EventKind.DEPLOY_FAILED,
        )

    events: list[GitOpsEvent] = []
    if entered(RUNNING) and view.deploys_new_revision:
        events.append(event(EventKind.DEPLOY_STARTED))
    if view.rollback:
        if entered(SUCCEEDED):
            events.append(event(EventKind.ROLLBACK_SUCCEEDED))
        elif entered(*FAILED):
            events.append(event(EventKind.ROLLBACK_FAILED, view.message))
        return events
    if entered(*FAILED):
        events.append(event(EventKind.DEPLOY_FAILED, view.message))
    if _deployed(cur, view) and not (same and before is not None and _counted(prev, before)):
        old_chart = view.before_chart_version
        changed = old_chart if old_chart != cur.chart_version else ""
        events.append(event(EventKind.DEPLOY_SUCCEEDED, previous_chart_version=changed))
    return events


def _deployed(state: AppState, view: _OperationView) -> bool:
    return view.phase == SUCCEEDED and view.deploys_new_revision and state.health is Health.HEALTHY


def _counted(prev: AppState, before: _OperationView) -> bool:
    """Whether this operation's deploy_succeeded was emitted already, or must not be any more."""
    return _deployed(prev, before) or (before.phase == SUCCEEDED and prev.health in BAD_HEALTH)


def _health_events(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    if cur.health in BAD_HEALTH and prev.health not in BAD_HEALTH:
        why = make_event(
            EventKind.HEALTH_DEGRADED,
            cur,
            now,
            message=cur.health_message,
            resources=cur.unhealthy_resources,
            resource_count=cur.unhealthy_count,
        )
        return [why]
    if cur.health is Health.HEALTHY and prev.health is not Health.HEALTHY:
        return [_event(EventKind.HEALTH_RECOVERED, cur, now)]
    return []


def _drift_events(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    events: list[GitOpsEvent] = []
    fighting, was_fighting = _fighting(cur), _fighting(prev)
    if fighting and not was_fighting:
        attempts = cur.operation.auto_heal_attempts if cur.operation else 0
        message = f"something keeps changing the live state (self-healed {attempts} times)"
        events.append(
            _event(EventKind.DRIFT_DETECTED, cur, now, message=message, with_resources=True)
        )
    if _live_drift(cur) and not _live_drift(prev) and not fighting and not _operation_running(cur):
        events.append(_event(EventKind.DRIFT_DETECTED, cur, now, with_resources=True))
    if (
        cur.sync is SyncStatus.SYNCED
        and not fighting
        and (prev.sync is SyncStatus.OUT_OF_SYNC or was_fighting)
    ):
        events.append(_event(EventKind.DRIFT_RESOLVED, cur, now))
    if _pending_deploy(cur) and not _pending_deploy(prev):
        events.append(
            _event(
                EventKind.OUT_OF_SYNC,
                cur,
                now,
                revision=cur.desired_revision,
                previous_revision=cur.revision,
                with_resources=True,
            )
        )
    return events


def _auto_sync_events(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    if prev.auto_sync and not cur.auto_sync:
        return [_event(EventKind.SUSPENDED, cur, now)]
    if cur.auto_sync and not prev.auto_sync:
        return [_event(EventKind.RESUMED, cur, now)]
    return []


def _source_events(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    error, was_error = _source_error(cur), _source_error(prev)
    if error and not was_error:
        return [_event(EventKind.SOURCE_FAILED, cur, now, message=error)]
    if was_error and not error:
        return [_event(EventKind.SOURCE_RECOVERED, cur, now)]
    return []


def _source_error(state: AppState) -> str:
    """The ComparisonError message while the source cannot be rendered, else ""."""
    if state.sync is not SyncStatus.UNKNOWN:
        return ""
    cond = state.condition(COMPARISON_ERROR)
    return "" if cond is None else (cond.message or COMPARISON_ERROR)


def _live_drift(state: AppState) -> bool:
    return (
        state.sync is SyncStatus.OUT_OF_SYNC
        and bool(state.revision)
        and state.desired_revision == state.revision
        and not _rollback_is_latest(state)
        and not _sync_status_stale(state)
    )


def _sync_status_stale(state: AppState) -> bool:
    """Whether the sync status predates the end of the last operation (not compared since)."""
    op = state.operation
    return (
        op is not None
        and op.finished_at is not None
        and state.reconciled_at is not None
        and state.reconciled_at < op.finished_at
    )


def _pending_deploy(state: AppState) -> bool:
    """Git moved and nobody has tried to deploy it yet (an attempt is deploy_* news)."""
    op = state.operation
    return (
        state.sync is SyncStatus.OUT_OF_SYNC
        and bool(state.desired_revision)
        and state.desired_revision != state.revision
        and not state.auto_sync
        and not (op is not None and op.revision == state.desired_revision)
        and not _rollback_is_latest(state)
    )


def _fighting(state: AppState) -> bool:
    op = state.operation
    return op is not None and op.auto_heal_attempts >= SELF_HEAL_FIGHT_ATTEMPTS


def _operation_running(state: AppState) -> bool:
    return state.operation is not None and state.operation.phase == RUNNING


def _rollback_is_latest(state: AppState) -> bool:
    view = _operation_view(state)
    return view is not None and view.rollback


def _operation_view(state: AppState) -> _OperationView | None:
    op = state.operation
    if op is None:
        return None
    prior = _history_before(state, op)
    target = op.revision or (state.revision if op.phase == SUCCEEDED else "")
    before = prior[0] if prior else None
    rollback = (
        bool(target)
        and before is not None
        and target != before.revision
        and any(entry.revision == target for entry in prior[1:])
    )
    return _OperationView(
        key=op.started_at if op.started_at is not None else (op.revision, op.initiated_by),
        phase=op.phase,
        target=target,
        before=before.revision if before else "",
        before_chart_version=before.chart_version if before else "",
        rollback=rollback,
        actor=AUTOMATED if op.automated else op.initiated_by,
        message=op.message,
    )


def _history_before(state: AppState, op: Operation) -> tuple[HistoryEntry, ...]:
    """History as it was when `op` started: entries deployed before its start."""
    if op.started_at is None:
        head = state.history[:1]
        if op.phase == SUCCEEDED and head and head[0].revision == op.revision:
            return state.history[1:]
        return state.history
    started = op.started_at
    return tuple(h for h in state.history if h.deployed_at is None or h.deployed_at < started)


def _event(
    kind: EventKind,
    state: AppState,
    now: datetime,
    *,
    with_resources: bool = False,
    revision: str | None = None,
    previous_revision: str = "",
    previous_chart_version: str = "",
    actor: str = "",
    message: str = "",
) -> GitOpsEvent:
    """make_event with the controller's message only where given, resources only where useful."""
    return make_event(
        kind,
        state,
        now,
        revision=revision,
        previous_revision=previous_revision,
        previous_chart_version=previous_chart_version,
        actor=actor,
        message=message,
        resources=None if with_resources else (),
        resource_count=None if with_resources else 0,
    )
