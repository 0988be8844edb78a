"""The Teams receiver: notifications to one Workflows webhook, durably, as Adaptive Cards.

`deliver` renders the notification and writes the card to the outbox before anything is sent;
the receiver's `OutboxWorker` then posts it through the shared `TeamsSender` (4 a second per
webhook, 429s waited out, 5xx retried, other 4xx set aside as fatal). A webhook cannot edit
or thread, so each notification is one new card:

- an event: `render_teams`;
- a recovery: `render_teams_resolved`, a green card naming the original alert and how long
  it lasted;
- a storm: `render_teams_group`; a group that grew is posted again, as it stands, and the
  update that clears it (every problem recovered) is one card saying the storm is over;
  updates that only count recoveries ("3 of 8 back") send no card;
- a reminder: the event's card again (there is no thread to reply in).

So each notification is at most one card.

A webhook cannot be asked whether a card arrived, so a card that was on its way when the
process stopped is sent again at the next start: delivery is at least once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.delivery.outbox import Delivered, Outcome, Refused, Sleep, outcome_of
from bot.delivery.outbox_receiver import OutboxReceiver
from bot.delivery.rate_limit import RateLimiter
from bot.delivery.receivers import Notification, Receiver
from bot.delivery.retry import RetryPolicy, RetryStage
from bot.delivery.teams_sender import TEAMS_WEBHOOK_RATE, TeamsSender, WebhookUrl, load_webhook
from bot.store.store import OutboxItem, Store
from config.schema import Config
from formatters.teams import Payload, render_teams, render_teams_group, render_teams_resolved

logger = logging.getLogger(__name__)

OP_POST = "post"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def plan_teams(
    note: Notification, payload: Payload = "envelope", public_url: str = ""
) -> list[dict[str, Any]]:
    """The outbox payloads for `note`: one card to post (decides only: nothing is sent).
    `public_url`: driftbot's public address, for links to the status page ("": none)."""
    group = getattr(note, "group", None)
    if group is not None:
        if getattr(note, "updates", "") and not group.grew and not group.just_cleared:
            return []
        card = render_teams_group(group, payload, public_url=public_url)
    elif note.original is not None:
        card = render_teams_resolved(note.original, note.event, payload, public_url=public_url)
    else:
        card = render_teams(note.event, payload, public_url=public_url)
    notification = str(getattr(note, "id", "") or (group.id if group else note.event.id))
    return [{"op": OP_POST, "notification": notification, "card": card}]


class TeamsTransport:
    """Posts outbox items of one Teams receiver; the worker's `Transport`."""

    def __init__(self, receiver: str, webhook: WebhookUrl, sender: TeamsSender) -> None:
        self.receiver = receiver
        self.webhook = webhook
        self.destination = f"webhook {webhook.redacted}"
        self._sender = sender

    async def send(self, item: OutboxItem) -> Outcome:
        card = item.payload.get("card")
        if item.payload.get("op") != OP_POST or not isinstance(card, dict):
            return Refused(error="unreadable_outbox_item")
        notification = item.payload.get("notification")
        result = await self._sender.post(
            self.webhook,
            card,
            receiver=self.receiver,
            notification=notification if isinstance(notification, str) else None,
        )
        return outcome_of(result)

    async def find_delivered(self, item: OutboxItem) -> Delivered | None:
        """A webhook cannot be asked what it received: the card is sent again."""
        return None


class TeamsReceiver(OutboxReceiver):
    """A Teams Workflows webhook as a receiver: `deliver` queues durably, a worker posts."""

    def __init__(
        self,
        name: str,
        webhook: WebhookUrl,
        sender: TeamsSender,
        store: Store,
        *,
        payload: Payload = "envelope",
        clock: Callable[[], datetime] = _utc_now,
        sleep: Sleep = asyncio.sleep,
        retry: RetryPolicy | None = None,
        close_timeout: float | None = 60.0,
        public_url: str = "",
    ) -> None:
        self.webhook = webhook
        self.public_url = public_url
        """Driftbot's public address: cards link to the status page under it ("": no link)."""
        self.payload: Payload = payload
        self.sender = sender
        transport = TeamsTransport(name, webhook, sender)
        super().__init__(
            name,
            store,
            transport,
            clock=clock,
            sleep=sleep,
            retry=retry,
            close_timeout=close_timeout,
        )
        self.transport: TeamsTransport = transport

    def __repr__(self) -> str:
        return f"TeamsReceiver({self.name!r}, {self.webhook.redacted!r}, {self.payload!r})"

    def plan(self, note: Notification) -> list[dict[str, Any]]:
        return plan_teams(note, self.payload, self.public_url)

    async def release(self) -> None:
        await self.sender.close()


@dataclass(frozen=True)
class TeamsOptions:
    """How Teams receivers get their time and their network; the defaults are real ones.

    `monotonic`/`sleep` pace and wait (4 a second, Retry-After, backoff); `clock` stamps the
    outbox. Tests pass a virtual clock for all three.
    """

    clock: Callable[[], datetime] = field(default=_utc_now)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    timeout: float = 30.0
    close_timeout: float | None = 20.0
    """Seconds `close()` keeps posting before it leaves the rest queued for the next start;
    None: until nothing more can be posted now (what replay uses)."""
    retry: RetryPolicy | None = None
    """The one retry policy of every Teams receiver's chain (default `RetryPolicy()`)."""


def build_teams_receivers(
    config: Config,
    store: Store,
    environ: Mapping[str, str],
    options: TeamsOptions | None = None,
) -> dict[str, Receiver]:
    """A receiver for each `teams:` receiver of `config`, sharing one sender (one limit per
    webhook). Raises TeamsConfigError when a webhook URL cannot be read."""
    options = options or TeamsOptions()
    receivers: dict[str, Receiver] = {}
    sender: TeamsSender | None = None
    for rc in config.receivers:
        if rc.teams is None:
            continue
        webhook = load_webhook(rc.name, rc.teams, environ)
        if sender is None:
            limiter = RateLimiter(
                clock=options.monotonic,
                sleep=options.sleep,
                per_key=TEAMS_WEBHOOK_RATE,
                workspace=None,
            )
            retry = RetryStage("teams", limiter, sleep=options.sleep, policy=options.retry)
            sender = TeamsSender(retry, timeout=options.timeout)
        receivers[rc.name] = TeamsReceiver(
            rc.name,
            webhook,
            sender,
            store,
            payload=rc.teams.payload,
            clock=options.clock,
            sleep=options.sleep,
            retry=options.retry,
            close_timeout=options.close_timeout,
            public_url=config.server.page_url,
        )
        logger.info("receiver %s posts to Teams webhook %s", rc.name, webhook.redacted)
    return receivers
