"""The metrics driftbot exports: counted by the real senders against the fake Slack and Teams
(429s, 5xx, fatal refusals, latency from the change seen to the message accepted), and served
at /metrics by the running service after it delivered a drift to Slack and Teams."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.app.replay import build_receivers
from bot.app.server import LIVE, create_app
from bot.app.service import Service
from bot.delivery.rate_limit import Rate, RateLimiter
from bot.delivery.retry import Backoff, RetryPolicy, RetryStage
from bot.delivery.slack_receiver import SlackReceiver
from bot.delivery.slack_sender import SlackSender, make_client
from bot.delivery.teams_receiver import TeamsReceiver
from bot.delivery.teams_sender import TEAMS_WEBHOOK_RATE, TeamsSender, WebhookUrl
from bot.ops.metrics import METRICS, DeliveryMetrics, ServiceCollector
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from bot.store.write_behind import WriteBehindStore
from config.schema import Config
from core.policy import Action, Reason
from tests.bot.service_world import VirtualClock, make_config, serving, until, until_ready
from tests.bot.test_store_faults import fault, states
from tests.bot.test_teams_sender import card
from tests.builders_argocd import argocd_app
from tests.builders_flux import T0
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi
from tests.fakes.slack_api import VirtualClock as MonotonicClock
from tests.fakes.teams_webhook import FakeTeamsWebhook
from tests.world import Obj, World, argocd_full_states, fakes

CHANNEL = "C0METRICS"
SEEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class WallClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> MonotonicClock:
    return MonotonicClock(start=100.0)


@pytest.fixture
def metrics() -> tuple[DeliveryMetrics, CollectorRegistry, WallClock]:
    wall = WallClock(SEEN)
    delivery = DeliveryMetrics(clock=wall)
    registry = CollectorRegistry()
    registry.register(delivery)
    return delivery, registry, wall


@pytest.fixture
async def slack(clock: MonotonicClock) -> AsyncIterator[FakeSlackApi]:
    # One message per channel per 10 s: the second post in a row gets a 429.
    async with FakeSlackApi(
        clock=clock, channel_rate=(0.1, 1), missing_channels=("C0GONE",)
    ) as fake:
        yield fake


def _slack_sender(slack: FakeSlackApi, clock: MonotonicClock, delivery: DeliveryMetrics) -> Any:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, per_key=Rate(100.0, 100))
    policy = RetryPolicy(attempts=2, backoff=Backoff(base=1.0, jitter=0.0))
    retry = RetryStage("slack", limiter, sleep=clock.sleep, policy=policy, metrics=delivery)
    return SlackSender(make_client(VALID_TOKEN, slack.url), retry)


def _post(text: str, notification: str) -> dict[str, Any]:
    return {
        "text": text,
        "metadata": {
            "event_type": "driftbot_notification",
            "event_payload": {"outbox_id": 1, "receiver": "oncall", "notification": notification},
        },
    }


async def test_slack_deliveries_429s_and_refusals_are_counted_per_receiver(
    slack: FakeSlackApi,
    clock: MonotonicClock,
    metrics: tuple[DeliveryMetrics, CollectorRegistry, WallClock],
) -> None:
    delivery, registry, wall = metrics
    sender = _slack_sender(slack, clock, delivery)
    delivery.changes_seen(["oncall", "archive"], ["n1", "n2"], SEEN)
    wall.now = SEEN + timedelta(seconds=42)

    first = await sender.post(CHANNEL, _post("first", "n1"), receiver="oncall")
    second = await sender.post(CHANNEL, _post("second", "n2"), receiver="oncall")
    gone = await sender.post("C0GONE", _post("lost", "n3"), receiver="archive")

    assert first.ok and second.ok and not gone.ok and gone.fatal
    assert slack.rate_limited == 1

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("driftbot_notifications_sent_total", receiver="oncall") == 2
    assert value("driftbot_rate_limited_total", service="slack", receiver="oncall") == 1
    assert value("driftbot_notifications_failed_total", receiver="archive", fatal="true") == 1
    assert value("driftbot_notifications_sent_total", receiver="archive") is None
    # Both changes were seen 42 s before Slack took their messages.
    assert value("driftbot_delivery_latency_seconds_count", receiver="oncall") == 2
    assert value("driftbot_delivery_latency_seconds_sum", receiver="oncall") == 84
    assert value("driftbot_delivery_latency_seconds_bucket", receiver="oncall", le="30.0") == 0
    assert value("driftbot_delivery_latency_seconds_bucket", receiver="oncall", le="60.0") == 2


async def test_a_message_is_timed_once_and_a_reminder_not_at_all(
    slack: FakeSlackApi,
    clock: MonotonicClock,
    metrics: tuple[DeliveryMetrics, CollectorRegistry, WallClock],
) -> None:
    delivery, registry, _ = metrics
    sender = _slack_sender(slack, clock, delivery)
    delivery.changes_seen(["oncall"], ["n1"], SEEN)
    await sender.post(CHANNEL, _post("alert", "n1"), receiver="oncall")
    clock.advance(20)
    await sender.post(CHANNEL, _post("reply in its thread", "n1"), receiver="oncall")
    assert registry.get_sample_value("driftbot_notifications_sent_total", {"receiver": "oncall"})
    count = registry.get_sample_value(
        "driftbot_delivery_latency_seconds_count", {"receiver": "oncall"}
    )
    assert count == 1


async def test_teams_429_500_and_fatal_answers_are_counted(
    clock: MonotonicClock, metrics: tuple[DeliveryMetrics, CollectorRegistry, WallClock]
) -> None:
    delivery, registry, wall = metrics
    limiter = RateLimiter(
        clock=clock, sleep=clock.sleep, per_key=TEAMS_WEBHOOK_RATE, workspace=None
    )
    policy = RetryPolicy(attempts=2)
    sender = TeamsSender(
        RetryStage(
            "teams", limiter, sleep=clock.sleep, policy=policy, rand=lambda: 0.5, metrics=delivery
        )
    )
    envelope = card("drift on prod")
    try:
        async with FakeTeamsWebhook(clock=clock) as teams:
            webhook = WebhookUrl(teams.url)
            delivery.changes_seen(["pm"], ["t1"], SEEN)
            wall.now = SEEN + timedelta(seconds=3)
            teams.fail_next(429, retry_after=2)
            teams.fail_next(500)
            ok = await sender.post(webhook, envelope, receiver="pm", notification="t1")
            teams.fail_next(400)
            refused = await sender.post(webhook, envelope, receiver="pm")
            teams.fail_next(500, times=2)
            kept = await sender.post(webhook, envelope, receiver="pm")
    finally:
        await sender.close()
    assert ok.ok and refused.fatal and not kept.ok and not kept.fatal

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("driftbot_notifications_sent_total", receiver="pm") == 1
    assert value("driftbot_rate_limited_total", service="teams", receiver="pm") == 1
    assert value("driftbot_notifications_failed_total", receiver="pm", fatal="true") == 1
    assert value("driftbot_notifications_failed_total", receiver="pm", fatal="false") == 1
    assert value("driftbot_delivery_latency_seconds_sum", receiver="pm") == 3


async def test_slack_updates_and_teams_cards_sent_by_their_receivers_are_timed(
    tmp_path: Path,
    slack: FakeSlackApi,
    clock: MonotonicClock,
    metrics: tuple[DeliveryMetrics, CollectorRegistry, WallClock],
) -> None:
    """Through the receivers' outbox workers: a Slack post, then an in-place update of it (a
    recovery redraws its problem's message), and a Teams card; each is timed from its change."""
    delivery, registry, wall = metrics
    delivery.changes_seen(["oncall"], ["n1", "n2"], SEEN)
    delivery.changes_seen(["pm"], ["t1"], SEEN)
    wall.now = SEEN + timedelta(seconds=7)
    teams_sender = TeamsSender(
        RetryStage(
            "teams",
            RateLimiter(clock=clock, sleep=clock.sleep, per_key=TEAMS_WEBHOOK_RATE, workspace=None),
            sleep=clock.sleep,
            metrics=delivery,
        )
    )
    async with (
        await Store.open(tmp_path / "s.sqlite") as store,
        FakeTeamsWebhook(clock=clock) as teams,
    ):
        oncall = SlackReceiver(
            "oncall", CHANNEL, _slack_sender(slack, clock, delivery), store, sleep=clock.sleep
        )
        pm = TeamsReceiver("pm", WebhookUrl(teams.url), teams_sender, store, sleep=clock.sleep)
        post = {"op": "post", "notification": "n1", "message": {"text": "drift"}}
        await store.outbox_add("oncall", {**post, "thread_of": "n1"})
        update = {"op": "update", "notification": "n2", "message": {"text": "resolved"}}
        await store.outbox_add("oncall", {**update, "target": "n1"})
        await store.outbox_add("pm", {"op": "post", "notification": "t1", "card": card("drift")})
        try:
            assert await oncall.drain(within=10) and await pm.drain(within=10)
        finally:
            await oncall.close()
            await pm.close()
    [message] = slack.messages(CHANNEL)
    assert message["text"] == "resolved" and len(teams.accepted) == 1

    def value(name: str, receiver: str) -> float | None:
        return registry.get_sample_value(name, {"receiver": receiver})

    assert value("driftbot_notifications_sent_total", "oncall") == 2
    assert value("driftbot_delivery_latency_seconds_count", "oncall") == 2
    assert value("driftbot_delivery_latency_seconds_sum", "oncall") == 14
    assert value("driftbot_delivery_latency_seconds_count", "pm") == 1
    assert value("driftbot_delivery_latency_seconds_sum", "pm") == 7


