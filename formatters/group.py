"""A storm as one notification: many events that hit one route close together.

Policy decides which events belong together; renderers need the events and what they share
("37 apps drifted on prod after revision 1a2b3c4"). `EventGroup.of` works the shared fields out
from the events, so every caller builds groups the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.model import EventKind, GitOpsEvent, Severity, Tool


@dataclass(frozen=True, slots=True)
class EventGroup:
    """Events sent as one message, with the fields all of them share (empty/None when they differ).

    `id` is the group's identity for in-place updates (the id of the first event by default).
    """

    events: tuple[GitOpsEvent, ...]
    id: str = ""
    kind: EventKind | None = None
    tool: Tool | None = None
    cluster: str = ""
    namespace: str = ""
    revision: str = ""

    def __post_init__(self) -> None:
        if not self.events:
            raise ValueError("an EventGroup needs at least one event")

    @classmethod
    def of(cls, events: Iterable[GitOpsEvent], *, id: str = "") -> EventGroup:
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
        )

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def severity(self) -> Severity:
        """The worst severity among the events."""
        return max((e.severity for e in self.events), key=lambda s: s.rank)


def _shared(values: Iterable[str]) -> str:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else ""
