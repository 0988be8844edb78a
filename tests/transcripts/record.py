"""Replay a story to the fake Slack and the fake Teams webhook and read the channels back."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app.replay import SlackOptions, replay_stream
from bot.delivery.teams_receiver import TeamsOptions
from config.schema import Config
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi, VirtualClock
from tests.fakes.teams_webhook import FakeTeamsWebhook
from tests.transcripts.stories import PUBLIC_URLS, STORIES

GOLDEN = Path(__file__).parent / "golden"
CHANNEL = "C0SHOP"
ONCALL = "S0SREONCALL"
EPOCH = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def routes(slack_url: str, public_url: str | None = None) -> Config:
    """Routing as people write it: critical events to the team with a mention, going on to a
    default route that sends everything to the same channel and webhook. With `public_url`,
    alerts link to the status page under it."""
    return Config.model_validate(
        {
            "receivers": [
                {"name": "shop", "slack": {"channel": CHANNEL}},
                {"name": "shop-teams", "teams": {"webhook_env": "TEAMS_SHOP"}},
            ],
            "routes": [
                {
                    "match": {"min_severity": "critical"},
                    "receivers": ["shop", "shop-teams"],
                    "mention": [ONCALL],
                    "continue": True,
                },
                {"receivers": ["shop", "shop-teams"]},
            ],
            "slack": {"api_url": slack_url},
            "server": {"public_url": public_url},
        }
    )


async def record(story: str) -> str:
    """The transcript of `story`: the Slack channel, then the Teams cards."""
    clock = VirtualClock()

    def now() -> datetime:
        return EPOCH + timedelta(seconds=clock())

    async with FakeSlackApi(clock=clock) as slack, FakeTeamsWebhook(clock=clock) as teams:
        with tempfile.TemporaryDirectory() as tmp:
            await replay_stream(
                STORIES[story](),
                f"{story}.jsonl",
                routes(slack.url, PUBLIC_URLS.get(story)),
                Path(tmp) / "state.sqlite",
                None,
                environ={"SLACK_BOT_TOKEN": VALID_TOKEN, "TEAMS_SHOP": teams.url},
                slack=SlackOptions(
                    clock=now, monotonic=clock, sleep=clock.sleep, close_timeout=None
                ),
                teams=TeamsOptions(
                    clock=now, monotonic=clock, sleep=clock.sleep, close_timeout=None
                ),
            )
        return (
            f"# {story}: Slack channel {CHANNEL}\n\n{slack.transcript(CHANNEL)}"
            f"\n# {story}: Teams, the cards in order\n\n{teams.transcript()}"
        )


def golden_path(story: str) -> Path:
    return GOLDEN / f"{story}.txt"


def update(stories: list[str] | None = None) -> list[Path]:
    """Rewrite the golden transcripts (all, or those named); the paths written."""
    written = []
    for story in stories or list(STORIES):
        path = golden_path(story)
        path.write_text(asyncio.run(record(story)), encoding="utf-8")
        written.append(path)
    return written
