"""A store that fails under the running service: the SQLite file locked by another process, or
the disk full. The service keeps running, warns once, keeps what it could not write and saves
it once the store works again; the failures are counted; queued notifications are not lost,
and go out as soon as the store takes them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app.service import open_service
from bot.store.sqlite import SqliteBackend
from bot.store.store import Store, StoreError
from bot.store.write_behind import WriteBehindStore
from config.schema import Config
from core.model import AppState, EventKind, make_event
from core.policy import PolicySettings, PolicyState, offer
from tests.bot.service_world import VirtualClock, until
from tests.bot.test_store import app
from tests.bot.test_store_postgres import server_cut
from tests.builders_argocd import argocd_app
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
FAULTS = ["locked", "full"]
PAD = {"pad": "x" * 20_000}
"""More than the free space a full file has left."""


@asynccontextmanager
async def fault(kind: str, store: Store) -> AsyncIterator[None]:
    """The store's file locked by another connection holding BEGIN EXCLUSIVE, or full: no
    page may be added (PRAGMA max_page_count), so writes fail with SQLITE_FULL."""
    backend = store.backend
    assert isinstance(backend, SqliteBackend)
    if kind == "locked":
        await backend.set_busy_timeout(0)
        other = sqlite3.connect(backend.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    async with backend._conn.execute("PRAGMA page_count") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    await backend._conn.execute(f"PRAGMA max_page_count = {row[0]}")
    try:
        yield
    finally:
        await backend._conn.execute("PRAGMA max_page_count = 1073741823")


async def fill(store: Store) -> None:
    """Take the last free bytes of a full file: rows smaller and smaller until not even a tiny
    one fits, so the next message queued (any Slack message is larger) cannot be written."""
    for size in (4000, 1000, 250, 60, 10):
        with contextlib.suppress(StoreError):
            while True:
                await Store.outbox_add_many(store, "filler", [{"pad": "x" * size}], T0)


def states(prefix: str, count: int) -> list[AppState]:
    return [app(f"{prefix}-{i:04}") for i in range(count)]


def announced(name: str) -> PolicyState:
    event = make_event(EventKind.DRIFT_DETECTED, app(name), T0)
    state, _ = offer(PolicyState(), event, T0, PolicySettings(grace=timedelta(0)))
    return state


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("kind", FAULTS)
async def test_flushes_keep_the_writes_warn_once_and_save_them_when_the_store_works_again(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.sqlite"
    caplog.set_level(logging.INFO)
    store = await WriteBehindStore.open(path)
    try:
        await store.put_states(states("before", 3))
        assert await store.flush()
        async with fault(kind, store):
            await store.put_states(states("during", 300))
            policy = announced("during-0001")
            await store.save_policy(policy)
            results = [await store.flush() for _ in range(5)]
            assert results == [False] * 5
            assert store.store_failures == 5
            assert store.failing is not None
            # Reads see what is kept in memory.
            assert await store.get_state(app("during-0299").key) == app("during-0299")
            assert len(await store.all_states()) == 303
        [warning] = warnings_of(caplog)
        assert str(path) in warning
        assert ("locked" in warning) if kind == "locked" else ("disk is full" in warning)
        assert "Keeping 300 app states" in warning

        assert await store.flush()
        assert store.failing is None and store.pending == (0, False, 0)
        assert store.store_failures == 5
        assert "works again" in warnings_of(caplog)[-1]
    finally:
        await store.close()
    async with await Store.open(path) as reopened:
        assert len(await reopened.all_states()) == 303
        assert await reopened.load_policy() == policy


@pytest.mark.parametrize("kind", FAULTS)
async def test_a_notification_queued_while_the_store_fails_is_kept_and_queued_in_order(
    tmp_path: Path, kind: str
) -> None:
    """The outbox write path (a message is written before it is sent): the receiver is not
    refused, the message waits in memory, and reaches the outbox at the next good flush,
    before anything queued after it; the receiver's worker is woken."""
    woken: list[str] = []
    store = await WriteBehindStore.open(tmp_path / "s.sqlite")
    for receiver in ("oncall", "pm"):
        store.outbox_watch(receiver, lambda receiver=receiver: woken.append(receiver))
    try:
        await store.outbox_add_many("oncall", [{"text": "before"}], T0)
        assert woken == []  # not before its rows are in the store
        assert await store.flush() and woken == ["oncall"]
        [first] = [i.id for i in await store.outbox_queue("oncall")]
        woken.clear()
        async with fault(kind, store):
            ids = await store.outbox_add_many("oncall", [{"text": "a"}, {"text": "b", **PAD}], T0)
            assert all(i < 0 for i in ids) and len(set(ids)) == 2
            assert not await store.flush()
        # The store works again, but the kept messages still go first.
        later = await store.outbox_add_many("pm", [{"text": "c"}], T0 + timedelta(seconds=5))
        assert later[0] < 0
        assert [i.payload["text"] for i in await store.outbox_queue("oncall")] == ["before"]
        assert await store.flush()
        assert woken == ["oncall", "pm"]
        queued = await store.outbox_queue("oncall")
        assert [(i.payload["text"], i.created_at) for i in queued] == [
            ("before", T0),
            ("a", T0),
            ("b", T0),
        ]
        assert queued[0].id == first and queued[1].id > first
        [c] = await store.outbox_queue("pm")
        assert c.created_at == T0 + timedelta(seconds=5) and c.id > queued[-1].id
        # Written once: a second flush writes nothing again.
        assert await store.flush()
        assert len(await store.outbox_queue("oncall")) == 3
    finally:
        await store.close()


