"""POST /webhooks/teams: read-only questions from a Microsoft Teams outgoing webhook.

A team's outgoing webhook sends every message that @mentions it here, signed: the
`Authorization` header is `HMAC <base64 HMAC-SHA256 of the raw body>`, keyed with the
base64-decoded security token Teams showed when the webhook was created (its environment
variable is named by `teams.outgoing_webhook_secret_env`). The signature is checked in
constant time before the body is read as JSON; anything unsigned, badly signed or tampered
with gets 401 and is not looked at.

The text after the mention is a question: `status [target]`, `drift [target]`,
`history APP`, `versions APP` or `help`, parsed and answered by the same code as the Slack
command (bot.chat.commands, formatters.chat), from the pipeline's app states. Teams wants the
reply within 5 seconds, as a message: the Block Kit answer is turned into an Adaptive Card
(1.4) and sent back in the message envelope, cut to Teams' 28 KB. Mute, unmute and ack stay
in Slack, where people are known by their Slack ids and RBAC applies.

Answers: 200 with the reply; 400 malformed JSON; 401 signature missing or wrong; 408 body not
arrived whole within `server.read_timeout`; 413 body over `max_body`; 503 while the pipeline is
not running yet. The body is read whole however many pieces it arrives in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import html
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.chat.commands import Act, Asker, CommandRunner, Usage, parse_command
from bot.ops.http import problem
from bot.ops.webhook import SignedWebhook
from bot.pipeline.runner import Pipeline
from bot.pipeline.sources import Clock, utc_now
from config.schema import Config
from core.model import AppKey
from formatters import actions as act_words
from formatters import chat
from formatters import chat_phrases as say
from formatters import escape as esc
from formatters.chat import Answer, MuteInfo
from formatters.teams_answer import card_from_answer

__all__ = [
    "MAX_BODY",
    "TEAMS_VERBS",
    "TEAMS_WEBHOOK_PATH",
    "TeamsInboundError",
    "TeamsQuestions",
    "add_teams_route",
    "decode_token",
    "question_of",
    "secret_from_env",
    "sign",
    "verify",
]

logger = logging.getLogger(__name__)

TEAMS_WEBHOOK_PATH = "/webhooks/teams"
AUTH_HEADER = "Authorization"
MAX_BODY = 256 * 1024
"""A Teams activity is a few KB; a mention with a long pasted text stays well under this."""
REPLY_WITHIN = 4.0
"""Seconds to find the answer: Teams gives up on the reply after 5."""
TEAMS_VERBS = frozenset({"help", "status", "drift", "history", "versions"})

NAME_FALLBACK = "driftbot"
HELP_TITLE = "What I can tell you here"
HELP_FOOTER = "Mute, unmute and acknowledgements are in Slack."
SLACK_ONLY = (
    "`{verb}` is answered in Slack only; here I answer status, drift, history and versions."
)
TOO_SLOW = "That took too long to answer; please ask again in a moment."


class TeamsInboundError(Exception):
    """The outgoing webhook's token is named but unusable; the message never holds it."""


# --- the signature -------------------------------------------------------------------------------


def decode_token(token: str) -> bytes:
    """The HMAC key: the security token Teams shows, base64-decoded."""
    try:
        key = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise TeamsInboundError("the Teams outgoing webhook token is not base64") from None
    if not key:
        raise TeamsInboundError("the Teams outgoing webhook token is empty")
    return key


def secret_from_env(config: Config, environ: Mapping[str, str]) -> bytes | None:
    """The HMAC key, or None when the config names no variable (no /webhooks/teams). A
    variable that is named but unset, empty or not base64 is an error."""
    name = config.teams.outgoing_webhook_secret_env
    if name is None:
        return None
    value = environ.get(name, "")
    if not value.strip():
        raise TeamsInboundError(
            f"teams.outgoing_webhook_secret_env names {name}, but that environment variable is "
            "not set (it must hold the security token of the Teams outgoing webhook)"
        )
    try:
        return decode_token(value)
    except TeamsInboundError as exc:
        raise TeamsInboundError(f"{name}: {exc}") from None


def sign(body: bytes, key: bytes) -> str:
    """The Authorization header Teams sends with `body`."""
    digest = hmac.new(key, body, hashlib.sha256).digest()
    return "HMAC " + base64.b64encode(digest).decode()


def verify(header: str | None, body: bytes, key: bytes) -> bool:
    """Whether `header` is `HMAC <base64 digest>` of `body` under `key` (constant time)."""
    if not header:
        return False
    scheme, _, given = header.strip().partition(" ")
    if scheme != "HMAC" or not given:
        return False
    return hmac.compare_digest(sign(body, key).encode(), f"HMAC {given.strip()}".encode())


# --- the question --------------------------------------------------------------------------------

