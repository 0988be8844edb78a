"""Kubernetes Events from the Flux controllers to Hints.

The Flux controllers record what their status cannot hold as Events: a Kustomization's change
set, a HelmRelease's drift and rollback, the revision they acted on (annotation
`<group>/revision`). Both core/v1 and events.k8s.io/v1 shapes are read. Never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from core.model import Hint, Tool
from watchers.flux import parse_time, split_group_keys
from watchers.rejected import Rejected

__all__ = ["normalize_event"]


class RawObjectReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    namespace: str
    uid: str
    resourceVersion: str


class RawEventSource(TypedDict, total=False):
    component: str
    host: str


class RawEvent(TypedDict, total=False):
    """core/v1 Event; events.k8s.io/v1 names some fields differently (regarding, note)."""

    apiVersion: str
    kind: str
    metadata: dict[str, Any]
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
    count: int
    deprecatedCount: int


def _str(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) else ""


def _map(obj: Any, key: str) -> Mapping[str, Any]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _count(obj: Mapping[str, Any]) -> int | None:
    for key in ("count", "deprecatedCount"):
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def normalize_event(obj: Mapping[str, Any], cluster: str, now: datetime) -> Hint | Rejected:
    """An Event about a Flux object to a Hint (pure; never raises).

    `revision` is the `<group>/revision` annotation (or a bare `revision`); `metadata` holds the
    annotations under their own and their group-stripped keys; `uid` is the Event's uid, else
    its name and count; `occurred_at` the last time it was seen, else `now`.
    """
    if not isinstance(obj, Mapping):
        return Rejected(f"Event is {type(obj).__name__}, not a JSON object")
    involved = _map(obj, "involvedObject") or _map(obj, "regarding")
    kind = _str(involved, "kind")
    name = _str(involved, "name")
    if not kind or not name:
        return Rejected("Event without involvedObject kind and name")
    metadata = _map(obj, "metadata")
    annotations = split_group_keys(metadata.get("annotations"))
    uid = _str(metadata, "uid")
    if not uid:
        count = _count(obj)
        event_name = _str(metadata, "name")
        uid = f"{event_name}/{count}" if event_name and count is not None else event_name
    occurred = (
        parse_time(obj.get("lastTimestamp"))
        or parse_time(obj.get("eventTime"))
        or parse_time(_map(obj, "series").get("lastObservedTime"))
        or parse_time(obj.get("firstTimestamp"))
        or now
    )
    return Hint(
        tool=Tool.FLUX,
        cluster=cluster,
        namespace=_str(involved, "namespace") or _str(metadata, "namespace"),
        object_kind=kind,
        name=name,
        reason=_str(obj, "reason"),
        message=_str(obj, "message") or _str(obj, "note"),
        occurred_at=occurred,
        warning=_str(obj, "type") == "Warning",
        revision=annotations.get("revision", ""),
        source=(
            _str(_map(obj, "source"), "component")
            or _str(obj, "reportingController")
            or _str(obj, "reportingComponent")
        ),
        uid=uid,
        metadata=annotations,
    )
