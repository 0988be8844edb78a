"""The stages of the policy chain, each of one shape: `stage(state, event, now, settings) ->
Outcome`, deciding the event or passing it on (see core.policy)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from core.flap import Flap, FlapKey, flapping_notice, is_flip, record_flip
from core.grouping import Group
from core.model import (
    PROBLEM_KINDS,
    RECOVERY_KINDS,
    AppKey,
    EventKind,
    GitOpsEvent,
)
from core.mutes import muted_by
from core.policy.groups import (
    _emit,
    _send_earlier,
)
from core.policy.state import (
    INFORMATIVE_RECOVERIES,
    RESOLVES,
    Action,
    Decision,
    Held,
    OpenAlert,
    PolicySettings,
    PolicyState,
    Reason,
    TextSeen,
    _push,
    _rid,
    _update,
)
from core.textnorm import normalize_message


class Outcome(NamedTuple):
    """What one stage made of one event: `passed` goes on to the next stage (None: decided)."""

    state: PolicyState
    passed: GitOpsEvent | None
    decisions: list[Decision]


Stage = Callable[[PolicyState, GitOpsEvent, datetime, PolicySettings], Outcome]


def drop_duplicates(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: refuse an id already announced, or already held."""
    held = state.held.get((settings.route, event.key, event.kind))
    if _rid(settings.route, event.id) in state.recent or (
        held is not None and held.event.id == event.id
    ):
        return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.DUPLICATE)])
    return Outcome(state, event, [])


def damp_flaps(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: count an app's flips; past `flap_flips` within `flap_window`, pass on one
    flapping notice instead (and drop the app's held problems); while flapping, keep quiet."""
    if settings.flap_flips <= 0 or not is_flip(event):
        return Outcome(state, event, [])
    key: FlapKey = (settings.route, event.key)
    flap = record_flip(state.flaps.get(key) or Flap(), now, settings.flap_window)
    state = _push(state, now + settings.flap_window, "flap", key)
    if flap.flapping:
        flap = dataclasses.replace(flap, last=event)
        state = _update(state, flaps=state.flaps.set(key, flap))
        return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.FLAPPING)])
    if len(flap.flips) <= settings.flap_flips:
        return Outcome(_update(state, flaps=state.flaps.set(key, flap)), event, [])
    notice = flapping_notice(event, settings.route, len(flap.flips), settings.flap_window)
    flap = dataclasses.replace(flap, notice=notice, last=event)
    targets = [(settings.route, event.key, k) for k in PROBLEM_KINDS]
    dropped = [state.held[k] for k in targets if k in state.held]
    state = _update(state, flaps=state.flaps.set(key, flap), held=state.held.remove(*targets))
    decisions = [Decision(h.event, Action.SUPPRESS, Reason.FLAPPING) for h in dropped]
    decisions.append(Decision(event, Action.SUPPRESS, Reason.FLAPPING))
    return Outcome(state, notice, decisions)


def skip_open(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: a problem already open or held for the same app says nothing new."""
    if event.kind in PROBLEM_KINDS:
        key = (settings.route, event.key, event.kind)
        if key in state.open:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.ALREADY_OPEN)])
        if key in state.held:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.ALREADY_HELD)])
    return Outcome(state, event, [])


def dedup_text(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: a problem or news whose kind and normalized message were sent for the same app
    within `dedup_window` says nothing new. Recoveries always pass: they close alerts."""
    if settings.dedup_window <= timedelta(0) or event.kind in RECOVERY_KINDS:
        return Outcome(state, event, [])
    seen = state.texts.get((settings.route, event.key, event.kind))
    if (
        seen is not None
        and now - seen.at < settings.dedup_window
        and seen.text == normalize_message(event.message)
    ):
        return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.DEDUP_TEXT)])
    return Outcome(state, event, [])


def hold_in_grace(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: hold problems for the grace; a recovery within it cancels the held problem.

    The cancelled problem is suppressed, and so is the recovery, unless it is informative
    (a deploy or rollback succeeded: news on its own) or also closes an open alert.
    A deletion drops the app's held problems.
    """
    route = settings.route
    if event.kind in PROBLEM_KINDS:
        if settings.grace <= timedelta(0) or event.kind in settings.immediate:
            return Outcome(state, event, [])
        key = (route, event.key, event.kind)
        held = Held(event, now + settings.grace, route)
        return Outcome(
            _update(
                state,
                held=state.held.set(key, held),
                due=state.due.push((held.due, event.id, key)),
            ),
            None,
            [Decision(event, Action.HOLD, Reason.IN_GRACE)],
        )
    if event.kind in RESOLVES:
        targets = [(route, event.key, k) for k in RESOLVES[event.kind]]
        cancelled = [state.held[k] for k in targets if k in state.held]
        if not cancelled:
            return Outcome(state, event, [])
        new_state = _update(state, held=state.held.remove(*targets))
        decisions = [Decision(h.event, Action.SUPPRESS, Reason.GRACE) for h in cancelled]
        closes_open = any(k in state.open for k in targets)
        if event.kind in INFORMATIVE_RECOVERIES or closes_open:
            return Outcome(new_state, event, decisions)
        decisions.append(Decision(event, Action.SUPPRESS, Reason.GRACE))
        return Outcome(new_state, None, decisions)
    if event.kind is EventKind.DELETED:
        targets = [(route, event.key, k) for k in PROBLEM_KINDS]
        dropped = [state.held[k] for k in targets if k in state.held]
        if not dropped:
            return Outcome(state, event, [])
        new_state = _update(state, held=state.held.remove(*targets))
        decisions = [Decision(h.event, Action.SUPPRESS, Reason.DELETED) for h in dropped]
        return Outcome(new_state, event, decisions)
    return Outcome(state, event, [])


def apply_mutes(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: an event about a muted app is suppressed. A muted recovery still closes the
    alerts it resolves, so nothing stays open behind the mute."""
    if not state.mutes or muted_by(state.mutes.values(), event, now) is None:
        return Outcome(state, event, [])
    if event.kind in RESOLVES or event.kind is EventKind.DELETED:
        kinds = RESOLVES.get(event.kind, tuple(PROBLEM_KINDS))
        targets = [(settings.route, event.key, k) for k in kinds]
        state = _update(
            state,
            open=state.open.remove(*targets),
            recent=state.recent.add(_rid(settings.route, event.id), event.occurred_at),
        )
    return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.MUTED)])


