"""Acting through Argo CD's API server, where the config names one for the cluster
(`argocd_api`, with its token from the environment variable `token_env`, a mounted Secret).

The calls are those of the argocd CLI (ApplicationService through grpc-gateway):
`POST /api/v1/applications/{name}/sync` (`revision`, and the Slack user in `infos`),
`POST /api/v1/applications/{name}/rollback` (`id`), `GET /api/v1/applications/{name}?refresh=hard`,
`DELETE /api/v1/applications/{name}/operation`, each with `appNamespace`. Argo CD checks its
own RBAC for the token's account and refuses what it refuses (a rollback while auto-sync is
on: FailedPrecondition); its message is passed on as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.actions.errors import ActionError
from core.actions import Plan, Started, Verb

logger = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=30)


class ArgoCDApiActions:
    """Acts on the Applications one Argo CD API server manages."""

    def __init__(
        self,
        url: str,
        token: str,
        clock: Callable[[], datetime],
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.clock = clock
        self._session = session
        self._own = session is None

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    async def act(self, plan: Plan, user: str) -> Started:
        request = plan.request
        key = request.key
        at = self.clock()
        path = f"/api/v1/applications/{quote(key.name, safe='')}"
        query = {"appNamespace": key.namespace}
        if request.verb is Verb.SYNC:
            body: dict[str, Any] = {
                "name": key.name,
                "appNamespace": key.namespace,
                "prune": False,
                "infos": [{"name": "Requested in Slack by", "value": user}],
            }
            if request.revision:
                body["revision"] = request.revision
            await self._call("POST", path + "/sync", body=body)
        elif request.verb is Verb.ROLLBACK:
            body = {
                "name": key.name,
                "appNamespace": key.namespace,
                "id": int(request.history_id),
                "prune": False,
            }
            await self._call("POST", path + "/rollback", body=body)
        elif request.verb is Verb.REFRESH:
            await self._call("GET", path, query={**query, "refresh": "hard"})
        elif request.verb is Verb.TERMINATE:
            await self._call("DELETE", path + "/operation", query=query)
        else:
            raise ActionError(f"{request.verb} is not an Argo CD action")
        return Started(at, "")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with self._session.request(
                method, self.url + path, json=body, params=query, headers=headers
            ) as response:
                if response.status < 300:
                    return
                message = await _message(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ActionError(f"Argo CD's API server could not be reached: {exc!r}") from None
        if response.status in (401, 403):
            message = f"Argo CD refused driftbot's token ({response.status}): {message}"
        raise ActionError(message, response.status)


async def _message(response: aiohttp.ClientResponse) -> str:
    try:
        data = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return f"HTTP {response.status}"
    if isinstance(data, dict):
        text = data.get("message") or data.get("error")
        if isinstance(text, str) and text:
            return text[:500]
    return f"HTTP {response.status}"
