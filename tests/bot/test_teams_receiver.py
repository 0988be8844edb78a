"""The Teams receiver end to end: notification -> outbox -> fake Workflows webhook, on virtual
time, and `driftbot replay` with Teams receivers in the config."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app.replay import CliError, build_receivers, replay_stream
from bot.delivery.rate_limit import Rate, RateLimiter
from bot.delivery.receivers import Notification
from bot.delivery.teams_receiver import (
    TeamsOptions,
    TeamsReceiver,
    build_teams_receivers,
    plan_teams,
)
from bot.delivery.teams_sender import TEAMS_WEBHOOK_RATE, WebhookUrl
from bot.store.store import Store
from config.schema import Config
from core.model import EventKind
from formatters import phrases
from formatters.group import EventGroup
from tests import scenarios
from tests.fakes.slack_api import VirtualClock
from tests.fakes.teams_webhook import SIGNATURE, WORKFLOW_ID, FakeTeamsWebhook
from tests.formatters.builders import argocd_state, event, recovery

EPOCH = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=0.0)


def options(clock: VirtualClock) -> TeamsOptions:
    return TeamsOptions(
        clock=lambda: EPOCH + timedelta(seconds=clock()),
        monotonic=clock,
        sleep=clock.sleep,
        close_timeout=10.0,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "state.sqlite")
    yield store
    await store.close()


@pytest.fixture
async def teams(clock: VirtualClock) -> AsyncIterator[FakeTeamsWebhook]:
    async with FakeTeamsWebhook(clock=clock) as fake:
        yield fake


def config(*receivers: dict[str, object]) -> Config:
    return Config.model_validate(
        {"receivers": list(receivers), "routes": [{"receivers": [r["name"] for r in receivers]}]}
    )


async def settle(receiver: TeamsReceiver, store: Store) -> None:
    """Let the worker run (its retry waits are virtual) until the outbox is empty."""
    receiver.start()
    for _ in range(20_000):
        if not await store.outbox_queue(receiver.name):
            return
        await asyncio.sleep(0)
    raise AssertionError("the outbox never emptied")


def receiver_for(
    teams: FakeTeamsWebhook, store: Store, clock: VirtualClock, payload: str = "envelope"
) -> TeamsReceiver:
    built = build_teams_receivers(
        config({"name": "pm", "teams": {"webhook_env": "HOOK", "payload": payload}}),
        store,
        {"HOOK": teams.url},
        options(clock),
    )
    receiver = built["pm"]
    assert isinstance(receiver, TeamsReceiver)
    return receiver


async def test_an_event_is_queued_then_posted_as_a_card(
    teams: FakeTeamsWebhook, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(teams, store, clock)
    drift = event(EventKind.DRIFT_DETECTED, argocd_state(name="checkout"))

    await receiver.deliver(Notification(drift, ("pm",)))
    await receiver.close()

    assert len(teams.accepted) == 1
    assert "checkout" in teams.headlines[0]
    assert await store.outbox_queue("pm") == []


async def test_a_recovery_posts_a_resolved_card_naming_the_original_alert(
    teams: FakeTeamsWebhook, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(teams, store, clock)
    problem = event(EventKind.DRIFT_DETECTED, argocd_state(name="checkout"))
    fixed = recovery(EventKind.DRIFT_RESOLVED, argocd_state(name="checkout"))

    await receiver.deliver(Notification(problem, ("pm",)))
    await receiver.deliver(Notification(fixed, ("pm",), original=problem))
    await receiver.close()

    assert len(teams.accepted) == 2
    resolved = teams.accepted[1]
    assert resolved["body"][0]["color"] == "Good"
    assert teams.headlines[1] == (
        f"{phrases.WORD_RESOLVED} · checkout on prod matches Git again (after 14 min)"
    )
    earlier = resolved["body"][1]["text"]
    assert earlier.startswith(phrases.LABEL_EARLIER_ALERT)
    assert teams.headlines[0].split(" · ", 1)[1] in earlier


async def test_bare_card_receivers_post_the_card_without_envelope(
    clock: VirtualClock, store: Store
) -> None:
    async with FakeTeamsWebhook(clock=clock, payload="card") as bare:
        receiver = receiver_for(bare, store, clock, payload="card")
        await receiver.deliver(Notification(event(EventKind.DEPLOY_FAILED), ("pm",)))
        await receiver.close()
    assert bare.statuses() == [202]
    assert len(bare.accepted) == 1


async def test_429s_and_500s_lose_nothing_and_keep_the_order(
    teams: FakeTeamsWebhook, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(teams, store, clock)
    teams.fail_next(500, times=7)  # more than one send's attempts: the outbox retries later
    teams.fail_next(429, times=2, retry_after=3)
    names = [f"app-{i}" for i in range(6)]

    for name in names:
        await receiver.deliver(
            Notification(event(EventKind.DEPLOY_FAILED, argocd_state(name=name)), ("pm",))
        )
    await settle(receiver, store)
    await receiver.close()

    assert [h.split(" · ")[1].split(" ")[0] for h in teams.headlines] == names
    assert 500 in teams.statuses() and 429 in teams.statuses()
    assert receiver.worker.stats.retried >= 1
    assert await store.outbox_queue("pm") == []


async def test_a_refused_card_is_set_aside_and_the_next_ones_go_through(
    teams: FakeTeamsWebhook, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(teams, store, clock)
    teams.fail_next(400, times=1)

    for name in ("first", "second"):
        await receiver.deliver(
            Notification(event(EventKind.DEPLOY_FAILED, argocd_state(name=name)), ("pm",))
        )
    await receiver.close()

    failed = await store.outbox_failed("pm")
    assert [f.last_error for f in failed] == ["http_400:InvalidRequestContent"]
    assert [h.split(" · ")[1].split(" ")[0] for h in teams.headlines] == ["second"]
    assert receiver.worker.stats.failed == 1


async def test_cards_queued_while_teams_is_unreachable_are_posted_at_the_next_start(
    teams: FakeTeamsWebhook, store: Store, clock: VirtualClock, unused_tcp_port: int
) -> None:
    down = (
        f"http://127.0.0.1:{unused_tcp_port}/workflows/{WORKFLOW_ID}/triggers/manual/paths/"
        f"invoke?sig={SIGNATURE}"
    )
    first = build_teams_receivers(
        config({"name": "pm", "teams": {"webhook_env": "HOOK"}}),
        store,
        {"HOOK": down},
        options(clock),
    )["pm"]
    await first.deliver(Notification(event(EventKind.DEPLOY_FAILED), ("pm",)))
    await first.close()
    assert len(await store.outbox_queue("pm")) == 1

    second = receiver_for(teams, store, clock)
    second.start()
    await second.close()

    assert len(teams.accepted) == 1
    assert await store.outbox_queue("pm") == []


async def test_the_service_s_receivers_send_what_an_earlier_run_left_without_a_new_card(
    teams: FakeTeamsWebhook, store: Store, clock: VirtualClock, unused_tcp_port: int
) -> None:
    down = f"http://127.0.0.1:{unused_tcp_port}/unreachable"
    earlier = build_teams_receivers(
        config({"name": "pm", "teams": {"webhook_env": "HOOK"}}),
        store,
        {"HOOK": down},
        options(clock),
    )["pm"]
    await earlier.deliver(Notification(event(EventKind.DEPLOY_FAILED), ("pm",)))
    await earlier.close()

    [receiver] = build_receivers(
        config({"name": "pm", "teams": {"webhook_env": "HOOK"}}),
        None,
        store=store,
        environ={"HOOK": teams.url},
        teams=options(clock),
    ).values()
    try:
        async with asyncio.timeout(10):
            while True:  # no new card, no drain: the worker the service started sends it
                if teams.accepted:
                    break
                await asyncio.sleep(0.01)
    finally:
        await receiver.close()
    assert len(teams.accepted) == 1
    assert await store.outbox_queue("pm") == []


def test_plan_is_one_card_per_notification() -> None:
    problem = event(EventKind.DRIFT_DETECTED)
    fixed = recovery(EventKind.DRIFT_RESOLVED)
    [plain] = plan_teams(Notification(problem, ("pm",)))
    [resolved] = plan_teams(Notification(fixed, ("pm",), original=problem), "card")
    assert plain["notification"] == problem.id and plain["card"]["type"] == "message"
    assert resolved["notification"] == fixed.id and resolved["card"]["type"] == "AdaptiveCard"


async def test_a_storm_is_one_card_listing_its_apps(
    teams: FakeTeamsWebhook, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(teams, store, clock)
    members = tuple(
        event(EventKind.DRIFT_DETECTED, argocd_state(name=f"app-{i}")) for i in range(37)
    )
    storm = EventGroup(events=members)
    note = Notification(members[0], ("pm",), group=storm)

    [planned] = plan_teams(note)
    await receiver.deliver(note)
    await receiver.close()

    assert planned["notification"] == storm.id
    assert len(teams.accepted) == 1
    assert "37" in teams.headlines[0]
    listed = teams.accepted[0]["body"][-1]["text"]
    assert all(f"[app-{i}]" in listed for i in range(37))


def test_a_receiver_repr_never_holds_the_url(store: Store, clock: VirtualClock) -> None:
    url = f"https://x.logic.azure.com/workflows/{WORKFLOW_ID}/triggers?sig={SIGNATURE}"
    receiver = TeamsReceiver("pm", WebhookUrl(url), None, store)  # type: ignore[arg-type]
    assert "x.logic.azure.com/workflows/…" in repr(receiver)
    assert SIGNATURE not in repr(receiver) and WORKFLOW_ID not in repr(receiver)


async def test_replay_delivers_to_teams_envelope_and_card_receivers(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        FakeTeamsWebhook(clock=clock) as enveloped,
        FakeTeamsWebhook(clock=clock, payload="card") as bare,
    ):
        cfg = config(
            {"name": "pm", "teams": {"webhook_env": "TEAMS_PM_WEBHOOK"}},
            {"name": "qa", "teams": {"webhook_file": str(tmp_path / "qa-hook"), "payload": "card"}},
            {"name": "stdout", "console": {"format": "jsonl"}},
        )
        (tmp_path / "qa-hook").write_text(bare.url + "\n")
        enveloped.fail_next(429, times=1, retry_after=2)
        bare.fail_next(500, times=1)
        out = io.StringIO()

        with caplog.at_level(logging.DEBUG):
            summary = await replay_stream(
                scenarios.demo_lines(),
                "demo.jsonl",
                cfg,
                tmp_path / "state.sqlite",
                None,
                out,
                environ={"TEAMS_PM_WEBHOOK": enveloped.url},
                teams=options(clock),
            )

    announced = [json.loads(line) for line in out.getvalue().splitlines()]
    assert summary.sent == len(announced) >= 10
    assert any(note.get("updates") for note in announced)
    for fake in (enveloped, bare):
        assert len(fake.accepted) == len(announced)
        times = [r.at for r in fake.requests]
        assert all(sum(1 for u in times if t <= u < t + 1) <= 4 for t in times)
        for headline, note in zip(fake.headlines, announced, strict=True):
            if note["kind"] == "group":
                assert str(note["count"]) in headline
            elif note.get("updates"):  # a recovery (or rollback): a new card closing the alert
                word, sentence = headline.split(" · ", 1)
                assert word in (phrases.WORD_RESOLVED, phrases.WORD_ATTENTION)
                assert sentence.startswith(f"{note['name']} on ")
            else:
                assert headline.split(" · ", 1)[1].startswith(f"{note['name']} ")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SIGNATURE not in logged and WORKFLOW_ID not in logged


class SleepBudget:
    """A virtual clock whose sleeps move time on exactly, and that fails a wait that never ends."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        assert self.sleeps < 100, f"still waiting at {self.now!r}: asked for {seconds!r} s"
        self.now += seconds


