"""Detection for Flux: status transitions and controller reports to GitOpsEvents. Decides only.

Rules (transitions, not levels):
- deploy_started: a new lastAttemptedRevision that is not applied yet and not failing.
- deploy_succeeded: Ready=True with a new lastAppliedRevision (Kustomization) or a new
  history[0] release (HelmRelease, chart version from -> to); also Ready=True again after a
  deploy failure (the recovery that closes it).
- deploy_failed: Ready=False with a failure reason, on entering failure or on a new reason or
  attempted revision. DependencyNotReady is a deploy failure of severity warning (the object
  cannot deploy, but the cause has its own alert). HealthCheckFailed is a deploy failure while
  the attempted revision is not applied yet, and health_degraded when the applied revision itself
  turned unhealthy; Ready=True again gives health_recovered.
- rollback_succeeded / rollback_failed: HelmRelease Remediated=True RollbackSucceeded /
  Remediated=False RollbackFailed, with the target parsed from the controller's message.
- out_of_sync: lastAttemptedRevision differs from the applied revision while not failing and
  not after a rollback (Remediated=True: the rollback event already says what runs).
- suspended / resumed: spec.suspend; source_failed / source_recovered: a source kind's Ready.
- drift (from reports only, the status has none): HelmRelease DriftDetected / DriftCorrected;
  a Kustomization change set at the applied revision is drift (at a new revision it is the
  deploy), and the next clean reconcile report ("Reconciliation finished", Ready=True, same
  revision) resolves it: Flux corrects drift as it finds it, so whether people hear of drift
  that was corrected at once is the route's grace, not detection's.

Ready=Unknown while a reconcile runs hides the last outcome; it is recovered from what the
status keeps: a Kustomization's history[0].lastReconciledStatus, a HelmRelease's Released
condition. A retry loop that reports the same failure again yields a new event with a new id;
the policy suppresses it while the first is open. Ids come from `make_event` (the object, the
revisions and the time: a transition's `now`, a report's own time), except where two paths see
the same fact: a rollback's id comes from its target release (the Remediated condition and the
controller's Event agree), a Helm release's deploy from the release version.

Reports (Events, notifications) about an object whose status is watched add only what the
status cannot show (drift); for an object known only from reports, failures, rollbacks and
Helm releases come from the reports themselves. Routine info produces nothing.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from core.model import (
    FLUX_SOURCE_KINDS,
    MAX_RESOURCES,
    AppState,
    EventKind,
    GitOpsEvent,
    Hint,
    HistoryEntry,
    ResourceRef,
    Severity,
    bare_state,
    event_id,
    make_event,
)

__all__ = ["from_hint", "parse_change_set", "parse_rollback", "transitions"]

SOURCE_KINDS = frozenset(FLUX_SOURCE_KINDS)
APP_KINDS = frozenset({"Kustomization", "HelmRelease"})

NOT_FAILURES = frozenset(
    {
        "",
        "Progressing",
        "ProgressingWithRetry",
        "HealthCheckCanceled",
        "ReconciliationSucceeded",
        "Succeeded",
        "RollbackSucceeded",
        "RollbackFailed",
    }
)
"""Ready=False reasons that are not a deploy failure of their own (rollback has its kinds)."""

_KUSTOMIZATION_OK = "ReconciliationSucceeded"

_CHANGE_LINE = re.compile(
    r"^(?P<kind>[A-Za-z][\w.]*)/(?:(?P<ns>[^/\s]+)/)?(?P<name>[^/\s]+)"
    r" (?P<action>created|configured|deleted)$"
)
_DRIFT_LINE = re.compile(r"^(?P<kind>[A-Za-z][\w.]*)/(?:(?P<ns>[^/\s]+)/)?(?P<name>[^/\s]+)\b")
_ROLLBACK = re.compile(
    r"rollback to previous release (?P<release>\S+?)(?:\.v(?P<version>\d+))?"
    r" with chart (?P<chart>\S+?)@(?P<chart_version>\S+?)(?: succeeded|:? failed|$)"
)
_RELEASED = re.compile(r"with chart (?P<chart>\S+?)@(?P<chart_version>\S+?)(?:$|[\s,])")


# ---------------------------------------------------------------------------------------------
# parsing controller messages


def parse_change_set(message: str) -> tuple[ResourceRef, ...] | None:
    """The objects of a kustomize-controller change set, or None when `message` is not one.

    A change set is one line per changed object, `Kind/namespace/name action` (`Kind/name` for
    cluster-scoped objects), action created, configured or deleted.
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return None
    refs: list[ResourceRef] = []
    for line in lines:
        match = _CHANGE_LINE.match(line)
        if match is None:
            return None
        refs.append(ResourceRef(match["kind"], match["ns"] or "", match["name"]))
    return tuple(refs)


