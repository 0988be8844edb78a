"""Storm grouping: many events that hit one route close together, sent as one notification.

As in Alertmanager's aggregation groups, events of one route that share the route's `group_by`
fields (by default cluster and kind) belong to one group. `EventGroup` is what renderers get:
the events and the fields they share ("37 apps drifted on prod after revision 1a2b3c4").
`Group` is what the policy remembers about a group between notifications: its members, the
recoveries of its problems, what was already sent and when it is next due. Pure values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from core.model import PROBLEM_KINDS, EventKind, GitOpsEvent, Severity, Tool

GroupKey = tuple[str, ...]
"""The route, then the values of the route's group_by fields."""

GroupField = Literal[
    "tool",
    "cluster",
    "namespace",
    "object_kind",
    "name",
    "kind",
    "project",
    "revision",
    "severity",
]
"""GitOpsEvent fields a route may group by (config's `group_by` takes these names)."""
GROUP_FIELDS: frozenset[str] = frozenset(get_args(GroupField))


def group_key(event: GitOpsEvent, route: str, group_by: tuple[str, ...] | None) -> GroupKey:
    """The group `event` belongs to on `route` (pure). `group_by` None: no grouping, every
    event is a group of its own."""
    if group_by is None:
        return (route, "\x00event", event.id)
    unknown = [f for f in group_by if f not in GROUP_FIELDS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}")
    return (route, *(str(getattr(event, f)) for f in group_by))


@dataclass(frozen=True, slots=True)
class EventGroup:
    """Events sent as one message, with the fields all of them share (empty/None when they differ).

    `id` is the group's identity for in-place updates (the id of the first event by default).
    `resolved` holds the recoveries of members that have been resolved since. `told` and
    `told_resolved`: how many of the events and recoveries earlier notifications of the group
    already told (0 for its first), so a receiver knows what this one adds.
    """

    events: tuple[GitOpsEvent, ...]
    id: str = ""
    kind: EventKind | None = None
    tool: Tool | None = None
    cluster: str = ""
    namespace: str = ""
    revision: str = ""
    resolved: tuple[GitOpsEvent, ...] = ()
    told: int = 0
    told_resolved: int = 0

    def __post_init__(self) -> None:
        if not self.events:
            raise ValueError("an EventGroup needs at least one event")

    @classmethod
    def of(
        cls,
        events: Iterable[GitOpsEvent],
        *,
        id: str = "",
        resolved: Iterable[GitOpsEvent] = (),
        told: int = 0,
        told_resolved: int = 0,
    ) -> EventGroup:
        """A group of `events` (at least one) with its shared fields filled in (pure)."""
        members = tuple(events)
        if not members:
            raise ValueError("an EventGroup needs at least one event")
        kinds = {e.kind for e in members}
        tools = {e.tool for e in members}
        return cls(
            events=members,
            id=id or members[0].id,
            kind=kinds.pop() if len(kinds) == 1 else None,
            tool=tools.pop() if len(tools) == 1 else None,
            cluster=_shared(e.cluster for e in members),
            namespace=_shared(e.namespace for e in members),
            revision=_shared(e.revision for e in members),
            resolved=tuple(resolved),
            told=told,
            told_resolved=told_resolved,
        )

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def resolved_count(self) -> int:
        return len(self.resolved)

    @property
    def problem_count(self) -> int:
        """Members that are problems (alerts that a recovery can close)."""
        return sum(1 for e in self.events if e.kind in PROBLEM_KINDS)

    @property
    def cleared(self) -> bool:
        """Every problem of the group has recovered: the storm is over."""
        return 0 < self.problem_count <= self.resolved_count

    @property
    def grew(self) -> bool:
        """This notification tells of members that earlier ones did not."""
        return self.count > self.told

    @property
    def just_cleared(self) -> bool:
        """This notification is the one that tells the storm is over."""
        return self.cleared and self.resolved_count > self.told_resolved

    @property
    def severity(self) -> Severity:
        """The worst severity among the events."""
        return max((e.severity for e in self.events), key=lambda s: s.rank)


def _shared(values: Iterable[str]) -> str:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else ""


@dataclass(frozen=True, slots=True)
class Group:
    """One aggregation group as the policy remembers it; the store keeps it across restarts.

    `members` are the events announced in the group (problems and news), `resolved` the
    recoveries of its problems, both in arrival order and only ever appended to, except when
    a problem and its recovery are both dropped before anything was sent (`epoch` counts
    those rewrites). The first `sent_members` / `sent_resolved` of them have been sent.
    """

    id: str
    """The group's identity in the policy state: its route and its first member's id (the id
    of the group's first notification)."""
    route: str
    key: GroupKey
    members: tuple[GitOpsEvent, ...]
    resolved: tuple[GitOpsEvent, ...] = ()
    sent_members: int = 0
    sent_resolved: int = 0
    flushes: int = 0
    """Notifications sent for this group so far."""
    accepting: bool = True
    """New events with the same key join this group (until `close_at`)."""
    due: datetime | None = None
    """When the next notification is due; None when nothing is waiting."""
    last_flush: datetime | None = None
    close_at: datetime | None = None
    remind_at: datetime | None = None
    quiet: bool = False
    """Held back by quiet hours: sent when they end."""
    epoch: int = 0

    @property
    def pending(self) -> bool:
        return len(self.members) > self.sent_members or len(self.resolved) > self.sent_resolved
