"""What every table of the store stands on: the backend, one lock around its connection, and
a failure turned into one StoreError sentence naming the store (and counted).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from bot.store.backend import Backend, OutboxClaimLost, StoreError, Transaction
from bot.store.sqlite import SqliteBackend

S = TypeVar("S", bound="StoreBase")


def utc_now() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    """The store's connection and its failures; the tables are its subclasses' methods."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.where = backend.where
        """Where the store is, as messages show it (a path, or a DSN without credentials)."""
        self.path: Path | None = backend.path if isinstance(backend, SqliteBackend) else None
        self._lock = asyncio.Lock()
        self.store_failures = 0
        """Calls that failed with a StoreError since the store was opened (a lost outbox
        claim is not a failure of the store)."""

    async def flush(self) -> bool:
        """Write what is kept in memory: nothing here (every write is made at once); see
        bot.store.write_behind for the store that batches."""
        return True

    async def close(self) -> None:
        await self.backend.close()

    async def __aenter__(self: S) -> S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        async with self._lock, self.backend.transaction() as transaction:
            yield transaction

    @asynccontextmanager
    async def _failing_as(self, doing: str) -> AsyncIterator[None]:
        try:
            yield
        except self.backend.errors as exc:
            self.store_failures += 1
            raise StoreError(
                f"The state store {self.where} failed {doing}: {self.backend.why(exc)}."
            ) from exc
        except OutboxClaimLost:
            raise
        except StoreError:
            self.store_failures += 1
            raise

    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._lock:
            return await self.backend.fetchall(sql, tuple(params))
