"""The one shape of a chat receiver: `deliver` writes what a notification needs sent to the
outbox before anything goes out, and the receiver's `OutboxWorker` sends it through a
transport, oldest first. Slack and Teams receivers are this, each with its own plan (what to
queue for a notification) and transport (how one queued item is sent).

The chain a notification travels, in order: the receiver's plan -> the outbox (the store) ->
the worker (order, attempts, retry times, fatal refusals set aside) -> the transport (one item:
post, update or thread reply) -> the sender (pacing and the one retry loop, `RetryStage`) ->
the chat service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.delivery.outbox import Deadline, OutboxWorker, RetryPolicy, Sleep, Transport, log_left
from bot.delivery.receivers import Notification
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
        """Queue `note` in the outbox (durable once the store commits it: at once, or with the
        policy state at the next flush of a write-behind store), then let the worker send."""
        await self.store.outbox_add_many(self.name, self.plan(note), self._clock())
        self.worker.start()
        self.worker.wake()

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
