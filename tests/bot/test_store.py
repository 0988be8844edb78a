"""The store against both backends (a real SQLite file, a real PostgreSQL database): round
trips, restarts, policy saves, the audit log and the outbox; then what is particular to each:
bad files and paths for SQLite, DSNs, concurrent starts and outbox claims for PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.store.sqlite import SqliteBackend
from bot.store.store import MIGRATIONS, Store, StoreError, default_state_path
from core.model import (
    AppState,
    EventKind,
    GitOpsEvent,
    Health,
    Operation,
    ResourceRef,
    SyncStatus,
    Tool,
    make_event,
)
from core.policy import PolicySettings, PolicyState, flush, offer
from tests.core.test_codec import app_states

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def app(name: str, sync: SyncStatus = SyncStatus.OUT_OF_SYNC) -> AppState:
    return AppState(
        Tool.ARGOCD,
        "prod",
        "argocd",
        "Application",
        name,
        T0,
        sync=sync,
        health=Health.HEALTHY,
        revision="1a2b3c",
        operation=Operation(phase="Succeeded", started_at=T0, initiated_by="alice"),
        out_of_sync_resources=(ResourceRef("Deployment", "shop", name),),
        labels={"team": "payments"},
    )


async def test_states_round_trip_and_survive_restart(store_location: str | Path) -> None:
    path = store_location
    store = await Store.open(path)
    checkout, cart = app("checkout"), app("cart")
    await store.put_state(checkout)
    await store.put_states([cart, app("checkout", sync=SyncStatus.SYNCED)])
    assert (await store.get_state(cart.key)) == cart
    await store.close()

    store = await Store.open(path)
    states = await store.all_states()
    assert states == {cart.key: cart, checkout.key: app("checkout", sync=SyncStatus.SYNCED)}
    await store.delete_state(cart.key)
    assert await store.get_state(cart.key) is None
    await store.close()


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=app_states)
async def test_any_state_round_trips(store_location: str | Path, state: AppState) -> None:
    async with await Store.open(store_location) as store:
        await store.put_state(state)
        assert await store.get_state(state.key) == state


async def test_many_apps_in_one_batch(store_location: str | Path) -> None:
    states = [app(f"app-{i:05}") for i in range(10_000)]
    async with await Store.open(store_location) as store:
        await store.put_states(states)
    async with await Store.open(store_location) as store:
        loaded = await store.all_states()
    assert len(loaded) == 10_000
    assert loaded[states[1234].key] == states[1234]


def drift(name: str, seconds: int) -> GitOpsEvent:
    return make_event(EventKind.DRIFT_DETECTED, app(name), T0 + timedelta(seconds=seconds))


async def test_policy_state_survives_restart_with_every_part(store_location: str | Path) -> None:
    path = store_location
    state = PolicyState()
    grace = PolicySettings()
    # One alert announced (open), one held, and the announced id remembered.
    state, _ = offer(state, drift("checkout", 0), T0, grace)
    state, _ = offer(state, drift("cart", 70), T0 + timedelta(seconds=70), grace)
    assert len(state.open) == 1 and len(state.held) == 1 and len(state.recent) == 1

    async with await Store.open(path) as store:
        assert await store.load_policy() == PolicyState()
        await store.save_policy(state)
    async with await Store.open(path) as store:
        loaded = await store.load_policy()
    assert loaded == state

    # After the restart the held drift is released and nothing is announced twice.
    loaded, decisions = flush(loaded, grace)
    assert [d.event.name for d in decisions if d.action == "send"] == ["cart"]
    _, again = offer(loaded, drift("checkout", 0), T0 + timedelta(seconds=200), grace)
    assert [d.reason for d in again] == ["duplicate"]


async def test_policy_saves_follow_changes(store_location: str | Path) -> None:
    """Successive saves write differences; the store always equals the last state saved."""
    path = store_location
    no_grace = PolicySettings(grace=timedelta(0), remember_max=300)
    state = PolicyState()
    async with await Store.open(path) as store:
        for i in range(700):
            event = make_event(EventKind.DEPLOY_STARTED, app("a"), T0 + timedelta(seconds=i))
            state, _ = offer(state, event, T0 + timedelta(seconds=i), no_grace)
            if i % 50 == 0:
                state, _ = offer(state, drift(f"app-{i}", i), T0 + timedelta(seconds=i), no_grace)
            if i % 97 == 0:
                await store.save_policy(state)
        closing = make_event(EventKind.DRIFT_RESOLVED, app("app-0"), T0 + timedelta(seconds=800))
        state, decisions = offer(state, closing, T0 + timedelta(seconds=800), no_grace)
        assert decisions[-1].reason == "resolves"
        await store.save_policy(state)
    assert len(state.recent) < 700
    async with await Store.open(path) as store:
        loaded = await store.load_policy()
    assert loaded == state
    assert len(loaded.open) == len(state.open) == 13


async def test_audit_log(store_location: str | Path) -> None:
    checkout = app("checkout")
    async with await Store.open(store_location) as store:
        await store.audit("alice", "rollback", checkout.key, {"to": "42"}, at=T0)
        await store.audit("bob", "mute", None, {"target": "prod/*", "for": "1h"}, at=T0)
    async with await Store.open(store_location) as store:
        for_app = await store.audit_log(checkout.key)
        everything = await store.audit_log()
    assert [(e.actor, e.action, e.app, e.detail, e.at) for e in for_app] == [
        ("alice", "rollback", checkout.key, {"to": "42"}, T0)
    ]
    assert [e.actor for e in everything] == ["bob", "alice"]


async def test_outbox(store_location: str | Path) -> None:
    path = store_location
    async with await Store.open(path) as store:
        first = await store.outbox_add("oncall", {"text": "checkout drifted"}, at=T0)
        second = await store.outbox_add("pm", {"text": "cart deployed"}, at=T0)
        await store.outbox_mark_sent(first, at=T0 + timedelta(seconds=1))
        await store.outbox_mark_failed(second, "HTTP 429", retry_at=T0 + timedelta(seconds=30))
        assert await store.outbox_pending(now=T0 + timedelta(seconds=10)) == []
    async with await Store.open(path) as store:
        pending = await store.outbox_pending(now=T0 + timedelta(seconds=30))
        assert await store.outbox_pending("oncall", now=T0 + timedelta(seconds=30)) == []
    assert [(p.id, p.receiver, p.payload, p.attempts, p.last_error) for p in pending] == [
        (second, "pm", {"text": "cart deployed"}, 1, "HTTP 429")
    ]
    assert pending[0].created_at == T0 and pending[0].sent_at is None


async def test_outbox_depths_count_what_each_receiver_still_has_to_send(
    store_location: str | Path,
) -> None:
    """One count per receiver of what `outbox_queue` would hand out: a message waiting for its
    retry counts, one sent or refused for good does not; a receiver with none is left out."""
    async with await Store.open(store_location) as store:
        assert await store.outbox_depths() == {}
        oncall = await store.outbox_add_many("oncall", [{"n": i} for i in range(3)], T0)
        pm = await store.outbox_add_many("pm", [{"n": i} for i in range(3)], T0)
        [archive] = await store.outbox_add_many("archive", [{"n": 0}], T0)
        await store.outbox_mark_sent(oncall[0], at=T0)
        await store.outbox_mark_fatal(pm[0], "channel_not_found", at=T0)
        await store.outbox_mark_failed(pm[1], "HTTP 429", retry_at=T0 + timedelta(hours=1))
        await store.outbox_mark_sent(archive, at=T0)
        depths = await store.outbox_depths()
        assert depths == {"oncall": 2, "pm": 2}
        for receiver in ("oncall", "pm", "archive"):
            queued = await store.outbox_queue(receiver, limit=1000)
            assert depths.get(receiver, 0) == len(queued)
        assert store.store_failures == 0


async def test_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "state.sqlite"
    async with await Store.open(path) as store:
        await store.put_state(app("checkout"))
    assert path.is_file()


async def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError) as info:
        await Store.open(path)
    message = str(info.value)
    assert str(path) in message and "not a SQLite database" in message
    assert "\n" not in message
    assert path.read_text().startswith("these are my notes")


async def test_unwritable_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = blocker / "driftbot" / "state.sqlite"
    with pytest.raises(StoreError, match=f"Cannot create the directory of the state store {path}"):
        await Store.open(path)


async def test_directory_as_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"Cannot open the state store {tmp_path}"):
        await Store.open(tmp_path)


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    async with await Store.open(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS) + 1,))
    conn.close()
    with pytest.raises(StoreError, match="newer than this driftbot knows"):
        await Store.open(path)


async def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    for _ in range(2):
        async with await Store.open(path):
            pass
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT version FROM schema_version").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()
    conn.close()
    assert versions == [(len(MIGRATIONS),)]
    assert mode == ("wal",)


async def test_unreadable_row_is_skipped_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    async with await Store.open(path) as store:
        await store.put_states([app("good")])
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO app_states VALUES ('[\"x\"]', '', '{\"tool\": \"jenkins\"}')")
    conn.close()
    async with await Store.open(path) as store:
        states = await store.all_states()
    assert [s.name for s in states.values()] == ["good"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM app_states").fetchone() == (2,)
    conn.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DRIFTBOT_STATE": "/data/bot.sqlite", "XDG_STATE_HOME": "/x"}, "/data/bot.sqlite"),
        ({"XDG_STATE_HOME": "/x"}, "/x/driftbot/state.sqlite"),
        ({"HOME": "/home/u"}, str(Path("~/.local/state/driftbot/state.sqlite").expanduser())),
    ],
)
def test_default_state_path(env: dict[str, str], expected: str) -> None:
    assert default_state_path(env) == Path(expected)


@given(st.text(min_size=1, max_size=20).filter(lambda s: not s.startswith("~")))
def test_default_state_path_prefers_the_variable(value: str) -> None:
    env = {"DRIFTBOT_STATE": value, "XDG_STATE_HOME": "/x"}
    assert default_state_path(env) == Path(value)


async def test_unknown_user_home_is_taken_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_state_path({"DRIFTBOT_STATE": "~nosuchuser0/s.sqlite"}) == Path(
        "~nosuchuser0/s.sqlite"
    )
    async with await Store.open("~nosuchuser0/s.sqlite") as store:
        await store.put_state(app("x"))
    assert (tmp_path / "~nosuchuser0" / "s.sqlite").exists()


async def test_saving_an_unrelated_state_replaces_everything(
    store_location: str | Path,
) -> None:
    path = store_location
    state, _ = offer(PolicyState(), drift("checkout", 0), T0, PolicySettings())
    async with await Store.open(path) as store:
        await store.save_policy(state)
    async with await Store.open(path) as store:
        # Not loaded first, and not derived from what is stored: the store must still match.
        await store.save_policy(PolicyState())
    async with await Store.open(path) as store:
        assert await store.load_policy() == PolicyState()


async def test_a_write_cancelled_at_its_begin_leaves_the_store_usable(tmp_path: Path) -> None:
    """Cancelling a flush while its BEGIN is on the way (a service stopping) must not leave
    the connection inside a transaction that breaks the final save."""
    store = await Store.open(tmp_path / "state.sqlite")
    try:
        assert isinstance(store.backend, SqliteBackend)
        await store.backend._conn.execute(
            "BEGIN IMMEDIATE"
        )  # what a cancelled caller leaves behind
        await store.audit("alice", "ack", detail={"why": "test"})
        assert [e.action for e in await store.audit_log()] == ["ack"]
    finally:
        await store.close()
