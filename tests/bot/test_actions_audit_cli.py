"""`driftbot audit` shows the actions taken from chat, with who, what, when and why."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.app.audit_view import render_table
from bot.store.store import Store
from core.model import AppKey, Tool

CHECKOUT = AppKey(Tool.ARGOCD, "prod", "argocd", "Application", "checkout")


async def test_driftbot_audit_lists_requests_approvals_refusals_and_results(tmp_path: Path) -> None:
    at = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    store = await Store.open(tmp_path / "state.sqlite")
    try:
        for actor, action, detail in (
            ("U0ALICE", "action_confirmed", {"history": "40", "reason": "bad image"}),
            ("U0BOB", "action_approved", {"asked_by": "U0ALICE"}),
            ("U0CAROL", "action_refused", {"why": "auto_sync"}),
            ("U0ALICE", "action_failed", {"result": "one or more tasks failed"}),
        ):
            await store.audit(actor, action, CHECKOUT, {"command": "rollback", **detail}, at=at)
        table = render_table(await store.audit_log())
    finally:
        await store.close()
    lines = table.splitlines()
    assert "action_confirmed" in lines[4] and "reason bad image" in lines[4]
    assert "U0BOB" in lines[3] and "asked_by U0ALICE" in lines[3]
    assert "why auto_sync" in lines[2]
    assert "result one or more tasks failed" in lines[1]
