"""The scheduler: digest triggers in their time zone with cron's day-of-week meaning, the jobs'
content driven directly on virtual time (policy tick and reminders, mute expiry, digests,
resync), errors counted without stopping anything, and a clean shutdown."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app.replay import build_receivers
from bot.jobs.scheduler import (
    MUTES,
    RESYNC,
    TICK,
    Hooks,
    Scheduler,
    aps_day_of_week,
    cron_trigger,
    drop_expired_mutes,
    period_start,
    pipeline_hooks,
)
from bot.pipeline.gate import PipelineGate
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.loader import load_config
from config.schema import DigestConfig
from core.commands import mute
from tests import scenarios
from watchers.replay import ReplayError, read_replay

BERLIN = ZoneInfo("Europe/Berlin")
SATURDAY_NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


# --- triggers ------------------------------------------------------------------------------------

TRIGGERS = [
    # (schedule, time zone, from, next fire in that zone)
    ("0 9 * * 1-5", "Europe/Berlin", SATURDAY_NOON, datetime(2026, 11, 23, 9, 0)),
    ("0 9 * * mon-fri", "Europe/Berlin", SATURDAY_NOON, datetime(2026, 11, 23, 9, 0)),
    ("0 9 * * 0", "Europe/Berlin", SATURDAY_NOON, datetime(2026, 11, 22, 9, 0)),
    ("0 9 * * 7", "Europe/Berlin", SATURDAY_NOON, datetime(2026, 11, 22, 9, 0)),
    ("0 9 * * sun", "Europe/Berlin", SATURDAY_NOON, datetime(2026, 11, 22, 9, 0)),
    ("0 9 * * 6", "Europe/Berlin", SATURDAY_NOON - timedelta(days=1), datetime(2026, 11, 21, 9, 0)),
    ("0 13 * * 6", "Europe/Berlin", SATURDAY_NOON, datetime(2026, 11, 21, 13, 0)),
    ("0 13 * * 6", "UTC", SATURDAY_NOON, datetime(2026, 11, 21, 13, 0)),
    (
        "0 7 * * *",
        "America/New_York",
        SATURDAY_NOON + timedelta(minutes=1),
        datetime(2026, 11, 22, 7, 0),
    ),
    ("*/15 * * * *", "UTC", SATURDAY_NOON + timedelta(minutes=1), datetime(2026, 11, 21, 12, 15)),
    # Day of month and day of week both restricted: either one (cron), not both (APScheduler).
    ("30 8 1 * 1", "Europe/Berlin", SATURDAY_NOON, datetime(2026, 11, 23, 8, 30)),
    (
        "30 8 1 * 1",
        "Europe/Berlin",
        datetime(2026, 11, 30, 12, tzinfo=UTC),
        datetime(2026, 12, 1, 8, 30),
    ),
    # A step on day of month keeps the AND meaning, as in cron.
    ("0 9 */10 * 1", "UTC", SATURDAY_NOON, datetime(2026, 12, 21, 9, 0)),
]


@pytest.mark.parametrize(("schedule", "zone", "start", "expected"), TRIGGERS)
def test_next_fire_time_in_the_digest_time_zone(
    schedule: str, zone: str, start: datetime, expected: datetime
) -> None:
    fire = cron_trigger(schedule, zone).get_next_fire_time(None, start)
    assert fire is not None
    assert fire.utcoffset() == expected.replace(tzinfo=ZoneInfo(zone)).utcoffset()
    assert fire.replace(tzinfo=None) == expected


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "fri,sat,sun"),
        ("0,6", "sat,sun"),
        ("*/2", "tue,thu,sat,sun"),
        ("1-5/2", "mon,wed,fri"),
        ("MON", "mon"),
    ],
)
def test_day_of_week_translation(field: str, expected: str) -> None:
    assert aps_day_of_week(field) == expected


@given(st.sets(st.integers(0, 7), min_size=1))
def test_a_digest_fires_on_exactly_the_cron_weekdays(days: set[int]) -> None:
    field = ",".join(str(d) for d in sorted(days))
    trigger = cron_trigger(f"0 9 * * {field}", "Europe/Berlin")
    fired: set[int] = set()
    fire = trigger.get_next_fire_time(None, SATURDAY_NOON)
    while fire is not None and fire < SATURDAY_NOON + timedelta(days=14):
        fired.add((fire.isoweekday()) % 7)  # cron numbering: Sunday 0
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert fired == {d % 7 for d in days}


def test_a_first_digest_covers_the_period_since_the_previous_scheduled_time() -> None:
    trigger = cron_trigger("0 9 * * 1-5", "Europe/Berlin")
    monday_nine = datetime(2026, 11, 23, 9, 0, 2, tzinfo=BERLIN)
    assert period_start(trigger, monday_nine) == datetime(2026, 11, 20, 9, 0, tzinfo=BERLIN)


# --- the scheduler itself ------------------------------------------------------------------------


@dataclass
class Calls:
    advanced: list[datetime]
    expired: list[datetime]
    digests: list[tuple[str, datetime, datetime]]
    resyncs: int = 0
    fail: bool = False


def _hooks(calls: Calls) -> Hooks:
    async def advance(now: datetime) -> None:
        if calls.fail:
            raise RuntimeError("store is gone")
        calls.advanced.append(now)

    async def expire(now: datetime) -> int:
        calls.expired.append(now)
        return 0

    async def digest(config: DigestConfig, name: str, now: datetime, since: datetime) -> None:
        calls.digests.append((name, now, since))

    async def resync() -> None:
        calls.resyncs += 1

    return Hooks(advance, expire, digest, resync)


DIGESTS = (
    DigestConfig(
        name="morning", receivers=("pm",), schedule="0 9 * * 1-5", timezone="Europe/Berlin"
    ),
    DigestConfig(receivers=("pm",), schedule="0 17 * * 5"),
)


async def test_jobs_are_named_scheduled_and_shut_down_cleanly() -> None:
    scheduler = Scheduler(_hooks(Calls([], [], [])), clock=lambda: SATURDAY_NOON)
    scheduler.start(DIGESTS)
    try:
        jobs = scheduler.jobs()
        assert set(jobs) == {TICK, MUTES, RESYNC, "digest:morning", "digest:digests[1]"}
        assert jobs["digest:morning"].name == "digest:morning"
        morning = jobs["digest:morning"].next_run_time
        assert morning.astimezone(BERLIN).hour == 9
        assert morning.astimezone(BERLIN).isoweekday() in range(1, 6)
        friday = jobs["digest:digests[1]"].next_run_time
        assert friday.astimezone(UTC).isoweekday() == 5 and friday.astimezone(UTC).hour == 17

        scheduler.set_digests(DIGESTS[1:])
        assert "digest:morning" not in scheduler.jobs()
    finally:
        await scheduler.shutdown()
    assert not scheduler.aps.running


async def test_a_failing_job_is_logged_counted_and_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = Calls([], [], [], fail=True)
    scheduler = Scheduler(_hooks(calls), clock=lambda: SATURDAY_NOON)
    with caplog.at_level(logging.ERROR, logger="bot.jobs.scheduler"):
        assert await scheduler.run_job(TICK) is False
    assert scheduler.errors[TICK] == 1
    assert "policy-tick failed" in caplog.text
    calls.fail = False
    assert await scheduler.run_job(TICK) is True
    assert calls.advanced == [SATURDAY_NOON]
    assert await scheduler.run_job("nonsense") is False


async def test_digest_and_resync_jobs_call_their_hooks_with_the_period() -> None:
    calls = Calls([], [], [])
    monday = datetime(2026, 11, 23, 8, 0, 1, tzinfo=UTC)  # 09:00:01 in Berlin
    scheduler = Scheduler(_hooks(calls), clock=lambda: monday)
    scheduler.set_digests(DIGESTS)
    assert await scheduler.run_job("digest:morning")
    assert await scheduler.run_job(RESYNC)
    [(name, now, since)] = calls.digests
    assert (name, now) == ("morning", monday)
    assert since == datetime(2026, 11, 20, 9, 0, tzinfo=BERLIN)
    assert calls.resyncs == 1


# --- job content against a real pipeline ---------------------------------------------------------


@dataclass
class Live:
    pipeline: Pipeline
    store: Store
    out: io.StringIO
    clock: list[datetime]
    scheduler: Scheduler

    def told(self) -> str:
        text = self.out.getvalue()
        self.out.seek(0)
        self.out.truncate()
        return text


CONFIG = """
receivers: [{name: team, console: {format: text}}]
routes: [{receivers: [team], repeat: 2h}]
digests: [{name: morning, receivers: [team], schedule: "0 10 * * *"}]
"""


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    config = load_config(CONFIG)
    out = io.StringIO()
    store = await Store.open(tmp_path / "state.sqlite")
    pipeline = Pipeline(store, config, build_receivers(config, None, out, store=store))
    await pipeline.load()
    clock = [scenarios.START]
    scheduler = Scheduler(pipeline_hooks(PipelineGate(pipeline)), clock=lambda: clock[0])
    scheduler.set_digests(config.digests)
    yield Live(pipeline, store, out, clock, scheduler)
    await scheduler.shutdown()
    await pipeline.close()
    await store.close()


async def _observe(live: Live, lines: list[bytes]) -> None:
    for item in read_replay(lines):
        assert not isinstance(item, ReplayError)
        await live.pipeline.observe(item.payload, item.cluster, item.type, item.at)


async def test_the_tick_releases_a_drift_after_its_grace_and_then_reminds(live: Live) -> None:
    lines = scenarios.demo_lines()
    await _observe(live, lines[:8])  # baseline, then checkout drifts at 09:05
    assert live.told() == ""
    live.clock[0] = scenarios.START + timedelta(minutes=7)
    assert await live.scheduler.run_job(TICK)
    assert "checkout on prod no longer matches Git" in live.told()

    live.clock[0] = scenarios.START + timedelta(minutes=8)
    assert await live.scheduler.run_job(TICK)
    assert live.told() == ""
    live.clock[0] = scenarios.START + timedelta(hours=2, minutes=10)
    assert await live.scheduler.run_job(TICK)
    reminder = live.told().strip()
    assert reminder.startswith("Reminder: Needs attention · checkout on prod no longer matches Git")
    actions = [e.action for e in await live.store.audit_log()]
    assert actions[:2] == ["remind", "announce"]


async def test_expired_mutes_are_dropped_and_audited_and_nothing_is_told(live: Live) -> None:
    start = scenarios.START
    state = mute(
        live.pipeline.policy_state, "checkout", start + timedelta(hours=1), "deploy", "alice", start
    )
    state = mute(state, "cluster:staging", start + timedelta(hours=3), "", "bob", start)
    live.pipeline.policy_state = state

    live.clock[0] = start + timedelta(minutes=59)
    assert await live.scheduler.run_job(MUTES)
    assert set(live.pipeline.policy_state.mutes) == {"checkout", "cluster:staging"}

    live.clock[0] = start + timedelta(hours=1)
    assert await live.scheduler.run_job(MUTES)
    assert set(live.pipeline.policy_state.mutes) == {"cluster:staging"}
    assert set((await live.store.load_policy()).mutes) == {"cluster:staging"}
    [entry] = await live.store.audit_log()
    assert (entry.actor, entry.action) == ("driftbot", "mute_expired")
    assert entry.detail["target"] == "checkout" and entry.detail["muted_by"] == "alice"
    assert live.told() == ""


def test_dropping_expired_mutes_keeps_the_state_when_none_expired() -> None:
    from core.policy import PolicyState

    state = mute(PolicyState(), "checkout", SATURDAY_NOON, "", "", SATURDAY_NOON - timedelta(1))
    same, expired = drop_expired_mutes(state, SATURDAY_NOON - timedelta(seconds=1))
    assert same is state and expired == []


async def test_the_digest_job_tells_the_period_once_and_records_where_it_ended(live: Live) -> None:
    lines = scenarios.demo_lines()
    for item in read_replay(lines):
        assert not isinstance(item, ReplayError)
        await live.pipeline.advance(item.at)
        await live.pipeline.observe(item.payload, item.cluster, item.type, item.at)
    await live.pipeline.finish()
    live.told()

    live.clock[0] = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert await live.scheduler.run_job("digest:morning")
    first = live.told()
    assert first.startswith("morning: Nov 19 10:00 to Nov 20 10:00 (UTC)")
    assert (
        "09:16 payments on prod: 7d2e4f6 was rolled back by alice@example.com; ea87599 runs"
        in first
    )
    [entry] = [e for e in await live.store.audit_log() if e.action == "digest"]
    assert entry.detail["receivers"] == {"team": "ok"}

    live.clock[0] = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert await live.scheduler.run_job("digest:morning")
    second = live.told()
    assert second.startswith("morning: Nov 20 10:00 to Nov 21 10:00 (UTC)")
    assert "Rolled back" not in second and "Deployed" not in second
    assert "Still needs attention" in second
