"""The seam under the store: what `bot.store.store.Store` needs from a database, and nothing more.

`Store` holds all of the store's logic (what is written, how it is encoded, the policy-state
differences, the outbox rules) as SQL that SQLite and PostgreSQL both accept: `?` placeholders,
`INSERT … ON CONFLICT … DO UPDATE/NOTHING` upserts, TEXT columns. A backend runs that SQL on one
connection and owns only what differs between the two:

| concern | SQLite (`bot/store/sqlite.py`) | PostgreSQL (`bot/store/postgres.py`) |
| --- | --- | --- |
| placeholders | `?` as written | rewritten to `$1, $2, …` |
| schema | `MIGRATIONS` as written | translated: identity columns, BIGINT, `COLLATE "C"` text |
| migrations | one transaction per step | all steps in one transaction under an advisory lock |
| transactions | `BEGIN IMMEDIATE` … `COMMIT` | `BEGIN` … `COMMIT` (read committed) |
| new ids | `lastrowid` | `RETURNING id` |
| outbox claims | the row's own state | the row's state and a session advisory lock per message |
| failures | `sqlite3.Error`, `OSError` | asyncpg errors, `OSError`; the connection re-opened |

Every backend error that reaches `Store` is one of `Backend.errors`; the store turns it into a
StoreError whose message is one sentence naming `Backend.where` (a path, or a DSN reduced to
its host, port and database: never its password).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE app_states (
        key TEXT PRIMARY KEY,
        observed_at TEXT NOT NULL,
        state TEXT NOT NULL
    );
    CREATE TABLE policy_held (
        alert_key TEXT PRIMARY KEY,
        due TEXT NOT NULL,
        held TEXT NOT NULL
    );
    CREATE TABLE policy_open (
        alert_key TEXT PRIMARY KEY,
        announced_at TEXT NOT NULL,
        alert TEXT NOT NULL
    );
    CREATE TABLE policy_recent (
        id TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        app_key TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_by_app ON audit (app_key, id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        receiver TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        next_attempt_at TEXT
    );
    CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
    """,
    """
    ALTER TABLE outbox ADD COLUMN attempted_at TEXT;
    ALTER TABLE outbox ADD COLUMN failed_at TEXT;
    CREATE TABLE sent_messages (
        notification_id TEXT NOT NULL,
        receiver TEXT NOT NULL,
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        thread_ts TEXT,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (notification_id, receiver)
    );
    """,
    """
    CREATE TABLE policy_groups (
        id TEXT PRIMARY KEY,
        meta TEXT NOT NULL
    );
    CREATE TABLE policy_group_events (
        group_id TEXT NOT NULL,
        part TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (group_id, part, seq)
    );
    CREATE TABLE policy_items (
        part TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (part, key)
    );
    """,
)
"""Schema changes in order, in SQLite's words; MIGRATIONS[n] takes a store from version n to
n + 1. The PostgreSQL backend translates them (see `bot.store.postgres.postgres_ddl`), so a new
step is written once, in the subset both understand."""


class StoreError(Exception):
    """The state store cannot be opened or used; the message is one sentence naming where the
    store is (its path, or its database host and name)."""


class OutboxClaimLost(StoreError):
    """A message could not be claimed for sending: it was sent or refused meanwhile, or another
    process holds it. The outbox worker treats it as any store failure: it reads its queue
    again a little later, and nothing is sent twice."""


def newer_schema(where: str, version: int) -> StoreError:
    return StoreError(
        f"The state store {where} has schema version {version}, newer than this "
        f"driftbot knows ({len(MIGRATIONS)}): upgrade driftbot or use another store."
    )


class Transaction(Protocol):
    """Statements inside one transaction of a backend."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        """Run one `INSERT` into a table whose key is `id`; the new row's id."""
        ...


class Backend(Protocol):
    """One connection to one store. Calls are never concurrent: `Store` serialises them."""

    where: str
    """Where the store is, for messages: a path, or `postgresql://host:port/database`."""
    errors: tuple[type[BaseException], ...]
    """What the backend raises when the database fails; anything else is a bug."""

    def why(self, exc: BaseException) -> str:
        """One of `errors` as the end of a sentence (lower-case start, no full stop)."""
        ...

    async def migrate(self) -> None:
        """Bring the schema to `len(MIGRATIONS)`; StoreError (`newer_schema`) if it is newer."""
        ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Committed when the block ends, rolled back when it raises (or is cancelled)."""
        ...

    async def hold(self, item_id: int) -> bool:
        """Take this process's hold on outbox message `item_id` (kept until `release`); False
        if another live process holds it."""
        ...

    async def release(self, item_id: int) -> None: ...

    async def close(self) -> None: ...
