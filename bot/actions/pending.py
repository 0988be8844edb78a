"""Actions between their confirmation modal and their result, in memory.

Every change goes through `decide` under one lock, so two submissions of one modal (a double
click, Slack retrying) or two approvals cannot both act: the first moves the action on, the
second finds it already moved. Kept in memory only: a restart forgets what was pending (a
confirmation lasts five minutes, an approval `actions.approval.within`), and nothing is done.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from core.actions import Pending, Plan, Verdict

KEEP = timedelta(days=1)
"""Finished entries are forgotten after this (a late click then reads as stale)."""


class PendingActions:
    def __init__(self) -> None:
        self._items: dict[str, Pending] = {}
        self._lock = asyncio.Lock()

    async def add(
        self, plan: Plan, user: str, now: datetime, channel: str = "", thread_ts: str = ""
    ) -> Pending:
        async with self._lock:
            self._forget(now)
            pending = Pending(
                secrets.token_urlsafe(12), plan, user, now, channel=channel, thread_ts=thread_ts
            )
            self._items[pending.id] = pending
            return pending

    def get(self, pending_id: str) -> Pending | None:
        return self._items.get(pending_id)

    async def decide(
        self, pending_id: str, decision: Callable[[Pending], tuple[Pending, Verdict]]
    ) -> tuple[Pending, Verdict] | None:
        """Apply a pure decision to one pending action atomically; None when it is unknown."""
        async with self._lock:
            pending = self._items.get(pending_id)
            if pending is None:
                return None
            changed, verdict = decision(pending)
            self._items[pending_id] = changed
            return changed, verdict

    async def put(self, pending: Pending) -> None:
        async with self._lock:
            self._items[pending.id] = pending

    def waiting(self) -> list[Pending]:
        return [p for p in self._items.values() if p.stage == "awaiting_approval"]

    def _forget(self, now: datetime) -> None:
        old = [i for i, p in self._items.items() if now - p.asked_at > KEEP]
        for pending_id in old:
            del self._items[pending_id]