_MENTION = re.compile(r"<at\b[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def question_of(activity: Mapping[str, Any]) -> tuple[str, str]:
    """(the text after the bot's mention, the mention's name) of an activity (pure).

    Teams writes the mention as `<at>name</at>` and may add HTML (`&nbsp;`, `<p>`): the
    mentions and tags go, entities are decoded, whitespace is folded."""
    text = activity.get("text")
    if not isinstance(text, str):
        return "", NAME_FALLBACK
    mentions = _MENTION.findall(text)
    name = esc.one_line(_TAG.sub("", mentions[0])) if mentions else ""
    text = _MENTION.sub(" ", text)
    text = html.unescape(_TAG.sub(" ", text))
    return esc.one_line(text), name or NAME_FALLBACK


def _help(name: str) -> Answer:
    lines = [
        f"`@{name} {usage}`: {meaning}"
        for usage, meaning in say.HELP_LINES
        if usage.split()[0] in TEAMS_VERBS
    ]
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": HELP_TITLE}},
        {"type": "section", "text": {"type": "mrkdwn", "text": esc.slack("\n".join(lines))}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": HELP_FOOTER}]},
    ]
    return {"text": HELP_TITLE, "blocks": blocks}


# --- the handler ---------------------------------------------------------------------------------


class _ReadOnly:
    """Controls for a runner that is only asked questions: mute and ack are not reachable."""

    def mutes(self, now: datetime) -> list[MuteInfo]:
        return []

    async def mute(
        self, target: str, until: datetime, reason: str, who: str, now: datetime
    ) -> MuteInfo:
        raise PermissionError("mute is not available from Teams")

    async def unmute(self, target: str, who: str, now: datetime) -> bool:
        raise PermissionError("unmute is not available from Teams")

    async def ack(self, key: AppKey, who: str, now: datetime) -> int:
        raise PermissionError("ack is not available from Teams")


class TeamsQuestions(SignedWebhook[None]):
    """The request handler; `pipeline` returns the running pipeline (its states, its store),
    or None before it has started."""

    accepted_status = 200

    def __init__(
        self,
        key: bytes | None,
        config: Config,
        pipeline: Callable[[], Pipeline | None],
        *,
        clock: Clock = utc_now,
        max_body: int = MAX_BODY,
        reply_within: float = REPLY_WITHIN,
    ) -> None:
        super().__init__(max_body=max_body, read_timeout=config.server.read_timeout.total_seconds())
        self._key = key
        self._config = config
        self._pipeline = pipeline
        self._clock = clock
        self._reply_within = reply_within

    def reconfigure(self, config: Config, key: bytes | None) -> None:
        """Take a reloaded config and the token it names (None: the endpoint answers 404)."""
        self._config = config
        self._key = key
        self.read_timeout = config.server.read_timeout.total_seconds()

    async def handle(self, request: web.Request) -> web.Response:
        if self._key is None:
            return problem(404, "no Teams outgoing webhook is configured")
        return await super().handle(request)

    def check(self, request: web.Request, body: bytes) -> web.Response | None:
        header = request.headers.get(AUTH_HEADER)
        if self._key is None or not verify(header, body, self._key):
            logger.warning(
                "refused a Teams outgoing webhook call from %s: %s",
                request.remote,
                "no Authorization header" if header is None else "bad HMAC signature",
            )
            return problem(401, "missing or invalid HMAC signature")
        return None

    async def take(self, payload: Any, checked: None) -> web.Response:
        if not isinstance(payload, dict):
            return problem(400, "body is not a JSON object (a Teams activity)")
        if self._pipeline() is None:
            return problem(503, "driftbot is starting; ask again in a moment")
        try:
            async with asyncio.timeout(self._reply_within):
                answer = await self.answer(payload)
        except TimeoutError:
            logger.warning("a Teams question took over %.1f s to answer", self._reply_within)
            answer = chat.answer_text(TOO_SLOW)
        return web.json_response(card_from_answer(answer))

    async def answer(self, activity: Mapping[str, Any]) -> Answer:
        """The Block Kit answer to the question in `activity` (never raises)."""
        question, name = question_of(activity)
        parsed = parse_command(question)
        if isinstance(parsed, Usage):
            return chat.answer_usage(f"@{name}", parsed.problem, parsed.about)
        if parsed.verb == "help":
            return _help(name)
        if isinstance(parsed, Act):
            return chat.answer_text(act_words.TEAMS_WHERE.format(verb=parsed.verb))
        if parsed.verb not in TEAMS_VERBS:
            return chat.answer_text(SLACK_ONLY.format(verb=parsed.verb))
        pipeline = self._pipeline()
        if pipeline is None:
            return chat.answer_text(TOO_SLOW)
        runner = CommandRunner(
            self._config,
            pipeline,
            pipeline.store,
            _ReadOnly(),
            self._clock,
            command=f"@{name}",
        )
        try:
            return await runner.execute(parsed, _asker(activity), self._clock())
        except Exception:
            logger.exception("answering a Teams question failed")
            return chat.answer_text(say.FAILED)


def _asker(activity: Mapping[str, Any]) -> Asker:
    sender = activity.get("from")
    user = ""
    if isinstance(sender, dict):
        user = str(sender.get("aadObjectId") or sender.get("id") or "")
    conversation = activity.get("conversation")
    channel = str(conversation.get("id", "")) if isinstance(conversation, dict) else ""
    return Asker(user=user, channel=channel)


def add_teams_route(
    app: web.Application,
    key: bytes | None,
    config: Config,
    pipeline: Callable[[], Pipeline | None],
    *,
    clock: Clock = utc_now,
    max_body: int = MAX_BODY,
) -> TeamsQuestions:
    """Serve POST /webhooks/teams on `app` (404 while `key` is None, until a reload names a
    token); returns the handler (its counters are metrics).
    `pipeline` is called per request, so it may return a pipeline started after the route
    was added (the service in the app's cleanup context); until then it returns None and
    calls get 503."""
    handler = TeamsQuestions(key, config, pipeline, clock=clock, max_body=max_body)
    app.router.add_post(TEAMS_WEBHOOK_PATH, handler.handle)
    return handler
