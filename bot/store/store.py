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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import orjson

from bot.store.backend import (
    MIGRATIONS,
    Backend,
    OutboxClaimLost,
    StoreError,
    Transaction,
)
from bot.store.dsn import is_postgres_dsn, redact_dsn
from bot.store.sqlite import SqliteBackend, expand_path
from core.codec import (
    CodecError,
    alert_key_from_list,
    alert_key_to_list,
    app_key_from_list,
    app_key_to_list,
    app_state_from_dict,
    dumps,
    event_from_dict,
    event_to_dict,
    flap_key_from_list,
    flap_key_to_list,
    format_time,
    from_jsonable,
    parse_time,
)
from core.flap import Flap
from core.grouping import Group
from core.immutable import PMap
from core.model import AppKey, AppState
from core.mutes import Mute
from core.policy import AlertKey, Held, OpenAlert, PolicyState, RecentIds, TextSeen

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

S = TypeVar("S", bound="Store")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    app: AppKey | None
    detail: dict[str, Any]


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


_QUEUED = "sent_at IS NULL AND failed_at IS NULL"
"""An outbox message still to send: neither sent nor refused for good."""


def _dumps(value: object) -> str:
    return dumps(value)


def _key_text(key: AppKey) -> str:
    return _dumps(app_key_to_list(key))


def _alert_key_text(key: AlertKey) -> str:
    """Alerts of the default route keep the key text of stores written before routes had
    state of their own."""
    route, app, kind = key
    if not route:
        return _dumps([app_key_to_list(app), str(kind)])
    return _dumps(alert_key_to_list(key))