def test_leader_gauge_and_no_unbounded_labels(
    metrics: tuple[DeliveryMetrics, CollectorRegistry, WallClock],
) -> None:
    delivery, registry, _ = metrics
    assert registry.get_sample_value("driftbot_leader") == 1
    delivery.set_leader(False)
    assert registry.get_sample_value("driftbot_leader") == 0
    labels = {
        label
        for family in registry.collect()
        for sample in family.samples
        for label in sample.labels
    }
    assert labels <= {"receiver", "service", "fatal", "le"}


def test_the_pending_changes_are_bounded(
    metrics: tuple[DeliveryMetrics, CollectorRegistry, WallClock],
) -> None:
    delivery, _, _ = metrics
    delivery.changes_seen(["r"], (f"n{i}" for i in range(25_000)), SEEN)
    assert len(delivery._seen) == 20_000
    assert ("r", "n0") not in delivery._seen and ("r", "n24999") in delivery._seen


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _sample(families: dict[str, Any], family: str, name: str, **labels: str) -> float | None:
    for sample in families[family].samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    return None


async def test_metrics_served_after_a_drift_reached_slack_and_teams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualClock(T0)
    # The latency is measured on the service's clock, which is virtual here.
    monkeypatch.setattr(METRICS, "clock", clock)
    async with (
        fakes("prod") as apis,
        FakeSlackApi() as slack,
        FakeTeamsWebhook(rate=None) as teams,
    ):
        world = World(apis, clock)
        app = Obj("prod", "Application", "checkout", argocd_full_states)
        world.put(app)
        config = make_config(
            {"prod": apis["prod"].write_kubeconfig(tmp_path / "kubeconfig")},
            receivers=[
                {"name": "metrics-slack", "slack": {"channel": CHANNEL}},
                {"name": "metrics-teams", "teams": {"webhook_env": "TEAMS_HOOK"}},
            ],
            routes=[{"receivers": ["metrics-slack", "metrics-teams"]}],
            slack={"mode": "http", "api_url": slack.url},
        )
        teams.fail_next(429, retry_after=0)
        environ = {
            "SLACK_BOT_TOKEN": VALID_TOKEN,
            "SLACK_SIGNING_SECRET": "metrics-signing-secret",
            "TEAMS_HOOK": teams.url,
        }
        async with (
            serving(config, tmp_path / "state.sqlite", clock, environ=environ) as base,
            aiohttp.ClientSession() as http,
        ):
            await until_ready(http, base)
            clock.advance()
            world.change(app)
            await until(lambda: bool(slack.messages(CHANNEL)) and bool(teams.accepted))

            async def scrape() -> dict[str, Any]:
                async with http.get(f"{base}/metrics") as response:
                    assert response.status == 200
                    return _families(await response.text())

            # Each message is marked sent just after the chat service took it.
            async with asyncio.timeout(20):
                while True:
                    families = await scrape()
                    depths = families["driftbot_outbox_depth"].samples
                    if {s.labels["receiver"]: s.value for s in depths} == {
                        "metrics-slack": 0,
                        "metrics-teams": 0,
                    }:
                        break
                    await asyncio.sleep(0.01)

    assert all(name.startswith("driftbot_") for name in families)
    checks = {
        ("driftbot_events", "driftbot_events_total"): {"kind": "drift_detected"},
        ("driftbot_notifications_sent", "driftbot_notifications_sent_total"): {
            "receiver": "metrics-slack"
        },
        ("driftbot_rate_limited", "driftbot_rate_limited_total"): {
            "service": "teams",
            "receiver": "metrics-teams",
        },
        ("driftbot_delivery_latency_seconds", "driftbot_delivery_latency_seconds_count"): {
            "receiver": "metrics-slack"
        },
    }
    for (family, name), labels in checks.items():
        assert _sample(families, family, name, **labels) == 1, (name, labels)
    latency = ("driftbot_delivery_latency_seconds", "driftbot_delivery_latency_seconds_count")
    assert _sample(families, *latency, receiver="metrics-teams") == 1
    assert _sample(families, "driftbot_leader", "driftbot_leader") == 1
    assert _sample(families, "driftbot_store_errors", "driftbot_store_errors_total") == 0
    for family in ("driftbot_suppressions", "driftbot_holds", "driftbot_watch_relists"):
        assert family in families


