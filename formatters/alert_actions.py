"""The action buttons an alert offers when acting from chat is on: a drift alert offers Sync,
a failed or degraded Argo CD deploy offers Roll back to the revision before it (named), a Flux
failure offers Reconcile. Pure. A click only opens a confirmation; what it acts on is decided
from the stored alert (bot/chat), not from the button.
"""

from __future__ import annotations

from typing import Any

from core.model import EventKind, GitOpsEvent, Tool
from formatters import escape as esc
from formatters.revision import short_revision
from formatters.slack_actions import action_value

MAX_BUTTON_TEXT = 75
FLUX_FAILURES = frozenset(
    {
        EventKind.DEPLOY_FAILED,
        EventKind.HEALTH_DEGRADED,
        EventKind.DRIFT_DETECTED,
        EventKind.SOURCE_FAILED,
        EventKind.ROLLBACK_FAILED,
    }
)


def act_label(event: GitOpsEvent) -> tuple[str, str] | None:
    """(action id, button text) of the action that fits `event`, if one does."""
    if event.tool is Tool.ARGOCD and event.object_kind == "Application":
        if event.kind is EventKind.DRIFT_DETECTED:
            return "driftbot_act_sync", "Sync"
        if event.kind in (EventKind.DEPLOY_FAILED, EventKind.HEALTH_DEGRADED):
            before = short_revision(event.previous_revision)
            return "driftbot_act_rollback", f"Roll back to {before}" if before else "Roll back"
        return None
    if event.tool is Tool.FLUX and event.kind in FLUX_FAILURES:
        return "driftbot_act_reconcile", "Reconcile"
    return None


def act_buttons(event: GitOpsEvent) -> list[dict[str, Any]]:
    found = act_label(event)
    if found is None:
        return []
    action_id, text = found
    return [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": esc.truncate(text, MAX_BUTTON_TEXT)},
            "action_id": action_id,
            "value": action_value(event),
        }
    ]
