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


class AuditTable(StoreBase):
    """The `audit` table."""

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
            format_time(at or utc_now()),
            actor,
            action,
            None if app is None else key_text(app),
            to_text(dict(detail or {})),
        )
        async with self._failing_as("writing the audit log"), self._transaction() as conn:
            await conn.execute(
                "INSERT INTO audit (at, actor, action, app_key, detail) VALUES (?, ?, ?, ?, ?)",
                row,
            )

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
