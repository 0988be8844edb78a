"""The Slack receiver: notifications to one channel, durably, with threads and in-place updates.

`deliver` renders the notification and writes what must be sent to the outbox before anything
goes out, in the same call; the receiver's `OutboxWorker` then sends it through the shared
`SlackSender` (paced, 429s waited out, retries classified). What a message needs later is
resolved when it is sent, from the store's record of where each notification landed:

- a new problem or event is posted; where it landed is recorded;
- a recovery edits its problem's message in place (`render_slack_resolved`, chat.update) and
  adds a reply in its thread (only the reply when the notification lacks the problem itself);
- a group that grew or whose members recovered (`updates` = the first notification's id)
  edits the group's message; the update that clears it (every problem recovered) also says so
  once in its thread;
- news about an app with an alert open (`thread`) is a reply in the alert's thread, not a new
  message;
- a notification already posted to this receiver (a reminder) is a reply in its thread.

So each notification reaches the channel once: one new message or one reply, plus at most one
edit of the message it updates (docs/architecture.md, "What a channel shows").

Every post carries Slack message metadata naming its outbox item, so that after a crash between
"Slack accepted" and "marked sent" a restart can look for it in the channel before sending it
again (see docs/reliability.md for what that needs and what is left).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.outbox import Delivered, Outcome, Refused, Sleep, outcome_of
from bot.delivery.outbox_receiver import OutboxReceiver
from bot.delivery.receivers import Notification
from bot.delivery.retry import RetryPolicy
from bot.delivery.slack_sender import SlackSender
from bot.store.store import OutboxItem, SentMessage, Store
from formatters.slack import (
    render_slack,
    render_slack_cleared,
    render_slack_group,
    render_slack_recovery_reply,
    render_slack_resolved,
)

logger = logging.getLogger(__name__)

METADATA_EVENT_TYPE = "driftbot_notification"
"""Slack message metadata `event_type` on every post; its payload names the outbox item."""

HISTORY_LIMIT = 200
"""How many of a channel's (or thread's) latest messages a restart looks through."""

OP_POST = "post"
OP_UPDATE = "update"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def plan_slack(
    note: Notification, actions: bool = False, public_url: str = ""
) -> list[dict[str, Any]]:
    """The outbox payloads for `note`, rendered (decides only: nothing is sent or read).
    `public_url`: driftbot's public address, for links to the status page ("": none).

    A payload is `{"op": "post", "notification", "message", "thread_of"}` (reply in the thread
    of `thread_of`'s message if it has one, else a new message) or `{"op": "update",
    "notification", "message", "target"}` (edit `target`'s message if it has one).
    `actions`: a new alert carries the button of the action that fits it.
    """
    group = getattr(note, "group", None)
    updates = getattr(note, "updates", "") or ""
    if group is not None:
        message = render_slack_group(group, note.mention, public_url=public_url)
        if not updates:
            return [_post(group.id, message, thread_of=group.id)]
        planned = [_update(group.id, updates, message)]
        if group.just_cleared:
            planned.append(_post(note.id, render_slack_cleared(group), thread_of=updates))
        return planned
    event = note.event
    thread = getattr(note, "thread", "") or ""
    if thread:
        return [
            _post(
                event.id, render_slack(event, note.mention, public_url=public_url), thread_of=thread
            )
        ]
    if note.original is not None:
        original = note.original
        return [
            _update(
                event.id, original.id, render_slack_resolved(original, event, public_url=public_url)
            ),
            _post(
                event.id,
                render_slack_recovery_reply(original, event),
                thread_of=original.id,
            ),
        ]
    if event.resolves:
        # The problem itself is not at hand, so its message cannot be redrawn as resolved:
        # the recovery still goes into its thread.
        return [
            _post(event.id, render_slack(event, public_url=public_url), thread_of=event.resolves)
        ]
    if updates:
        return [
            _update(event.id, updates, render_slack(event, note.mention, public_url=public_url))
        ]
    message = render_slack(event, note.mention, actions=actions, public_url=public_url)
    return [_post(event.id, message, thread_of=event.id)]


@dataclass(frozen=True, slots=True)
class Planned:
    """An outbox payload, checked: `ref` is `thread_of` for a post, `target` for an update."""

    op: str
    notification: str
    message: dict[str, Any]
    ref: str


def read_payload(payload: Any) -> Planned | None:
    """The payload `plan_slack` wrote, or None if it is not one (pure; never raises)."""
    if not isinstance(payload, dict):
        return None
    op = payload.get("op")
    notification = payload.get("notification")
    message = payload.get("message")
    ref = payload.get("thread_of" if op == OP_POST else "target")
    if op not in (OP_POST, OP_UPDATE) or not isinstance(message, dict):
        return None
    if not isinstance(notification, str) or not isinstance(ref, str):
        return None
    if not isinstance(message.get("text"), str) and not isinstance(message.get("blocks"), list):
        return None
    return Planned(op, notification, message, ref)


def _post(notification: str, message: dict[str, Any], *, thread_of: str) -> dict[str, Any]:
    return {"op": OP_POST, "notification": notification, "message": message, "thread_of": thread_of}


def _update(notification: str, target: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"op": OP_UPDATE, "notification": notification, "message": message, "target": target}


class SlackTransport:
    """Sends outbox items of one Slack receiver; the worker's `Transport`."""

    def __init__(
        self,
        receiver: str,
        channel: str,
        sender: SlackSender,
        store: Store,
        client: AsyncWebClient | None = None,
    ) -> None:
        self.receiver = receiver
        self.channel = channel
        self.destination = f"channel {channel}"
        self._sender = sender
        self._store = store
        self._client = client
        self._warned: set[str] = set()

    async def send(self, item: OutboxItem) -> Outcome:
        planned = read_payload(item.payload)
        if planned is None:
            return Refused(error="unreadable_outbox_item")
        if planned.op == OP_UPDATE:
            return await self._update(planned)
        return await self._post(item, planned)

    async def _update(self, planned: Planned) -> Outcome:
        target = await self._store.sent_message(planned.ref, self.receiver)
        if target is None:
            logger.debug(
                "%s: nothing to update for %s (never posted here)", self.receiver, planned.ref
            )
            return Delivered()
        result = await self._sender.update(
            target.channel,
            target.ts,
            planned.message,
            receiver=self.receiver,
            notification=planned.notification,
        )
        return outcome_of(result)

    async def _post(self, item: OutboxItem, planned: Planned) -> Outcome:
        thread_ts = await self._thread_ts(planned.ref)
        args = {**planned.message, "metadata": self._metadata(item, planned.notification)}
        result = await self._sender.post(self.channel, args, thread_ts, receiver=self.receiver)
        if not result.ok or not result.ts:
            return outcome_of(result)
        landed = SentMessage(
            planned.notification, self.receiver, result.channel, result.ts, thread_ts
        )
        return Delivered(landed)

    async def _thread_ts(self, thread_of: str) -> str | None:
        parent = await self._store.sent_message(thread_of, self.receiver)
        if parent is None:
            return None
        return parent.thread_ts or parent.ts

    def _metadata(self, item: OutboxItem, notification: str) -> dict[str, Any]:
        return {
            "event_type": METADATA_EVENT_TYPE,
            "event_payload": {
                "outbox_id": item.id,
                "receiver": self.receiver,
                "notification": notification,
            },
        }

    async def find_delivered(self, item: OutboxItem) -> Delivered | None:
        """Look for the post among the latest messages of the channel (or of its thread).

        Updates are not looked for: sending one again changes nothing. Needs the
        channels:history (groups:history for private channels) scope; without it the item is
        sent again, once, and a warning says so.
        """
        planned = read_payload(item.payload)
        if planned is None or planned.op != OP_POST or self._client is None:
            return None
        notification = planned.notification
        thread_ts = await self._thread_ts(planned.ref)
        try:
            if thread_ts is None:
                response = await self._client.conversations_history(
                    channel=self.channel, limit=HISTORY_LIMIT, include_all_metadata=True
                )
            else:
                response = await self._client.conversations_replies(
                    channel=self.channel,
                    ts=thread_ts,
                    limit=HISTORY_LIMIT,
                    include_all_metadata=True,
                )
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            self._warn_unchecked(str(error or "unknown_error"))
            return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._warn_unchecked(type(exc).__name__)
            return None
        messages = response.get("messages") or []
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict) and self._is_item(message, item):
                ts = message.get("ts")
                if isinstance(ts, str):
                    landed = SentMessage(notification, self.receiver, self.channel, ts, thread_ts)
                    return Delivered(landed)
        return None

    def _is_item(self, message: dict[str, Any], item: OutboxItem) -> bool:
        metadata = message.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT_TYPE:
            return False
        payload = metadata.get("event_payload")
        return (
            isinstance(payload, dict)
            and payload.get("outbox_id") == item.id
            and payload.get("receiver") == self.receiver
        )

    def _warn_unchecked(self, error: str) -> None:
        if error in self._warned:
            return
        self._warned.add(error)
        logger.warning(
            "%s: cannot check channel %s for a message that was being sent when driftbot "
            "stopped (%s); sending it again, so it may appear twice",
            self.receiver,
            self.channel,
            error,
        )


class SlackReceiver(OutboxReceiver):
    """A Slack channel as a receiver: `deliver` queues durably, a worker sends in order."""

    def __init__(
        self,
        name: str,
        channel: str,
        sender: SlackSender,
        store: Store,
        *,
        client: AsyncWebClient | None = None,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Sleep = asyncio.sleep,
        retry: RetryPolicy | None = None,
        close_timeout: float | None = 60.0,
        actions: bool = False,
        public_url: str = "",
    ) -> None:
        self.actions = actions
        """Alerts carry action buttons (`actions.enabled`)."""
        self.channel = channel
        self.public_url = public_url
        """Driftbot's public address: alerts link to the status page under it ("": no link)."""
        self.sender = sender
        """Shared by the receivers of one workspace; its `stats` (DeliveryStats) count the
        429s waited out, retries and refusals of all of them."""
        sender.hold()
        self._holding = True
        transport = SlackTransport(name, channel, sender, store, client)
        super().__init__(
            name,
            store,
            transport,
            clock=clock,
            sleep=sleep,
            retry=retry,
            close_timeout=close_timeout,
        )
        self.transport: SlackTransport = transport

    def plan(self, note: Notification) -> list[dict[str, Any]]:
        return plan_slack(note, self.actions, self.public_url)

    async def release(self) -> None:
        """Let go of the workspace's sender: the last receiver out closes its session."""
        if self._holding:
            self._holding = False
            await self.sender.release()
