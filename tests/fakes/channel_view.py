"""A channel as a person reads it: the fakes' messages and cards turned into plain text.

Slack: top-level messages in the order they were posted, each with its final text (every
chat.update applied, "(edited)" when it was), its replies indented under it. Block Kit is shown
the way the client draws it: section text and fields, context lines, buttons as [labels];
mrkdwn entities are resolved the way Slack shows them (`<!date^…|fallback>` as its fallback,
`<url|label>` as the label, `<@U1>` as @U1, `&lt;` as `<`); bold and strike marks stay.

Teams: the cards a webhook accepted, in order, each TextBlock on its line, facts as
"title: value", actions as [labels].

Golden transcripts (tests/transcripts/) are these texts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

INDENT = "    "
REPLY = "  ↳ "

_ENTITY = re.compile(r"<([^<>]*)>")


def slack_text(mrkdwn: str) -> str:
    """mrkdwn as the client shows it."""

    def entity(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("!date^"):
            return inner.split("|", 1)[1] if "|" in inner else inner
        if inner.startswith("!subteam^"):
            return "@" + inner[len("!subteam^") :].split("|", 1)[0]
        if inner.startswith("!"):
            return "@" + inner[1:].split("|", 1)[0]
        if inner.startswith("@"):
            return inner.split("|", 1)[0]
        if "|" in inner:
            return inner.split("|", 1)[1]
        return inner

    text = _ENTITY.sub(entity, mrkdwn)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_message_lines(message: dict[str, Any]) -> list[str]:
    """One message's lines: its blocks as drawn, else its text."""
    blocks = message.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return slack_text(str(message.get("text", ""))).split("\n")
    lines: list[str] = []
    for block in blocks:
        lines.extend(_block_lines(block))
    if "edited" in message:
        lines.append("(edited)")
    return lines


def _block_lines(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind in ("section", "header"):
        lines = []
        text = block.get("text")
        if isinstance(text, dict):
            lines.extend(slack_text(str(text.get("text", ""))).split("\n"))
        for field in block.get("fields") or []:
            label, _, value = slack_text(str(field.get("text", ""))).partition("\n")
            lines.append(f"{label.strip('*')}: {value}" if value else label)
        return lines
    if kind == "context":
        texts = [slack_text(str(e.get("text", ""))) for e in block.get("elements") or []]
        return [" · ".join(t for t in texts if t)]
    if kind == "actions":
        labels = [str((e.get("text") or {}).get("text", "")) for e in block.get("elements") or []]
        return [" ".join(f"[{label}]" for label in labels)]
    if kind == "divider":
        return ["---"]
    return [f"({kind} block)"]


def slack_channel(messages: Iterable[dict[str, Any]]) -> str:
    """The channel: top-level messages in order, replies indented under their parent."""
    ordered = sorted(messages, key=lambda m: _ts_key(str(m["ts"])))
    replies: dict[str, list[dict[str, Any]]] = {}
    top: list[dict[str, Any]] = []
    for message in ordered:
        parent = message.get("thread_ts")
        if parent and parent != message["ts"]:
            replies.setdefault(str(parent), []).append(message)
        else:
            top.append(message)
    out: list[str] = []
    for message in top:
        out.append("")
        out.extend(slack_message_lines(message))
        for reply in replies.pop(str(message["ts"]), []):
            lines = slack_message_lines(reply)
            out.append(REPLY + lines[0])
            out.extend(INDENT + line for line in lines[1:])
    for parent, orphans in replies.items():  # replies whose parent is not in the channel
        out.append("")
        out.append(f"(replies to a missing message {parent})")
        for reply in orphans:
            out.extend(REPLY + line for line in slack_message_lines(reply))
    return "\n".join(out).strip("\n") + "\n"


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, seq = ts.partition(".")
    return int(seconds), int(seq or 0)


def teams_cards(cards: Iterable[dict[str, Any]]) -> str:
    """The cards as a Teams channel lists them, oldest first."""
    out: list[str] = []
    for card in cards:
        out.append("")
        out.append("┌ card")
        for element in card.get("body") or []:
            out.extend("│ " + line for line in _element_lines(element))
        labels = [str(a.get("title", "")) for a in card.get("actions") or []]
        if labels:
            out.append("│ " + " ".join(f"[{label}]" for label in labels))
    return "\n".join(out).strip("\n") + "\n"


def _element_lines(element: dict[str, Any]) -> list[str]:
    kind = element.get("type")
    if kind == "TextBlock":
        return str(element.get("text", "")).replace("\r", "\n").split("\n")
    if kind == "FactSet":
        return [f"{f.get('title', '')}: {f.get('value', '')}" for f in element.get("facts") or []]
    if kind in ("Container", "Column"):
        return [line for item in element.get("items") or [] for line in _element_lines(item)]
    if kind == "ColumnSet":
        return [line for col in element.get("columns") or [] for line in _element_lines(col)]
    return [f"({kind})"]
