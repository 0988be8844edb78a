"""The outbox worker over the PostgreSQL store: the worker's own tests (tests/bot/test_outbox.py,
written against SQLite) again on a database, restarts, and two processes draining one outbox
(a leader and a standby that wrongly believes it leads) without sending anything twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bot.delivery.outbox import OutboxWorker
from bot.delivery.retry import Backoff, RetryPolicy
from bot.store.store import Store
from tests.bot import test_outbox as on_sqlite
from tests.bot.test_outbox import Chat, Clock, queue, worker

StoreCase = Callable[[Store], Awaitable[None]]

CASES: list[StoreCase] = [
    on_sqlite.test_items_are_sent_in_order_and_marked_with_where_they_landed,
    on_sqlite.test_a_retryable_failure_keeps_the_item_pending_and_later_ones_wait,
    on_sqlite.test_a_fatal_failure_is_set_aside_with_its_error_and_the_rest_goes_on,
    on_sqlite.test_an_exception_in_the_transport_is_a_retry_not_a_dead_worker,
    on_sqlite.test_an_item_in_flight_at_a_crash_is_looked_for_before_it_is_sent_again,
    on_sqlite.test_sent_and_where_it_landed_are_written_together,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.removeprefix("test_") for c in CASES])
async def test_the_worker_behaves_the_same_on_postgres(case: StoreCase, postgres_dsn: str) -> None:
    async with await Store.open(postgres_dsn) as store:
        await case(store)


async def test_what_was_pending_at_a_stop_is_sent_once_at_the_next_start(
    postgres_dsn: str,
) -> None:
    chat, clock = Chat(), Clock()
    async with await Store.open(postgres_dsn) as first:
        await queue(first, "one", "two")
    for _ in range(2):
        async with await Store.open(postgres_dsn) as again:
            w = worker(again, chat, clock)
            w.start()
            assert await w.drain(5)
            await w.stop()
    assert chat.received == ["one", "two"]


async def test_two_processes_draining_one_outbox_send_each_message_once(
    postgres_dsn: str,
) -> None:
    async def pass_time(_: float) -> None:
        await asyncio.sleep(0)

    texts = [f"m{i:02}" for i in range(30)]
    stores = [await Store.open(postgres_dsn) for _ in range(2)]
    chats = [Chat(), Chat()]
    workers = [
        OutboxWorker(
            s,
            "oncall",
            c,
            clock=Clock(),
            sleep=pass_time,
            retry=RetryPolicy(deferral=Backoff(base=0, cap=0)),
        )
        for s, c in zip(stores, chats, strict=True)
    ]
    try:
        await queue(stores[0], *texts)
        for w in workers:
            w.start()
        assert all(await asyncio.gather(*(w.drain(30) for w in workers)))
        assert await stores[0].outbox_queue("oncall") == []
        for w in workers:
            await w.stop()
        received = chats[0].received + chats[1].received
        assert sorted(received) == texts, "every message once, none twice"
        assert sum(w.stats.sent for w in workers) == len(texts)
        for chat in chats:  # each process still sends in order what it sends
            assert chat.received == sorted(chat.received)
    finally:
        for s in stores:
            await s.close()
