"""The outbox worker against a real store: order, retries, fatal errors, restarts.

The transport here is a small in-memory chat service implementing the worker's Transport
protocol; the Slack transport is tested against the fake Slack in test_slack_receiver.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.delivery.outbox import Delivered, OutboxWorker, Outcome, Refused, RetryLater
from bot.delivery.retry import Backoff, RetryPolicy
from bot.ops.logs import JsonFormatter
from bot.store.store import MIGRATIONS, OutboxItem, SentMessage, Store
from bot.store.write_behind import WriteBehindStore

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@dataclass
class Chat:
    """Accepts messages into a list; answers from `script` first (one outcome per send)."""

    received: list[str] = field(default_factory=list)
    script: list[Outcome | Exception] = field(default_factory=list)
    delivered_before_restart: set[int] = field(default_factory=set)
    checked: list[int] = field(default_factory=list)
    destination: str = "channel C0ONCALL"

    async def send(self, item: OutboxItem) -> Outcome:
        if self.script:
            scripted = self.script.pop(0)
            if isinstance(scripted, Exception):
                raise scripted
            if isinstance(scripted, Refused | RetryLater):
                return scripted
        text = str(item.payload["text"])
        self.received.append(text)
        return Delivered(SentMessage(text, "oncall", "C0ONCALL", f"{len(self.received)}.0"))

    async def find_delivered(self, item: OutboxItem) -> Delivered | None:
        self.checked.append(item.id)
        if item.id in self.delivered_before_restart:
            return Delivered(SentMessage(str(item.payload["text"]), "oncall", "C0ONCALL", "9.9"))
        return None


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []
        self.release = asyncio.Event()

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Waits until the test releases it, then moves time on by `seconds`."""
        self.sleeps.append(seconds)
        await self.release.wait()
        self.release.clear()
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "s.sqlite") as opened:
        yield opened


async def queue(store: Store, *texts: str) -> list[int]:
    return await store.outbox_add_many("oncall", [{"text": t} for t in texts], T0)


def worker(store: Store, chat: Chat, clock: Clock) -> OutboxWorker:
    return OutboxWorker(
        store,
        "oncall",
        chat,
        clock=clock,
        sleep=clock.sleep,
        retry=RetryPolicy(deferral=Backoff(base=5, cap=60, jitter=0)),
    )


async def test_items_are_sent_in_order_and_marked_with_where_they_landed(store: Store) -> None:
    chat, clock = Chat(), Clock()
    w = worker(store, chat, clock)
    await queue(store, "one", "two", "three")
    w.start()
    assert await w.drain(5)
    await w.stop()

    assert chat.received == ["one", "two", "three"]
    assert await store.outbox_queue("oncall") == []
    landed = await store.sent_message("two", "oncall")
    assert landed is not None and (landed.channel, landed.ts) == ("C0ONCALL", "2.0")
    assert w.stats.sent == 3


async def test_a_retryable_failure_keeps_the_item_pending_and_later_ones_wait(store: Store) -> None:
    chat, clock = Chat(script=[RetryLater("ratelimited")]), Clock()
    w = worker(store, chat, clock)
    first, _ = await queue(store, "one", "two")
    w.start()
    assert await w.drain(5)  # idle: waiting for the retry

    (pending, _waiting) = await store.outbox_queue("oncall")
    assert pending.id == first and pending.last_error == "ratelimited" and pending.attempts == 1
    assert pending.next_attempt_at == T0 + timedelta(seconds=5)
    assert pending.attempted_at is None
    assert chat.received == []  # "two" did not overtake "one"
    assert clock.sleeps == [5.0]

    w.wake()
    clock.release.set()
    assert await w.drain(5)
    await w.stop()
    assert chat.received == ["one", "two"]
    assert w.stats.retried == 1


