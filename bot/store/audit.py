"""The audit log: who did what (deploy, rollback, mute, ack ...), to which app, and when; read
back newest first, for one app or all, and as an app's recent story for the status page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from bot.store.base import StoreBase, utc_now
from bot.store.row_text import key_text, to_text
from core.codec import app_key_from_list, format_time, parse_time
from core.model import AppKey


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    app: AppKey | None
    detail: dict[str, Any]


AuditRow = tuple[str, str, str, str | None, str]
"""An audit entry as the table stores it: at, actor, action, app key, detail (JSON text)."""


def audit_row(
    actor: str,
    action: str,
    app: AppKey | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditRow:
    return (
        format_time(at or utc_now()),
        actor,
        action,
        None if app is None else key_text(app),
        to_text(dict(detail or {})),
    )


INSERT_AUDIT = "INSERT INTO audit (at, actor, action, app_key, detail) VALUES (?, ?, ?, ?, ?)"


class AuditTable(StoreBase):
    """The `audit` table."""

    async def audit(
        self,
        actor: str,
        action: str,
        app: AppKey | None = None,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        *,
        with_policy: bool = False,
    ) -> None:
        """Record who did what (deploy, rollback, mute, ack …), to which app. `with_policy`:
        the entry tells of the policy state being decided (a notification announced, an alert
        closed) and is written with it: here at once, as every write; a write-behind store
        keeps it for the flush that writes that state, in the same transaction."""
        row = audit_row(actor, action, app, detail, at)
        if with_policy and self._keep_audit(row):
            return
        async with self._failing_as("writing the audit log"), self._transaction() as conn:
            await conn.execute(INSERT_AUDIT, row)

    def _keep_audit(self, row: AuditRow) -> bool:
        """Keep `row` for the next commit of the policy state; False: write it now."""
        return False

    async def audit_log(self, app: AppKey | None = None, limit: int = 50) -> list[AuditEntry]:
        """The newest entries first, for one app or for all."""
        where, params = ("WHERE app_key = ?", [key_text(app)]) if app else ("", [])
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
                [key_text(app), format_time(since), limit],
            )
        return [_audit_entry(row) for row in rows]


def _audit_entry(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(
        id=row[0],
        at=parse_time(row[1]),
        actor=row[2],
        action=row[3],
        app=None if row[4] is None else app_key_from_list(orjson.loads(row[4])),
        detail=orjson.loads(row[5]),
    )
