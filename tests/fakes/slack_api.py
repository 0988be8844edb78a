"""A fake Slack Web API for tests: the real slack_sdk client talks to it over HTTP on 127.0.0.1.

It answers the methods driftbot calls (chat.postMessage, chat.update, chat.postEphemeral,
views.publish, views.open, auth.test, conversations.info) the way Slack does: HTTP 200 with
`ok: false` and an error code for refused requests, HTTP 429 with `Retry-After` when a channel
(about one message per second, small burst) or the workspace posts too fast, and `invalid_blocks` /
`msg_too_long` for messages over Block Kit's limits. It records every call, and can be told to
fail the next calls with a 500, a hang (client time-out) or a dropped connection. It keeps each
channel as Slack does (edits applied, threads, message metadata) and renders it as a person
reads it (`transcript`).

Its clock is injected: tests pass a `VirtualClock` that they (or the code under test, through
the same clock's `sleep`) move forward, so rate limits are exercised without real waiting.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aiohttp import web

from tests.fakes.channel_view import slack_channel
from tests.fakes.loopback import LoopbackServer

VALID_TOKEN = "xoxb-driftbot-test"
TEAM_ID = "T0DRIFT01"
BOT_USER_ID = "U0DRIFTBOT"
BOT_ID = "B0DRIFTBOT"
_TS_EPOCH = 1_700_000_000

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 40_000
MAX_SECTION_TEXT = 3_000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2_000
MAX_ID = 255
MAX_URL = 3_000
MAX_ALT_TEXT = 2_000


class VirtualClock:
    """Virtual time shared by the fake and the code under test.

    `sleep(d)` lets other tasks run once, then moves the clock to at least "when the sleep
    began + d": concurrent sleepers share the time that passes instead of adding it up.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        target = self.now + max(0.0, seconds)
        self.slept.append(seconds)
        await asyncio.sleep(0)
        self.now = max(self.now, target)


class Fault(Enum):
    SERVER_ERROR = "server_error"
    """HTTP 500 with an HTML body, as Slack's edge sends it."""
    TIMEOUT = "timeout"
    """The request is held until the fake closes: the client's own time-out fires."""
    DROP = "drop"
    """The connection is closed without an answer."""


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    at: float
    status: int = 0
    response: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    fault: Fault | None = None
    peer: Any = None
    """The client's address and port: calls over one kept-alive connection share it."""

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.response is None else self.response.get("error")

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("Retry-After")
        return None if value is None else float(value)


class _Bucket:
    """The fake's own token bucket (deliberately not bot.delivery.rate_limit's: it checks that
    one)."""

    def __init__(self, per_second: float, burst: int, now: float) -> None:
        self.per_second = per_second
        self.burst = burst
        self.tokens = float(burst)
        self.at = now

    def retry_after(self, now: float) -> float:
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
            self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.per_second

    def take(self) -> None:
        self.tokens -= 1


@dataclass
class _PendingFault:
    fault: Fault
    remaining: int
    method: str | None


