"""Chat errors no retry can fix (Slack invalid_auth and channel_not_found, Teams 4xx other than
429), through the fake Slack and the fake Teams webhook: logged once with the receiver and
where it posts (never the token or the webhook URL), each refused notification marked failed
in the outbox and audited, the other receivers served as usual, nothing tried again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.app.replay import build_receivers
from bot.delivery.outbox import AUDIT_REFUSED
from bot.delivery.receivers import Notification, Receiver
from bot.delivery.slack_receiver import SlackReceiver
from bot.delivery.teams_receiver import TeamsReceiver
from bot.store.store import Store
from config.schema import Config
from core.model import EventKind
from tests.bot.test_slack_receiver import slack_options
from tests.bot.test_teams_receiver import options as teams_options
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi, VirtualClock
from tests.fakes.teams_webhook import SIGNATURE, WORKFLOW_ID, FakeTeamsWebhook
from tests.formatters.builders import argocd_state, event

GONE = "C0GONE"
ONCALL = "C0ONCALL"
APPS = ("checkout", "payments", "search")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=0.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "state.sqlite") as opened:
        yield opened


def chat_config(slack_url: str, slack: Mapping[str, str], teams: tuple[str, ...]) -> Config:
    receivers: list[dict[str, Any]] = [
        {"name": n, "slack": {"channel": c}} for n, c in slack.items()
    ]
    receivers += [{"name": n, "teams": {"webhook_env": f"HOOK_{n.upper()}"}} for n in teams]
    return Config.model_validate(
        {
            "receivers": receivers,
            "routes": [{"receivers": [r["name"] for r in receivers]}],
            "slack": {"api_url": slack_url},
        }
    )


async def deliver_all(receivers: Mapping[str, Receiver], names: tuple[str, ...]) -> None:
    """Three notifications to every receiver, then a close of each (what a shutdown does)."""
    for app in APPS:
        note = Notification(event(EventKind.DEPLOY_FAILED, argocd_state(name=app)), names)
        for name in names:
            await receivers[name].deliver(note)
    for name in names:
        await receivers[name].close()


async def assert_refused_for_good(store: Store, receiver: str, error: str) -> None:
    """Every notification of `receiver` failed with `error`, none pending, each audited."""
    failed = await store.outbox_failed(receiver)
    assert [f.last_error for f in failed] == [error] * len(APPS)
    assert all(f.attempts == 1 for f in failed)
    assert await store.outbox_queue(receiver) == []
    audited = [
        e.detail
        for e in await store.audit_log(limit=100)
        if e.action == AUDIT_REFUSED and e.detail["receiver"] == receiver
    ]
    assert sorted(d["outbox_id"] for d in audited) == sorted(f.id for f in failed)
    assert {d["error"] for d in audited} == {error}
    assert all(d["notification"] for d in audited)


def errors_naming(caplog: pytest.LogCaptureFixture, receiver: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and f" for {receiver} " in r.getMessage()
    ]


async def test_a_missing_slack_channel_is_set_aside_and_the_other_receivers_go_on(
    store: Store, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        FakeSlackApi(clock=clock, missing_channels=[GONE]) as slack,
        FakeTeamsWebhook(clock=clock) as teams,
    ):
        config = chat_config(slack.url, {"gone": GONE, "oncall": ONCALL}, ("pm",))
        receivers = build_receivers(
            config,
            None,
            store=store,
            environ={"SLACK_BOT_TOKEN": VALID_TOKEN, "HOOK_PM": teams.url},
            slack=slack_options(clock),
            teams=teams_options(clock),
        )
        await deliver_all(receivers, ("gone", "oncall", "pm"))

        await assert_refused_for_good(store, "gone", "channel_not_found")
        posts_to_gone = [
            c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == GONE
        ]
        assert len(posts_to_gone) == len(APPS)  # one try each: no retry
        assert len(slack.messages(ONCALL)) == len(APPS)
        assert len(teams.accepted) == len(APPS)
    gone = receivers["gone"]
    assert isinstance(gone, SlackReceiver)
    assert (gone.worker.stats.failed, gone.worker.stats.sent) == (len(APPS), 0)
    assert gone.worker.stats.failed_by_error == {"channel_not_found": len(APPS)}
    [logged] = errors_naming(caplog, "gone")
    assert GONE in logged and "channel_not_found" in logged
    (entry,) = [e for e in await store.audit_log(limit=1) if e.action == AUDIT_REFUSED]
    assert entry.detail["destination"] == f"channel {GONE}"


async def test_a_revoked_slack_token_fails_slack_once_per_receiver_and_teams_still_posts(
    store: Store, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    revoked = "xoxb-revoked-token-0000"
    async with FakeSlackApi(clock=clock) as slack, FakeTeamsWebhook(clock=clock) as teams:
        config = chat_config(slack.url, {"oncall": ONCALL, "gone": GONE}, ("pm",))
        receivers = build_receivers(
            config,
            None,
            store=store,
            environ={"SLACK_BOT_TOKEN": revoked, "HOOK_PM": teams.url},
            slack=slack_options(clock),
            teams=teams_options(clock),
        )
        await deliver_all(receivers, ("oncall", "gone", "pm"))

        for name in ("oncall", "gone"):
            await assert_refused_for_good(store, name, "invalid_auth")
        assert len(slack.calls_to("chat.postMessage")) == 2 * len(APPS)
        assert slack.messages(ONCALL) == []
        assert len(teams.accepted) == len(APPS)
    for name, channel in (("oncall", ONCALL), ("gone", GONE)):
        [logged] = errors_naming(caplog, name)
        assert channel in logged and "invalid_auth" in logged
    everything = "\n".join(r.getMessage() for r in caplog.records)
    everything += "\n".join(str(e.detail) for e in await store.audit_log(limit=100))
    assert revoked not in everything


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "http_400:InvalidRequestContent"),
        (401, "http_401:DirectApiAuthorizationRequired"),
        (404, "http_404:WorkflowNotFound"),
        (413, "http_413:RequestEntityTooLarge"),
    ],
)
async def test_a_teams_4xx_is_set_aside_and_the_other_receivers_go_on(
    status: int,
    error: str,
    store: Store,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        FakeSlackApi(clock=clock) as slack,
        FakeTeamsWebhook(clock=clock) as broken,
        FakeTeamsWebhook(clock=clock) as working,
    ):
        broken.fail_next(status, times=len(APPS))
        config = chat_config(slack.url, {"oncall": ONCALL}, ("pm", "qa"))
        receivers = build_receivers(
            config,
            None,
            store=store,
            environ={"SLACK_BOT_TOKEN": VALID_TOKEN, "HOOK_PM": broken.url, "HOOK_QA": working.url},
            slack=slack_options(clock),
            teams=teams_options(clock),
        )
        await deliver_all(receivers, ("pm", "qa", "oncall"))

        await assert_refused_for_good(store, "pm", error)
        assert broken.statuses() == [status] * len(APPS)  # one try each: no retry
        assert broken.accepted == []
        assert len(working.accepted) == len(APPS)
        assert len(slack.messages(ONCALL)) == len(APPS)
    pm = receivers["pm"]
    assert isinstance(pm, TeamsReceiver)
    assert pm.worker.stats.failed == len(APPS)
    assert pm.sender.stats.failed_by_error == {error: len(APPS)}
    [logged] = errors_naming(caplog, "pm")
    assert error in logged and "webhook http://127.0.0.1/workflows/…" in logged
    everything = "\n".join(r.getMessage() for r in caplog.records)
    everything += "\n".join(str(e.detail) for e in await store.audit_log(limit=100))
    assert SIGNATURE not in everything and WORKFLOW_ID not in everything


async def test_a_receiver_keeps_delivering_after_a_refusal(
    store: Store, clock: VirtualClock
) -> None:
    async with FakeTeamsWebhook(clock=clock) as teams:
        teams.fail_next(400, times=1)
        config = chat_config("http://127.0.0.1:9/api/", {}, ("pm",))
        receivers = build_receivers(
            config, None, store=store, environ={"HOOK_PM": teams.url}, teams=teams_options(clock)
        )
        pm = receivers["pm"]
        assert isinstance(pm, TeamsReceiver)
        first = Notification(event(EventKind.DEPLOY_FAILED, argocd_state(name="one")), ("pm",))
        await pm.deliver(first)
        assert await pm.drain(10)
        assert pm.worker.running  # the refusal stopped nothing
        second = Notification(event(EventKind.DEPLOY_FAILED, argocd_state(name="two")), ("pm",))
        await pm.deliver(second)
        await pm.close()
        assert [h.split(" · ")[1].split(" ")[0] for h in teams.headlines] == ["two"]
        assert [f.last_error for f in await store.outbox_failed("pm")] == [
            "http_400:InvalidRequestContent"
        ]