def announce(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Last stage: send, opening an alert for a problem and closing those a recovery resolves.

    A recovery closing alerts is amended: `resolves` is the oldest closed problem's id and
    `since` when it began; it joins the group its problem was sent in. A pure recovery that
    closes nothing is suppressed. A deletion closes every alert of the app. What is sent goes
    to its group, which sends it now or later (see `group_wait`).
    """
    route = settings.route
    key = (route, event.key, event.kind)
    rid = _rid(route, event.id)
    if event.kind in PROBLEM_KINDS:
        if key in state.open:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.ALREADY_OPEN)])
        state = _remember_text(
            _update(state, recent=state.recent.add(rid, event.occurred_at)), event, now, settings
        )
        state, gid, decisions = _emit(state, event, now, settings, Reason.IMMEDIATE)
        state = _update(state, open=state.open.set(key, OpenAlert(event, now, route, gid)))
        return Outcome(state, None, decisions)
    if event.kind in RESOLVES or event.kind is EventKind.DELETED:
        kinds = RESOLVES.get(event.kind, tuple(PROBLEM_KINDS))
        targets = [(route, event.key, k) for k in kinds]
        closed = sorted((state.open[k] for k in targets if k in state.open), key=lambda a: a.since)
        into = ""
        original = None
        earlier: list[Decision] = []
        thread = ""
        if closed and event.kind is not EventKind.DELETED:
            event = dataclasses.replace(event, resolves=closed[0].id, since=closed[0].since)
            reason = Reason.RESOLVES
            into, original = closed[0].group, closed[0].event
        elif event.kind in RESOLVES and event.kind not in INFORMATIVE_RECOVERIES:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.NOTHING_OPEN)])
        else:
            reason = Reason.NEW
            state, earlier = _send_earlier(state, event, now, settings, "")
            thread = _thread_of(state, route, event.key)
        state = _update(
            state,
            open=state.open.remove(*targets),
            recent=state.recent.add(rid, event.occurred_at),
        )
        closes = tuple(a.id for a in closed)
        if thread:
            told = Decision(event, Action.SEND, reason, closes, route=route, thread=thread)
            return Outcome(state, None, [*earlier, told])
        state, _, decisions = _emit(
            state, event, now, settings, reason, closes=closes, original=original, into=into
        )
        return Outcome(state, None, earlier + decisions)
    state = _remember_text(
        _update(state, recent=state.recent.add(rid, event.occurred_at)), event, now, settings
    )
    if event.kind is not EventKind.FLAPPING:
        state, earlier = _send_earlier(state, event, now, settings, "")
        thread = _thread_of(state, route, event.key)
        if thread:
            told = Decision(event, Action.SEND, Reason.NEW, route=route, thread=thread)
            return Outcome(state, None, [*earlier, told])
    else:
        earlier = []
    state, gid, decisions = _emit(state, event, now, settings, Reason.NEW)
    if event.kind is EventKind.FLAPPING:
        flap = state.flaps.get((route, event.key))
        if flap is not None:
            flap = dataclasses.replace(flap, notice_group=gid)
            state = _update(state, flaps=state.flaps.set((route, event.key), flap))
    return Outcome(state, None, earlier + decisions)


def _thread_of(state: PolicyState, route: str, key: AppKey) -> str:
    """The notification of the app's oldest alert open in the lane, once it has been sent
    (news about the app is told in its thread); empty when there is none."""
    alerts: list[OpenAlert] = [
        state.open[(route, key, k)] for k in PROBLEM_KINDS if (route, key, k) in state.open
    ]
    for alert in sorted(alerts, key=lambda a: a.since):
        group: Group | None = state.groups.get(alert.group)
        if group is None:
            return alert.event.id
        if group.flushes:
            return group.members[0].id
    return ""


def _remember_text(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> PolicyState:
    if settings.dedup_window <= timedelta(0):
        return state
    seen = TextSeen(normalize_message(event.message), now)
    return _update(state, texts=state.texts.set((settings.route, event.key, event.kind), seen))


STAGES: tuple[Stage, ...] = (
    drop_duplicates,
    damp_flaps,
    skip_open,
    dedup_text,
    hold_in_grace,
    apply_mutes,
    announce,
)
_AFTER_FLAPS: tuple[Stage, ...] = STAGES[STAGES.index(damp_flaps) + 1 :]
_AFTER_GRACE: tuple[Stage, ...] = STAGES[STAGES.index(hold_in_grace) + 1 :]
