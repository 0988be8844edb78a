"""Where notifications go: the receiver interface, and the console receiver (text or jsonl).

The console receiver writes to standard output only the notifications themselves, so
`driftbot replay --output jsonl` can be piped; logs go to standard error.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import orjson

from core.codec import event_to_dict
from core.model import GitOpsEvent
from formatters.text import render_text, render_text_resolved


@dataclass(frozen=True, slots=True)
class Notification:
    """One event to deliver, with every receiver that gets it and, for a recovery, the problem
    it resolves (so a receiver can update the original message)."""

    event: GitOpsEvent
    receivers: tuple[str, ...]
    mention: tuple[str, ...] = ()
    original: GitOpsEvent | None = None


class Receiver(Protocol):
    name: str

    async def deliver(self, note: Notification) -> None: ...

    async def close(self) -> None: ...


def notification_to_json(note: Notification) -> dict[str, Any]:
    """The JSON event output contract: the event's fields, `receivers`, and `updates` for an
    update of a notification already sent (a resolution)."""
    data: dict[str, Any] = dict(event_to_dict(note.event))
    data["receivers"] = list(note.receivers)
    if note.event.resolves:
        data["updates"] = note.event.resolves
    return data


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
            self.stream.write(orjson.dumps(notification_to_json(note)).decode() + "\n")
        else:
            if self._count:
                self.stream.write("\n")
            if note.original is not None:
                self.stream.write(render_text_resolved(note.original, note.event) + "\n")
            else:
                self.stream.write(render_text(note.event) + "\n")
        self._count += 1
        self.stream.flush()

    async def close(self) -> None:
        self.stream.flush()
