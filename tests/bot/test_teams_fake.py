"""The fake Workflows webhook refuses what Teams refuses, so the delivery tests mean something."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from core.model import EventKind
from formatters.teams import envelope, render_teams
from tests.fakes.slack_api import VirtualClock
from tests.fakes.teams_webhook import SIGNATURE, FakeTeamsWebhook, check_card
from tests.formatters.builders import event

CARD: dict[str, Any] = {
    "type": "AdaptiveCard",
    "version": "1.4",
    "body": [{"type": "TextBlock", "text": "hello", "wrap": True}],
}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=100.0)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, payload: Any) -> int:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    async with http.post(url, data=body) as response:
        return response.status


@pytest.mark.parametrize(
    ("card", "problem"),
    [
        (CARD, ""),
        ({**CARD, "version": "1.3"}, ""),
        ({**CARD, "version": "1.5"}, "newer than Teams renders"),
        ({**CARD, "version": "one"}, "not major.minor"),
        ({**CARD, "type": "HeroCard"}, "not AdaptiveCard"),
        ({**CARD, "body": "text"}, "no body list"),
        ({**CARD, "body": [{"text": "no type"}]}, "body[0] has no type"),
        ([CARD], "not an object"),
    ],
)
def test_card_check(card: Any, problem: str) -> None:
    found = check_card(card)
    assert (problem in found and found) if problem else found == ""


async def test_envelope_receiver_takes_the_envelope_only(
    http: aiohttp.ClientSession, clock: VirtualClock
) -> None:
    async with FakeTeamsWebhook(clock=clock) as teams:
        assert await post(http, teams.url, envelope(CARD)) == 202
        assert await post(http, teams.url, CARD) == 400
        two = {**envelope(CARD), "attachments": envelope(CARD)["attachments"] * 2}
        clock.advance(1)
        assert await post(http, teams.url, two) == 400
        hero = envelope(CARD)
        hero["attachments"][0]["contentType"] = "application/vnd.microsoft.card.hero"
        assert await post(http, teams.url, hero) == 400
        assert await post(http, teams.url, b"{oops") == 400
    assert teams.accepted == [CARD]


async def test_card_receiver_takes_the_bare_card(
    http: aiohttp.ClientSession, clock: VirtualClock
) -> None:
    async with FakeTeamsWebhook(clock=clock, payload="card") as teams:
        assert (
            await post(http, teams.url, render_teams(event(EventKind.DRIFT_DETECTED), "card"))
            == 202
        )
        assert await post(http, teams.url, envelope(CARD)) == 400
    assert len(teams.accepted) == 1


async def test_size_signature_rate_and_injected_faults(
    http: aiohttp.ClientSession, clock: VirtualClock
) -> None:
    async with FakeTeamsWebhook(clock=clock) as teams:
        big = envelope({**CARD, "body": [{"type": "TextBlock", "text": "x" * 28_000}]})
        assert await post(http, teams.url, big) == 413
        assert await post(http, teams.url.replace(SIGNATURE, "forged"), envelope(CARD)) == 401
        clock.advance(1)
        assert [await post(http, teams.url, envelope(CARD)) for _ in range(5)] == [202] * 4 + [429]
        assert teams.requests[-1].retry_after == 1.0
        clock.advance(1)
        teams.fail_next(429, times=1, retry_after=5)
        teams.fail_next(500, times=1)
        assert await post(http, teams.url, envelope(CARD)) == 429
        assert teams.requests[-1].retry_after == 5
        assert await post(http, teams.url, envelope(CARD)) == 500
        assert await post(http, teams.url, envelope(CARD)) == 202


async def test_fail_silently_answers_202_like_a_workflow_whose_run_fails(
    http: aiohttp.ClientSession, clock: VirtualClock
) -> None:
    async with FakeTeamsWebhook(clock=clock, fail_silently=True) as teams:
        assert await post(http, teams.url, {**CARD, "version": "1.6"}) == 202
    assert teams.accepted == []
    assert teams.failed_runs == ["expected the message envelope (type: message)"]