@dataclass
class FakeSlackApi(LoopbackServer):
    """Start with `async with FakeSlackApi(clock=clock) as slack:`; point clients at `slack.url`."""

    clock: Callable[[], float] = time.monotonic
    tokens: Collection[str] = (VALID_TOKEN,)
    channel_rate: tuple[float, int] = (1.0, 3)
    """chat.postMessage per channel: (messages per second, burst)."""
    workspace_rate: tuple[float, int] = (20.0, 40)
    """chat.postMessage for the whole workspace."""
    update_rate: tuple[float, int] = (50 / 60, 10)
    """chat.update is Tier 3 (about 50 a minute) for the whole workspace."""
    missing_channels: Collection[str] = ()
    """Channel ids that answer channel_not_found."""
    not_member_channels: Collection[str] = ()
    """Channel ids the bot is not in: posting answers not_in_channel."""
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    """User group id -> member user ids, for usergroups.users.list (see the block at the end)."""
    socket_url: str = ""
    """What apps.connections.open answers (a ws:// URL of the test's Socket Mode server)."""

    calls: list[Call] = field(default_factory=list, init=False)
    url: str = field(default="", init=False)
    _faults: list[_PendingFault] = field(default_factory=list, init=False)
    _buckets: dict[str, _Bucket] = field(default_factory=dict, init=False)
    _messages: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, init=False)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1), init=False)
    _release: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _ephemeral: list[dict[str, Any]] = field(default_factory=list, init=False)
    _views: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    opened: list[dict[str, Any]] = field(default_factory=list, init=False)
    """Every modal views.open showed, in order."""
    triggers: set[str] = field(default_factory=set, init=False)
    used: set[str] = field(default_factory=set, init=False)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        self.url = await self.serve(app, "/api/", handle_signals=False, shutdown_timeout=0.1)
        return self.url

    async def close(self) -> None:
        self._release.set()
        await self.stop_serving()

    # -- test controls and inspection -------------------------------------------------------

    def inject(self, fault: Fault, times: int = 1, method: str | None = None) -> None:
        """Fail the next `times` calls (to `method`, or to any method) with `fault`."""
        self._faults.append(_PendingFault(fault, times, method))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    @property
    def rate_limited(self) -> int:
        """How many calls were answered with HTTP 429."""
        return sum(1 for c in self.calls if c.status == 429)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The channel's messages as they stand now (updates applied), oldest first."""
        return list(self._messages.get(channel, {}).values())

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        return self._messages[channel][ts]

    def transcript(self, channel: str) -> str:
        """The channel as a person reads it: top-level messages in order with their final
        text, replies indented under them (see tests/fakes/channel_view.py)."""
        return slack_channel(self.messages(channel))

    def posted_notifications(self, channel: str) -> list[str]:
        """The notification id each message of the channel was posted for (from the message
        metadata driftbot attaches), in the order posted: an id twice is a message twice."""
        return [
            m["metadata"]["event_payload"]["notification"]
            for m in sorted(self.messages(channel), key=lambda m: m["ts"])
            if isinstance(m.get("metadata"), dict)
        ]

    @property
    def ephemeral(self) -> list[dict[str, Any]]:
        return list(self._ephemeral)

    def view(self, user_id: str) -> dict[str, Any] | None:
        return self._views.get(user_id)

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await _read_params(request)
        token = _bearer(request) or _as_str(params.pop("token", None))
        call = Call(method=method, params=params, token=token, at=self.clock())
        if request.transport is not None:
            call.peer = request.transport.get_extra_info("peername")
        self.calls.append(call)

        fault = self._take_fault(method)
        if fault is not None:
            call.fault = fault
            return await self._fail(request, call, fault)

        status, body, headers = self._answer(method, params, token)
        call.status, call.response, call.headers = status, body, headers
        return web.json_response(body, status=status, headers=headers)

    def _take_fault(self, method: str) -> Fault | None:
        for pending in self._faults:
            if pending.remaining > 0 and pending.method in (None, method):
                pending.remaining -= 1
                return pending.fault
        return None

    async def _fail(self, request: web.Request, call: Call, fault: Fault) -> web.StreamResponse:
        if fault is Fault.SERVER_ERROR:
            call.status = 500
            return web.Response(
                status=500,
                text="<html><body><h1>500 Internal Server Error</h1></body></html>",
                content_type="text/html",
            )
        if fault is Fault.TIMEOUT:
            await self._release.wait()
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # the connection is gone: nothing is written

    # -- Slack semantics --------------------------------------------------------------------

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not token:
            return 200, _error("not_authed"), {}
        if token not in self.tokens:
            return 200, _error("invalid_auth"), {}
        handler = _HANDLERS.get(method)
        if handler is None:
            return 404, _error("unknown_method"), {}
        return handler(self, params)

    def _channel_error(self, channel: str | None, posting: bool) -> str | None:
        if not channel or channel in self.missing_channels:
            return "channel_not_found"
        if posting and channel in self.not_member_channels:
            return "not_in_channel"
        return None

    def _limit(self, key: str, rate: tuple[float, int]) -> float:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(rate[0], rate[1], now)
        return bucket.retry_after(now)

    def _ratelimited(self, wait: float, error: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        return 429, _error(error), {"Retry-After": str(max(1, math.ceil(wait)))}

    def _new_ts(self) -> str:
        return f"{_TS_EPOCH + int(self.clock())}.{next(self._seq):06d}"

    def _post_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        channel = _as_str(params.get("channel"))
        if (err := self._channel_error(channel, posting=True)) is not None:
            return 200, _error(err), {}
        assert channel is not None
        # Workspace first: a workspace 429 must not use up the channel's token.
        if (wait := self._limit("workspace:chat.postMessage", self.workspace_rate)) > 0:
            return self._ratelimited(wait, "rate_limited")
        if (wait := self._limit(f"channel:{channel}", self.channel_rate)) > 0:
            return self._ratelimited(wait, "ratelimited")
        self._buckets["workspace:chat.postMessage"].take()
        self._buckets[f"channel:{channel}"].take()
        if (refused := _check_message(params, MAX_MESSAGE_BLOCKS)) is not None:
            return 200, refused, {}
        ts = self._new_ts()
        message = _message_of(params, ts)
        thread_ts = _as_str(params.get("thread_ts"))
        if thread_ts:
            message["thread_ts"] = thread_ts
        metadata = _json_field(params.get("metadata"))
        if isinstance(metadata, dict):
            message["metadata"] = metadata
        self._messages.setdefault(channel, {})[ts] = message
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}, {}

    def _update(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        channel = _as_str(params.get("channel"))
        if (err := self._channel_error(channel, posting=True)) is not None:
            return 200, _error(err), {}
        assert channel is not None
        ts = _as_str(params.get("ts"))
        if not ts or ts not in self._messages.get(channel, {}):
            return 200, _error("message_not_found"), {}
        if (wait := self._limit("workspace:chat.update", self.update_rate)) > 0:
            return self._ratelimited(wait, "ratelimited")
        self._buckets["workspace:chat.update"].take()
        if (refused := _check_message(params, MAX_MESSAGE_BLOCKS)) is not None:
            return 200, refused, {}
        old = self._messages[channel][ts]
        message = _message_of(params, ts)
        if "thread_ts" in old:
            message["thread_ts"] = old["thread_ts"]
        if "metadata" in old:
            message["metadata"] = old["metadata"]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._new_ts()}
        self._messages[channel][ts] = message
        body = {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}
        return 200, {**body, "message": message}, {}

    def _post_ephemeral(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        channel = _as_str(params.get("channel"))
        if (err := self._channel_error(channel, posting=True)) is not None:
            return 200, _error(err), {}
        if not params.get("user"):
            return 200, _error("user_not_found"), {}
        if (refused := _check_message(params, MAX_MESSAGE_BLOCKS)) is not None:
            return 200, refused, {}
        ts = self._new_ts()
        self._ephemeral.append(
            {**_message_of(params, ts), "channel": channel, "user": params["user"]}
        )
        return 200, {"ok": True, "message_ts": ts}, {}

    def _views_publish(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        user_id = _as_str(params.get("user_id"))
        if not user_id:
            return 200, _error("invalid_arguments"), {}
        view = _json_field(params.get("view"))
        if not isinstance(view, dict) or view.get("type") != "home":
            return 200, _error("invalid_arguments"), {}
        blocks = view.get("blocks")
        errors = validate_blocks(blocks, MAX_VIEW_BLOCKS, pointer="/view/blocks")
        if errors:
            return 200, _invalid_blocks(errors), {}
        stored = {**view, "id": f"V{next(self._seq):08d}", "team_id": TEAM_ID}
        self._views[user_id] = stored
        return 200, {"ok": True, "view": stored}, {}

    def issue_trigger(self) -> str:
        """A trigger_id as Slack puts in an interaction: good for one views.open."""
        trigger = f"{next(self._seq)}.{TEAM_ID}.trigger"
        self.triggers.add(trigger)
        return trigger

    def _views_open(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """A modal, opened with a trigger_id used once; the modal is kept in `opened`."""
        trigger = _as_str(params.get("trigger_id"))
        view = _json_field(params.get("view"))
        if not trigger or not isinstance(view, dict):
            return 200, _error("invalid_arguments"), {}
        if trigger not in self.triggers:
            return (
                200,
                _error("invalid_trigger_id" if trigger not in self.used else "expired_trigger_id"),
                {},
            )
        if view.get("type") != "modal":
            return 200, _error("invalid_arguments"), {}
        errors = validate_blocks(view.get("blocks"), MAX_VIEW_BLOCKS, pointer="/view/blocks")
        for field_name in ("title", "submit", "close"):
            if field_name in view or field_name == "title":
                errors += _check_text(
                    view.get(field_name), MAX_VIEW_TITLE, f"/view/{field_name}", True
                )
        errors += _too_long(
            view.get("private_metadata"), MAX_PRIVATE_METADATA, "/view/private_metadata"
        )
        if errors:
            return 200, _invalid_blocks(errors), {}
        self.triggers.discard(trigger)
        self.used.add(trigger)
        stored = {**view, "id": f"V{next(self._seq):08d}", "team_id": TEAM_ID}
        self.opened.append(stored)
        return 200, {"ok": True, "view": stored}, {}

    def _auth_test(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        return (
            200,
            {
                "ok": True,
                "url": "https://driftbot-test.slack.com/",
                "team": "driftbot-test",
                "user": "driftbot",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            },
            {},
        )

    def _conversations_info(
        self, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        channel = _as_str(params.get("channel"))
        if (err := self._channel_error(channel, posting=False)) is not None:
            return 200, _error(err), {}
        assert channel is not None
        return (
            200,
            {
                "ok": True,
                "channel": {
                    "id": channel,
                    "name": channel.lower(),
                    "is_channel": True,
                    "is_private": False,
                    "is_archived": False,
                    "is_member": channel not in self.not_member_channels,
                },
            },
            {},
        )


_Handler = Callable[[FakeSlackApi, dict[str, Any]], tuple[int, dict[str, Any], dict[str, str]]]
_HANDLERS: dict[str, _Handler] = {
    "chat.postMessage": FakeSlackApi._post_message,
    "chat.update": FakeSlackApi._update,
    "chat.postEphemeral": FakeSlackApi._post_ephemeral,
    "views.publish": FakeSlackApi._views_publish,
    "views.open": FakeSlackApi._views_open,
    "auth.test": FakeSlackApi._auth_test,
    "conversations.info": FakeSlackApi._conversations_info,
}


# -- request parsing ------------------------------------------------------------------------


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[len("Bearer ") :] if header.startswith("Bearer ") else None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _json_field(value: Any) -> Any:
    """Form bodies carry blocks and views as JSON strings; JSON bodies carry them as is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _error(code: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": code, **extra}


def _invalid_blocks(errors: list[str]) -> dict[str, Any]:
    return _error("invalid_blocks", errors=errors, response_metadata={"messages": errors})


def _message_of(params: dict[str, Any], ts: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "text": _as_str(params.get("text")) or "",
        "ts": ts,
    }
    blocks = _json_field(params.get("blocks"))
    if blocks:
        message["blocks"] = blocks
    return message


def _check_message(params: dict[str, Any], max_blocks: int) -> dict[str, Any] | None:
    """Slack's refusal for a message body, or None if it would be accepted."""
    text = params.get("text")
    blocks = _json_field(params.get("blocks"))
    if text is not None and not isinstance(text, str):
        return _error("invalid_arguments")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return _error("msg_too_long")
    if blocks is None and not text and not params.get("attachments"):
        return _error("no_text")
    if blocks is not None:
        if not isinstance(blocks, list):
            return _error("invalid_blocks_format")
        errors = validate_blocks(blocks, max_blocks)
        if errors:
            return _invalid_blocks(errors)
    return None


# -- Block Kit limits -----------------------------------------------------------------------


def validate_blocks(blocks: Any, max_blocks: int, pointer: str = "/blocks") -> list[str]:
    """Every Block Kit limit the blocks break, in Slack's message style; [] when valid."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{pointer}]"]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"must be less than {max_blocks + 1} items [json-pointer:{pointer}]")
    for i, block in enumerate(blocks):
        errors.extend(_check_block(block, f"{pointer}/{i}"))
    return errors


def _too_long(value: Any, limit: int, where: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}]"]
    return []


def _check_text(obj: Any, limit: int, where: str, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must be an object [json-pointer:{where}]"]
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        return [f"must be one of {', '.join(kinds)} [json-pointer:{where}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be a non-empty string [json-pointer:{where}/text]"]
    return _too_long(text, limit, f"{where}/text")


def _check_element(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict):
        return [f"must be an object [json-pointer:{where}]"]
    errors = _too_long(element.get("action_id"), MAX_ID, f"{where}/action_id")
    kind = element.get("type")
    if kind == "button":
        errors += _check_text(element.get("text"), MAX_BUTTON_TEXT, f"{where}/text", True)
        errors += _too_long(element.get("value"), MAX_BUTTON_VALUE, f"{where}/value")
        errors += _too_long(element.get("url"), MAX_URL, f"{where}/url")
    elif kind == "image":
        errors += _too_long(element.get("image_url"), MAX_URL, f"{where}/image_url")
        errors += _too_long(element.get("alt_text"), MAX_ALT_TEXT, f"{where}/alt_text")
    elif not isinstance(kind, str):
        errors.append(f"must provide a type [json-pointer:{where}/type]")
    return errors


MAX_INPUT_LABEL = 2000
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000


def _check_input(element: Any, where: str) -> list[str]:
    """An input block's element: a plain-text input or a static select with its options."""
    if not isinstance(element, dict):
        return [f"must be an object [json-pointer:{where}]"]
    errors = _too_long(element.get("action_id"), MAX_ID, f"{where}/action_id")
    kind = element.get("type")
    if kind == "static_select":
        options = element.get("options")
        if not isinstance(options, list) or not options or len(options) > MAX_OPTIONS:
            return [*errors, f"must be 1 to {MAX_OPTIONS} options [json-pointer:{where}/options]"]
        for j, option in enumerate(options):
            at = f"{where}/options/{j}"
            errors += _check_text((option or {}).get("text"), MAX_OPTION_TEXT, f"{at}/text", True)
            errors += _too_long((option or {}).get("value"), MAX_OPTION_VALUE, f"{at}/value")
        initial = element.get("initial_option")
        if initial is not None and initial not in options:
            errors.append(f"must be one of the options [json-pointer:{where}/initial_option]")
    elif kind != "plain_text_input":
        errors.append(f"unsupported element type {kind!r} [json-pointer:{where}/type]")
    return errors


def _check_block(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"must be an object [json-pointer:{where}]"]
    errors = _too_long(block.get("block_id"), MAX_ID, f"{where}/block_id")
    kind = block.get("type")
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and not fields:
            errors.append(f"must provide text or fields [json-pointer:{where}]")
        if text is not None:
            errors += _check_text(text, MAX_SECTION_TEXT, f"{where}/text")
        if fields is not None:
            if not isinstance(fields, list):
                errors.append(f"must be an array [json-pointer:{where}/fields]")
            else:
                if len(fields) > MAX_FIELDS:
                    errors.append(
                        f"must be less than {MAX_FIELDS + 1} items [json-pointer:{where}/fields]"
                    )
                for j, f in enumerate(fields):
                    errors += _check_text(f, MAX_FIELD_TEXT, f"{where}/fields/{j}")
        if "accessory" in block:
            errors += _check_element(block["accessory"], f"{where}/accessory")
    elif kind == "header":
        errors += _check_text(block.get("text"), MAX_HEADER_TEXT, f"{where}/text", True)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(f"must be a non-empty array [json-pointer:{where}/elements]")
        else:
            if len(elements) > MAX_CONTEXT_ELEMENTS:
                errors.append(
                    f"must be less than {MAX_CONTEXT_ELEMENTS + 1} items "
                    f"[json-pointer:{where}/elements]"
                )
            for j, el in enumerate(elements):
                at = f"{where}/elements/{j}"
                if isinstance(el, dict) and el.get("type") == "image":
                    errors += _check_element(el, at)
                else:
                    errors += _check_text(el, MAX_SECTION_TEXT, at)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(f"must be a non-empty array [json-pointer:{where}/elements]")
        else:
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                errors.append(
                    f"must be less than {MAX_ACTIONS_ELEMENTS + 1} items "
                    f"[json-pointer:{where}/elements]"
                )
            for j, el in enumerate(elements):
                errors += _check_element(el, f"{where}/elements/{j}")
    elif kind == "image":
        errors += _check_element(block, where)
    elif kind == "input":
        errors += _check_text(block.get("label"), MAX_INPUT_LABEL, f"{where}/label", True)
        errors += _check_input(block.get("element"), f"{where}/element")
    elif kind in ("divider", "rich_text"):
        pass
    else:
        errors.append(f"unsupported block type {kind!r} [json-pointer:{where}/type]")
    return errors


# -- user groups (RBAC): usergroups.users.list ----------------------------------------------------


def _usergroups_users_list(
    fake: FakeSlackApi, params: dict[str, Any]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The members of a user group, as Slack lists them; no_such_subteam for an unknown id."""
    group = _as_str(params.get("usergroup"))
    if not group or group not in fake.usergroups:
        return 200, _error("no_such_subteam"), {}
    return 200, {"ok": True, "users": list(fake.usergroups[group])}, {}


_HANDLERS["usergroups.users.list"] = _usergroups_users_list


# -- Socket Mode: apps.connections.open -----------------------------------------------------------


def _apps_connections_open(
    fake: FakeSlackApi, params: dict[str, Any]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The WebSocket URL to connect to; Slack wants an app-level token (xapp-) here."""
    if not fake.socket_url:
        return 200, _error("not_allowed_token_type"), {}
    return 200, {"ok": True, "url": fake.socket_url}, {}


_HANDLERS["apps.connections.open"] = _apps_connections_open
