"""What the chat commands `mute`, `unmute`, `mutes` and `ack` do to the policy state. Pure.

The commands themselves (parsing, permissions, answers, audit) live in the bot; these functions
only decide the new state, with the clock passed in, so they can be tested on virtual time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from fnmatch import fnmatchcase

from core.immutable import PMap
from core.model import AppKey, GitOpsEvent
from core.mutes import Mute, parse_target
from core.policy import OpenAlert, PolicyState


def mute(
    state: PolicyState, target: str, until: datetime, reason: str, who: str, now: datetime
) -> PolicyState:
    """`state` with a mute of `target` until `until` (replacing one of the same target).

    Raises MuteTargetError for a target that is not one, ValueError for an expiry not after
    `now`. Expired mutes are forgotten on the way."""
    canonical = parse_target(target)
    if until <= now:
        raise ValueError(f"a mute must end after it starts ({until.isoformat()} is not)")
    mutes = _without_expired(state.mutes, now).set(
        canonical, Mute(canonical, until, reason, who, now)
    )
    return dataclasses.replace(state, mutes=mutes)


def unmute(state: PolicyState, target: str, now: datetime) -> tuple[PolicyState, Mute | None]:
    """`state` without the mute of `target`, and that mute (None if there was none active)."""
    canonical = parse_target(target)
    found = state.mutes.get(canonical)
    mutes = _without_expired(state.mutes.remove(canonical), now)
    active = found if found is not None and found.active(now) else None
    return dataclasses.replace(state, mutes=mutes), active


def active_mutes(state: PolicyState, now: datetime) -> list[Mute]:
    """The mutes in force at `now`, those ending first first."""
    return sorted((m for m in state.mutes.values() if m.active(now)), key=lambda m: m.until)


def ack(
    state: PolicyState, app: str, who: str, now: datetime
) -> tuple[PolicyState, list[OpenAlert]]:
    """Acknowledge the open alerts of `app` (`name` or `namespace/name`, globs allowed) on
    every route: no more reminders for them. Returns the alerts acknowledged now."""
    namespace, _, name = app.rpartition("/")

    def named(event: GitOpsEvent) -> bool:
        if not fnmatchcase(event.name, name):
            return False
        return not namespace or fnmatchcase(event.namespace, namespace)

    return _ack_where(state, named, who, now)


def _without_expired(mutes: PMap[str, Mute], now: datetime) -> PMap[str, Mute]:
    expired = [target for target, m in mutes.items() if not m.active(now)]
    return mutes.remove(*expired) if expired else mutes


def ack_app(
    state: PolicyState, app: AppKey, who: str, now: datetime
) -> tuple[PolicyState, list[OpenAlert]]:
    """Acknowledge the open alerts of exactly `app` (no patterns: a name is a name) on every
    route. Returns the alerts acknowledged now."""
    return _ack_where(state, lambda event: event.key == app, who, now)


def _ack_where(
    state: PolicyState, about: Callable[[GitOpsEvent], bool], who: str, now: datetime
) -> tuple[PolicyState, list[OpenAlert]]:
    """Acknowledge the open alerts not acknowledged yet whose event is `about` what was
    asked; the state unchanged when there are none."""
    acked: list[OpenAlert] = []
    opened = state.open
    for key, alert in state.open.items():
        if alert.acked or not about(alert.event):
            continue
        done = dataclasses.replace(alert, acked_by=who, acked_at=now)
        opened = opened.set(key, done)
        acked.append(done)
    if not acked:
        return state, []
    return dataclasses.replace(state, open=opened), acked


def alerts_of_notification(state: PolicyState, notification_id: str) -> list[OpenAlert]:
    """The open alerts a notification is about, as the policy stored them: the alert with that
    id, and when it is a group's notification (its id is the first member's) every open
    alert of that group."""
    groups = {
        g.id for g in state.groups.values() if g.members and g.members[0].id == notification_id
    }
    return [
        alert
        for alert in state.open.values()
        if alert.event.id == notification_id or (alert.group and alert.group in groups)
    ]
