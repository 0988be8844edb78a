"""Which of the config's Slack user groups a user is in, for RBAC: read with
usergroups.users.list and cached, so a click does not cost a Web API call per group."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from config.schema import Config

logger = logging.getLogger(__name__)

GROUP_TTL = 300.0
"""Seconds a user group's members are trusted before they are fetched again."""


class GroupResolver:
    """Which of the config's user groups a user is in, from usergroups.users.list, cached for
    `ttl` seconds per group. A group that cannot be read counts as having no members (the
    safe side for RBAC) until it can; the last known members are kept when a refresh fails."""

    def __init__(
        self,
        client: AsyncWebClient,
        groups: Iterable[str],
        *,
        ttl: float = GROUP_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.groups = tuple(dict.fromkeys(groups))
        self.ttl = ttl
        self.clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = asyncio.Lock()

    async def groups_of(self, user: str) -> tuple[str, ...]:
        if not self.groups:
            return ()
        async with self._lock:
            for group in self.groups:
                cached = self._members.get(group)
                if cached is None or self.clock() - cached[0] >= self.ttl:
                    await self._fetch(group, cached)
        return tuple(g for g in self.groups if user in self._members.get(g, (0.0, frozenset()))[1])

    async def _fetch(self, group: str, cached: tuple[float, frozenset[str]] | None) -> None:
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
            users = response.get("users") or []
            members = frozenset(u for u in users if isinstance(u, str))
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("cannot read the members of user group %s: %s", group, _why(exc))
            members = cached[1] if cached else frozenset()
        self._members[group] = (self.clock(), members)


def _why(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    return repr(exc)


def groups_of(config: Config) -> tuple[str, ...]:
    """Every user group the RBAC names: operators, viewers and deployers."""
    rbac = config.rbac
    deployers = [g for grant in rbac.deployers for g in grant.groups]
    return tuple(dict.fromkeys([*rbac.operators.groups, *rbac.viewers.groups, *deployers]))