def _drift_resources(message: str) -> tuple[ResourceRef, ...]:
    """Objects named in a helm-controller drift report, one per line after the first."""
    refs: list[ResourceRef] = []
    for line in message.splitlines()[1:]:
        match = _DRIFT_LINE.match(line.strip())
        if match is not None:
            refs.append(ResourceRef(match["kind"], match["ns"] or "", match["name"]))
    return tuple(refs)


def parse_rollback(message: str) -> tuple[str, str, str] | None:
    """(release, chart, chart version) rolled back to, from a helm-controller rollback message:
    "Helm rollback to previous release podinfo/podinfo.v2 with chart podinfo@6.6.0 succeeded"
    gives ("podinfo/podinfo.v2", "podinfo", "6.6.0").
    """
    match = _ROLLBACK.search(message)
    if match is None:
        return None
    release = match["release"] + (f".v{match['version']}" if match["version"] else "")
    return release, match["chart"], match["chart_version"]


# ---------------------------------------------------------------------------------------------
# reading states


def _outcome(state: AppState) -> tuple[bool | None, str]:
    """The last known reconcile outcome (ready, reason), looking through Ready=Unknown."""
    if state.ready is not None:
        return state.ready, state.ready_reason
    if state.kind == "Kustomization" and state.history and state.history[0].status:
        last = state.history[0].status
        return last == _KUSTOMIZATION_OK, last
    if state.kind == "HelmRelease":
        released = state.condition("Released")
        if released is not None and released.status in ("True", "False"):
            return released.status == "True", released.reason
    return None, ""


def _problem(state: AppState) -> EventKind | None:
    """Which problem the state's last outcome is, if any."""
    ready, reason = _outcome(state)
    if ready is not False or reason in NOT_FAILURES:
        return None
    if state.kind in SOURCE_KINDS:
        return EventKind.SOURCE_FAILED
    if reason == "HealthCheckFailed" and state.desired_revision in ("", state.revision):
        return EventKind.HEALTH_DEGRADED
    return EventKind.DEPLOY_FAILED


def _release(entry: HistoryEntry | None) -> tuple[object, ...] | None:
    if entry is None:
        return None
    return (entry.id, entry.chart_version, entry.deployed_at)


def _watched(state: AppState | None) -> bool:
    """Whether the state came from the object's status (not only from its identity)."""
    return state is not None and bool(
        state.conditions or state.revision or state.desired_revision or state.history
    )


def _with_id(event: GitOpsEvent, *parts: object) -> GitOpsEvent:
    """The event with an id from its content, for facts that more than one path reports."""
    return replace(event, id=event_id(event.kind, *event.key, *parts))


# ---------------------------------------------------------------------------------------------
# status transitions


