"""The delivery worker: drains one receiver's outbox in order, so that nothing accepted is lost.

A receiver writes every message to the outbox (the store) before anything is sent; this worker
sends them, oldest first, and marks each one once the chat service has answered:

- delivered: marked sent, together with where it landed (one transaction), so a later update
  or thread reply can find it;
- refused for good (a fatal error): marked failed with the error and counted; it is kept in
  the store but never tried again;
- not delivered this time (retry later): stays pending with a retry time, from the one
  `RetryPolicy` (bot/delivery/retry.py: the transport has already retried briefly within this
  try; this is the long tier); the worker waits for it before sending anything newer, so a
  channel never reads out of order.

Just before a send the item is marked "attempted"; the mark is cleared by the outcome. An item
still marked when the worker starts was on its way when the process stopped: the transport is
asked whether it arrived (`find_delivered`) before it is sent again. That check is what turns
at-least-once into exactly-once when the chat service can answer it (see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.delivery.retry import RetryPolicy
from bot.store.store import OutboxItem, SentMessage, Store, StoreError

logger = logging.getLogger(__name__)

AUDIT_REFUSED = "delivery_failed"
"""The audit action of a message a chat service refused for good."""

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Delivered:
    """The message got through; `landed` is where, when later messages need it."""

    landed: SentMessage | None = None
    replace: bool = False
    """Record `landed` even if the notification already has a place (a message re-posted)."""


@dataclass(frozen=True, slots=True)
class RetryLater:
    """The message did not get through this time; `after`: the seconds the chat service asked
    to wait (its Retry-After), None when it asked for none (the policy's deferral applies)."""

    error: str
    after: float | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The chat service refused the message for good: it is set aside, never tried again."""

    error: str


Outcome = Delivered | RetryLater | Refused
"""All a transport answers: sent, retry after, refused for good."""


class SendAnswer(Protocol):
    """What a sender's retry stage hands back (Slack's SendResult, Teams's TeamsResult)."""

    @property
    def ok(self) -> bool: ...
    @property
    def fatal(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def retry_after(self) -> float | None: ...


def outcome_of(answer: SendAnswer) -> Outcome:
    """A sender's answer as the outbox reads it: sent, refused for good, or retry later."""
    if answer.ok:
        return Delivered()
    if answer.fatal:
        return Refused(error=answer.error or "unknown_error")
    return RetryLater(error=answer.error or "unknown_error", after=answer.retry_after)


class Transport(Protocol):
    """How one receiver's messages reach its chat service."""

    destination: str
    """Where the messages go, as logs and the audit log may show it (a channel, a redacted
    webhook): never a token or a secret URL."""

    async def send(self, item: OutboxItem) -> Outcome: ...

    async def find_delivered(self, item: OutboxItem) -> Delivered | None:
        """Whether `item`, in flight when the last process stopped, arrived after all; None
        when it did not, or when that cannot be known (it is then sent again)."""
        ...


@dataclass
class OutboxStats:
    sent: int = 0
    failed: int = 0
    """Items refused for good."""
    retried: int = 0
    """Items put back with a retry time."""
    recovered: int = 0
    """Items in flight at a restart that had arrived: marked sent, not sent again."""
    resent: int = 0
    """Items in flight at a restart that were sent again (not found, or no way to check)."""
    failed_by_error: Counter[str] = field(default_factory=Counter)


class Deadline:
    """A moment, on the monotonic clock, by which every receiver must have closed.

    At a shutdown the receivers are closed one after another, but their workers all keep
    sending while the first one's close waits: sharing one deadline makes the whole flush fit
    in one time budget (`server.shutdown_timeout`) however many receivers there are.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.at = clock() + max(0.0, seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - self._clock())


def notifications_in(items: Iterable[OutboxItem]) -> int:
    """How many notifications `items` tell of (a Slack recovery is two items, one notice)."""
    return len({str(item.payload.get("notification", f"#{item.id}")) for item in items})


async def log_left(store: Store, receiver: str) -> int:
    """Warn, once, of what a stopped `receiver` leaves in the outbox; how many notifications."""
    left = notifications_in(await store.outbox_queue(receiver, limit=1_000_000))
    if left:
        logger.warning(
            "%s: %d notifications left in the outbox for the next start",
            receiver,
            left,
            extra={"receiver": receiver},
        )
    return left


class OutboxWorker:
    """One named background task per receiver; `start()`, `stop()`. The store wakes it after
    each commit that queues messages for its receiver (`Store.outbox_watch`)."""

    def __init__(
        self,
        store: Store,
        receiver: str,
        transport: Transport,
        *,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        retry: RetryPolicy | None = None,
        batch: int = 100,
    ) -> None:
        self.store = store
        self.receiver = receiver
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._retry = retry or RetryPolicy()
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self.stats = OutboxStats()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start draining (what is pending from an earlier run goes first), and be woken by
        every commit that queues messages for this receiver from now on."""
        if self._task is None or self._task.done():
            self._idle.clear()
            self._task = asyncio.create_task(self._run(), name=f"outbox:{self.receiver}")
        if self._unwatch is None:
            self._unwatch = self.store.outbox_watch(self.receiver, self.wake)

    def wake(self) -> None:
        """New items were committed: look again."""
        self._idle.clear()
        self._wakeup.set()

    async def drain(self, within: float | None = None) -> bool:
        """Wait until nothing can be sent now (the outbox is empty, or its first item waits for
        a retry); False if `within` seconds (real time) passed first or the worker stopped."""
        if not self.running:
            return False
        assert self._task is not None
        idle = asyncio.ensure_future(self._idle.wait())
        try:
            done, _ = await asyncio.wait(
                {idle, self._task}, timeout=within, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            idle.cancel()
        return idle in done and self._idle.is_set()

    async def stop(self) -> None:
        """Cancel the task and wait for it; what is unsent stays in the outbox."""
        unwatch, self._unwatch = self._unwatch, None
        if unwatch is not None:
            unwatch()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                logger.error(
                    "outbox worker for %s had stopped: %r",
                    self.receiver,
                    task.exception(),
                    extra=self._about(),
                )

    def _about(self, item: OutboxItem | None = None) -> dict[str, Any]:
        """The context of a log line: the receiver and, about one message, its outbox id and
        the notification it tells of (plain keys: none is a reserved `LogRecord` attribute)."""
        context: dict[str, Any] = {"receiver": self.receiver}
        if item is not None:
            context["outbox_id"] = item.id
            notification = item.payload.get("notification")
            if isinstance(notification, str):
                context["notification"] = notification
        return context

    # -- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                waiting = await self._pass()
            except StoreError as exc:
                logger.error(
                    "outbox of %s: %s; trying again in 5 s", self.receiver, exc, extra=self._about()
                )
                await self._sleep(5.0)
                continue
            if self._wakeup.is_set():
                # Queued during the pass, maybe after its last read: not idle yet.
                continue
            self._idle.set()
            if waiting is None:
                await self._wakeup.wait()
            else:
                await self._sleep(waiting)

    async def _pass(self) -> float | None:
        """Send what is due, in order. None: the outbox is empty; else the seconds until the
        first item's retry is due."""
        while True:
            items = await self.store.outbox_queue(self.receiver, self._batch)
            if not items:
                return None
            for item in items:
                now = self._clock()
                if item.next_attempt_at is not None and item.next_attempt_at > now:
                    return max(0.0, (item.next_attempt_at - now).total_seconds())
                retry_in = await self._one(item)
                if retry_in is not None:
                    return retry_in

    async def _one(self, item: OutboxItem) -> float | None:
        """Deliver one item; the seconds until its retry if it stays pending."""
        if item.attempted_at is not None:
            found = await self._transport.find_delivered(item)
            if found is not None:
                await self.store.outbox_mark_sent(
                    item.id, self._clock(), found.landed, replace=found.replace
                )
                self.stats.recovered += 1
                logger.info(
                    "outbox of %s: message %d had arrived before the restart; not sent again",
                    self.receiver,
                    item.id,
                    extra=self._about(item),
                )
                return None
            self.stats.resent += 1
        await self.store.outbox_mark_attempt(item.id, self._clock())
        try:
            outcome = await self._transport.send(item)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            logger.exception(
                "outbox of %s: sending message %d failed",
                self.receiver,
                item.id,
                extra=self._about(item),
            )
            outcome = RetryLater(error=f"exception:{type(exc).__name__}")
        now = self._clock()
        if isinstance(outcome, Delivered):
            await self.store.outbox_mark_sent(item.id, now, outcome.landed, replace=outcome.replace)
            self.stats.sent += 1
            return None
        self.stats.failed_by_error[outcome.error] += 1
        if isinstance(outcome, Refused):
            await self.store.outbox_mark_fatal(item.id, outcome.error, now)
            self.stats.failed += 1
            await self._audit_refused(item, outcome.error, now)
            return None
        delay = self._retry.next_try_in(item.attempts + 1, outcome.after)
        await self.store.outbox_mark_failed(item.id, outcome.error, now + timedelta(seconds=delay))
        self.stats.retried += 1
        logger.warning(
            "outbox of %s: message %d not delivered (%s); next try in %.0f s",
            self.receiver,
            item.id,
            outcome.error,
            delay,
            extra=self._about(item),
        )
        return delay

    async def _audit_refused(self, item: OutboxItem, error: str, now: datetime) -> None:
        """The audit log says which notification a receiver refused for good, and why (the
        sender has logged it, once per receiver and error)."""
        detail = {
            "receiver": self.receiver,
            "destination": self._transport.destination,
            "notification": str(item.payload.get("notification", "")),
            "outbox_id": item.id,
            "error": error,
            "attempts": item.attempts + 1,
        }
        try:
            await self.store.audit("driftbot", AUDIT_REFUSED, None, detail, at=now)
        except StoreError:
            logger.exception(
                "outbox of %s: could not audit the refusal of message %d",
                self.receiver,
                item.id,
                extra=self._about(item),
            )