@pytest.mark.parametrize("start", [0.938614, 3.980896])
async def test_a_webhook_s_second_post_waits_a_quarter_second_whatever_the_clock_reads(
    start: float,
) -> None:
    # At these times a refill computed in floats leaves the bucket a few ulps short of a
    # token, a wait too small to move the clock: the limiter must not ask for it again.
    clock = SleepBudget(start)
    limiter = RateLimiter(
        clock=clock, sleep=clock.sleep, per_key=TEAMS_WEBHOOK_RATE, workspace=None
    )
    await limiter.acquire("hook")
    await limiter.acquire("hook")
    assert clock() == pytest.approx(start + 0.25)
    assert clock.sleeps <= 2


@given(
    start=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    per_second=st.sampled_from([TEAMS_WEBHOOK_RATE.per_second, 1.0, 3.0, 5.0, 7.0]),
    pause=st.floats(min_value=0, max_value=300),
)
def test_waiting_what_the_limiter_names_always_lets_the_next_post_through(
    start: float, per_second: float, pause: float
) -> None:
    clock = SleepBudget(start)
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, per_key=Rate(per_second), workspace=None)

    async def two_posts_around_a_pause() -> None:
        await limiter.acquire("hook")
        limiter.pause("hook", pause)
        await limiter.acquire("hook")

    asyncio.run(two_posts_around_a_pause())
    assert clock.sleeps <= 3
    assert clock() >= start + (pause if pause > 0 else 1 / per_second) * (1 - 1e-9) - 1e-6


async def test_replay_refuses_a_teams_receiver_without_its_webhook(store: Store) -> None:
    cfg = config({"name": "pm", "teams": {"webhook_env": "TEAMS_PM_WEBHOOK"}})

    with pytest.raises(
        CliError, match="'pm' posts to Teams: environment variable TEAMS_PM_WEBHOOK"
    ):
        build_receivers(cfg, None, store=store, environ={})
