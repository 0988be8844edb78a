"""Flap damping: an app whose problem keeps opening and closing is reported once as flapping.

An auto-synced app fighting a controller goes OutOfSync and Synced every few seconds; every
flip would be a message. The policy counts flips per route and app within a window; past the
limit it sends one `flapping` notice and keeps quiet until the app has been stable for a
window. This module holds that memory and the pure decisions on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.model import (
    DEFAULT_SEVERITY,
    PROBLEM_KINDS,
    RECOVERY_KINDS,
    AppKey,
    EventKind,
    GitOpsEvent,
    event_id,
)

FlapKey = tuple[str, AppKey]
"""A route and an app."""

NOT_FLIPS: frozenset[EventKind] = frozenset(
    {EventKind.DEPLOY_SUCCEEDED, EventKind.ROLLBACK_SUCCEEDED}
)
"""Recoveries that are news of their own (a deploy, a rollback), not a state flipping back."""


def is_flip(event: GitOpsEvent) -> bool:
    """A problem opening, or a recovery closing one."""
    return event.kind in PROBLEM_KINDS or (
        event.kind in RECOVERY_KINDS and event.kind not in NOT_FLIPS
    )


@dataclass(frozen=True, slots=True)
class Flap:
    """The recent flips of one app on one route, and whether it is reported as flapping."""

    flips: tuple[datetime, ...] = ()
    """Times of the flips within the window, oldest first."""
    notice: GitOpsEvent | None = None
    """The flapping notice sent; None while the app is not flapping."""
    notice_group: str = ""
    """The group the notice went out in, so the final recovery updates it."""
    last: GitOpsEvent | None = None
    """The last flip kept quiet while flapping: the state the app settles in."""

    @property
    def flapping(self) -> bool:
        return self.notice is not None

    def stable_at(self, window: timedelta) -> datetime | None:
        """When the app counts as stable if nothing flips before."""
        return self.flips[-1] + window if self.flips else None


def record_flip(flap: Flap, now: datetime, window: timedelta) -> Flap:
    """`flap` with a flip at `now`, forgetting flips older than `window` (pure)."""
    kept = tuple(t for t in flap.flips if t > now - window)
    return dataclasses.replace(flap, flips=(*kept, now))


def flapping_notice(event: GitOpsEvent, route: str, flips: int, window: timedelta) -> GitOpsEvent:
    """The one notice that says `event`'s app keeps flipping (pure)."""
    minutes = max(1, round(window.total_seconds() / 60))
    return dataclasses.replace(
        event,
        id=event_id(EventKind.FLAPPING, route, *event.key, event.occurred_at.isoformat()),
        kind=EventKind.FLAPPING,
        severity=DEFAULT_SEVERITY[EventKind.FLAPPING],
        message=f"changed state {flips} times within {minutes} min ({event.kind.value} last)",
        resolves="",
        since=None,
    )
