"""The store's embedded backend: one SQLite file (aiosqlite), the default.

One connection in WAL mode with `synchronous=NORMAL`; writes run in `BEGIN IMMEDIATE`
transactions, so a second process opening the same file waits for the lock (up to SQLite's
busy time-out) or fails with "database is locked", which the store reports as a StoreError.
The schema is `MIGRATIONS` as written, one step per transaction. SQLite has one writer per
file, so an outbox message's claim is its row's own state (not yet sent, not refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.store.backend import MIGRATIONS, StoreError, newer_schema

__all__ = ["SqliteBackend", "expand_path", "sqlite_why"]


class _SqliteTransaction:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._conn.execute(sql, tuple(params))
        return int(cursor.rowcount)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, [tuple(r) for r in rows])

    async def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        cursor = await self._conn.execute(sql, tuple(params))
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)


class SqliteBackend:
    """A SQLite file. Create with `await SqliteBackend.open(path)`."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)

    def __init__(self, path: Path, conn: aiosqlite.Connection) -> None:
        self.path = path
        self.where = str(path)
        self._conn = conn

    @classmethod
    async def open(cls, path: Path) -> SqliteBackend:
        """Open (or create) the file at `path`, creating parent directories; no schema yet."""
        where = await asyncio.to_thread(_prepare_directory, path)
        try:
            conn = await aiosqlite.connect(where, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"Cannot open the state store {where}: {sqlite_why(exc)}.") from exc
        backend = cls(where, conn)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.Error, OSError) as exc:
            await conn.close()
            raise StoreError(f"Cannot open the state store {where}: {sqlite_why(exc)}.") from exc
        return backend

    def why(self, exc: BaseException) -> str:
        return sqlite_why(exc)

    async def set_busy_timeout(self, seconds: float) -> None:
        """How long a write waits for another process's lock before it fails (default 5 s)."""
        await self._conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    async def migrate(self) -> None:
        conn = self._conn
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        async with conn.execute("SELECT max(version) FROM schema_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row and row[0] is not None else 0
        if version > len(MIGRATIONS):
            raise newer_schema(self.where, version)
        for number in range(version, len(MIGRATIONS)):
            script = (
                f"BEGIN IMMEDIATE; {MIGRATIONS[number]}; "
                "DELETE FROM schema_version; "
                f"INSERT INTO schema_version (version) VALUES ({number + 1}); COMMIT;"
            )
            try:
                await conn.executescript(script)
            except sqlite3.Error:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._conn.execute(sql, tuple(params)) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTransaction]:
        await self._begin()
        try:
            yield _SqliteTransaction(self._conn)
        except BaseException:
            # Some errors (SQLITE_FULL) have rolled the transaction back already.
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    await self._conn.execute("ROLLBACK")
            raise
        await self._conn.execute("COMMIT")

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE. A caller cancelled while its BEGIN was on the way leaves the
        connection inside a transaction in which it wrote nothing: that one is rolled back."""
        try:
            await self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "within a transaction" not in str(exc):
                raise
            await self._conn.execute("ROLLBACK")
            await self._conn.execute("BEGIN IMMEDIATE")

    async def hold(self, item_id: int) -> bool:
        return True

    async def release(self, item_id: int) -> None:
        return None

    async def close(self) -> None:
        await self._conn.close()


def expand_path(path: Path) -> Path:
    """`~` expanded; a `~user` that names no user is left as written."""
    try:
        return path.expanduser()
    except RuntimeError:
        return path


def _prepare_directory(path: Path) -> Path:
    """The expanded path, its parent directories created (StoreError if they cannot be)."""
    path = expand_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"Cannot create the directory of the state store {path}: {sqlite_why(exc)}."
        ) from exc
    return path


def sqlite_why(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, OSError):
        text = exc.strerror or text
    if "file is not a database" in text:
        return "the file is not a SQLite database"
    if "unable to open database file" in text:
        return "the file cannot be opened (check that the path is a writable file)"
    if "database or disk is full" in text:
        return "the disk is full (or the file reached its size limit)"
    if "database is locked" in text:
        return "the file is locked by another process"
    return text[:1].lower() + text[1:] if text else type(exc).__name__
