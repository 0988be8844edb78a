"""SlackSender through the real slack_sdk AsyncWebClient against the fake Slack Web API.

Time is virtual: the fake, the limiter and the sender's backoff share one VirtualClock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.delivery.rate_limit import SLACK_CHANNEL_RATE, Rate, RateLimiter
from bot.delivery.retry import Backoff, RetryPolicy, RetryStage
from bot.delivery.slack_sender import SendResult, SlackSender, make_client
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi, Fault, VirtualClock

CHANNELS = ("C0ONE", "C0TWO", "C0THREE")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=1000.0)


@pytest.fixture
async def slack(clock: VirtualClock) -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi(
        clock=clock, missing_channels=("C0GONE",), not_member_channels=("C0NOTIN",)
    ) as fake:
        yield fake


def make_sender(
    slack: FakeSlackApi,
    clock: VirtualClock,
    *,
    per_channel: Rate = SLACK_CHANNEL_RATE,
    workspace: Rate | None = None,
    token: str = VALID_TOKEN,
    timeout: float = 30.0,
    max_attempts: int = 4,
    limiter_sleep: Callable[[float], Awaitable[None]] | None = None,
) -> SlackSender:
    limiter = RateLimiter(
        clock=clock, sleep=limiter_sleep or clock.sleep, per_key=per_channel, workspace=workspace
    )
    policy = RetryPolicy(
        attempts=max_attempts, backoff=Backoff(base=1.0, factor=2.0, cap=30.0, jitter=0.5)
    )
    retry = RetryStage("slack", limiter, sleep=clock.sleep, policy=policy, rand=lambda: 0.5)
    return SlackSender(make_client(token, slack.url, timeout=timeout), retry)


def message(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        **extra,
    }


def texts(slack: FakeSlackApi, channel: str) -> list[str]:
    return [m["text"] for m in slack.messages(channel)]


def assert_retry_after_honoured(slack: FakeSlackApi) -> None:
    """After each 429, the next call for that channel came no sooner than Retry-After said."""
    for channel in CHANNELS:
        calls = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == channel]
        for limited, following in itertools.pairwise(calls):
            if limited.status == 429:
                assert limited.retry_after is not None
                assert following.at >= limited.at + limited.retry_after


async def test_burst_on_three_channels_is_delivered_in_order_despite_429s(
    slack: FakeSlackApi, clock: VirtualClock
) -> None:
    slack.channel_rate = (1.0, 1)  # stricter than the sender's own pacing: 429s will come
    sender = make_sender(slack, clock, per_channel=Rate(1.0, 3))
    started = clock()

    posts = [sender.post(ch, message(f"{ch} #{i}")) for i in range(10) for ch in CHANNELS]
    results = await asyncio.gather(*posts)

    assert all(r.ok and r.ts for r in results)
    for ch in CHANNELS:
        assert texts(slack, ch) == [f"{ch} #{i}" for i in range(10)]
    delivered = [c for c in slack.calls_to("chat.postMessage") if c.ok]
    assert len(delivered) == 30  # nothing sent twice
    assert slack.rate_limited > 0
    assert sender.stats.rate_limited == slack.rate_limited
    assert sender.stats.sent == 30
    assert sender.stats.retried == 0
    assert_retry_after_honoured(slack)
    assert clock() - started >= 9.0  # ten messages a channel at one a second


async def test_pacing_like_slack_avoids_429s_altogether(
    slack: FakeSlackApi, clock: VirtualClock
) -> None:
    sender = make_sender(slack, clock, per_channel=Rate(1.0, 3))

    results = await asyncio.gather(
        *(sender.post(ch, message(f"{ch} #{i}")) for i in range(10) for ch in CHANNELS)
    )

    assert all(r.ok for r in results)
    assert slack.rate_limited == 0
    assert sender.stats.rate_limited == 0
    for ch in CHANNELS:
        assert texts(slack, ch) == [f"{ch} #{i}" for i in range(10)]


async def test_workspace_429_pauses_every_channel(slack: FakeSlackApi, clock: VirtualClock) -> None:
    slack.workspace_rate = (1.0, 1)
    other_channel_wait: list[float] = []

    async def observing_sleep(seconds: float) -> None:
        other_channel_wait.append(sender.limiter.wait_time("C0THREE"))
        await clock.sleep(seconds)

    sender = make_sender(slack, clock, limiter_sleep=observing_sleep)

    assert (await sender.post("C0ONE", message("first"))).ok
    result = await sender.post("C0TWO", message("second"))

    assert result.ok
    assert [c.error for c in slack.calls_to("chat.postMessage")] == [None, "rate_limited", None]
    assert other_channel_wait == [1.0]


async def test_channel_429_leaves_other_channels_alone(
    slack: FakeSlackApi, clock: VirtualClock
) -> None:
    slack.channel_rate = (1.0, 1)
    other_channel_wait: list[float] = []

    async def observing_sleep(seconds: float) -> None:
        other_channel_wait.append(sender.limiter.wait_time("C0THREE"))
        await clock.sleep(seconds)

    sender = make_sender(slack, clock, limiter_sleep=observing_sleep)

    assert (await sender.post("C0ONE", message("first"))).ok
    assert (await sender.post("C0ONE", message("second"))).ok

    assert [c.status for c in slack.calls_to("chat.postMessage")] == [200, 429, 200]
    assert other_channel_wait == [0.0]


async def test_server_errors_are_retried_with_backoff(
    slack: FakeSlackApi, clock: VirtualClock
) -> None:
    sender = make_sender(slack, clock)
    slack.inject(Fault.SERVER_ERROR, times=2)

    result = await sender.post("C0ONE", message("after two 500s"))

    assert result.ok and result.attempts == 3
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 500, 200]
    assert texts(slack, "C0ONE") == ["after two 500s"]
    assert sender.stats.retried == 2
    assert clock.slept == [0.75, 1.5]  # 1s then 2s, with the jitter taking off a quarter


async def test_dropped_connection_is_retried(slack: FakeSlackApi, clock: VirtualClock) -> None:
    sender = make_sender(slack, clock)
    slack.inject(Fault.DROP)

    result = await sender.post("C0ONE", message("after a drop"))

    assert result.ok and result.attempts == 2
    assert [c.fault for c in slack.calls_to("chat.postMessage")] == [Fault.DROP, None]
    assert texts(slack, "C0ONE") == ["after a drop"]
    assert sender.stats.retried == 1


async def test_timed_out_call_is_retried(slack: FakeSlackApi, clock: VirtualClock) -> None:
    # The client's time-out is real time (aiohttp's); keep it short.
    sender = make_sender(slack, clock, timeout=0.1)
    slack.inject(Fault.TIMEOUT)

    result = await sender.post("C0ONE", message("after a time-out"))

    assert result.ok and result.attempts == 2
    assert texts(slack, "C0ONE") == ["after a time-out"]


async def test_retryable_failure_out_of_attempts_is_kept_not_fatal(
    slack: FakeSlackApi, clock: VirtualClock
) -> None:
    sender = make_sender(slack, clock, max_attempts=3)
    slack.inject(Fault.SERVER_ERROR, times=3)

    result = await sender.post("C0ONE", message("later"))

    assert result == SendResult(
        ok=False, channel="C0ONE", error="http_500", fatal=False, attempts=3
    )
    assert len(slack.calls_to("chat.postMessage")) == 3
    assert sender.stats.failed_by_error["http_500"] == 1
    assert (await sender.post("C0ONE", message("later"))).ok  # the outbox's next try


async def test_retry_after_beyond_the_cap_gives_the_message_back(
    slack: FakeSlackApi, clock: VirtualClock
) -> None:
    slack.channel_rate = (1 / 3600, 1)  # Retry-After: 3600
    sender = make_sender(slack, clock)
    assert (await sender.post("C0ONE", message("first"))).ok

    result = await sender.post("C0ONE", message("second"))

    assert not result.ok and not result.fatal and result.error == "ratelimited"
    assert result.retry_after == pytest.approx(3600.0)  # the outbox defers its next try so long
    assert sender.limiter.wait_time("C0ONE") == pytest.approx(3600.0)


@pytest.mark.parametrize(
    ("channel", "token", "expected_error"),
    [
        ("C0GONE", VALID_TOKEN, "channel_not_found"),
        ("C0NOTIN", VALID_TOKEN, "not_in_channel"),
        ("C0ONE", "xoxb-revoked", "invalid_auth"),
    ],
)
async def test_fatal_errors_are_not_retried_and_logged_once(
    slack: FakeSlackApi,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
    channel: str,
    token: str,
    expected_error: str,
) -> None:
    sender = make_sender(slack, clock, token=token)

    with caplog.at_level(logging.WARNING, logger="bot.delivery.slack_sender"):
        results = [await sender.post(channel, message(f"try {i}")) for i in range(3)]

    assert all(r.fatal and not r.ok and r.error == expected_error for r in results)
    assert all(r.attempts == 1 for r in results)
    assert len(slack.calls_to("chat.postMessage")) == 3  # one call a post
    assert sender.stats.failed_by_error[expected_error] == 3
    assert sender.stats.retried == 0
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert expected_error in errors[0].getMessage()


async def test_each_receiver_gets_its_own_log_line(
    slack: FakeSlackApi, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sender = make_sender(slack, clock)
    with caplog.at_level(logging.ERROR, logger="bot.delivery.slack_sender"):
        await sender.post("C0GONE", message("a"), receiver="oncall")
        await sender.post("C0GONE", message("b"), receiver="oncall")
        await sender.post("C0GONE", message("c"), receiver="platform")
    assert [("oncall" in r.getMessage(), "platform" in r.getMessage()) for r in caplog.records] == [
        (True, False),
        (False, True),
    ]


@pytest.mark.parametrize(
    ("body", "expected_error"),
    [
        (
            {"text": "too many blocks", "blocks": [{"type": "divider"}] * 51},
            "invalid_blocks",
        ),
        (
            {
                "text": "long header",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            },
            "invalid_blocks",
        ),
        ({"text": "x" * 40_001}, "msg_too_long"),
    ],
)
async def test_oversized_messages_are_fatal(
    slack: FakeSlackApi, clock: VirtualClock, body: dict[str, Any], expected_error: str
) -> None:
    sender = make_sender(slack, clock)

    result = await sender.post("C0ONE", body)

    assert result.fatal and result.error == expected_error and result.attempts == 1
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert slack.messages("C0ONE") == []


async def test_update_replaces_the_message_in_place(
    slack: FakeSlackApi, clock: VirtualClock
) -> None:
    sender = make_sender(slack, clock)
    posted = await sender.post("C0ONE", message("checkout drifted"))
    assert posted.ok and posted.ts

    updated = await sender.update("C0ONE", posted.ts, message("checkout drift resolved"))

    assert updated.ok and updated.ts == posted.ts
    assert texts(slack, "C0ONE") == ["checkout drift resolved"]
    assert "edited" in slack.message("C0ONE", posted.ts)


async def test_update_of_an_unknown_ts_is_fatal(slack: FakeSlackApi, clock: VirtualClock) -> None:
    sender = make_sender(slack, clock)

    result = await sender.update("C0ONE", "1700000000.999999", message("nothing to update"))

    assert result.fatal and result.error == "message_not_found"


async def test_reply_goes_into_the_thread(slack: FakeSlackApi, clock: VirtualClock) -> None:
    sender = make_sender(slack, clock)
    parent = await sender.post("C0ONE", message("checkout degraded"))
    assert parent.ts

    reply = await sender.post("C0ONE", message("still degraded"), thread_ts=parent.ts)

    assert reply.ok and reply.ts != parent.ts
    assert slack.message("C0ONE", reply.ts or "")["thread_ts"] == parent.ts


def test_backoff_grows_exponentially_up_to_the_cap_and_jitter_only_shortens() -> None:
    backoff = Backoff(base=1.0, factor=2.0, cap=10.0, jitter=0.5)
    assert [backoff.delay(n, 0.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert backoff.delay(3, 0.999) == pytest.approx(2.002)