@asynccontextmanager
async def outage(store: Store, location: str | Path) -> AsyncIterator[None]:
    """The store down: a full SQLite file with not a byte left, or the PostgreSQL server cut."""
    if isinstance(location, str):
        async with server_cut(location):
            yield
        return
    async with fault("full", store):
        await fill(store)
        yield


async def test_the_outbox_depth_counts_what_an_outage_keeps_in_memory(
    store_location: str | Path,
) -> None:
    store = await WriteBehindStore.open(store_location)
    try:
        await store.outbox_add_many("oncall", [{"text": "queued"}], T0)
        assert await store.flush()
        async with outage(store, store_location):
            kept = await store.outbox_add_many("oncall", [{"text": "a"}, {"text": "b"}], T0)
            assert all(i < 0 for i in kept)
            assert not await store.flush()
        await store.outbox_add_many("pm", [{"text": "c"}], T0)
        assert store.pending[2] == 3
        in_memory = await store.outbox_depths()
        assert store.pending[2] == 3, "counting writes nothing"
        assert await store.flush()
        saved = await store.outbox_depths()
    finally:
        await store.close()
    assert in_memory == saved
    assert (saved["oncall"], saved["pm"]) == (3, 1)


async def test_closing_while_the_store_fails_says_what_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = await WriteBehindStore.open(path)
    async with fault("locked", store):
        await store.put_states(states("x", 2))
        with pytest.raises(StoreError) as info:
            await store.close()
    message = str(info.value)
    assert message.startswith(f"The state store {path} could not save 2 app states")
    assert "locked" in message and "\n" not in message and message.count(". ") == 0


async def test_the_running_service_rides_out_a_locked_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through `open_service`, as `driftbot run` uses it: the flush loop meets the locked file
    every interval, the service goes on, one warning is logged, and the state is saved once the
    lock is gone."""
    caplog.set_level(logging.INFO)
    path = tmp_path / "s.sqlite"
    ticks: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(_: float) -> None:
        await ticks.get()

    async def run_until(done: Callable[[], bool]) -> None:
        """Let intervals pass (the clock's and the flush loop's) until the service got there;
        the store's calls run in a thread, so this polls."""
        async with asyncio.timeout(30):
            while not done():
                if ticks.empty():
                    ticks.put_nowait(None)
                await asyncio.sleep(0.002)

    async with open_service(
        Config(), path, stream=io.StringIO(), sleep=sleep, environ={}, clock=lambda: T0
    ) as service:
        store = service.pipeline.store
        assert isinstance(store, WriteBehindStore)
        async with fault("locked", store):
            await store.put_states(states("during", 10))
            await run_until(lambda: store.store_failures >= 5)
            assert not any(task.done() for task in service._tasks)
        failures = store.store_failures
        await run_until(lambda: store.failing is None)
        assert store.store_failures == failures
        async with await Store.open(path) as reader:
            assert len(await reader.all_states()) == 10
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and "state store" in r.getMessage()
    ]
    assert [r.name for r in warnings] == ["bot.store.write_behind", "bot.store.write_behind"]
    assert "is locked" in warnings[0].getMessage() and "works again" in warnings[1].getMessage()


async def test_a_notification_kept_through_an_outage_is_sent_once_the_store_takes_it(
    tmp_path: Path,
) -> None:
    """Through `open_service`: a drift announced while the disk is full waits in memory; the
    first flush after the disk has room queues it in the store and wakes the Slack receiver's
    outbox worker, so it reaches Slack with no other notification to carry it."""
    channel = "C0OUTAGE"
    clock = VirtualClock(T0)
    ticks: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(_: float) -> None:
        await ticks.get()

    async with FakeSlackApi() as slack:
        config = Config.model_validate(
            {
                "receivers": [{"name": "oncall", "slack": {"channel": channel}}],
                "routes": [{"receivers": ["oncall"]}],
                "policy": {"grace": "0s", "group_wait": "0s", "flap": {"flips": 0}},
                "slack": {"api_url": slack.url},
            }
        )
        async with open_service(
            config,
            tmp_path / "s.sqlite",
            stream=io.StringIO(),
            sleep=sleep,
            environ={"SLACK_BOT_TOKEN": VALID_TOKEN},
            clock=clock,
        ) as service:
            store = service.pipeline.store
            assert isinstance(store, WriteBehindStore)
            gate = service.gate
            await gate.observe(argocd_app("checkout"), "prod", "ADDED", clock())
            async with fault("full", store):
                await fill(store)
                drifted = argocd_app(
                    "checkout", sync="OutOfSync", out_of_sync=[("Deployment", "shop", "checkout")]
                )
                await gate.observe(drifted, "prod", "MODIFIED", clock.advance())
                assert service.pipeline.stats["sent"] == 1
                assert store.failing is not None and store.pending[2] >= 1
            # The disk has room again: the flush loop's next interval writes the message.
            async with asyncio.timeout(10):
                while store.pending[2]:
                    if ticks.empty():
                        ticks.put_nowait(None)
                    await asyncio.sleep(0.002)
            await until(lambda: bool(slack.messages(channel)), 10)
            [message] = slack.messages(channel)
            assert "checkout" in message["text"]
            assert service.pipeline.stats["sent"] == 1