@pytest.mark.parametrize(("asked", "waits"), [(None, 5.0), (2.0, 5.0), (120.0, 120.0)])
async def test_the_next_try_waits_what_the_chat_service_asked_when_longer_than_the_policy(
    store: Store, asked: float | None, waits: float
) -> None:
    """A try that ended on a 429 the retry stage would not wait out in process (a Retry-After
    past its limit) is deferred by the outbox for that Retry-After, not by the policy's shorter
    deferral, so the next try does not hit the same 429; a shorter ask changes nothing."""
    chat, clock = Chat(script=[RetryLater("ratelimited", after=asked)]), Clock()
    w = worker(store, chat, clock)
    await queue(store, "one")
    w.start()
    assert await w.drain(5)
    await w.stop()

    (pending,) = await store.outbox_queue("oncall")
    assert pending.next_attempt_at == T0 + timedelta(seconds=waits)
    assert clock.sleeps == [waits]
    assert chat.received == []


async def test_a_fatal_failure_is_set_aside_with_its_error_and_the_rest_goes_on(
    store: Store,
) -> None:
    chat, clock = Chat(script=[Refused("channel_not_found")]), Clock()
    w = worker(store, chat, clock)
    first, _ = await queue(store, "one", "two")
    w.start()
    assert await w.drain(5)
    await w.stop()

    (failed,) = await store.outbox_failed("oncall")
    assert (failed.id, failed.last_error, failed.failed_at) == (first, "channel_not_found", T0)
    assert chat.received == ["two"]
    assert w.stats.failed == 1 and w.stats.failed_by_error == {"channel_not_found": 1}
    assert await store.outbox_pending("oncall", now=T0 + timedelta(days=1)) == []


async def test_an_exception_in_the_transport_is_a_retry_not_a_dead_worker(store: Store) -> None:
    chat, clock = Chat(script=[RuntimeError("boom")]), Clock()
    w = worker(store, chat, clock)
    await queue(store, "one")
    w.start()
    assert await w.drain(5)
    (item,) = await store.outbox_queue("oncall")
    assert item.last_error == "exception:RuntimeError"
    clock.release.set()
    w.wake()
    assert await w.drain(5)
    await w.stop()
    assert chat.received == ["one"]


async def test_what_was_pending_at_a_stop_is_sent_once_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    chat, clock = Chat(), Clock()
    async with await Store.open(path) as first:
        await queue(first, "one", "two")
    async with await Store.open(path) as second:
        w = worker(second, chat, clock)
        w.start()
        assert await w.drain(5)
        await w.stop()
    async with await Store.open(path) as third:
        w = worker(third, chat, clock)
        w.start()
        assert await w.drain(5)
        await w.stop()
    assert chat.received == ["one", "two"]


async def test_an_item_in_flight_at_a_crash_is_looked_for_before_it_is_sent_again(
    store: Store,
) -> None:
    arrived, lost, _untouched = await queue(store, "arrived", "lost", "untouched")
    await store.outbox_mark_attempt(arrived, T0)
    await store.outbox_mark_attempt(lost, T0)
    chat, clock = Chat(delivered_before_restart={arrived}), Clock()
    w = worker(store, chat, clock)
    w.start()
    assert await w.drain(5)
    await w.stop()

    assert chat.checked == [arrived, lost]  # only items that were on their way are looked for
    assert chat.received == ["lost", "untouched"]
    assert (w.stats.recovered, w.stats.resent, w.stats.sent) == (1, 1, 2)
    landed = await store.sent_message("arrived", "oncall")
    assert landed is not None and landed.ts == "9.9"


