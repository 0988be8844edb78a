"""The fake Slack of the soak and of the crash trials: the tests' fake Web API plus what a long
run against a real workspace also meets.

On top of `tests.fakes.slack_api.FakeSlackApi` (rate limits with 429 + Retry-After, Block Kit
limits, 500s, dropped connections) it keeps message metadata and answers
`conversations.history` / `conversations.replies` from the channel (what a restart looks through
for a message in flight at a crash), and it can be told to answer the next posts with a 429 and a
given Retry-After, to stall a call for a while and then drop it (a client time-out when the stall
is longer than the client's), or to hold every chat call until released.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.slack_api import Call, FakeSlackApi

__all__ = ["SoakSlack", "notification_of"]


def notification_of(call: Call) -> str:
    """The notification id a post names in its metadata ("" when it names none)."""
    metadata = call.params.get("metadata")
    if not isinstance(metadata, dict):
        return ""
    payload = metadata.get("event_payload")
    return str(payload.get("notification", "")) if isinstance(payload, dict) else ""


@dataclass
class SoakSlack(FakeSlackApi):
    """Start it with `async with SoakSlack() as slack`; point the service at `slack.url`."""

    on_accept: Callable[[Call], None] | None = None
    """Called with every post the fake accepts, before the answer leaves (to kill the caller
    in the worst window: Slack has the message, the sender does not know yet)."""
    held: asyncio.Event | None = None
    """When set to an Event, chat calls wait for it before they are answered."""

    _throttle: list[float] = field(default_factory=list, init=False)
    _stalls: list[float] = field(default_factory=list, init=False)
    faults_served: Counter[str] = field(default_factory=Counter, init=False)

    async def __aenter__(self) -> SoakSlack:
        await self.start()
        return self

    def throttle_next(self, count: int = 1, retry_after: float = 1.0) -> None:
        """Answer the next `count` posts with HTTP 429 and this Retry-After (seconds)."""
        self._throttle.extend([retry_after] * count)

    def stall_next(self, seconds: float, count: int = 1) -> None:
        """Hold the next `count` calls for `seconds`, then close their connection unanswered."""
        self._stalls.extend([seconds] * count)

    def accepted_posts(self) -> list[Call]:
        return [c for c in self.calls if c.method == "chat.postMessage" and c.ok]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.held is not None and request.match_info["method"].startswith("chat."):
            await self.held.wait()
        if self._stalls:
            seconds = self._stalls.pop(0)
            self.faults_served["stall"] += 1
            await asyncio.sleep(seconds)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return await super()._handle(request)

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method in ("conversations.history", "conversations.replies") and token in self.tokens:
            return self._history(method, params)
        if method == "chat.postMessage" and self._throttle:
            self.faults_served["429"] += 1
            wait = self._throttle.pop(0)
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": f"{wait:g}"}
        before = None
        if method == "chat.update":
            before = self._messages.get(str(params.get("channel")), {}).get(str(params.get("ts")))
        status, body, headers = super()._answer(method, params, token)
        metadata = params.get("metadata") or (before or {}).get("metadata")
        if method in ("chat.postMessage", "chat.update") and body.get("ok") and metadata:
            self._messages[body["channel"]][body["ts"]]["metadata"] = metadata
        if method == "chat.postMessage" and body.get("ok") and self.on_accept is not None:
            call = self.calls[-1] if self.calls and self.calls[-1].method == method else None
            if call is not None:
                call.response = body  # known before the answer leaves, for the callback
                self.on_accept(call)
        return status, body, headers

    def _history(
        self, method: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The channel's (or a thread's) latest messages, newest first, metadata included."""
        messages = self.messages(str(params.get("channel")))
        if method == "conversations.replies":
            parent = str(params.get("ts"))
            messages = [m for m in messages if m["ts"] == parent or m.get("thread_ts") == parent]
        else:
            messages = [m for m in messages if "thread_ts" not in m]
        limit = int(params.get("limit") or 100)
        newest_first = sorted(messages, key=lambda m: m["ts"], reverse=True)[:limit]
        return 200, {"ok": True, "messages": newest_first, "has_more": False}, {}
