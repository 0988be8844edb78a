"""Where notifications go: the receiver interface, and the console receiver (text or jsonl).

The console receiver writes to standard output only the notifications themselves, so
`driftbot replay --output jsonl` can be piped; logs go to standard error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TextIO

from core.codec import dumps, event_to_dict
from core.grouping import EventGroup
from core.model import GitOpsEvent
from formatters.text import render_group_text, render_text, render_text_resolved


@dataclass(frozen=True, slots=True)
class Notification:
    """One event (or a group of events) to deliver, with every receiver that gets it.

    `original`: for a recovery, the problem it resolves (so a receiver can update the original
    message). `group`: a storm sent as one message; `event` is then its first member.
    `updates`: the id of the notification this one updates in place (a group that grew or
    whose problems resolved). `reminds`: for a reminder, the id of the notification it
    reminds of (receivers thread it there). `thread`: for news about an app with an alert
    open, the id of the alert's notification (receivers that can, reply in its thread).
    `mention`: who to notify, from every route that took it and names the receivers.
    """

    event: GitOpsEvent
    receivers: tuple[str, ...]
    mention: tuple[str, ...] = ()
    original: GitOpsEvent | None = None
    group: EventGroup | None = None
    updates: str = ""
    reminds: str = ""
    thread: str = ""

    @property
    def id(self) -> str:
        """The notification's own id: the group's (and an update's own) or the event's."""
        if self.group is not None:
            if self.updates:
                return f"{self.group.id}.{self.group.count}.{self.group.resolved_count}"
            return self.group.id
        if self.reminds:
            return f"{self.reminds}.reminder.{self.event.id}"
        return self.event.id

    def timed_ids(self) -> tuple[tuple[str, ...], datetime] | None:
        """The ids this notification's messages are planned with, and when the change it tells
        of was seen (for a group, its newest member): what delivery latency is measured from.
        A reminder tells of no new change and is not timed (None)."""
        if self.reminds:
            return None
        if self.group is not None:
            members = self.group.events + self.group.resolved
            observed = max((e.occurred_at for e in members), default=self.event.occurred_at)
            return (self.id, self.group.id), observed
        return (self.id, self.event.id), self.event.occurred_at


class Receiver(Protocol):
    """Where notifications go: the console, or a chat receiver with its outbox."""

    name: str

    async def deliver(self, note: Notification) -> None: ...

    async def close(self) -> None:
        """Deliver what can be delivered before the close deadline, then let go."""
        ...

    async def abandon(self) -> None:
        """Stop delivering at once (this process lost the lead); what is queued stays."""
        ...


def notification_to_json(
    note: Notification, members: Callable[[GitOpsEvent], Any] = event_to_dict
) -> dict[str, Any]:
    """The JSON event output contract: the event's fields, `receivers`, and `updates` for an
    update of a notification already sent (a resolution). A group is one object with
    `"kind": "group"`, its count, the fields its members share, and the member events; a
    reminder carries `reminds` with the id of the notification it reminds of.

    `members`: how a group's member events are put in (as their JSON objects by default; left
    as they are for `core.codec.dumps`, which writes the same text in one pass)."""
    if note.group is not None:
        data = group_to_json(note.group, note.id, members)
    else:
        data = dict(event_to_dict(note.event))
    data["receivers"] = list(note.receivers)
    if note.updates:
        data["updates"] = note.updates
    elif note.group is None and note.event.resolves and not note.reminds:
        data["updates"] = note.event.resolves
    if note.reminds:
        data["reminds"] = note.reminds
    return data


def group_to_json(
    group: EventGroup, id: str, members: Callable[[GitOpsEvent], Any] = event_to_dict
) -> dict[str, Any]:
    """A group's JSON object, without `receivers` and `updates`."""
    return {
        "kind": "group",
        "id": id,
        "count": group.count,
        "tool": group.tool.value if group.tool is not None else "",
        "cluster": group.cluster,
        "namespace": group.namespace,
        "revision": group.revision,
        "member_kind": group.kind.value if group.kind is not None else "",
        "severity": group.severity.value,
        "resolved": group.resolved_count,
        "events": [members(e) for e in group.events],
        "resolved_events": [members(e) for e in group.resolved],
    }


def _as_is(event: GitOpsEvent) -> GitOpsEvent:
    return event


def render_console_text(note: Notification) -> str:
    """What the console receiver prints for one notification (plain text)."""
    if note.group is not None:
        text = render_group_text(note.group)
    elif note.original is not None:
        text = render_text_resolved(note.original, note.event)
    else:
        text = render_text(note.event)
    return f"Reminder: {text}" if note.reminds else text


class ConsoleReceiver:
    """Prints notifications as plain text or as one JSON object per line."""

    def __init__(self, name: str, fmt: str = "text", stream: TextIO | None = None) -> None:
        self.name = name
        self.format = fmt
        self._stream = stream
        self._count = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    async def deliver(self, note: Notification) -> None:
        if self.format == "jsonl":
            # a storm's group holds thousands of events: encoded by orjson in one pass
            self.stream.write(dumps(notification_to_json(note, _as_is)) + "\n")
        else:
            if self._count:
                self.stream.write("\n")
            self.stream.write(render_console_text(note) + "\n")
        self._count += 1
        self.stream.flush()

    async def close(self) -> None:
        self.stream.flush()

    async def abandon(self) -> None:
        """Nothing is queued: each notification was printed as it came."""
