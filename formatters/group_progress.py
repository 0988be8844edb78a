"""What a storm's message says as its members recover: "3 of 8 back in sync", then "All 8 apps
match Git again on prod after 7 min". The wording of group progress, for every renderer.

A group's problems recover one by one; the group's message is updated in place to count them,
and the update that clears the last one says the storm is over (and how long it lasted), so a
reader of the channel learns that it ended without opening each app. Pure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.model import EventKind, GitOpsEvent
from formatters import phrases
from formatters.escape import Escaper, plain
from formatters.group import EventGroup

_BACK: dict[EventKind, str] = {
    EventKind.DRIFT_DETECTED: "back in sync",
    EventKind.HEALTH_DEGRADED: "healthy again",
    EventKind.DEPLOY_FAILED: "deployed since",
    EventKind.ROLLBACK_FAILED: "deployed since",
    EventKind.OUT_OF_SYNC: "deployed",
    EventKind.SUSPENDED: "following Git again",
    EventKind.SOURCE_FAILED: "source ready again",
}
"""`3 of 8 back in sync`: what a recovered member of a group of one problem kind is."""
_BACK_MIXED = "resolved"

_ALL_BACK: dict[EventKind, str] = {
    EventKind.DRIFT_DETECTED: "All {n} {apps} match Git again{on} after {lasted}",
    EventKind.HEALTH_DEGRADED: "All {n} {apps} are healthy again{on} after {lasted}",
    EventKind.DEPLOY_FAILED: "All {n} failed deploys{on} resolved after {lasted}",
    EventKind.ROLLBACK_FAILED: "All {n} failed rollbacks{on} resolved after {lasted}",
    EventKind.OUT_OF_SYNC: "All {n} waiting changes{on} deployed after {lasted}",
    EventKind.SUSPENDED: "All {n} {apps} follow Git automatically again{on} after {lasted}",
    EventKind.SOURCE_FAILED: "All {n} sources{on} ready again after {lasted}",
}
_ALL_BACK_MIXED = "All {n} problems{on} resolved after {lasted}"


def recovered(group: EventGroup) -> frozenset[str]:
    """The ids of the members whose problem has recovered."""
    return frozenset(r.resolves for r in group.resolved if r.resolves)


def back_word(group: EventGroup) -> str:
    """What a recovered member is: `back in sync`, `healthy again`, … `resolved`."""
    kinds = {e.kind for e in group.events if phrases.is_problem(e)}
    return _BACK.get(kinds.pop(), _BACK_MIXED) if len(kinds) == 1 else _BACK_MIXED


def progress(group: EventGroup) -> str:
    """`3 of 8 back in sync`; empty while none has recovered or once all have (`cleared`)."""
    if not group.resolved_count or group.cleared:
        return ""
    done = min(group.resolved_count, group.problem_count)
    return f"{done} of {group.problem_count} {back_word(group)}"


def cleared_headline(group: EventGroup, escape: Escaper = plain) -> str:
    """`All 8 apps match Git again on prod after 7 min`: the storm is over."""
    kinds = {e.kind for e in group.events if phrases.is_problem(e)}
    template = _ALL_BACK.get(kinds.pop(), _ALL_BACK_MIXED) if len(kinds) == 1 else _ALL_BACK_MIXED
    names = {e.name for e in group.events if phrases.is_problem(e)}
    cluster = phrases.value(group.cluster, phrases.MAX_CLUSTER, escape)
    return template.format(
        n=group.problem_count,
        apps="app" if len(names) == 1 else "apps",
        on=f" on {cluster}" if cluster else "",
        lasted=phrases.duration(lasted(group)),
    )


def lasted(group: EventGroup) -> timedelta:
    """From the first problem to the last recovery."""
    starts = [e.occurred_at for e in group.events if phrases.is_problem(e)]
    ends = [r.occurred_at for r in group.resolved]
    if not starts or not ends or not _comparable(starts + ends):
        return timedelta(0)
    return max(ends) - min(starts)


def member_state(event: GitOpsEvent, group: EventGroup, done: frozenset[str]) -> str:
    """`: back in sync` after a recovered member's line; empty for the others."""
    return f" ({back_word(group)})" if event.id in done else ""


def _comparable(moments: list[datetime]) -> bool:
    return len({m.utcoffset() is not None for m in moments}) == 1
