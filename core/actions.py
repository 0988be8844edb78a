"""Acting on an app from chat, decided: what an action would do, whether the tool would refuse
it, whether a confirmation or an approval still counts, and what the watch says came of it.

Pure: every function takes the facts (the app as last seen, the pending action, `now`) and
returns a value. Doing it (Kubernetes patches, Argo CD API calls) is bot/actions'; wording it
is formatters/actions'. A refusal carries a `code` and the facts a sentence needs, so the
words live in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from core.model import AppKey, AppState, HistoryEntry, Tool


class Verb(StrEnum):
    SYNC = "sync"
    ROLLBACK = "rollback"
    REFRESH = "refresh"
    TERMINATE = "terminate"
    RECONCILE = "reconcile"
    SUSPEND = "suspend"
    RESUME = "resume"


ARGOCD_VERBS = frozenset({Verb.SYNC, Verb.ROLLBACK, Verb.REFRESH, Verb.TERMINATE})
FLUX_VERBS = frozenset({Verb.RECONCILE, Verb.SUSPEND, Verb.RESUME})
RUNNING = frozenset({"Running", "Terminating"})
"""Argo CD operation phases of an operation still under way."""


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What someone asked for: a verb on one app, with its arguments."""

    verb: Verb
    key: AppKey
    revision: str = ""
    """sync: the revision to sync to; empty: the one the app's spec names."""
    history_id: str = ""
    """rollback: the Argo CD history id to go back to; empty: the last good one."""
    with_source: bool = False
    """reconcile: reconcile the object's source first, as `flux reconcile --with-source`."""


@dataclass(frozen=True, slots=True)
class Plan:
    """An action that may go ahead, with the facts its confirmation shows."""

    request: ActionRequest
    from_revision: str = ""
    to_revision: str = ""
    target: HistoryEntry | None = None
    """rollback: the history entry rolled back to."""
    choices: tuple[HistoryEntry, ...] = ()
    """rollback: the history entries one may choose instead (newest first)."""
    project: str = ""


