"""Subscriptions written in annotations, read once for `driftbot import` and for routing at run
time: Argo CD Notifications' and driftbot's own.

Argo CD's notifications-engine reads, on an Application or an AppProject:
- `notifications.argoproj.io/subscribe.<trigger>.<service>: <recipient>;<recipient>`,
- `notifications.argoproj.io/subscribe.<service>: ...` (the service's default triggers),
- `notifications.argoproj.io/subscriptions:` a YAML list of `{trigger: [...], destinations:
  [{service, recipients: [...]}]}`.
driftbot's own, on any watched object:
- `driftbot.dev/notify: "slack:C0123, teams:pm, oncall"` (every event kind),
- `driftbot.dev/notify.<kind>: ...` (that kind only, e.g. `driftbot.dev/notify.deploy_failed`),
where a recipient is `slack:<channel>`, `teams:<receiver>` or a receiver's name.
Pure: text in, subscriptions and notes out; nothing is raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml

ARGOCD_PREFIX = "notifications.argoproj.io/"
SUBSCRIBE = ARGOCD_PREFIX + "subscribe."
SUBSCRIPTIONS = ARGOCD_PREFIX + "subscriptions"
LEGACY = "recipients.argocd-notifications.argoproj.io"
NOTIFY = "driftbot.dev/notify"


@dataclass(frozen=True, slots=True)
class AnnotationSubscription:
    """One subscription found in an annotation."""

    key: str
    """The annotation it is written in."""
    where: str
    """How to point at it: `annotation <key>: '<value>'`, or `annotation <key>[i] service s`."""
    trigger: str
    """The Argo CD trigger, or for driftbot's annotation the event kind; "" for the default
    triggers (Argo CD) or every kind (driftbot)."""
    service: str
    """Argo CD's service name (`slack`, `teams-workflows`, ...); "" for driftbot's annotation,
    whose recipients name their own type."""
    recipients: tuple[str, ...]


def argocd_subscriptions(
    annotations: Mapping[str, str],
) -> tuple[list[AnnotationSubscription], list[str]]:
    """The Argo CD Notifications subscriptions in `annotations`, in key order, and a note for
    each annotation that looks like one but cannot be read (`annotation <key>: why`)."""
    found: list[AnnotationSubscription] = []
    notes: list[str] = []
    for key, value in sorted(annotations.items()):
        if key.startswith(SUBSCRIBE):
            parts = key[len(SUBSCRIBE) :].split(".")
            trigger, service = (parts[0], parts[1]) if len(parts) >= 2 else ("", parts[0])
            recipients = tuple(r.strip() for r in value.split(";") if r.strip()) or ("",)
            where = f"annotation {key}: {value!r}"
            found.append(AnnotationSubscription(key, where, trigger, service, recipients))
        elif key.startswith(SUBSCRIPTIONS):
            found += _yaml_subscriptions(key, value, notes)
        elif key == LEGACY:
            notes.append(
                f"annotation {key}: the form of argocd-notifications before Argo CD 2.3, which "
                "Argo CD no longer reads; ignored"
            )
    return found, notes


def _yaml_subscriptions(key: str, value: str, notes: list[str]) -> list[AnnotationSubscription]:
    try:
        entries = yaml.safe_load(value)
    except yaml.YAMLError:
        entries = None
    if not isinstance(entries, list):
        notes.append(f"annotation {key}: not a YAML list of subscriptions; ignored")
        return []
    found: list[AnnotationSubscription] = []
    for index, entry in enumerate(e for e in entries if isinstance(e, Mapping)):
        triggers = [t for t in _list(entry.get("trigger")) if isinstance(t, str)] or [""]
        for destination in _list(entry.get("destinations")):
            if not isinstance(destination, Mapping):
                continue
            service = str(destination.get("service") or "")
            recipients = tuple(
                str(r) for r in _list(destination.get("recipients")) if isinstance(r, str)
            )
            where = f"annotation {key}[{index}] service {service}"
            for trigger in triggers:
                found.append(
                    AnnotationSubscription(key, where, trigger, service, recipients or ("",))
                )
    return found


def _list(value: object) -> list[object]:
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, str) else []


def driftbot_subscriptions(annotations: Mapping[str, str]) -> list[AnnotationSubscription]:
    """driftbot's own `driftbot.dev/notify[.<kind>]` annotations in `annotations`, in key
    order; the kind is not checked here (the caller knows the kinds)."""
    found: list[AnnotationSubscription] = []
    for key, value in sorted(annotations.items()):
        if key != NOTIFY and not key.startswith(NOTIFY + "."):
            continue
        kind = key[len(NOTIFY) + 1 :] if key != NOTIFY else ""
        recipients = tuple(r.strip() for r in value.replace(";", ",").split(",") if r.strip())
        where = f"annotation {key}: {value!r}"
        found.append(AnnotationSubscription(key, where, kind, "", recipients or ("",)))
    return found
