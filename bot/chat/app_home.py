"""The App Home tab: the fleet at a glance for everyone who opened it, kept up to date.

Slack shows a user's Home tab as last published for that user (views.publish), so driftbot
publishes it when the user opens the tab and again for every known viewer when the fleet
changes. Changes are debounced: at most one round of publishing per `min_interval`, and
only when what the view shows (per cluster: synced, drifted, failing) differs from what was
last published; a change within the interval is published at the first refresh after it.
Viewers are remembered in memory: after a restart, a user's tab is refreshed when they open it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.commands import Fleet
from core.summary import ClusterSummary, summarize
from formatters import chat

logger = logging.getLogger(__name__)

MAX_VIEWERS = 10_000
"""Viewers remembered for republishing (the oldest are forgotten beyond this)."""


class HomePublisher:
    """Publishes the Home tab; call `opened(user)` on app_home_opened, `refresh()` often."""

    def __init__(
        self,
        client: AsyncWebClient,
        fleet: Fleet,
        may_view: Callable[[str], Awaitable[bool]],
        clock: Callable[[], datetime],
        *,
        command: str = "/gitops",
        min_interval: timedelta = timedelta(seconds=30),
    ) -> None:
        self.client = client
        self.fleet = fleet
        self.may_view = may_view
        self.clock = clock
        self.command = command
        self.min_interval = min_interval
        self.viewers: dict[str, None] = {}
        """Users who opened the tab, oldest first."""
        self.published: tuple[Any, ...] | None = None
        """Fingerprint of the view as last published to every viewer."""
        self.published_at: datetime | None = None
        self.publications = 0

    def _summaries(self) -> list[ClusterSummary]:
        return summarize(self.fleet.states.values())

    async def opened(self, user: str) -> None:
        """`user` opened the Home tab: remember them and show the fleet as it is now."""
        self.viewers.pop(user, None)
        self.viewers[user] = None
        while len(self.viewers) > MAX_VIEWERS:
            self.viewers.pop(next(iter(self.viewers)))
        await self._publish(user, self._summaries(), self.clock())

    async def refresh(self) -> bool:
        """Republish for every viewer if the fleet changed and the interval has passed since
        the last round; True when it did."""
        summaries = self._summaries()
        fingerprint = chat.home_fingerprint(summaries)
        if fingerprint == self.published:
            return False
        now = self.clock()
        if self.published_at is not None and now - self.published_at < self.min_interval:
            return False
        for user in list(self.viewers):
            await self._publish(user, summaries, now)
        self.published, self.published_at = fingerprint, now
        return True

    async def _publish(self, user: str, summaries: list[ClusterSummary], now: datetime) -> None:
        if await self.may_view(user):
            view = chat.home_view(summaries, now, self.command)
        else:
            view = chat.home_denied_view()
        try:
            await self.client.views_publish(user_id=user, view=view)
            self.publications += 1
        except SlackApiError as exc:
            logger.warning(
                "publishing the Home tab of %s failed: %s", user, exc.response.get("error")
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("publishing the Home tab of %s failed: %r", user, exc)

    async def run(self, interval: float, sleep: Callable[[float], Awaitable[None]]) -> None:
        """Refresh every `interval` seconds until cancelled."""
        while True:
            await sleep(interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("refreshing the Home tab failed; trying again")
