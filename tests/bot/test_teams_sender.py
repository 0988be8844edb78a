"""TeamsSender against the fake Workflows webhook over real HTTP, on virtual time.

The fake, the limiter and the sender's backoff share one VirtualClock: 4 requests a second,
Retry-After and backoff are exercised without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.delivery.rate_limit import RateLimiter
from bot.delivery.retry import Backoff, RetryPolicy, RetryStage
from bot.delivery.teams_sender import (
    TEAMS_WEBHOOK_RATE,
    TeamsConfigError,
    TeamsSender,
    WebhookUrl,
    load_webhook,
    redact,
)
from config.schema import TeamsReceiver
from core.model import EventKind, ResourceRef
from formatters.teams import MAX_PAYLOAD_BYTES, payload_size, render_teams
from tests.fakes.slack_api import VirtualClock
from tests.fakes.teams_webhook import SIGNATURE, WORKFLOW_ID, FakeTeamsWebhook
from tests.formatters.adaptive_card import assert_valid_teams
from tests.formatters.builders import argocd_state, event


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=5000.0)


@pytest.fixture
async def teams(clock: VirtualClock) -> AsyncIterator[FakeTeamsWebhook]:
    async with FakeTeamsWebhook(clock=clock) as fake:
        yield fake


@pytest.fixture
async def sender(clock: VirtualClock) -> AsyncIterator[TeamsSender]:
    limiter = RateLimiter(
        clock=clock, sleep=clock.sleep, per_key=TEAMS_WEBHOOK_RATE, workspace=None
    )
    policy = RetryPolicy(attempts=4, backoff=Backoff(base=1.0, factor=2.0, cap=30.0, jitter=0.5))
    sender = TeamsSender(
        RetryStage("teams", limiter, sleep=clock.sleep, policy=policy, rand=lambda: 0.5)
    )
    yield sender
    await sender.close()


def card(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{"type": "TextBlock", "text": text, "wrap": True}],
                },
            }
        ],
    }


def max_in_one_second(times: list[float]) -> int:
    """The most requests in any window [t, t + 1 s)."""
    return max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)


async def test_a_card_for_500_out_of_sync_resources_fits_and_is_accepted(
    teams: FakeTeamsWebhook, sender: TeamsSender
) -> None:
    refs = tuple(
        ResourceRef("ConfigMap", "shop", f"checkout-config-{i:04d}-" + "x" * 60) for i in range(500)
    )
    state = argocd_state(name="checkout", out_of_sync_resources=refs, out_of_sync_count=500)
    payload = render_teams(event(EventKind.DRIFT_DETECTED, state))
    assert_valid_teams(payload)
    assert payload_size(payload) <= MAX_PAYLOAD_BYTES

    result = await sender.post(WebhookUrl(teams.url), payload, receiver="pm")

    assert result.ok and result.attempts == 1
    assert teams.statuses() == [202]
    assert len(teams.requests[0].body) <= 28_000
    assert teams.accepted == [payload["attachments"][0]["content"]]
    assert "500" in " ".join(b.get("text", "") for b in teams.accepted[0]["body"])


async def test_over_28_kb_is_refused_for_good_and_not_retried(
    teams: FakeTeamsWebhook, sender: TeamsSender
) -> None:
    result = await sender.post(WebhookUrl(teams.url), card("x" * 30_000), receiver="pm")

    assert not result.ok and result.fatal
    assert result.error == "http_413:RequestEntityTooLarge"
    assert teams.statuses() == [413]
    assert sender.stats.failed_by_error == {"http_413:RequestEntityTooLarge": 1}


async def test_429_is_waited_out_for_retry_after_and_nothing_is_lost(
    teams: FakeTeamsWebhook, sender: TeamsSender, clock: VirtualClock
) -> None:
    teams.fail_next(429, times=2, retry_after=7)
    webhook = WebhookUrl(teams.url)

    results = await asyncio.gather(*(sender.post(webhook, card(f"#{i}")) for i in range(6)))

    assert all(r.ok for r in results)
    assert [b["body"][0]["text"] for b in teams.accepted] == [f"#{i}" for i in range(6)]
    assert teams.statuses()[:3] == [429, 429, 202]
    first, second, third = teams.requests[:3]
    assert second.at >= first.at + 7 and third.at >= second.at + 7
    assert sender.stats.rate_limited == 2 and sender.stats.retried == 0


async def test_500_is_retried_with_backoff_and_nothing_is_lost(
    teams: FakeTeamsWebhook, sender: TeamsSender
) -> None:
    teams.fail_next(500, times=2)
    webhook = WebhookUrl(teams.url)

    results = [await sender.post(webhook, card(f"#{i}")) for i in range(3)]

    assert all(r.ok for r in results)
    assert results[0].attempts == 3
    assert teams.statuses() == [500, 500, 202, 202, 202]
    assert teams.headlines == ["#0", "#1", "#2"]
    gaps = [b.at - a.at for a, b in zip(teams.requests[:2], teams.requests[1:3], strict=True)]
    assert gaps[0] >= 0.75 and gaps[1] >= 1.5  # 1 s then 2 s, each minus half its jitter
    assert sender.stats.retried == 2


async def test_a_webhook_that_keeps_failing_is_given_up_as_retryable(
    teams: FakeTeamsWebhook, sender: TeamsSender
) -> None:
    teams.fail_next(503, times=10)

    result = await sender.post(WebhookUrl(teams.url), card("x"), receiver="pm")

    assert not result.ok and not result.fatal
    assert result.attempts == 4
    assert result.error is not None and result.error.startswith("http_503")


async def test_never_more_than_4_requests_a_second_per_webhook(
    teams: FakeTeamsWebhook, sender: TeamsSender, clock: VirtualClock
) -> None:
    teams.rate = 4
    webhook = WebhookUrl(teams.url)
    started = clock()

    results = await asyncio.gather(*(sender.post(webhook, card(f"#{i}")) for i in range(40)))

    assert all(r.ok for r in results)
    assert teams.statuses() == [202] * 40  # the fake's throttle never had to answer 429
    assert max_in_one_second([r.at for r in teams.requests]) <= 4
    assert clock() - started >= 9.75  # 40 at 4 a second
    assert teams.headlines == [f"#{i}" for i in range(40)]


async def test_two_webhooks_are_paced_separately(
    teams: FakeTeamsWebhook, sender: TeamsSender, clock: VirtualClock
) -> None:
    one = WebhookUrl(teams.url)
    other = WebhookUrl(teams.url + "&extra=1")
    teams.rate = None
    started = clock()

    await asyncio.gather(
        *(
            sender.post(hook, card(f"{n}{i}"))
            for i in range(8)
            for n, hook in (("a", one), ("b", other))
        )
    )

    assert len(teams.accepted) == 16
    assert clock() - started < 2.0  # 8 each at 4 a second, side by side


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "http_400:InvalidRequestContent"),
        (401, "http_401:DirectApiAuthorizationRequired"),
        (404, "http_404:WorkflowNotFound"),
    ],
)
async def test_other_4xx_are_fatal_logged_once_and_counted(
    teams: FakeTeamsWebhook,
    sender: TeamsSender,
    caplog: pytest.LogCaptureFixture,
    status: int,
    error: str,
) -> None:
    teams.fail_next(status, times=3)
    webhook = WebhookUrl(teams.url)

    with caplog.at_level(logging.ERROR, logger="bot.delivery.teams_sender"):
        results = [await sender.post(webhook, card("x"), receiver="pm") for _ in range(3)]

    assert all(not r.ok and r.fatal and r.attempts == 1 for r in results)
    assert {r.error for r in results} == {error}
    assert teams.statuses() == [status] * 3
    assert sender.stats.failed_by_error == {error: 3}
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


async def test_a_connection_refused_is_retried_and_never_shows_the_url(
    sender: TeamsSender, caplog: pytest.LogCaptureFixture, unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/workflows/{WORKFLOW_ID}/x?sig={SIGNATURE}"

    with caplog.at_level(logging.DEBUG):
        result = await sender.post(WebhookUrl(url), card("x"), receiver="pm")

    assert not result.ok and not result.fatal and result.attempts == 4
    assert result.error == "connection_error:ClientConnectorError"
    assert caplog.records
    assert_no_secret(caplog, url)


async def test_the_webhook_url_never_appears_in_logs(
    teams: FakeTeamsWebhook, sender: TeamsSender, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = WebhookUrl(teams.url)
    teams.fail_next(429, times=1, retry_after=1)
    with caplog.at_level(logging.DEBUG):
        await sender.post(webhook, card("ok"), receiver="pm")
        teams.fail_next(500, times=1)
        await sender.post(webhook, card("retried"), receiver="pm")
        teams.fail_next(401, times=1)
        await sender.post(webhook, card("refused"), receiver="pm")
        teams.fail_next(503, times=10)
        await sender.post(webhook, card("given up"), receiver="pm")
        logging.getLogger("test").info("receiver %r %s", webhook, webhook)

    assert {"ok", "retried"} <= set(teams.headlines)
    assert any("/workflows/…" in r.getMessage() for r in caplog.records)
    assert_no_secret(caplog, teams.url)


def assert_no_secret(caplog: pytest.LogCaptureFixture, url: str) -> None:
    text = "\n".join(
        r.getMessage()
        + (caplog.handler.formatter or logging.Formatter()).formatException(r.exc_info)
        if r.exc_info
        else r.getMessage()
        for r in caplog.records
    )
    assert SIGNATURE not in text
    assert WORKFLOW_ID not in text
    assert url not in text


def test_redacted_form_keeps_host_and_first_segment_only() -> None:
    url = (
        "https://prod-12.westeurope.logic.azure.com:443/workflows/8f0b7c3a/triggers/manual/"
        "paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=s3cr3t"
    )
    hook = WebhookUrl(url)
    assert redact(url) == "https://prod-12.westeurope.logic.azure.com/workflows/…"
    assert repr(hook) == str(hook) == f"WebhookUrl({redact(url)!r})"
    assert "s3cr3t" not in repr(hook) and "8f0b7c3a" not in f"{hook}"
    assert redact("not a url") == "<unparsable url>"
    assert hook == WebhookUrl(url) and hook != WebhookUrl(url + "x")


def test_webhook_url_from_env_or_file(tmp_path: Path) -> None:
    url = f"https://example.logic.azure.com/workflows/{WORKFLOW_ID}/x?sig={SIGNATURE}"
    from_env = load_webhook("pm", TeamsReceiver(webhook_env="HOOK"), {"HOOK": f" {url}\n"})
    path = tmp_path / "hook"
    path.write_text(url + "\n")
    from_file = load_webhook("pm", TeamsReceiver(webhook_file=str(path)), {})
    assert from_env.reveal() == from_file.reveal() == url


@pytest.mark.parametrize(
    ("receiver", "environ", "expected"),
    [
        (TeamsReceiver(webhook_env="HOOK"), {}, "environment variable HOOK is empty or not set"),
        (TeamsReceiver(webhook_env="HOOK"), {"HOOK": "  "}, "HOOK is empty"),
        (
            TeamsReceiver(webhook_env="HOOK"),
            {"HOOK": f"ftp://x/{SIGNATURE}"},
            "does not hold an http(s) URL",
        ),
        (
            TeamsReceiver(webhook_file="/nonexistent/hook"),
            {},
            "cannot read file /nonexistent/hook",
        ),
    ],
)
def test_unusable_webhook_settings_are_clear_errors_without_the_value(
    receiver: TeamsReceiver, environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(TeamsConfigError) as caught:
        load_webhook("pm", receiver, environ)
    assert expected in str(caught.value)
    assert "'pm'" in str(caught.value)
    assert SIGNATURE not in str(caught.value)


async def test_a_retry_after_past_the_limit_gives_the_card_back_with_it(
    teams: FakeTeamsWebhook, sender: TeamsSender
) -> None:
    """A 429 asking for longer than the retry stage waits in process ends the try at once; the
    answer carries the Retry-After, for the outbox to defer the next try by."""
    teams.fail_next(429, times=1, retry_after=600)

    result = await sender.post(WebhookUrl(teams.url), card("later"), receiver="pm")

    assert not result.ok and not result.fatal and result.attempts == 1
    assert (result.error or "").startswith("http_429") and result.retry_after == 600.0
    assert teams.statuses() == [429] and teams.accepted == []
