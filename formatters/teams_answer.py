"""Chat answers (formatters.chat's Block Kit) as a Teams reply: the message envelope around an
Adaptive Card (1.4), within Teams' 28 KB. Pure.

Slack mrkdwn becomes Teams markdown: values were escaped for Slack only, so they are unescaped
and escaped again for Teams (a `[x](y)` from a cluster stays text); links are kept only when
they are http(s); emoji names become the emoji; headers, sections, fields (as a FactSet) and
context lines each become a TextBlock. Blocks that do not fit are left out, and a last line
says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from formatters import escape as esc
from formatters.chat import Answer
from formatters.teams import MAX_PAYLOAD_BYTES, SCHEMA, VERSION, envelope, payload_size

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
