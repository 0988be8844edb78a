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

import orjson
from aiohttp import web

from bot.chat.commands import Asker, CommandRunner, Usage, parse_command
from bot.ops.http import problem, read_capped
from bot.pipeline.runner import Pipeline
from bot.pipeline.sources import Clock, utc_now
from config.schema import Config
from core.model import AppKey
from formatters import chat
from formatters import chat_phrases as say
from formatters import escape as esc
from formatters.chat import Answer, MuteInfo
from formatters.teams import MAX_PAYLOAD_BYTES, SCHEMA, VERSION, envelope, payload_size

__all__ = [
    "MAX_BODY",
    "TEAMS_VERBS",
    "TEAMS_WEBHOOK_PATH",
    "TeamsInboundError",
    "TeamsQuestions",
    "add_teams_route",
    "card_from_answer",
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
ANSWER_CUT = "…and more than a Teams message can hold; ask about one app or cluster."

EMOJI = {
    "red_circle": "🔴",
    "large_orange_circle": "🟠",
    "large_green_circle": "🟢",
    "white_circle": "⚪",
    "warning": "⚠️",
    "white_check_mark": "✅",
    "bell": "🔔",
    "no_bell": "🔕",
}


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


# --- Block Kit answer -> Adaptive Card (pure) ----------------------------------------------------

_TOKEN = re.compile(
    r"<(?P<link>[^<>\n]*)>"
    r"|`(?P<code>[^`\n]*)`"
    r"|(?<![\w*])\*(?=\S)(?P<bold>[^*\n]*?\S)\*(?![\w*])"
    r"|(?<![\w_])_(?=\S)(?P<italic>[^_\n]*?\S)_(?![\w_])"
    r"|:(?P<emoji>[a-z0-9_+-]+):"
)


def _unslack(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _plain(text: str) -> str:
    """Slack-escaped text as Teams-escaped text."""
    return esc.teams(_unslack(text))


def teams_markdown(mrkdwn: str) -> str:
    """Slack mrkdwn (as formatters.chat writes it) as Teams markdown. Values were escaped for
    Slack only: they are unescaped and escaped again for Teams, so a `[x](y)` from a
    cluster stays text."""
    return "\n\n".join(_line(line) for line in mrkdwn.split("\n"))


def _line(text: str) -> str:
    out: list[str] = []
    last = 0
    for match in _TOKEN.finditer(text):
        out.append(_plain(text[last : match.start()]))
        out.append(_token(match))
        last = match.end()
    out.append(_plain(text[last:]))
    return "".join(out)


def _token(match: re.Match[str]) -> str:
    kind = match.lastgroup
    value = match.group(kind or 0)
    if kind == "bold":
        return f"**{_line(value)}**"
    if kind == "italic":
        return f"_{_line(value)}_"
    if kind == "code":
        return _plain(value)
    if kind == "emoji":
        return EMOJI.get(value, _plain(match.group(0)))
    target, _, label = value.partition("|")
    if target.startswith("!"):
        return _plain(label or target[1:].split("^")[0])
    if target.startswith(("@", "#")):
        return _plain(label or target)
    url = _unslack(target)
    if not re.fullmatch(r"https?://[^\s()]+", url.replace("(", "%28").replace(")", "%29")):
        return _plain(label or target)
    url = url.replace("(", "%28").replace(")", "%29")
    return f"[{_plain(label or target)}]({url})"


def _text_block(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text or "-", "wrap": True, **extra}


def _elements(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    kind = block.get("type")
    if kind == "header":
        text = block.get("text", {}).get("text", "")
        return [_text_block(esc.teams(str(text)), weight="Bolder", size="Medium")]
    if kind == "context":
        parts = [e.get("text", "") for e in block.get("elements", []) if isinstance(e, dict)]
        text = " ".join(teams_markdown(str(p)) for p in parts)
        return [_text_block(text, isSubtle=True, size="Small")]
    if kind != "section":
        return []
    found: list[dict[str, Any]] = []
    text = block.get("text")
    if isinstance(text, dict) and text.get("text"):
        found.append(_text_block(teams_markdown(str(text["text"]))))
    facts = []
    for item in block.get("fields") or []:
        label, _, value = str(item.get("text", "")).partition("\n")
        title = label.strip()
        if len(title) > 2 and title.startswith("*") and title.endswith("*"):
            title = title[1:-1]
        facts.append({"title": _plain(title), "value": teams_markdown(value) or "-"})
    if facts:
        found.append({"type": "FactSet", "facts": facts})
    return found


def card_from_answer(answer: Answer) -> dict[str, Any]:
    """The reply message (envelope and Adaptive Card) for a formatters.chat answer, within
    Teams' size limit: blocks that do not fit are left out, and a last line says so."""
    body: list[dict[str, Any]] = []
    separate = False
    for block in answer.get("blocks") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "divider":
            separate = True
            continue
        for element in _elements(block):
            if separate:
                element["separator"] = True
                separate = False
            body.append(element)
    if not body:
        body.append(_text_block(teams_markdown(str(answer.get("text", "")))))
    message = envelope(_card(body))
    if payload_size(message) <= MAX_PAYLOAD_BYTES:
        return message
    cut = _text_block(esc.teams(ANSWER_CUT), isSubtle=True)
    while len(body) > 1:
        body.pop()
        message = envelope(_card([*body, cut]))
        if payload_size(message) <= MAX_PAYLOAD_BYTES:
            return message
    return envelope(_card([_text_block(esc.fit(str(body[0]["text"]), 2000)), cut]))


def _card(body: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }


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


class TeamsQuestions:
    """The request handler; `pipeline` returns the running pipeline (its states, its store),
    or None before it has started."""

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
        self._key = key
        self._config = config
        self._pipeline = pipeline
        self._clock = clock
        self._max_body = max_body
        self._reply_within = reply_within
        self._read_timeout = config.server.read_timeout.total_seconds()
        self.answered = 0
        self.refused = 0

    def reconfigure(self, config: Config, key: bytes | None) -> None:
        """Take a reloaded config and the token it names (None: the endpoint answers 404)."""
        self._config = config
        self._key = key
        self._read_timeout = config.server.read_timeout.total_seconds()

    async def handle(self, request: web.Request) -> web.Response:
        if self._key is None:
            return problem(404, "no Teams outgoing webhook is configured")
        response = await self._handle(request)
        if response.status == 200:
            self.answered += 1
        else:
            self.refused += 1
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        body = await read_capped(request, self._max_body, self._read_timeout)
        if isinstance(body, web.Response):
            return body
        header = request.headers.get(AUTH_HEADER)
        if self._key is None or not verify(header, body, self._key):
            logger.warning(
                "refused a Teams outgoing webhook call from %s: %s",
                request.remote,
                "no Authorization header" if header is None else "bad HMAC signature",
            )
            return problem(401, "missing or invalid HMAC signature")
        try:
            activity = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return problem(400, f"body is not JSON: {exc}")
        if not isinstance(activity, dict):
            return problem(400, "body is not a JSON object (a Teams activity)")
        if self._pipeline() is None:
            return problem(503, "driftbot is starting; ask again in a moment")
        try:
            async with asyncio.timeout(self._reply_within):
                answer = await self.answer(activity)
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
