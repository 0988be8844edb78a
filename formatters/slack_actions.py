"""The contract between the buttons driftbot puts on a Slack alert and the handler of a click.

A button's `action_id` says what to do (acknowledge, mute for N hours) and its `value` says to
what: the event id and the app key, as compact JSON. Slack allows 2,000 characters per value;
driftbot keeps each under MAX_VALUE so that four buttons fit any message. When the key would
not fit (names far beyond Kubernetes' own limits), only the event id is carried and the handler
finds the app through the alert it recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.model import AppKey, GitOpsEvent, Tool

ACTION_ACK = "driftbot_ack"
ACTION_OPEN = "driftbot_open"
ACTION_OPEN_COMMIT = "driftbot_open_commit"
ACTION_OPEN_PAGE = "driftbot_open_page"
LINK_ACTIONS = frozenset({ACTION_OPEN, ACTION_OPEN_COMMIT, ACTION_OPEN_PAGE})
"""Link buttons (the app in its tool, the commit, the status page) also send an interaction;
the handler only acknowledges it."""
MUTE_ACTIONS: dict[str, int] = {
    "driftbot_mute_1h": 1,
    "driftbot_mute_4h": 4,
    "driftbot_mute_24h": 24,
}
"""Mute button action ids and the hours each mutes for."""
ACT_ACTIONS: dict[str, str] = {
    "driftbot_act_sync": "sync",
    "driftbot_act_rollback": "rollback",
    "driftbot_act_reconcile": "reconcile",
}
"""Buttons that open an action's confirmation (with `actions.enabled`), and the action each
asks for; the app acted on is the stored alert's, never the value's."""

MAX_VALUE = 600
MAX_EVENT_ID = 200
_VERSION = 1


@dataclass(frozen=True, slots=True)
class ActionTarget:
    """What a button click refers to. `key` is None when it did not fit in the button."""

    event_id: str
    key: AppKey | None


def mute_action_id(hours: int) -> str:
    return f"driftbot_mute_{hours}h"


def action_value(event: GitOpsEvent) -> str:
    """The button value for `event`: at most MAX_VALUE characters, parseable by `parse`."""
    event_id = event.id[:MAX_EVENT_ID]
    full = _dump({"v": _VERSION, "e": event_id, "k": list(event.key)})
    if len(full) <= MAX_VALUE:
        return full
    return _dump({"v": _VERSION, "e": event_id})


def group_action_value(notification_id: str) -> str:
    """The button value for a storm's message: only the id of the group's notification (its
    first member's id); the handler acts on every open alert the policy recorded in it."""
    return _dump({"v": _VERSION, "e": notification_id[:MAX_EVENT_ID]})


def parse_action_value(value: str) -> ActionTarget:
    """The target of a button click; ValueError saying what is wrong when `value` is not ours."""
    try:
        data = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"button value is not JSON: {value[:80]!r}") from exc
    if not isinstance(data, dict) or data.get("v") != _VERSION:
        raise ValueError(f"button value is not a driftbot v{_VERSION} action: {value[:80]!r}")
    event_id = data.get("e")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("button value has no event id")
    raw_key = data.get("k")
    if raw_key is None:
        return ActionTarget(event_id, None)
    if not isinstance(raw_key, list) or len(raw_key) != 5:
        raise ValueError("button value has a malformed app key")
    if not all(isinstance(part, str) for part in raw_key):
        raise ValueError("button value has a malformed app key")
    try:
        tool = Tool(raw_key[0])
    except ValueError as exc:
        raise ValueError(f"button value names an unknown tool: {raw_key[0][:40]!r}") from exc
    return ActionTarget(event_id, AppKey(tool, *raw_key[1:]))


def _dump(data: dict[str, object]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