def _time_or_none(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    """The store over one backend. Create with `await Store.open(path_or_dsn)` (or
    `open_store`); `await close()` when done."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.where = backend.where
        """Where the store is, as messages show it (a path, or a DSN without credentials)."""
        self.path: Path | None = backend.path if isinstance(backend, SqliteBackend) else None
        self._lock = asyncio.Lock()
        self._policy: PolicyState | None = None
        """The policy state as last loaded or saved: saves write only the difference."""
        self.store_failures = 0
        """Calls that failed with a StoreError since the store was opened (a lost outbox
        claim is not a failure of the store)."""

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

    # App states

    async def get_state(self, key: AppKey) -> AppState | None:
        async with self._failing_as("reading an app state"):
            rows = await self._fetchall(
                "SELECT state FROM app_states WHERE key = ?", [_key_text(key)]
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
            await conn.execute("DELETE FROM app_states WHERE key = ?", (_key_text(key),))

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

    # Policy state

    async def load_policy(self) -> PolicyState:
        """The policy state as last saved (empty in a new store)."""
        async with self._failing_as("reading the policy state"):
            held_rows = await self._fetchall("SELECT alert_key, held FROM policy_held")
            open_rows = await self._fetchall("SELECT alert_key, alert FROM policy_open")
            recent_rows = await self._fetchall("SELECT id, at FROM policy_recent ORDER BY rowid")
            group_rows = await self._fetchall("SELECT id, meta FROM policy_groups")
            event_rows = await self._fetchall(
                "SELECT group_id, part, event FROM policy_group_events ORDER BY group_id, part, seq"
            )
            item_rows = await self._fetchall("SELECT part, key, value FROM policy_items")
        held = self._decode_rows(Held, held_rows)
        opened = self._decode_rows(OpenAlert, open_rows)
        recent: list[tuple[str, datetime]] = []
        for event_id, at in recent_rows:
            try:
                recent.append((event_id, parse_time(at)))
            except CodecError as exc:
                logger.warning("skipping unreadable id %s in %s: %s", event_id, self.where, exc)
        mutes: list[Mute] = []
        flaps: list[tuple[tuple[str, AppKey], Flap]] = []
        texts: list[tuple[AlertKey, TextSeen]] = []
        for part, key, value in item_rows:
            try:
                if part == "mute":
                    mutes.append(from_jsonable(Mute, orjson.loads(value)))
                elif part == "flap":
                    flaps.append(
                        (
                            flap_key_from_list(orjson.loads(key)),
                            from_jsonable(Flap, orjson.loads(value)),
                        )
                    )
                elif part == "text":
                    texts.append(
                        (
                            alert_key_from_list(orjson.loads(key)),
                            from_jsonable(TextSeen, orjson.loads(value)),
                        )
                    )
            except (CodecError, orjson.JSONDecodeError) as exc:
                logger.warning("skipping unreadable %s %s in %s: %s", part, key, self.where, exc)
        state = PolicyState.of(
            held,
            opened,
            RecentIds.of(recent),
            groups=self._decode_groups(group_rows, event_rows),
            flaps=flaps,
            mutes=mutes,
            texts=texts,
        )
        self._policy = state
        return state

    def _decode_groups(self, group_rows: list[Any], event_rows: list[Any]) -> list[Group]:
        parts: dict[tuple[str, str], list[Any]] = {}
        for group_id, part, text in event_rows:
            parts.setdefault((group_id, part), []).append(text)
        groups = []
        for group_id, meta in group_rows:
            try:
                data = orjson.loads(meta)
                if not isinstance(data, dict):
                    raise CodecError("expected an object")
                data["members"] = [
                    event_to_dict(event_from_dict(orjson.loads(t)))
                    for t in parts.get((group_id, "m"), [])
                ]
                data["resolved"] = [
                    event_to_dict(event_from_dict(orjson.loads(t)))
                    for t in parts.get((group_id, "r"), [])
                ]
                group = from_jsonable(Group, data)
                if not group.members:
                    raise CodecError("a group without members")
                groups.append(group)
            except (CodecError, orjson.JSONDecodeError) as exc:
                logger.warning("skipping unreadable group %s in %s: %s", group_id, self.where, exc)
        return groups

    def _decode_rows(self, cls: type[Any], rows: list[Any]) -> list[Any]:
        values = []
        for key, text in rows:
            try:
                values.append(from_jsonable(cls, orjson.loads(text)))
            except (CodecError, orjson.JSONDecodeError) as exc:
                logger.warning(
                    "skipping unreadable %s %s in %s: %s", cls.__name__, key, self.where, exc
                )
        return values

    async def save_policy(self, state: PolicyState) -> None:
        """Persist `state`, writing only what changed since the last load or save."""
        await self.commit(policy=state)

    async def commit(
        self,
        queued: Sequence[tuple[str, Sequence[Mapping[str, Any]], datetime]] = (),
        policy: PolicyState | None = None,
        states: Iterable[AppState] = (),
    ) -> list[list[int]]:
        """Queue messages ((receiver, payloads, when) batches), persist the policy state and
        write app states in one transaction: all or none. So a notification's messages, the
        policy state that says it was sent and the app state it was about are never saved one
        without the others. The ids of each batch's messages."""
        writes = [] if policy is None else await self._policy_writes(policy)
        rows = [(_key_text(s.key), format_time(s.observed_at), _dumps(s)) for s in states]
        if rows:
            writes.append(
                (
                    "INSERT INTO app_states (key, observed_at, state) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET observed_at = excluded.observed_at, "
                    "state = excluded.state",
                    rows,
                )
            )
        batches = [
            (receiver, [_dumps(dict(p)) for p in payloads], format_time(when))
            for receiver, payloads, when in queued
        ]
        ids: list[list[int]] = []
        if batches or writes:
            doing = (
                ("writing app states" if policy is None else "saving the policy state")
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
        return ids

    async def _policy_writes(self, state: PolicyState) -> list[_Write]:
        """What to write to go from the last saved policy state to `state` ([]: nothing)."""
        if self._policy is None:
            await self.load_policy()
        old = self._policy or PolicyState()
        held_put, held_gone = _changes(old.held, state.held)
        open_put, open_gone = _changes(old.open, state.open)
        recent_put, recent_gone = _recent_changes(old.recent, state.recent)
        extra = _group_writes(old.groups, state.groups) + _item_writes(old, state)
        if not (
            held_put or held_gone or open_put or open_gone or recent_put or recent_gone or extra
        ):
            return []
        return [
            (
                "DELETE FROM policy_held WHERE alert_key = ?",
                [(_alert_key_text(k),) for k in held_gone],
            ),
            (
                "INSERT INTO policy_held (alert_key, due, held) VALUES (?, ?, ?) "
                "ON CONFLICT (alert_key) DO UPDATE SET due = excluded.due, held = excluded.held",
                [(_alert_key_text(k), format_time(h.due), _dumps(h)) for k, h in held_put],
            ),
            (
                "DELETE FROM policy_open WHERE alert_key = ?",
                [(_alert_key_text(k),) for k in open_gone],
            ),
            (
                "INSERT INTO policy_open (alert_key, announced_at, alert) VALUES (?, ?, ?) "
                "ON CONFLICT (alert_key) DO UPDATE SET announced_at = excluded.announced_at, "
                "alert = excluded.alert",
                [(_alert_key_text(k), format_time(a.announced_at), _dumps(a)) for k, a in open_put],
            ),
            ("DELETE FROM policy_recent WHERE id = ?", [(i,) for i in recent_gone]),
            (
                "INSERT INTO policy_recent (id, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(i, format_time(at)) for i, at in recent_put],
            ),
            *extra,
        ]

    # Audit log

    async def audit(
        self,
        actor: str,
        action: str,
        app: AppKey | None = None,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record who did what (deploy, rollback, mute, ack …), to which app."""
        row = (
            format_time(at or _now()),
            actor,
            action,
            None if app is None else _key_text(app),
            _dumps(dict(detail or {})),
        )
        async with self._failing_as("writing the audit log"), self._transaction() as conn:
            await conn.execute(
                "INSERT INTO audit (at, actor, action, app_key, detail) VALUES (?, ?, ?, ?, ?)",
                row,
            )

    async def audit_log(self, app: AppKey | None = None, limit: int = 50) -> list[AuditEntry]:
        """The newest entries first, for one app or for all."""
        where, params = ("WHERE app_key = ?", [_key_text(app)]) if app else ("", [])
        async with self._failing_as("reading the audit log"):
            rows = await self._fetchall(
                f"SELECT id, at, actor, action, app_key, detail FROM audit {where} "
                "ORDER BY id DESC LIMIT ?",
                [*params, limit],
            )
        return [_audit_entry(row) for row in rows]

    async def audit_about(
        self, app: AppKey, since: datetime, limit: int = 2000
    ) -> list[AuditEntry]:
        """The entries at or after `since` about `app` or about no single app (a storm names
        its apps in its events), newest first: an app's recent story for the status page."""
        async with self._failing_as("reading the audit log"):
            rows = await self._fetchall(
                "SELECT id, at, actor, action, app_key, detail FROM audit "
                "WHERE (app_key = ? OR app_key IS NULL) AND at >= ? ORDER BY id DESC LIMIT ?",
                [_key_text(app), format_time(since), limit],
            )
        return [_audit_entry(row) for row in rows]

    # Outbox

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
        [ids] = await self.commit([(receiver, list(payloads), at or _now())])
        return ids

    async def outbox_pending(
        self, receiver: str | None = None, limit: int = 100, now: datetime | None = None
    ) -> list[OutboxItem]:
        """Unsent messages, oldest first, leaving out those whose retry is not yet due and those
        refused for good."""
        due = format_time(now or _now())
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
        return await self._outbox_select(f"{_QUEUED} AND receiver = ?", [receiver], limit)

    async def outbox_depths(self) -> dict[str, int]:
        """How many messages each receiver has still to send, counted as `outbox_queue` hands
        them out (neither sent nor refused for good, due or waiting for a retry), in one query;
        receivers with none are left out."""
        async with self._failing_as("counting the outbox"):
            rows = await self._fetchall(
                f"SELECT receiver, COUNT(*) FROM outbox WHERE {_QUEUED} GROUP BY receiver"
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
                sent_at=_time_or_none(row[4]),
                attempts=row[5],
                last_error=row[6],
                next_attempt_at=_time_or_none(row[7]),
                attempted_at=_time_or_none(row[8]),
                failed_at=_time_or_none(row[9]),
            )
            for row in rows
        ]

    async def outbox_mark_attempt(self, item_id: int, at: datetime | None = None) -> None:
        """Claim the message for sending and note that it is about to be sent (see
        `OutboxItem.attempted_at`). OutboxClaimLost if it was sent or refused meanwhile, or if
        another process holds it: the caller must not send it then."""
        when = format_time(at or _now())
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
        when = format_time(at or _now())
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
                (error, format_time(at or _now()), item_id),
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


def _audit_entry(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(
        id=row[0],
        at=parse_time(row[1]),
        actor=row[2],
        action=row[3],
        app=None if row[4] is None else app_key_from_list(orjson.loads(row[4])),
        detail=orjson.loads(row[5]),
    )


_Write = tuple[str, list[tuple[Any, ...]]]
"""One statement and its rows."""


def _group_writes(old: PMap[str, Group], new: PMap[str, Group]) -> list[_Write]:
    """Groups are written as a row of their own and one row per event; their events are only
    appended to, so a save writes the new events only (all of them after a rewrite)."""
    put, gone = _changes(old, new)
    metas: list[tuple[Any, ...]] = []
    cleared: list[tuple[Any, ...]] = [(g,) for g in gone]
    events: list[tuple[Any, ...]] = []
    for group_id, group in put:
        before = old.get(group_id)
        meta = {
            f.name: getattr(group, f.name)
            for f in dataclasses.fields(group)
            if f.name not in ("members", "resolved")
        }
        metas.append((group_id, _dumps(meta)))
        if before is None or before.epoch != group.epoch:
            cleared.append((group_id,))
            start_m = start_r = 0
        else:
            start_m, start_r = len(before.members), len(before.resolved)
        for part, items, start in (
            ("m", group.members, start_m),
            ("r", group.resolved, start_r),
        ):
            events.extend(
                (group_id, part, seq, _dumps(e)) for seq, e in enumerate(items[start:], start)
            )
    return (
        [
            ("DELETE FROM policy_groups WHERE id = ?", [(g,) for g in gone]),
            ("DELETE FROM policy_group_events WHERE group_id = ?", cleared),
            (
                "INSERT INTO policy_groups (id, meta) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET meta = excluded.meta",
                metas,
            ),
            (
                "INSERT INTO policy_group_events (group_id, part, seq, event) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (group_id, part, seq) DO UPDATE SET event = excluded.event",
                events,
            ),
        ]
        if put or gone
        else []
    )


def _item_writes(old: PolicyState, new: PolicyState) -> list[_Write]:
    """Mutes, flaps and remembered texts, one row each."""
    deletes: list[tuple[Any, ...]] = []
    puts: list[tuple[Any, ...]] = []
    parts: tuple[tuple[str, PMap[Any, Any], PMap[Any, Any], Any], ...] = (
        ("mute", old.mutes, new.mutes, lambda k: k),
        ("flap", old.flaps, new.flaps, lambda k: _dumps(flap_key_to_list(k))),
        ("text", old.texts, new.texts, lambda k: _dumps(alert_key_to_list(k))),
    )
    for part, before, after, key_text in parts:
        put, gone = _changes(before, after)
        deletes.extend((part, key_text(k)) for k in gone)
        puts.extend((part, key_text(k), _dumps(v)) for k, v in put)
    if not deletes and not puts:
        return []
    return [
        ("DELETE FROM policy_items WHERE part = ? AND key = ?", deletes),
        (
            "INSERT INTO policy_items (part, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (part, key) DO UPDATE SET value = excluded.value",
            puts,
        ),
    ]


K = TypeVar("K")


def _changes(old: PMap[K, Any], new: PMap[K, Any]) -> tuple[list[tuple[K, Any]], list[K]]:
    """What to write and delete to go from `old` to `new`: only the buckets that differ."""
    put: list[tuple[K, Any]] = []
    gone: list[K] = []
    if old is new:
        return put, gone
    for old_bucket, new_bucket in zip(old.buckets, new.buckets, strict=True):
        if old_bucket is new_bucket:
            continue
        put.extend((k, v) for k, v in new_bucket.items() if old_bucket.get(k) is not v)
        gone.extend(k for k in old_bucket if k not in new_bucket)
    return put, gone


def _recent_changes(old: RecentIds, new: RecentIds) -> tuple[list[tuple[str, datetime]], list[str]]:
    """Chunks are never changed in place: compare them by identity, then look inside the few
    that differ (usually only the newest, grown by a few ids)."""
    if old is new:
        return [], []
    old_chunks = {id(c) for c in old.chunks}
    new_chunks = {id(c) for c in new.chunks}
    added = [c for c in new.chunks if id(c) not in old_chunks]
    dropped = [c for c in old.chunks if id(c) not in new_chunks]
    stored: set[str] = set()
    for chunk in dropped:
        stored.update(chunk)
    fresh: set[str] = set()
    for chunk in added:
        fresh.update(chunk)
    put = [(i, at) for chunk in added for i, at in chunk.items() if i not in stored]
    gone = [i for i in stored if i not in fresh]
    return put, gone
