"""What is wrong right now, read from the policy state: each app's open alerts and when its
oldest problem began. Pure. Chat answers and the status page say "since …" from these."""

from __future__ import annotations

from datetime import datetime

from core.model import AppKey, GitOpsEvent
from core.policy import PolicyState


def problems_since(policy: PolicyState) -> dict[AppKey, datetime]:
    """Per app, when its oldest open or held problem began."""
    since: dict[AppKey, datetime] = {}
    events = [a.event for a in policy.open.values()] + [h.event for h in policy.held.values()]
    for event in events:
        key, began = event.key, event.occurred_at
        if key not in since or began < since[key]:
            since[key] = began
    return since


def open_alerts(policy: PolicyState) -> dict[AppKey, list[GitOpsEvent]]:
    """Per app, the problems announced and not yet resolved."""
    alerts: dict[AppKey, list[GitOpsEvent]] = {}
    for alert in policy.open.values():
        alerts.setdefault(alert.event.key, []).append(alert.event)
    return alerts
