"""What is particular to the PostgreSQL store: DSNs in messages without their password, two
processes starting on one database at once, outbox claims between two processes, a connection
that breaks, and the running service's write-behind over it."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.app.cli import main
from bot.store.postgres import postgres_ddl
from bot.store.store import (
    MIGRATIONS,
    OutboxClaimLost,
    SentMessage,
    Store,
    StoreError,
    redact_dsn,
    store_location,
)
from bot.store.write_behind import WriteBehindStore
from tests.bot.test_store import app
from tests.pg_server import PostgresServer

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (
            "postgresql://bot:s3cret@db.example:6543/driftbot",
            "postgresql://db.example:6543/driftbot",
        ),
        (
            "postgres://bot:s3cret@db.example/driftbot?sslmode=require",
            "postgresql://db.example:5432/driftbot",
        ),
        (
            "postgresql:///driftbot?host=/run/pg&password=s3cret",
            "postgresql:///run/pg:5432/driftbot",
        ),
        ("postgresql://bot:s3cret@db.example:notaport/x", "postgresql://(unparsable DSN)"),
    ],
)
def test_a_dsn_is_shown_without_credentials(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown
    assert "s3cret" not in redact_dsn(dsn)


def with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_a_refused_connection_is_one_sentence_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dsn = f"postgresql://bot:s3cret@127.0.0.1:{port}/driftbot"
    with pytest.raises(StoreError) as info:
        await Store.open(dsn)
    message = str(info.value)
    assert message == (
        f"Cannot open the state store postgresql://127.0.0.1:{port}/driftbot: "
        "the connection was refused (is the server running?)."
    )
    assert "s3cret" not in message and info.value.__cause__ is None


async def test_a_missing_database_is_named(postgres_dsn: str) -> None:
    dsn = urlunsplit(urlsplit(postgres_dsn)._replace(path="/no_such_db"))
    with pytest.raises(
        StoreError, match=r"^Cannot open the state store postgresql://.*/no_such_db: "
    ):
        await Store.open(dsn)


async def test_two_processes_starting_at_once_migrate_once(postgres_dsn: str) -> None:
    stores = await asyncio.gather(*(Store.open(postgres_dsn) for _ in range(4)))
    try:
        for store in stores:
            await store.put_state(app("checkout"))
        rows = await stores[0]._fetchall("SELECT version FROM schema_version")
        assert rows == [(len(MIGRATIONS),)]
    finally:
        for store in stores:
            await store.close()


async def test_a_newer_schema_is_refused(postgres_dsn: str) -> None:
    async with await Store.open(postgres_dsn):
        pass
    conn = await asyncpg.connect(postgres_dsn)
    await conn.execute("UPDATE schema_version SET version = $1", len(MIGRATIONS) + 1)
    await conn.close()
    with pytest.raises(StoreError, match="newer than this driftbot knows"):
        await Store.open(postgres_dsn)


def test_the_schema_is_translated_once_for_both() -> None:
    ddl = postgres_ddl(MIGRATIONS[0])
    assert "AUTOINCREMENT" not in ddl and "INTEGER" not in ddl
    assert 'TEXT COLLATE "C"' in ddl
    assert "rowid BIGINT GENERATED ALWAYS AS IDENTITY" in ddl


async def test_an_outbox_message_is_sent_by_one_process_at_a_time(postgres_dsn: str) -> None:
    """Two processes that both drain the outbox (a leader and a standby that wrongly thinks it
    leads): the second cannot claim what the first is sending, nor anything once it is sent;
    a process that dies frees what it held."""
    first = await Store.open(postgres_dsn)
    second = await Store.open(postgres_dsn)
    try:
        sent, dropped = await first.outbox_add_many("oncall", [{"text": "a"}, {"text": "b"}], T0)
        await first.outbox_mark_attempt(sent, T0)
        with pytest.raises(OutboxClaimLost, match="claimed by another driftbot process"):
            await second.outbox_mark_attempt(sent, T0)
        await first.outbox_mark_attempt(sent, T0)  # its own claim, again: still its own
        await first.outbox_mark_sent(sent, T0, SentMessage("n1", "oncall", "C1", "1.0"))
        with pytest.raises(OutboxClaimLost, match="no longer pending"):
            await second.outbox_mark_attempt(sent, T0)

        assert first.store_failures == second.store_failures == 0, "claims lost are no failures"
        await first.outbox_mark_attempt(dropped, T0)
        await first.close()  # the process dies with the message on its way
        await second.outbox_mark_attempt(dropped, T0)
        await second.outbox_mark_sent(dropped, T0)
        assert await second.outbox_queue("oncall") == []
        assert await second.sent_message("n1", "oncall") == SentMessage("n1", "oncall", "C1", "1.0")
    finally:
        await first.close()
        await second.close()


async def test_concurrent_claims_let_exactly_one_through(postgres_dsn: str) -> None:
    stores = [await Store.open(postgres_dsn) for _ in range(3)]
    try:
        ids = await stores[0].outbox_add_many("oncall", [{"n": i} for i in range(20)], T0)

        async def claim(store: Store, item: int) -> bool:
            try:
                await store.outbox_mark_attempt(item, T0)
            except OutboxClaimLost:
                return False
            await store.outbox_mark_sent(item, T0)
            return True

        for item in ids:
            won = await asyncio.gather(*(claim(s, item) for s in stores))
            assert sum(won) == 1, item
    finally:
        for store in stores:
            await store.close()


@asynccontextmanager
async def server_cut(dsn: str) -> AsyncIterator[None]:
    """The database refuses connections and every open one is cut, until the block ends."""
    database = urlsplit(dsn).path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(urlsplit(dsn)._replace(path="/postgres")))
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            database,
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_a_broken_connection_fails_and_the_next_call_after_it_reconnects(
    postgres_dsn: str,
) -> None:
    async with await Store.open(postgres_dsn) as store:
        await store.put_state(app("before"))
        async with server_cut(postgres_dsn):
            with pytest.raises(StoreError) as info:
                await store.put_state(app("lost-call"))
            message = str(info.value)
            assert message.startswith(f"The state store {redact_dsn(postgres_dsn)} failed")
            assert "\n" not in message
            with pytest.raises(StoreError):
                await store.get_state(app("before").key)
        assert store.store_failures == 2
        await store.put_state(app("after"))
        assert set((await store.all_states()).keys()) == {app("before").key, app("after").key}


async def test_write_behind_over_postgres_keeps_writes_through_a_server_cut(
    postgres_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await WriteBehindStore.open(postgres_dsn)
    try:
        await store.put_states([app("a"), app("b")])
        async with server_cut(postgres_dsn):
            assert not await store.flush()
            assert not await store.flush()
            ids = await store.outbox_add_many("oncall", [{"text": "kept"}], T0)
            assert ids[0] < 0
        [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert redact_dsn(postgres_dsn) in warning and "Keeping 2 app states" in warning
        assert await store.flush()
        [queued] = await store.outbox_queue("oncall")
        assert queued.payload == {"text": "kept"}
    finally:
        await store.close()
    async with await Store.open(postgres_dsn) as reopened:
        assert set(await reopened.all_states()) == {app("a").key, app("b").key}


def test_run_refuses_a_dsn_that_is_not_postgresql(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTBOT_STORE_DSN", "mysql://bot:s3cret@db/driftbot")
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert "DRIFTBOT_STORE_DSN must be a PostgreSQL DSN" in err and "s3cret" not in err


async def test_the_dsn_in_the_environment_wins_over_a_state_path(postgres_dsn: str) -> None:
    assert store_location("/tmp/ignored.sqlite", {"DRIFTBOT_STORE_DSN": postgres_dsn}) == (
        postgres_dsn
    )
    assert str(store_location("/tmp/s.sqlite", {})) == "/tmp/s.sqlite"