async def test_store_errors_are_served_while_the_disk_is_full(tmp_path: Path) -> None:
    """Through the real aiohttp app: every flush that meets a full disk is a store error, and
    /metrics says how many while the outage lasts and after it."""
    ticks: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(_: float) -> None:
        await ticks.get()

    app = create_app(
        Config(),
        tmp_path / "state.sqlite",
        environ={},
        stream=io.StringIO(),
        sleep=sleep,
        clock=VirtualClock(T0),
    )
    async with TestClient(TestServer(app)) as client:

        async def store_errors() -> float | None:
            async with client.get("/metrics") as response:
                assert response.status == 200
                families = _families(await response.text())
            return _sample(families, "driftbot_store_errors", "driftbot_store_errors_total")

        service = app[LIVE].service
        assert service is not None
        store = service.pipeline.store
        assert isinstance(store, WriteBehindStore)
        assert await store_errors() == 0
        async with fault("full", store):
            await store.put_states(states("during", 300))
            assert [await store.flush() for _ in range(3)] == [False] * 3
            assert await store_errors() == 3
        assert await store.flush()
        assert await store_errors() == 3


def _demo_lines() -> list[str]:
    demo = Path(__file__).resolve().parents[2] / "bot" / "app" / "scenarios" / "demo.jsonl"
    return demo.read_text().splitlines()


