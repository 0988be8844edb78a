"""Flux notification-controller `generic` / `generic-hmac` webhook bodies to Hints.

The body is untrusted JSON from the network: anything that is not a usable event (an event
about a kind driftbot does not read included) comes back as `Rejected` with the reason, never
as an exception. Older controllers send metadata keys with
the API group prefix (`kustomize.toolkit.fluxcd.io/revision`), current ones strip it
(`revision`); both are accepted and both spellings end up in `Hint.metadata`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from core.model import Hint, Tool
from watchers.flux import KINDS, parse_time, split_group_keys
from watchers.rejected import Rejected

__all__ = ["normalize_notification"]

SEVERITIES = frozenset({"info", "error", "trace"})


class RawInvolvedObject(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    namespace: str
    uid: str


class RawNotification(TypedDict, total=False):
    """The body of notification-controller's `generic` provider (eventv1.Event)."""

    involvedObject: RawInvolvedObject
    severity: str
    timestamp: str
    message: str
    reason: str
    metadata: dict[str, str]
    reportingController: str
    reportingInstance: str


def _str(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) else ""


def _report_id(*parts: str) -> str:
    """A short hash of the parts; lone surrogates (valid in JSON escapes) are hashed as they are."""
    text = "\x1f".join(parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def normalize_notification(body: Any, cluster: str, now: datetime) -> Hint | Rejected:
    """A generic webhook body to a Hint (pure; never raises).

    Severity `error` sets `warning`; `occurred_at` is the body's timestamp, else `now`. The
    Hint's `uid` is a hash of the object, reason, timestamp and message, so a retried delivery
    of the same notification has the same uid.
    """
    if not isinstance(body, Mapping):
        return Rejected(f"notification is {type(body).__name__}, not a JSON object")
    involved = body.get("involvedObject")
    if not isinstance(involved, Mapping):
        return Rejected("notification without involvedObject")
    kind = _str(involved, "kind")
    name = _str(involved, "name")
    if not kind or not name:
        return Rejected("notification involvedObject without kind and name")
    if kind not in KINDS:
        return Rejected(
            f"notification about a {kind[:60]!r}, a kind driftbot does not read "
            f"(it reads {', '.join(sorted(KINDS))})"
        )
    severity = body.get("severity", "info")
    if not isinstance(severity, str) or severity not in SEVERITIES:
        return Rejected(f"notification severity {severity!r} is not info or error")
    metadata = split_group_keys(body.get("metadata"))
    reason = _str(body, "reason")
    message = _str(body, "message")
    timestamp = _str(body, "timestamp")
    namespace = _str(involved, "namespace")
    return Hint(
        tool=Tool.FLUX,
        cluster=cluster,
        namespace=namespace,
        object_kind=kind,
        name=name,
        reason=reason,
        message=message,
        occurred_at=parse_time(timestamp) or now,
        warning=severity == "error",
        revision=metadata.get("revision", ""),
        source=_str(body, "reportingController"),
        uid=_report_id(
            _str(involved, "uid") or f"{kind}/{namespace}/{name}", reason, timestamp, message
        ),
        metadata=metadata,
    )
