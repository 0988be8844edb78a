"""The one shape of a chat receiver: `deliver` writes what a notification needs sent to the
outbox before anything goes out, and the receiver's `OutboxWorker` sends it through a
transport, oldest first. Slack and Teams receivers are this, each with its own plan (what to
queue for a notification) and transport (how one queued item is sent).

The delivery chain, in order (the one place it is listed; docs/architecture.md follows it):

1. the receiver's plan (`plan_slack`, `plan_teams`): the outbox payloads of a notification;
2. the outbox (the store): rows committed with the policy state that says they were sent;
   the commit wakes the receiver's worker, once (`Store.outbox_watch`);
3. the worker (`OutboxWorker`): order, the "attempted" mark, one try per item; a try that did
   not get through is deferred by the `RetryPolicy` (the long tier), a refusal set aside;
4. the transport (`SlackTransport`, `TeamsTransport`): one item as one call (post, update or
   thread reply); answers only `Delivered`, `RetryLater` (with the seconds asked) or `Refused`;
5. the sender (`SlackSender`, `TeamsSender`): one call, read as an answer or a `Failure`;
6. the retry stage (`RetryStage`, the short tier of the same `RetryPolicy`): pacing by the
   limiter, 429s waited out, brief retries with backoff;
7. the chat service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.delivery.outbox import Deadline, OutboxWorker, Sleep, Transport, log_left
from bot.delivery.receivers import Notification
from bot.delivery.retry import RetryPolicy
from bot.store.store import Store


class OutboxReceiver:
    """A receiver that queues durably and lets its worker send. Subclasses give `plan`, and
    `release` when they hold more than the worker (an HTTP session)."""

    def __init__(
        self,
        name: str,
        store: Store,
        transport: Transport,
        *,
        clock: Callable[[], datetime],
        sleep: Sleep = asyncio.sleep,
        retry: RetryPolicy | None = None,
        close_timeout: float | None = 60.0,
    ) -> None:
        self.name = name
        self.store = store
        self._clock = clock
        self._close_timeout = close_timeout
        self.close_deadline: Deadline | None = None
        """Set at a shutdown: `close()` keeps sending until then instead of `close_timeout`."""
        self.transport = transport
        self.worker = OutboxWorker(store, name, transport, clock=clock, sleep=sleep, retry=retry)

    def plan(self, note: Notification) -> list[dict[str, Any]]:
        """The outbox payloads for `note` (decides only: nothing is sent)."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the worker: what an earlier run left in the outbox is sent first."""
        self.worker.start()

    async def deliver(self, note: Notification) -> None:
        """Queue `note` in the outbox; the worker sends it (see `queue`)."""
        await self.queue(self.plan(note))

    async def queue(self, payloads: list[dict[str, Any]], at: datetime | None = None) -> None:
        """Queue `payloads` in the outbox (durable once the store commits them: at once, or
        with the policy state at the next flush of a write-behind store). The worker is woken
        by that commit, once, never before the rows are there."""
        self.worker.start()
        await self.store.outbox_add_many(self.name, payloads, at or self._clock())

    async def abandon(self) -> None:
        """Stop sending now (this process no longer leads): what is unsent stays queued."""
        await self.worker.stop()

    async def drain(self, within: float | None = None) -> bool:
        """Wait until everything that can be sent now is sent (see OutboxWorker.drain)."""
        self.worker.start()
        return await self.worker.drain(within)

    async def close(self) -> None:
        """Send what can be sent before the close deadline (else within the close time-out),
        then stop; the rest stays queued for the next start."""
        within = self._close_timeout
        if self.close_deadline is not None:
            within = self.close_deadline.remaining()
        try:
            await self.drain(within)
            await self.worker.stop()
            await log_left(self.store, self.name)
        finally:
            await self.release()

    async def release(self) -> None:
        """Let go of what the receiver holds besides its worker (an HTTP session), also when
        closing failed."""
