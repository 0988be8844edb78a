"""A fake Microsoft Teams Workflows webhook: an aiohttp server on 127.0.0.1 that checks what a
Workflows "post a card when a webhook request is received" flow needs.

- the URL's `sig` query parameter must match, else 401 (as Power Automate answers a bad
  signature);
- the body must be JSON (400), at most `max_bytes` (28 KB, else 413);
- `payload="envelope"`: `{"type": "message", "attachments": [one attachment whose contentType
  is application/vnd.microsoft.card.adaptive and whose content is the card]}`;
  `payload="card"`: the bare card;
- the card: `type: AdaptiveCard`, `version` 1.4 or lower, `body` a list (400 otherwise);
- more than `rate` requests in any one-second window: 429 with `Retry-After`;
- accepted: 202 with an empty body, recorded in `accepted`.

Tests can make it answer the next calls with 429 (and a Retry-After) or 500. With
`fail_silently`, an invalid card gets 202 like a real Workflow (whose run then fails out of
sight) and lands in `failed_runs` instead of `accepted`. Its clock is injected, so the rate
check runs on the same virtual time as the code under test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.channel_view import teams_cards
from tests.fakes.loopback import LoopbackServer

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 28_000
MAX_VERSION = (1, 4)
WORKFLOW_ID = "8f0b7c3a2d5e4f6a9b1c0d2e3f4a5b6c"
SIGNATURE = "Zk9xY2t0ZXN0c2lnbmF0dXJlLWRvLW5vdC1sb2c"


@dataclass
class Request:
    at: float
    status: int
    body: bytes
    reason: str = ""
    retry_after: float | None = None


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: float | None


@dataclass
class FakeTeamsWebhook(LoopbackServer):
    """`async with FakeTeamsWebhook(clock=clock) as teams:`; post to `teams.url`."""

    clock: Callable[[], float] = time.monotonic
    payload: Literal["envelope", "card"] = "envelope"
    max_bytes: int = MAX_BYTES
    rate: int | None = 4
    """Requests allowed in any one-second window (None: no limit)."""
    fail_silently: bool = False

    requests: list[Request] = field(default_factory=list, init=False)
    accepted: list[dict[str, Any]] = field(default_factory=list, init=False)
    """The cards accepted (unwrapped from the envelope), in order."""
    failed_runs: list[str] = field(default_factory=list, init=False)
    url: str = field(default="", init=False)
    _faults: list[_Fault] = field(default_factory=list, init=False)

    def transcript(self) -> str:
        """The accepted cards as the channel lists them, oldest first."""
        return teams_cards(self.accepted)

    async def start(self) -> str:
        app = web.Application(client_max_size=4 << 20)
        app.router.add_post("/workflows/{workflow}/triggers/manual/paths/invoke", self._handle)
        # No access log: its lines hold the URL, which tests check never reaches a log.
        path = (
            f"/workflows/{WORKFLOW_ID}/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIGNATURE}"
        )
        self.url = await self.serve(
            app, path, handle_signals=False, shutdown_timeout=0.1, access_log=None
        )
        return self.url

    # -- test controls ----------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next `times` valid requests with `status` (429 carries `retry_after`)."""
        self._faults.append(_Fault(status, times, retry_after))

    def statuses(self) -> list[int]:
        return [r.status for r in self.requests]

    @property
    def headlines(self) -> list[str]:
        """The first TextBlock of each accepted card."""
        return [str(card["body"][0].get("text", "")) for card in self.accepted]

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        now = self.clock()
        body = await request.read()
        status, reason, retry_after = self._answer(request, body, now)
        self.requests.append(Request(now, status, body, reason, retry_after))
        if status == 202:
            return web.Response(status=202)
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        code = {
            400: "InvalidRequestContent",
            401: "DirectApiAuthorizationRequired",
            404: "WorkflowNotFound",
            413: "RequestEntityTooLarge",
            429: "WorkflowTriggerIsThrottled",
            500: "InternalServerError",
        }.get(status, "Error")
        return web.json_response(
            {"error": {"code": code, "message": reason}}, status=status, headers=headers
        )

    def _answer(
        self, request: web.Request, body: bytes, now: float
    ) -> tuple[int, str, float | None]:
        if request.match_info["workflow"] != WORKFLOW_ID:
            return 404, "no such workflow", None
        if request.query.get("sig") != SIGNATURE:
            return 401, "bad or missing signature", None
        if self.rate is not None:
            recent = [r for r in self.requests if r.at > now - 1.0]
            if len(recent) >= self.rate:
                return 429, "more than 4 requests a second", 1.0
        if len(body) > self.max_bytes:
            return 413, f"body of {len(body)} bytes is over {self.max_bytes}", None
        try:
            data = json.loads(body)
        except ValueError:
            return 400, "body is not JSON", None
        for fault in self._faults:
            if fault.remaining > 0:
                fault.remaining -= 1
                return fault.status, "injected", fault.retry_after
        card, problem = self._card_of(data)
        if problem:
            if self.fail_silently:
                self.failed_runs.append(problem)
                return 202, problem, None
            return 400, problem, None
        assert card is not None
        self.accepted.append(card)
        return 202, "", None

    def _card_of(self, data: Any) -> tuple[dict[str, Any] | None, str]:
        if self.payload == "envelope":
            if not isinstance(data, dict) or data.get("type") != "message":
                return None, "expected the message envelope (type: message)"
            attachments = data.get("attachments")
            if not isinstance(attachments, list) or len(attachments) != 1:
                return None, "expected exactly one attachment"
            attachment = attachments[0]
            if not isinstance(attachment, dict) or attachment.get("contentType") != CONTENT_TYPE:
                return None, f"attachment contentType must be {CONTENT_TYPE}"
            data = attachment.get("content")
        problem = check_card(data)
        return (data, "") if not problem else (None, problem)


def check_card(card: Any) -> str:
    """What is wrong with `card` as an Adaptive Card Teams renders, or "" if nothing."""
    if not isinstance(card, dict):
        return "the card is not an object"
    if card.get("type") != "AdaptiveCard":
        return "the card's type is not AdaptiveCard"
    version = card.get("version")
    try:
        major, minor = (int(p) for p in str(version).split("."))
    except ValueError:
        return f"the card's version {version!r} is not major.minor"
    if (major, minor) > MAX_VERSION:
        return f"version {version} is newer than Teams renders (1.4)"
    body = card.get("body")
    if not isinstance(body, list):
        return "the card has no body list"
    for index, element in enumerate(body):
        if not isinstance(element, dict) or not isinstance(element.get("type"), str):
            return f"body[{index}] has no type"
    return ""
