"""One handler shape for the signed webhooks (Flux's `generic-hmac` provider at /webhooks/flux,
Teams' outgoing webhook at /webhooks/teams): the body read whole under a cap and a deadline,
the signature checked over exactly those bytes before anything in them is looked at, the JSON
read, then the endpoint's own work. Every answer is counted, as accepted or refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

import orjson
from aiohttp import web

from bot.ops.http import problem, read_capped

Checked = TypeVar("Checked")
"""What the signature check found out about the sender (Flux: the cluster it posts for)."""


class SignedWebhook(ABC, Generic[Checked]):
    """A POST endpoint whose sender signs each body. Subclasses say how a request is checked
    (`check`) and what is done with its JSON (`take`); `accepted_status` is their success."""

    accepted_status: ClassVar[int]

    def __init__(self, *, max_body: int, read_timeout: float | None) -> None:
        self.max_body = max_body
        self.read_timeout = read_timeout
        self.accepted = 0
        self.refused = 0

    async def handle(self, request: web.Request) -> web.Response:
        response = await self._handle(request)
        if response.status == self.accepted_status:
            self.accepted += 1
        else:
            self.refused += 1
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        body = await read_capped(request, self.max_body, self.read_timeout)
        if isinstance(body, web.Response):
            return body
        checked = self.check(request, body)
        if isinstance(checked, web.Response):
            return checked
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return problem(400, f"body is not JSON: {exc}")
        return await self.take(payload, checked)

    @abstractmethod
    def check(self, request: web.Request, body: bytes) -> Checked | web.Response:
        """Who sent `body` and whether its signature holds: the refusal (4xx, logged) or
        what `take` needs to know of the sender."""

    @abstractmethod
    async def take(self, payload: Any, checked: Checked) -> web.Response:
        """The endpoint's work on a signed, well-formed JSON body."""
