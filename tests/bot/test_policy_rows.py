"""The policy state as rows, without the store: what a save writes when little or nothing
changed, a round trip through the schema's tables (stdlib sqlite3, no Store, no event loop),
and unreadable rows skipped with a log line instead of failing the load."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from bot.store.backend import MIGRATIONS
from bot.store.policy_rows import POLICY_QUERIES, PolicyRows, decode_policy, policy_writes
from core.commands import mute
from core.policy import PolicyState
from tests.bot.test_policy_store import busy_state
from tests.core.test_grouping import at


def _tables() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    for step in MIGRATIONS:
        conn.executescript(step)
    return conn


def _apply(conn: sqlite3.Connection, old: PolicyState, new: PolicyState) -> None:
    for sql, rows in policy_writes(old, new):
        if rows:
            conn.executemany(sql, rows)


def _read(conn: sqlite3.Connection) -> PolicyRows:
    return PolicyRows(**{t: conn.execute(q).fetchall() for t, q in POLICY_QUERIES.items()})


def test_a_state_saved_over_itself_writes_nothing() -> None:
    state = busy_state()
    assert policy_writes(state, state) == []
    assert policy_writes(PolicyState(), PolicyState()) == []


def test_one_new_mute_writes_one_row_of_one_table() -> None:
    state = busy_state()
    muted = mute(state, "cluster:prod", at(7200), "window", "carol", at(0))
    written = {sql.split()[2]: rows for sql, rows in policy_writes(state, muted) if rows}
    assert list(written) == ["policy_items"]
    [(part, key, _)] = written["policy_items"]
    assert (part, key) == ("mute", "cluster:prod")


def test_rows_written_from_nothing_read_back_as_the_same_state() -> None:
    state = busy_state()
    assert state.groups and state.mutes and state.texts and state.flaps and state.open
    conn = _tables()
    _apply(conn, PolicyState(), state)
    assert decode_policy(_read(conn), "memory") == state
    # ... and a later save on top of it reads back as the later state.
    later = mute(state, "cluster:prod", at(7200), "window", "carol", at(0))
    _apply(conn, state, later)
    assert decode_policy(_read(conn), "memory") == later


def test_an_unreadable_row_is_skipped_and_named_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = busy_state()
    conn = _tables()
    _apply(conn, PolicyState(), state)
    conn.execute("UPDATE policy_items SET value = '{not json' WHERE part = 'mute'")
    with caplog.at_level(logging.WARNING):
        loaded = decode_policy(_read(conn), "the test store")
    assert not loaded.mutes and loaded.groups == state.groups
    assert any(
        "skipping unreadable mute" in r.getMessage() and "the test store" in r.getMessage()
        for r in caplog.records
    )
