"""Kubernetes Events about Argo CD Applications -> Hint: who did what, as the API server told it.

Argo CD's API server records user actions as Events (`<user> initiated rollback to <id>`, with a
`user` annotation) and the application controller records its own (`Initiated automated sync to
'<rev>'`, `Updated sync status: A -> B`). This module reads both core/v1 and events.k8s.io/v1
shapes. Pure and total: any JSON value comes back as a Hint or a `Rejected`, never an exception.

`uid` identifies the report, not the Event object: Kubernetes bumps `count` on the same Event
when a message repeats, and each repeat is a report of its own, so the uid is
`<metadata.uid or name>:<count>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict, cast

from core.model import Hint, Tool
from watchers.argocd import AUTOMATED, parse_time
from watchers.rejected import Rejected

__all__ = ["normalize_event"]


class RawObjectReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    namespace: str
    uid: str


class RawEventMetadata(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    annotations: dict[str, str]


class RawEventSource(TypedDict, total=False):
    component: str


class RawEventSeries(TypedDict, total=False):
    count: int
    lastObservedTime: str


class RawEvent(TypedDict, total=False):
    """core/v1 Event, with the events.k8s.io/v1 names read as fallbacks."""

    metadata: RawEventMetadata
    involvedObject: RawObjectReference
    regarding: RawObjectReference
    reason: str
    message: str
    note: str
    type: str
    source: RawEventSource
    reportingController: str
    reportingComponent: str
    firstTimestamp: str
    lastTimestamp: str
    eventTime: str
    deprecatedLastTimestamp: str
    series: RawEventSeries
    count: int
    deprecatedCount: int


_USER_ACTION = re.compile(r"^(?P<user>\S+) initiated (?P<action>.*)$", re.DOTALL)
_ROLLBACK = re.compile(r"^rollback to (?P<id>\S+)")
_USER_SYNC = re.compile(r"^(?:partial )?sync to (?P<rev>\S+)(?: \((?P<resolved>[^)\s]+)\))?")
_AUTOMATED_SYNC = re.compile(r"^Initiated automated sync to '(?P<rev>[^']*)'")


def normalize_event(obj: Mapping[str, Any], cluster: str, now: datetime) -> Hint | Rejected:
    """A Kubernetes Event about an Argo CD object, seen at `now` in `cluster` -> Hint (pure)."""
    if not isinstance(obj, Mapping):
        return Rejected(f"Event is {type(obj).__name__}, not a JSON object")
    event = cast(RawEvent, obj)
    meta = cast(RawEventMetadata, _map(event.get("metadata")))
    involved = cast(RawObjectReference, _map(event.get("involvedObject") or event.get("regarding")))
    name = _str(involved.get("name"))
    if not name:
        return Rejected("Event names no involved object")
    annotations = _map(meta.get("annotations"))
    message = _str(event.get("message")) or _str(event.get("note"))

    actor = _str(annotations.get("user"))
    revision = ""
    metadata: dict[str, str] = {}
    if auto := _AUTOMATED_SYNC.match(message):
        actor = actor or AUTOMATED
        revision = auto["rev"]
    elif user_action := _USER_ACTION.match(message):
        actor = actor or user_action["user"]
        action = user_action["action"]
        if rollback := _ROLLBACK.match(action):
            metadata["rollback_id"] = rollback["id"].rstrip(".")
        elif sync := _USER_SYNC.match(action):
            revision = sync["resolved"] or sync["rev"]
    for key in ("dest-server", "dest-namespace"):
        if value := _str(annotations.get(key)):
            metadata[key] = value

    series = _map(event.get("series"))
    count = (
        _int(event.get("count")) or _int(event.get("deprecatedCount")) or _int(series.get("count"))
    )
    report = _str(meta.get("uid")) or _str(meta.get("name"))
    source = _map(event.get("source"))
    return Hint(
        tool=Tool.ARGOCD,
        cluster=cluster,
        namespace=_str(involved.get("namespace")) or _str(meta.get("namespace")),
        object_kind=_str(involved.get("kind")) or "Application",
        name=name,
        reason=_str(event.get("reason")),
        message=message,
        occurred_at=_first_time(
            event.get("lastTimestamp"),
            event.get("deprecatedLastTimestamp"),
            series.get("lastObservedTime"),
            event.get("eventTime"),
            event.get("firstTimestamp"),
        )
        or now,
        warning=event.get("type") == "Warning",
        revision=revision,
        actor=actor,
        source=_str(source.get("component"))
        or _str(event.get("reportingController"))
        or _str(event.get("reportingComponent")),
        uid=f"{report}:{count or 1}" if report else "",
        metadata=metadata,
    )


def _first_time(*values: object) -> datetime | None:
    for value in values:
        if (parsed := parse_time(value)) is not None:
            return parsed
    return None


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
