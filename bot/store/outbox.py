"""The outbox: messages queued for each receiver, handed out oldest first, claimed before a
send (one process sends a message), marked sent with where it landed (one transaction), failed
with a retry time, or refused for good; and where each notification landed, for threads and
in-place updates.

Messages are queued by `Store.commit`, in the transaction that saves the policy state; once
that transaction is committed, and only then, the receivers' workers that watch the outbox
(`outbox_watch`) are woken, once per commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from bot.store.backend import Backend, OutboxClaimLost
from bot.store.base import StoreBase, utc_now
from bot.store.row_text import time_or_none
from core.codec import format_time, parse_time

QUEUED = "sent_at IS NULL AND failed_at IS NULL"
"""An outbox message still to send: neither sent nor refused for good."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    receiver: str
    payload: dict[str, Any]
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str
    next_attempt_at: datetime | None = None
    attempted_at: datetime | None = None
    """Set just before a send and cleared by its outcome: still set on a pending item means the
    process stopped while the message was on its way, and it may have arrived."""
    failed_at: datetime | None = None
    """Set when the receiver refused the message for good (a fatal error): it is not retried."""


@dataclass(frozen=True, slots=True)
class SentMessage:
    """Where a notification landed for one receiver, so it can be updated or threaded later."""

    notification_id: str
    receiver: str
    channel: str
    ts: str
    thread_ts: str | None = None