async def test_console_receivers_leave_no_latency_entry_waiting(tmp_path: Path) -> None:
    """Only chat services report an acceptance: a notification to a console receiver is not
    kept for a latency that will never be measured (it would sit there until the cap)."""
    from bot.app.replay import build_receivers, replay_lines
    from bot.pipeline.runner import Pipeline

    out = io.StringIO()
    config = Config()
    store = await Store.open(tmp_path / "state.sqlite")
    try:
        pipeline = Pipeline(store, config, build_receivers(config, "jsonl", out, store=store))
        pipeline.metrics = DeliveryMetrics()
        await pipeline.load()
        summary = await replay_lines(_demo_lines(), "demo", pipeline)
        await pipeline.close()
    finally:
        await store.close()
    assert summary.sent > 0 and out.getvalue().count("\n") >= summary.sent
    assert len(pipeline.metrics._seen) == 0


async def test_holds_and_suppressions_are_counted_by_the_policys_reason(tmp_path: Path) -> None:
    """A drift held in its grace and then resolved within it: one hold `in_grace`, and the
    problem and its recovery suppressed as `grace`, labelled by the reason's own name."""
    config = Config.model_validate(
        {"receivers": [{"name": "out", "console": {}}], "routes": [{"receivers": ["out"]}]}
    )
    async with await Store.open(tmp_path / "s.sqlite") as store:
        pipeline = Pipeline(store, config, build_receivers(config, None, io.StringIO()))
        await pipeline.load()
        drifted = argocd_app("checkout", sync="OutOfSync", out_of_sync=[("Deployment", "a", "b")])
        await pipeline.observe(argocd_app("checkout"), "prod", "ADDED", T0)
        await pipeline.observe(drifted, "prod", "MODIFIED", T0 + timedelta(seconds=10))
        await pipeline.observe(
            argocd_app("checkout"), "prod", "MODIFIED", T0 + timedelta(seconds=20)
        )
        registry = CollectorRegistry()
        registry.register(ServiceCollector(Service(config, pipeline, {})))
        families = _families(generate_latest(registry).decode())
        await pipeline.close()
    assert pipeline.decided[(Action.HOLD, Reason.IN_GRACE)] == 1
    assert _sample(families, "driftbot_holds", "driftbot_holds_total", reason="in_grace") == 1
    suppressed = _sample(
        families, "driftbot_suppressions", "driftbot_suppressions_total", reason="grace"
    )
    assert suppressed == pipeline.decided[(Action.SUPPRESS, Reason.GRACE)] >= 1
    reasons = {
        s.labels["reason"]
        for f in ("driftbot_holds", "driftbot_suppressions")
        for s in families[f].samples
    }
    assert reasons <= {r.value for r in Reason}
