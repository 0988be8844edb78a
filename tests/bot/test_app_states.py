"""Stored app states are read back as text and decoded when used (bot.pipeline.app_states):
the same states, in the same order, and an unreadable one skipped with a warning and kept in
the store, as when every state was decoded at load."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from bot.pipeline.app_states import AppStates
from bot.store.store import Store
from core.model import SyncStatus
from tests.bot.test_store import T0, app


async def test_stored_states_come_back_equal_in_order_and_decoded_only_when_read(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "s.sqlite")
    written = [app(f"app-{i}") for i in (3, 1, 2)]
    await store.put_states(written)
    stored = await store.stored_states()
    await store.close()

    assert all(isinstance(v, str) for v in stored.values())
    states = AppStates(stored, "s.sqlite")
    assert len(states) == 3
    assert states.keys_unread() == [s.key for s in written]
    assert states.get(written[1].key) == written[1]
    assert all(isinstance(v, str) for k, v in stored.items() if k != written[1].key)
    changed = replace(written[0], sync=SyncStatus.SYNCED, observed_at=T0)
    states[changed.key] = changed
    assert list(states.values()) == [changed, written[1], written[2]]
    assert dict(states) == {s.key: s for s in (changed, written[1], written[2])}


async def test_an_unreadable_stored_state_is_skipped_with_a_warning_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.sqlite"
    store = await Store.open(path)
    good, bad = app("good"), app("bad")
    await store.put_states([good, bad])
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE app_states SET state = '{\"tool\": 7}' WHERE state LIKE '%\"bad\"%'")

    store = await Store.open(path)
    states = AppStates(await store.stored_states(), store.where)
    with caplog.at_level(logging.WARNING):
        assert states.get(bad.key) is None
        assert list(states) == [good.key]
    assert "skipping unreadable app state" in caplog.text
    assert len(await store.stored_states()) == 2
    await store.close()