class OutboxTable(StoreBase):
    """The `outbox` and `sent_messages` tables."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._watchers: dict[str, list[Callable[[], None]]] = {}

    def outbox_watch(self, receiver: str, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` after each commit that queues messages for `receiver` (a worker's
        `wake`); returns what stops it."""
        self._watchers.setdefault(receiver, []).append(wake)

        def unwatch() -> None:
            watching = self._watchers.get(receiver, [])
            if wake in watching:
                watching.remove(wake)

        return unwatch

    def _queued(self, receivers: Iterable[str]) -> None:
        """Messages for `receivers` were just committed: wake each one's watchers, once."""
        for receiver in dict.fromkeys(receivers):
            for wake in list(self._watchers.get(receiver, ())):
                wake()

    async def outbox_pending(
        self, receiver: str | None = None, limit: int = 100, now: datetime | None = None
    ) -> list[OutboxItem]:
        """Unsent messages, oldest first, leaving out those whose retry is not yet due and those
        refused for good."""
        due = format_time(now or utc_now())
        where = (
            "sent_at IS NULL AND failed_at IS NULL "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
        )
        params: list[Any] = [due]
        if receiver is not None:
            where += " AND receiver = ?"
            params.append(receiver)
        return await self._outbox_select(where, params, limit)

    async def outbox_queue(self, receiver: str, limit: int = 100) -> list[OutboxItem]:
        """Every message still to send to `receiver`, oldest first, due or not: a receiver that
        keeps its order waits for the first one's retry before sending the next."""
        return await self._outbox_select(f"{QUEUED} AND receiver = ?", [receiver], limit)

    async def outbox_depths(self) -> dict[str, int]:
        """How many messages each receiver has still to send, counted as `outbox_queue` hands
        them out (neither sent nor refused for good, due or waiting for a retry), in one query;
        receivers with none are left out."""
        async with self._failing_as("counting the outbox"):
            rows = await self._fetchall(
                f"SELECT receiver, COUNT(*) FROM outbox WHERE {QUEUED} GROUP BY receiver"
            )
        return {str(receiver): int(count) for receiver, count in rows}

    async def outbox_failed(
        self, receiver: str | None = None, limit: int = 100
    ) -> list[OutboxItem]:
        """Messages refused for good, newest first."""
        where, params = ("failed_at IS NOT NULL", [])
        if receiver is not None:
            where += " AND receiver = ?"
            params.append(receiver)
        items = await self._outbox_select(where, params, limit, order="id DESC")
        return items

    async def _outbox_select(
        self, where: str, params: list[Any], limit: int, order: str = "id"
    ) -> list[OutboxItem]:
        async with self._failing_as("reading the outbox"):
            rows = await self._fetchall(
                "SELECT id, receiver, payload, created_at, sent_at, attempts, last_error, "
                "next_attempt_at, attempted_at, failed_at "
                f"FROM outbox WHERE {where} ORDER BY {order} LIMIT ?",
                [*params, limit],
            )
        return [
            OutboxItem(
                id=row[0],
                receiver=row[1],
                payload=orjson.loads(row[2]),
                created_at=parse_time(row[3]),
                sent_at=time_or_none(row[4]),
                attempts=row[5],
                last_error=row[6],
                next_attempt_at=time_or_none(row[7]),
                attempted_at=time_or_none(row[8]),
                failed_at=time_or_none(row[9]),
            )
            for row in rows
        ]

    async def outbox_mark_attempt(self, item_id: int, at: datetime | None = None) -> None:
        """Claim the message for sending and note that it is about to be sent (see
        `OutboxItem.attempted_at`). OutboxClaimLost if it was sent or refused meanwhile, or if
        another process holds it: the caller must not send it then."""
        when = format_time(at or utc_now())
        async with self._failing_as("claiming an outbox message"), self._lock:
            if not await self.backend.hold(item_id):
                raise OutboxClaimLost(
                    f"The state store {self.where} has outbox message {item_id} claimed by "
                    "another driftbot process, which is sending it."
                )
            async with self.backend.transaction() as conn:
                changed = await conn.execute(
                    "UPDATE outbox SET attempted_at = ? "
                    "WHERE id = ? AND sent_at IS NULL AND failed_at IS NULL",
                    (when, item_id),
                )
            if not changed:
                await self.backend.release(item_id)
                raise OutboxClaimLost(
                    f"The state store {self.where} has outbox message {item_id} no longer "
                    "pending (sent or refused meanwhile), so it is not sent again."
                )

    async def _release(self, item_id: int) -> None:
        """Let go of a claim; a connection lost meanwhile has let go of it already."""
        async with self._lock:
            with contextlib.suppress(*self.backend.errors):
                await self.backend.release(item_id)

    async def outbox_mark_sent(
        self,
        item_id: int,
        at: datetime | None = None,
        message: SentMessage | None = None,
        *,
        replace: bool = False,
    ) -> None:
        """The message is delivered; `message`, where it landed, is recorded in the same
        transaction, so a crash leaves both or neither. A notification's first landing place
        is kept unless `replace`."""
        when = format_time(at or utc_now())
        async with self._failing_as("updating the outbox"), self._transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, attempted_at = NULL "
                "WHERE id = ?",
                (when, item_id),
            )
            if message is not None:
                upsert = (
                    "DO UPDATE SET channel = excluded.channel, ts = excluded.ts, "
                    "thread_ts = excluded.thread_ts, sent_at = excluded.sent_at"
                    if replace
                    else "DO NOTHING"
                )
                await conn.execute(
                    "INSERT INTO sent_messages "
                    "(notification_id, receiver, channel, ts, thread_ts, sent_at) "
                    f"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (notification_id, receiver) {upsert}",
                    (
                        message.notification_id,
                        message.receiver,
                        message.channel,
                        message.ts,
                        message.thread_ts,
                        when,
                    ),
                )
        await self._release(item_id)

    async def outbox_mark_failed(
        self, item_id: int, error: str, retry_at: datetime | None = None
    ) -> None:
        """Count a failed attempt; the message is pending again from `retry_at` (or at once)."""
        async with self._failing_as("updating the outbox"), self._transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
                "attempted_at = NULL WHERE id = ?",
                (error, None if retry_at is None else format_time(retry_at), item_id),
            )
        await self._release(item_id)

    async def outbox_mark_fatal(self, item_id: int, error: str, at: datetime | None = None) -> None:
        """The receiver refused the message for good: it is kept, with the error, not retried."""
        async with self._failing_as("updating the outbox"), self._transaction() as conn:
            await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, failed_at = ?, "
                "attempted_at = NULL WHERE id = ?",
                (error, format_time(at or utc_now()), item_id),
            )
        await self._release(item_id)

    async def sent_message(self, notification_id: str, receiver: str) -> SentMessage | None:
        """Where `notification_id` landed for `receiver`, if it was delivered."""
        async with self._failing_as("reading the sent messages"):
            rows = await self._fetchall(
                "SELECT channel, ts, thread_ts FROM sent_messages "
                "WHERE notification_id = ? AND receiver = ?",
                [notification_id, receiver],
            )
        if not rows:
            return None
        channel, ts, thread_ts = rows[0]
        return SentMessage(notification_id, receiver, channel, ts, thread_ts)
