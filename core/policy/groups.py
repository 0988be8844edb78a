"""Storm groups in the policy: an announced event joins its group, which is sent after
`group_wait`, updated at most once per `group_interval`, closed, and reminded of; an app's
events leave in the order they happened, whichever groups hold them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta

from core.grouping import EventGroup, Group, group_key
from core.immutable import PMap
from core.model import (
    PROBLEM_KINDS,
    GitOpsEvent,
)
from core.policy.state import (
    Action,
    Decision,
    OpenAlert,
    PendingKey,
    PolicySettings,
    PolicyState,
    Reason,
    _push,
    _rid,
    _update,
)


def _emit(
    state: PolicyState,
    event: GitOpsEvent,
    now: datetime,
    settings: PolicySettings,
    reason: Reason,
    *,
    closes: tuple[str, ...] = (),
    original: GitOpsEvent | None = None,
    into: str = "",
) -> tuple[PolicyState, str, list[Decision]]:
    """Put an event to send in its group (a recovery in its problem's group `into`); the group
    is sent now if it is due, else later. Returns the group's id.

    What another group of the lane still holds of the same app is sent first (whatever its
    wait): an app's events reach a channel in the order they happened, even when they belong
    to groups with different timers (a deploy_started waiting out its group's interval must not
    come after the deploy_succeeded of the same sync)."""
    target = state.groups.get(into) if into else None
    key = group_key(event, settings.route, settings.group_by)
    current = state.groups.get(state.current.get(key, "")) if target is None else None
    joining = target or (current if current is not None and current.accepting else None)
    state, earlier = _send_earlier(state, event, now, settings, joining.id if joining else "")
    if target is not None:
        group = dataclasses.replace(target, resolved=(*target.resolved, event))
    else:
        if current is not None and current.accepting:
            group = dataclasses.replace(current, members=(*current.members, event))
        else:
            group = Group(
                id=_rid(settings.route, event.id), route=settings.route, key=key, members=(event,)
            )
            state = _update(state, current=state.current.set(key, group.id))
    due = group.due
    if due is None:
        due = now + settings.group_wait
        if group.last_flush is not None:
            due = max(due, group.last_flush + settings.group_interval)
    if due <= now:
        state = _update(state, groups=state.groups.set(group.id, group))
        state, decisions = _flush(state, group, now, settings, reason, closes, original)
        return state, group.id, earlier + decisions
    if group.due is None:
        group = dataclasses.replace(group, due=due)
        state = _push(state, due, "flush", group.id)
    state = _update(
        state,
        groups=state.groups.set(group.id, group),
        pending=state.pending.set((group.route, event.key), group.id),
    )
    held = Decision(event, Action.HOLD, Reason.GROUP_WAIT, route=group.route)
    return state, group.id, [*earlier, held]


def _send_earlier(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings, joining: str
) -> tuple[PolicyState, list[Decision]]:
    """Send now what a group other than `joining` holds of `event`'s app, quiet hours or not."""
    slot = (settings.route, event.key)
    waiting = state.pending.get(slot)
    if waiting is None or waiting == joining:
        return state, []
    group = state.groups.get(waiting)
    if group is None or not group.pending:
        return _update(state, pending=state.pending.remove(slot)), []
    return _flush(state, group, now, settings, ignore_quiet=True)


def _alive(state: PolicyState, group: Group) -> list[OpenAlert]:
    """The group's problems still open."""
    alive = []
    for member in group.members:
        alert = state.open.get((group.route, member.key, member.kind))
        if alert is not None and alert.id == member.id:
            alive.append(alert)
    return alive


def _drop_group(state: PolicyState, group: Group) -> PolicyState:
    current = state.current
    if current.get(group.key) == group.id:
        current = current.remove(group.key)
    return _update(
        state,
        groups=state.groups.remove(group.id),
        current=current,
        quieted=state.quieted.remove(group.id),
        pending=_sent_from(state.pending, group, (*group.members, *group.resolved)),
    )


def _sent_from(
    pending: PMap[PendingKey, str], group: Group, events: Iterable[GitOpsEvent]
) -> PMap[PendingKey, str]:
    """`pending` without `group`'s entries for the apps of `events` (they have been sent)."""
    done = [(group.route, e.key) for e in events if pending.get((group.route, e.key)) == group.id]
    return pending.remove(*done) if done else pending


def _flush(
    state: PolicyState,
    group: Group,
    now: datetime,
    settings: PolicySettings,
    reason: Reason = Reason.GROUPED,
    closes: tuple[str, ...] | None = None,
    original: GitOpsEvent | None = None,
    *,
    ignore_quiet: bool = False,
) -> tuple[PolicyState, list[Decision]]:
    """Send what is waiting in `group`: the plain event for a group of one, else the group,
    as an update of the first notification once there was one."""
    decisions: list[Decision] = []
    members, resolved = group.members, group.resolved
    new_members = members[group.sent_members :]
    new_resolved = resolved[group.sent_resolved :]
    if not members:
        return _drop_group(state, group), decisions
    if not new_members and not new_resolved:
        group = dataclasses.replace(group, due=None)
        return _update(state, groups=state.groups.set(group.id, group)), decisions
    waiting = (*new_members, *new_resolved)
    quiet = settings.quiet
    if (
        not ignore_quiet
        and quiet is not None
        and max(e.severity.rank for e in waiting) < quiet.min_severity.rank
        and quiet.active(now)
    ):
        group = dataclasses.replace(group, due=None, quiet=True)
        state = _update(
            state,
            groups=state.groups.set(group.id, group),
            quieted=state.quieted.set(group.id, group.route),
        )
        decisions.append(Decision(waiting[0], Action.HOLD, Reason.QUIET_HOURS, route=group.route))
        return state, decisions
    updates = members[0].id if group.flushes else ""
    if len(members) == 1:
        if new_members:
            decisions.append(
                Decision(
                    members[0],
                    Action.SEND,
                    reason,
                    () if new_resolved else closes or (),
                    route=group.route,
                )
            )
        if new_resolved:
            recovery = new_resolved[-1]
            decisions.append(
                Decision(
                    recovery,
                    Action.SEND,
                    Reason.RESOLVES if new_members else reason,
                    (recovery.resolves,) if closes is None else closes,
                    original=original or members[0],
                    route=group.route,
                )
            )
    else:
        decisions.append(
            Decision(
                members[0],
                Action.SEND,
                Reason.GROUPED,
                tuple(r.resolves for r in new_resolved) if closes is None else closes,
                group=EventGroup.of(
                    members,
                    id=members[0].id,
                    resolved=resolved,
                    told=group.sent_members if group.flushes else 0,
                    told_resolved=group.sent_resolved if group.flushes else 0,
                ),
                updates=updates,
                route=group.route,
            )
        )
    group = dataclasses.replace(
        group,
        sent_members=len(members),
        sent_resolved=len(resolved),
        flushes=group.flushes + 1,
        due=None,
        last_flush=now,
        quiet=False,
    )
    state = _update(
        state,
        quieted=state.quieted.remove(group.id),
        pending=_sent_from(state.pending, group, waiting),
    )
    if group.accepting:
        group = dataclasses.replace(group, close_at=now + settings.group_interval)
        state = _push(state, now + settings.group_interval, "close", group.id)
    if (
        settings.repeat > timedelta(0)
        and group.remind_at is None
        and any(m.kind in PROBLEM_KINDS for m in new_members)
    ):
        group = dataclasses.replace(group, remind_at=now + settings.repeat)
        state = _push(state, now + settings.repeat, "remind", group.id)
    state = _update(state, groups=state.groups.set(group.id, group))
    if not group.accepting and not _alive(state, group):
        state = _drop_group(state, group)
    return state, decisions


def _close(state: PolicyState, group: Group) -> PolicyState:
    """A group's group_interval passed without news: it takes no new events; once nothing in
    it is open or waiting, it is forgotten."""
    group = dataclasses.replace(group, accepting=False, close_at=None)
    current = state.current
    if current.get(group.key) == group.id:
        current = current.remove(group.key)
    state = _update(state, groups=state.groups.set(group.id, group), current=current)
    if not group.pending and not _alive(state, group):
        state = _drop_group(state, group)
    return state


def _remind(
    state: PolicyState, group: Group, now: datetime, settings: PolicySettings
) -> tuple[PolicyState, list[Decision]]:
    """Remind of the group's problems still open and not acknowledged."""
    unacked = [a.event for a in _alive(state, group) if not a.acked]
    if not unacked or settings.repeat <= timedelta(0):
        group = dataclasses.replace(group, remind_at=None)
        return _update(state, groups=state.groups.set(group.id, group)), []
    group = dataclasses.replace(group, remind_at=now + settings.repeat)
    state = _push(state, now + settings.repeat, "remind", group.id)
    state = _update(state, groups=state.groups.set(group.id, group))
    decision = Decision(
        unacked[0],
        Action.REMIND,
        Reason.REMINDER,
        group=EventGroup.of(unacked, id=group.members[0].id) if len(unacked) > 1 else None,
        updates=group.members[0].id,
        route=group.route,
    )
    return state, [decision]
