"""The fields of a Kubernetes Event that the feeds and the Event normalizers read.

One Struct for core/v1 and events.k8s.io/v1 (which names some fields differently:
`regarding`, `note`, `deprecatedCount` …); `watchers.argocd_events` and `watchers.flux_events`
read the first name present.
"""

from __future__ import annotations

from typing import Any

from watchers.decode.base import ObjectView, View

__all__ = ["Event"]


class ObjectReference(View):
    apiVersion: Any = None
    kind: Any = None
    name: Any = None
    namespace: Any = None
    uid: Any = None


class EventSource(View):
    component: Any = None


class EventSeries(View):
    count: Any = None
    lastObservedTime: Any = None


class Event(ObjectView, tag="Event"):
    involvedObject: ObjectReference | None = None
    regarding: ObjectReference | None = None
    reason: Any = None
    message: Any = None
    note: Any = None
    type: Any = None
    source: EventSource | None = None
    reportingController: Any = None
    reportingComponent: Any = None
    firstTimestamp: Any = None
    lastTimestamp: Any = None
    eventTime: Any = None
    deprecatedLastTimestamp: Any = None
    series: EventSeries | None = None
    count: Any = None
    deprecatedCount: Any = None