def transitions(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    """Events for a Flux object's move from `prev` to `cur` at `now` (pure)."""
    events: list[GitOpsEvent] = []
    if prev.suspended != cur.suspended:
        kind = EventKind.SUSPENDED if cur.suspended else EventKind.RESUMED
        events.append(make_event(kind, cur, now, message=""))
    if cur.kind in SOURCE_KINDS:
        events.extend(_readiness(prev, cur, now))
        return events
    if cur.kind not in APP_KINDS:
        return events
    events.extend(_deploy_started(prev, cur, now))
    events.extend(_readiness(prev, cur, now))
    rollback = _rollback(prev, cur, now) if cur.kind == "HelmRelease" else []
    if not rollback:
        events.extend(_deploy_succeeded(prev, cur, now))
    events.extend(rollback)
    events.extend(_out_of_sync(prev, cur, now))
    return events


def _deploy_started(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    if (
        cur.desired_revision
        and cur.desired_revision != prev.desired_revision
        and cur.desired_revision != cur.revision
        and _problem(cur) is None
    ):
        return [
            make_event(
                EventKind.DEPLOY_STARTED,
                cur,
                now,
                revision=cur.desired_revision,
                previous_revision=cur.revision,
                chart_version=cur.desired_revision if cur.kind == "HelmRelease" else None,
                previous_chart_version=cur.chart_version if cur.kind == "HelmRelease" else "",
                message="",
                resources=(),
            )
        ]
    return []


def _readiness(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    """Entering a problem (or a new reason or revision of it), and recovering from one."""
    before, after = _problem(prev), _problem(cur)
    _, prev_reason = _outcome(prev)
    _, cur_reason = _outcome(cur)
    if after is not None:
        if (
            after == before
            and cur_reason == prev_reason
            and cur.desired_revision == prev.desired_revision
        ):
            return []
        target = (
            cur.revision
            if after is EventKind.HEALTH_DEGRADED
            else (cur.desired_revision or cur.revision)
        )
        severity = Severity.WARNING if cur_reason == "DependencyNotReady" else None
        event = make_event(
            after,
            cur,
            now,
            severity=severity,
            revision=target,
            previous_revision=cur.revision if target != cur.revision else "",
            message="\n".join(m for m in (cur.message, cur.health_message) if m),
            resources=(),
        )
        return [event]
    if before is None or cur.ready is not True:
        return []
    if before is EventKind.SOURCE_FAILED:
        return [make_event(EventKind.SOURCE_RECOVERED, cur, now, resources=())]
    if before is EventKind.HEALTH_DEGRADED:
        return [make_event(EventKind.HEALTH_RECOVERED, cur, now, resources=())]
    if _is_new_deploy(prev, cur):
        return []  # the deploy itself is the recovery
    return [
        make_event(
            EventKind.DEPLOY_SUCCEEDED,
            cur,
            now,
            previous_revision=prev.revision if prev.revision != cur.revision else "",
            resources=(),
        )
    ]


def _is_new_deploy(prev: AppState, cur: AppState) -> bool:
    if cur.ready is not True:
        return False
    if cur.kind == "HelmRelease":
        latest = cur.history[0] if cur.history else None
        earlier = prev.history[0] if prev.history else None
        return latest is not None and _release(latest) != _release(earlier)
    return bool(cur.revision) and cur.revision != prev.revision


def _deploy_succeeded(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    if not _is_new_deploy(prev, cur):
        return []
    event = make_event(
        EventKind.DEPLOY_SUCCEEDED,
        cur,
        now,
        previous_revision=prev.revision if prev.revision != cur.revision else "",
        previous_chart_version=(
            prev.chart_version if prev.chart_version != cur.chart_version else ""
        ),
        resources=(),
    )
    if cur.kind == "HelmRelease" and cur.history:
        event = _with_id(event, *(_release(cur.history[0]) or ()))
    return [event]


def _rollback(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    remediated = cur.condition("Remediated")
    if remediated is None or remediated == prev.condition("Remediated"):
        return []
    if remediated.status == "True" and remediated.reason == "RollbackSucceeded":
        kind = EventKind.ROLLBACK_SUCCEEDED
    elif remediated.status == "False" and remediated.reason == "RollbackFailed":
        kind = EventKind.ROLLBACK_FAILED
    else:
        return []
    return [_rollback_event(kind, cur, now, remediated.message, prev)]


def _rollback_event(
    kind: EventKind, state: AppState, at: datetime, message: str, before: AppState | None
) -> GitOpsEvent:
    """A rollback event; its id comes from the rollback target, so the Remediated condition
    and the controller's Event about the same rollback agree."""
    parsed = parse_rollback(message)
    release, _chart, target = parsed if parsed is not None else ("", "", "")
    candidates = [before.chart_version] if before is not None else []
    candidates += [h.chart_version for h in state.history]
    previous = next((c for c in candidates if c and c != target), "") if target else ""
    event = make_event(
        kind,
        state,
        at,
        revision=target or state.revision,
        previous_revision=previous,
        chart_version=target or state.chart_version,
        previous_chart_version=previous,
        message=message,
        resources=(),
    )
    return _with_id(event, release, target, message if parsed is None else "")


def _out_of_sync(prev: AppState, cur: AppState, now: datetime) -> list[GitOpsEvent]:
    def pending(s: AppState) -> bool:
        return bool(s.revision and s.desired_revision and s.desired_revision != s.revision)

    remediated = cur.condition("Remediated")
    if remediated is not None and remediated.status == "True":
        return []  # the gap is the rollback's doing, and the rollback is reported
    if not pending(cur) or _problem(cur) is not None:
        return []
    if pending(prev) and prev.desired_revision == cur.desired_revision and _problem(prev) is None:
        return []
    event = make_event(
        EventKind.OUT_OF_SYNC,
        cur,
        now,
        revision=cur.desired_revision,
        previous_revision=cur.revision,
        message="",
        resources=(),
    )
    return [event]


# ---------------------------------------------------------------------------------------------
# reports: Kubernetes Events and notification-controller webhooks

_DRIFT_REASONS = frozenset({"DriftDetected"})
_DRIFT_RESOLVED_REASONS = frozenset({"DriftCorrected"})
_HELM_SUCCESS = frozenset({"InstallSucceeded", "UpgradeSucceeded"})
_QUIET_WARNINGS = frozenset({"DriftCorrectionFailed", "Progressing", "HealthCheckCanceled"})


def from_hint(hint: Hint, state: AppState | None, now: datetime) -> list[GitOpsEvent]:
    """Events that a Flux controller's report reveals about the object in `state` (pure).

    `state` is the object's last AppState, or None when it is known only from reports. The
    events' time is the report's own (`hint.occurred_at`); `now` is the pipeline's clock.
    """
    watched = _watched(state)
    base = state if state is not None else bare_state(hint.key, now)
    at = hint.occurred_at
    if hint.reason in _DRIFT_REASONS:
        return [_drift(EventKind.DRIFT_DETECTED, hint, base, _drift_resources(hint.message))]
    if hint.reason in _DRIFT_RESOLVED_REASONS:
        return [_drift(EventKind.DRIFT_RESOLVED, hint, base, ())]
    if hint.object_kind == "Kustomization" and not hint.warning:
        return _kustomization_report(hint, base, watched)
    if watched:
        return []
    if hint.reason in ("RollbackSucceeded", "RollbackFailed"):
        kind = (
            EventKind.ROLLBACK_SUCCEEDED
            if hint.reason == "RollbackSucceeded"
            else EventKind.ROLLBACK_FAILED
        )
        return [_rollback_event(kind, base, at, hint.message, None)]
    if hint.object_kind == "HelmRelease" and hint.reason in _HELM_SUCCESS and not hint.warning:
        return [_helm_release_report(hint, base)]
    if not hint.warning or hint.reason in _QUIET_WARNINGS:
        return []
    if hint.object_kind in SOURCE_KINDS:
        event = make_event(
            EventKind.SOURCE_FAILED, base, at, revision=hint.revision, message=hint.message
        )
        return [event]
    if hint.object_kind in APP_KINDS:
        severity = Severity.WARNING if hint.reason == "DependencyNotReady" else None
        event = make_event(
            EventKind.DEPLOY_FAILED,
            base,
            at,
            severity=severity,
            revision=hint.revision,
            message=hint.message,
        )
        return [event]
    return []


def _drift(
    kind: EventKind, hint: Hint, state: AppState, resources: tuple[ResourceRef, ...]
) -> GitOpsEvent:
    return make_event(
        kind,
        state,
        hint.occurred_at,
        revision=hint.revision or state.revision,
        message=hint.message,
        resources=resources[:MAX_RESOURCES],
        resource_count=len(resources),
    )


def _kustomization_report(hint: Hint, state: AppState, watched: bool) -> list[GitOpsEvent]:
    """A change set at the applied revision is drift; a clean reconcile report resolves it."""
    if not watched or not hint.revision or hint.revision != state.revision:
        return []
    changes = parse_change_set(hint.message)
    if changes is not None:
        return [_drift(EventKind.DRIFT_DETECTED, hint, state, changes)]
    if state.ready is True and hint.message.startswith("Reconciliation finished"):
        return [_drift(EventKind.DRIFT_RESOLVED, hint, state, ())]
    return []


def _helm_release_report(hint: Hint, state: AppState) -> GitOpsEvent:
    """A HelmRelease install/upgrade report for an object known only from reports."""
    match = _RELEASED.search(hint.message)
    chart_version = match["chart_version"] if match is not None else hint.revision
    return make_event(
        EventKind.DEPLOY_SUCCEEDED,
        state,
        hint.occurred_at,
        revision=chart_version,
        chart_version=chart_version,
        message=hint.message,
    )