RefusalCode = Literal[
    "unknown_app", "gone", "wrong_tool", "auto_sync", "no_history", "no_such_history",
    "running", "not_running", "suspended", "already_suspended", "not_suspended",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Refusal:
    """The tool would refuse this (or it makes no sense): said up front, in plain words."""

    code: RefusalCode
    facts: dict[str, str] = field(default_factory=dict)


def plan(request: ActionRequest, state: AppState | None) -> Plan | Refusal:
    """Decide whether `request` can go ahead on the app as last seen, and what it would do."""
    key = request.key
    facts = {"app": key.name, "cluster": key.cluster, "verb": request.verb.value}
    if state is None:
        return Refusal("unknown_app", facts)
    if state.deleted:
        return Refusal("gone", facts)
    wanted = Tool.ARGOCD if request.verb in ARGOCD_VERBS else Tool.FLUX
    if state.tool != wanted:
        return Refusal("wrong_tool", {**facts, "kind": state.kind, "tool": state.tool.value})
    verb = request.verb
    running = state.operation is not None and state.operation.phase in RUNNING
    if verb in (Verb.SYNC, Verb.ROLLBACK) and running:
        return Refusal("running", facts)
    if verb is Verb.SYNC:
        return Plan(request, state.revision, request.revision, project=state.project)
    if verb is Verb.ROLLBACK:
        return _rollback(request, state, facts)
    if verb is Verb.TERMINATE and not running:
        return Refusal("not_running", facts)
    if verb is Verb.RECONCILE and state.suspended:
        return Refusal("suspended", facts)
    if verb is Verb.SUSPEND and state.suspended:
        return Refusal("already_suspended", facts)
    if verb is Verb.RESUME and not state.suspended:
        return Refusal("not_suspended", facts)
    return Plan(request, state.revision, project=state.project)


def _rollback(request: ActionRequest, state: AppState, facts: dict[str, str]) -> Plan | Refusal:
    if state.auto_sync:
        return Refusal("auto_sync", facts)
    history = tuple(h for h in state.history if h.id)
    if request.history_id:
        target = next((h for h in history if h.id == request.history_id), None)
        if target is None:
            ids = ", ".join(h.id for h in history) or "none"
            return Refusal("no_such_history", {**facts, "id": request.history_id, "ids": ids})
    else:
        target = last_good(state)
        if target is None:
            return Refusal("no_history", facts)
    choices = tuple(h for h in history if h.revision != state.revision)
    resolved = dataclasses.replace(request, history_id=target.id)
    return Plan(resolved, state.revision, target.revision, target, choices, state.project)


def last_good(state: AppState) -> HistoryEntry | None:
    """The newest history entry at another revision than the one running now: the revision
    before the change that is being rolled back."""
    return next((h for h in state.history if h.id and h.revision != state.revision), None)


# --- confirmation and approval --------------------------------------------------------------

Stage = Literal["asked", "awaiting_approval", "acting", "done", "refused"]


@dataclass(frozen=True, slots=True)
class Pending:
    """An action between its modal and its result."""

    id: str
    plan: Plan
    asked_by: str
    asked_at: datetime
    """When the confirmation was shown; it must be submitted within CONFIRM_WITHIN."""
    stage: Stage = "asked"
    reason: str = ""
    confirmed_at: datetime | None = None
    approved_by: str = ""
    channel: str = ""
    thread_ts: str = ""
    """The alert the action was clicked on, whose thread hears how it went."""


Verdict = Literal[
    "go", "wait_for_approval", "stale", "done_already", "not_yours", "expired", "same_person",
    "not_awaiting",
]  # fmt: skip


def confirm(
    pending: Pending,
    user: str,
    reason: str,
    now: datetime,
    within: timedelta,
    needs_approval: bool,
) -> tuple[Pending, Verdict]:
    """A submitted confirmation: go, wait for a second deployer, or refuse (stale, submitted
    twice, or by someone else)."""
    if pending.stage != "asked":
        return pending, "done_already"
    if user != pending.asked_by:
        return pending, "not_yours"
    if now - pending.asked_at > within:
        return dataclasses.replace(pending, stage="refused"), "stale"
    confirmed = dataclasses.replace(pending, reason=reason, confirmed_at=now)
    if needs_approval:
        return dataclasses.replace(confirmed, stage="awaiting_approval"), "wait_for_approval"
    return dataclasses.replace(confirmed, stage="acting"), "go"


def approve(
    pending: Pending, approver: str, now: datetime, within: timedelta
) -> tuple[Pending, Verdict]:
    """A second deployer's approval: only another person, only while it is still waiting, and
    only within `within` of the confirmation."""
    if pending.stage != "awaiting_approval":
        return pending, "not_awaiting" if pending.stage == "asked" else "done_already"
    if approver == pending.asked_by:
        return pending, "same_person"
    if pending.confirmed_at is None or now - pending.confirmed_at > within:
        return dataclasses.replace(pending, stage="refused"), "expired"
    return dataclasses.replace(pending, stage="acting", approved_by=approver), "go"


def approval_expired(pending: Pending, now: datetime, within: timedelta) -> bool:
    return (
        pending.stage == "awaiting_approval"
        and pending.confirmed_at is not None
        and now - pending.confirmed_at > within
    )


# --- the outcome, as the watch sees it --------------------------------------------------------

OutcomeKind = Literal["succeeded", "failed", "timed_out"]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    revision: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Started:
    """What acting left behind to recognise its own result by."""

    at: datetime
    """When the request was made (our clock)."""
    marker: str = ""
    """Flux: the reconcile.fluxcd.io/requestedAt value written. Argo CD: the username the
    operation was initiated by."""


SKEW = timedelta(seconds=60)
"""Clock difference between driftbot and the cluster that is tolerated when an operation's
start is matched to the request."""


def outcome(
    request: ActionRequest,
    started: Started,
    state: AppState | None,
    now: datetime,
    follow_for: timedelta,
) -> Outcome | None:
    """What came of an action, from the app as the watch saw it after; None: not yet."""
    seen = _seen(request, started, state) if state is not None else None
    if seen is not None:
        return seen
    if now - started.at > follow_for:
        return Outcome("timed_out")
    return None


def _seen(request: ActionRequest, started: Started, state: AppState) -> Outcome | None:
    verb = request.verb
    if state.deleted:
        return Outcome("failed", message="the object was deleted")
    if verb in (Verb.SYNC, Verb.ROLLBACK):
        op = state.operation
        if op is None or op.phase in RUNNING or op.started_at is None:
            return None
        if op.started_at < started.at - SKEW:
            return None
        if started.marker and op.initiated_by and op.initiated_by != started.marker:
            return None
        if op.phase == "Succeeded":
            return Outcome("succeeded", op.revision or state.revision, op.message)
        return Outcome("failed", op.revision, op.message or op.phase)
    if verb is Verb.REFRESH:
        if state.reconciled_at is not None and state.reconciled_at >= started.at - SKEW:
            return Outcome("succeeded", state.revision, state.sync.value)
        return None
    if verb is Verb.TERMINATE:
        op = state.operation
        if op is None or op.phase not in RUNNING:
            return Outcome("succeeded", state.revision, op.message if op else "")
        return None
    if verb is Verb.RECONCILE:
        if not started.marker or state.reconcile_handled != started.marker:
            return None
        if state.ready is True:
            return Outcome("succeeded", state.revision, state.message)
        if state.ready is False and state.ready_reason != "Progressing":
            return Outcome("failed", state.desired_revision, state.message or state.ready_reason)
        return None
    if verb is Verb.SUSPEND:
        return Outcome("succeeded", state.revision) if state.suspended else None
    return Outcome("succeeded", state.revision) if not state.suspended else None