async def test_a_store_from_before_the_outbox_columns_keeps_its_queue(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("CREATE TABLE schema_version (version INTEGER)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute(
        "INSERT INTO outbox (receiver, payload, created_at) VALUES (?, ?, ?)",
        ("oncall", '{"text": "queued before the upgrade"}', "2026-11-20T09:00:00Z"),
    )
    conn.commit()
    conn.close()

    async with await Store.open(path) as store:
        (item,) = await store.outbox_queue("oncall")
        assert item.payload == {"text": "queued before the upgrade"}
        assert item.attempted_at is None and item.failed_at is None
        assert await store.sent_message("x", "oncall") is None


async def test_sent_and_where_it_landed_are_written_together(store: Store) -> None:
    (item,) = await queue(store, "one")
    first = SentMessage("n1", "oncall", "C1", "1.0")
    await store.outbox_mark_sent(item, T0, first)
    (again,) = await queue(store, "reminder")
    await store.outbox_mark_sent(again, T0, SentMessage("n1", "oncall", "C1", "2.0", "1.0"))
    assert await store.sent_message("n1", "oncall") == first  # the first landing place stays
    await store.outbox_mark_sent(again, T0, SentMessage("n1", "oncall", "C1", "3.0"), replace=True)
    replaced = await store.sent_message("n1", "oncall")
    assert replaced is not None and replaced.ts == "3.0"


class QueuesDuringTheLastRead(Store):
    """A store where another caller queues (and wakes the worker) just as the worker's read
    of the queue comes back empty: the moment a wake-up can fall between that read and the
    worker calling itself idle."""

    late: list[str]
    worker: OutboxWorker | None = None

    async def outbox_queue(self, receiver: str, limit: int = 100) -> list[OutboxItem]:
        items = await super().outbox_queue(receiver, limit)
        if not items and self.late and self.worker is not None:
            await queue(self, self.late.pop(0))
            self.worker.wake()
        return items


async def test_a_message_queued_as_a_pass_ends_is_sent_before_the_worker_is_idle(
    tmp_path: Path,
) -> None:
    async with await QueuesDuringTheLastRead.open(tmp_path / "s.sqlite") as store:
        assert isinstance(store, QueuesDuringTheLastRead)
        store.late = ["late"]
        chat, clock = Chat(), Clock()
        w = store.worker = worker(store, chat, clock)
        await queue(store, "early")
        w.start()
        assert await w.drain(5)
        assert chat.received == ["early", "late"]  # drained means nothing is left to send
        assert await store.outbox_queue("oncall") == []
        await w.stop()


async def test_the_worker_logs_name_the_receiver_and_the_message(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed send and a retry are logged with the receiver, the outbox id and the
    notification as context fields, so JSON logs can be filtered by receiver."""
    chat, clock = Chat(script=[RuntimeError("boom"), RetryLater("ratelimited")]), Clock()
    w = worker(store, chat, clock)
    [item] = await store.outbox_add_many("oncall", [{"text": "one", "notification": "n1"}], T0)
    w.start()
    assert await w.drain(5)
    clock.release.set()
    w.wake()
    assert await w.drain(5)
    await w.stop()
    records = [r for r in caplog.records if r.name == "bot.delivery.outbox"]
    assert len(records) == 3, [r.getMessage() for r in records]
    expected = {"receiver": "oncall", "outbox_id": item, "notification": "n1"}
    for record in records:
        assert {key: getattr(record, key, None) for key in expected} == expected
    fields = json.loads(JsonFormatter().format(records[-1]))
    assert {key: fields.get(key) for key in expected} == expected
    assert fields["logger"] == "bot.delivery.outbox"


@pytest.mark.parametrize("behind", [False, True])
async def test_a_worker_is_woken_once_per_commit_and_only_after_its_rows_are_committed(
    tmp_path: Path, behind: bool
) -> None:
    """The store wakes a receiver's watchers after the transaction that queued its messages,
    once per commit: what wakes finds the rows there, also from another connection. A
    write-behind store queues in memory and wakes at the flush that writes them."""
    path = tmp_path / "s.sqlite"
    opened = await (WriteBehindStore if behind else Store).open(path)
    seen: list[int] = []

    def wake() -> None:
        with sqlite3.connect(path) as other:
            seen.append(other.execute("SELECT count(*) FROM outbox").fetchone()[0])

    try:
        unwatch = opened.outbox_watch("oncall", wake)
        opened.outbox_watch("pm", lambda: seen.append(-1))
        await opened.outbox_add_many("oncall", [{"text": "one"}, {"text": "two"}], T0)
        assert seen == ([] if behind else [2])
        await opened.flush()
        assert seen == [2]
        unwatch()
        await opened.outbox_add_many("oncall", [{"text": "three"}], T0)
        await opened.flush()
        assert seen == [2]
    finally:
        await opened.close()
