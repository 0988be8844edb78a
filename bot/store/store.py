"""The durable memory of the bot: app states, policy state, audit log, outbox and where each
notification landed (for threads and in-place updates), in SQLite or PostgreSQL.

What was seen and what was announced must survive restarts, or a restart would re-announce
everything. `Store` holds the logic once, as SQL both databases accept, over a small backend
seam (`bot/store/backend.py`): an embedded SQLite file by default (`bot/store/sqlite.py`), or
a PostgreSQL database shared by a leader and its standby (`bot/store/postgres.py`).
`open_store(path_or_dsn)` picks the backend: a `postgresql://` DSN, else a file path. The
schema moves forward by numbered migrations recorded in `schema_version`. The policy state is
kept as rows and saved as a difference from what was last saved, so a save stays small with
10,000 apps.

Every failure to open or use the store is a StoreError whose message is one sentence naming
where it is (the path, or the database's host and name, never a password), for the CLI to
print as is; `Store.store_failures` counts them.

The tables live in modules of their own: the outbox (`outbox.py`), the audit log (`audit.py`),
the policy state as rows (`policy_rows.py`, pure); `Store` adds the app states and the one
transaction (`commit`) that queues messages with the policy state that says they were sent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bot.store.audit import INSERT_AUDIT, AuditEntry, AuditRow, AuditTable
from bot.store.backend import MIGRATIONS, Backend, OutboxClaimLost, StoreError
from bot.store.base import S, utc_now
from bot.store.dsn import is_postgres_dsn, redact_dsn
from bot.store.outbox import OutboxItem, OutboxTable, SentMessage
from bot.store.policy_rows import POLICY_QUERIES, PolicyRows, Write, decode_policy, policy_writes
from bot.store.row_text import key_text, to_text
from bot.store.sqlite import SqliteBackend, expand_path
from core.codec import CodecError, app_key_from_list, app_state_from_dict, format_time
from core.model import AppKey, AppState
from core.policy import PolicyState

__all__ = [
    "MIGRATIONS",
    "AuditEntry",
    "OutboxClaimLost",
    "OutboxItem",
    "SentMessage",
    "Store",
    "StoreError",
    "default_state_path",
    "open_store",
    "redact_dsn",
    "store_location",
]

logger = logging.getLogger(__name__)


def default_state_path(env: Mapping[str, str] | None = None) -> Path:
    """$DRIFTBOT_STATE, else $XDG_STATE_HOME/driftbot/state.sqlite, else under ~/.local/state."""
    env = os.environ if env is None else env
    if env.get("DRIFTBOT_STATE"):
        return expand_path(Path(env["DRIFTBOT_STATE"]))
    base = env.get("XDG_STATE_HOME") or str(expand_path(Path("~/.local/state")))
    return expand_path(Path(base)) / "driftbot" / "state.sqlite"


def store_location(
    state: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> str | Path:
    """Where the store is: $DRIFTBOT_STORE_DSN when set (it wins over any path), else `state`,
    else `default_state_path(env)`."""
    env = os.environ if env is None else env
    dsn = env.get("DRIFTBOT_STORE_DSN", "").strip()
    if dsn:
        return dsn
    return Path(state) if state is not None else default_state_path(env)


async def open_store(location: str | os.PathLike[str]) -> Store:
    """The store at `location`: a `postgresql://` (or `postgres://`) DSN, else a SQLite path."""
    return await Store.open(location)


class Store(OutboxTable, AuditTable):
    """The store over one backend. Create with `await Store.open(path_or_dsn)` (or
    `open_store`); `await close()` when done."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._policy: PolicyState | None = None
        """The policy state as last loaded or saved: saves write only the difference."""

    @classmethod
    async def open(cls: type[S], location: str | os.PathLike[str]) -> S:
        """Open (or create) the store at `location`, with its schema: a `postgresql://` DSN,
        else a SQLite file path (parent directories created)."""
        backend: Backend
        if isinstance(location, str) and is_postgres_dsn(location):
            from bot.store.postgres import PostgresBackend  # asyncpg only for PostgreSQL

            backend = await PostgresBackend.open(location)
        else:
            backend = await SqliteBackend.open(Path(location))
        try:
            await backend.migrate()
        except BaseException as exc:
            await backend.close()
            if isinstance(exc, backend.errors):
                raise StoreError(
                    f"Cannot open the state store {backend.where}: {backend.why(exc)}."
                ) from exc
            raise
        return cls(backend)

    # App states

    async def get_state(self, key: AppKey) -> AppState | None:
        async with self._failing_as("reading an app state"):
            rows = await self._fetchall(
                "SELECT state FROM app_states WHERE key = ?", [key_text(key)]
            )
        if not rows:
            return None
        try:
            return app_state_from_dict(orjson.loads(rows[0][0]))
        except (CodecError, orjson.JSONDecodeError) as exc:
            raise StoreError(
                f"The state store {self.where} holds an unreadable state for {key}: {exc}."
            ) from exc

    async def put_state(self, state: AppState) -> None:
        await self.put_states([state])

    async def put_states(self, states: Iterable[AppState]) -> None:
        """Write many states in one transaction."""
        await self.commit(states=states)

    async def delete_state(self, key: AppKey) -> None:
        async with self._failing_as("deleting an app state"), self._transaction() as conn:
            await conn.execute("DELETE FROM app_states WHERE key = ?", (key_text(key),))

    async def all_states(self) -> dict[AppKey, AppState]:
        """Every stored state; an unreadable row is logged and left in place, not lost."""
        async with self._failing_as("reading app states"):
            rows = await self._fetchall("SELECT key, state FROM app_states")
        states: dict[AppKey, AppState] = {}
        for key, text in rows:
            try:
                state = app_state_from_dict(orjson.loads(text))
            except (CodecError, orjson.JSONDecodeError) as exc:
                logger.warning("skipping unreadable app state %s in %s: %s", key, self.where, exc)
                continue
            states[state.key] = state
        return states

    async def stored_states(self) -> dict[AppKey, AppState | str]:
        """Every stored state as its text, by key, to be decoded when read
        (bot.pipeline.app_states). A row whose key text is not an app key is decoded now (its
        state names its key), and skipped with a warning if unreadable: left in place."""
        async with self._failing_as("reading app states"):
            rows = await self._fetchall("SELECT key, state FROM app_states")
        states: dict[AppKey, AppState | str] = {}
        for key, text in rows:
            try:
                states[app_key_from_list(orjson.loads(key))] = text
                continue
            except (CodecError, orjson.JSONDecodeError):
                pass
            try:
                state = app_state_from_dict(orjson.loads(text))
            except (CodecError, orjson.JSONDecodeError) as exc:
                logger.warning("skipping unreadable app state %s in %s: %s", key, self.where, exc)
                continue
            states[state.key] = state
        return states

    # Policy state

    async def load_policy(self) -> PolicyState:
        """The policy state as last saved (empty in a new store)."""
        async with self._failing_as("reading the policy state"):
            rows = PolicyRows(**{t: await self._fetchall(q) for t, q in POLICY_QUERIES.items()})
        state = decode_policy(rows, self.where)
        self._policy = state
        return state

    async def save_policy(self, state: PolicyState) -> None:
        """Persist `state`, writing only what changed since the last load or save."""
        await self.commit(policy=state)

    async def commit(
        self,
        queued: Sequence[tuple[str, Sequence[Mapping[str, Any]], datetime]] = (),
        policy: PolicyState | None = None,
        states: Iterable[AppState] = (),
        audits: Sequence[AuditRow] = (),
    ) -> list[list[int]]:
        """Queue messages ((receiver, payloads, when) batches), persist the policy state, write
        app states and audit entries in one transaction: all or none. So a notification's
        messages, the policy state that says it was sent, the app state it was about and its
        audit entry are never saved one without the others. The ids of each batch's messages."""
        writes = [] if policy is None else await self._policy_writes(policy)
        rows = [(key_text(s.key), format_time(s.observed_at), to_text(s)) for s in states]
        if rows:
            writes.append(
                (
                    "INSERT INTO app_states (key, observed_at, state) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET observed_at = excluded.observed_at, "
                    "state = excluded.state",
                    rows,
                )
            )
        if audits:
            writes.append((INSERT_AUDIT, list(audits)))
        batches = [
            (receiver, [to_text(dict(p)) for p in payloads], format_time(when))
            for receiver, payloads, when in queued
        ]
        ids: list[list[int]] = []
        if batches or writes:
            doing = (
                (
                    "saving the policy state"
                    if policy is not None
                    else "writing app states"
                    if rows
                    else "writing the audit log"
                )
                if not batches
                else "queueing a message"
                if policy is None and not rows
                else "queueing messages with the policy and app states"
            )
            async with self._failing_as(doing), self._transaction() as conn:
                for receiver, texts, created in batches:
                    ids.append(
                        [
                            await conn.insert_id(
                                "INSERT INTO outbox (receiver, payload, created_at) "
                                "VALUES (?, ?, ?)",
                                (receiver, text, created),
                            )
                            for text in texts
                        ]
                    )
                for sql, rows in writes:
                    if rows:
                        await conn.executemany(sql, rows)
        if policy is not None:
            self._policy = policy
        self._queued(receiver for receiver, texts, _ in batches if texts)
        return ids

    async def _policy_writes(self, state: PolicyState) -> list[Write]:
        """What to write to go from the last saved policy state to `state` ([]: nothing)."""
        if self._policy is None:
            await self.load_policy()
        return policy_writes(self._policy or PolicyState(), state)

    # Outbox: queueing goes through `commit`

    async def outbox_add(
        self, receiver: str, payload: Mapping[str, Any], at: datetime | None = None
    ) -> int:
        """Queue a message for `receiver`; returns its id."""
        ids = await self.outbox_add_many(receiver, [payload], at)
        return ids[0]

    async def outbox_add_many(
        self, receiver: str, payloads: Iterable[Mapping[str, Any]], at: datetime | None = None
    ) -> list[int]:
        """Queue several messages for `receiver` in one transaction (all or none); their ids."""
        [ids] = await self.commit([(receiver, list(payloads), at or utc_now())])
        return ids
