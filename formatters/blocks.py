"""Slack Block Kit pieces shared by alerts (formatters.slack) and chat answers
(formatters.chat): Block Kit's limits, mrkdwn cut without breaking an entity or a `<...>`
token, dates each reader sees in their own time zone, and the blocks built from them. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from formatters import escape as esc
from formatters import phrases

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_HEADER = 150

DATE_AT = "{date_short_pretty} at {time}"
"""How an alert dates what happened: "Yesterday at 10:42"."""
DATE_SHORT = "{date_short_pretty} {time}"
"""How a chat answer dates things, where dates stand in lists: "Yesterday 10:42"."""

_PARTIAL = re.compile(r"(&[a-z]{0,3}|<[^>]*)$")


def fit_mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> str:
    """Already escaped mrkdwn cut to `limit`, never inside an entity or a `<...>` token."""
    if len(text) <= limit:
        return text
    return _PARTIAL.sub("", text[: limit - 1]) + esc.ELLIPSIS


def slack_date(moment: datetime, shape: str = DATE_AT) -> str:
    """A date Slack shows in each reader's own time zone (`shape` in Slack's date tokens),
    with a UTC fallback."""
    fallback = phrases.time_utc(moment)
    try:
        epoch = int(moment.timestamp())
    except (OverflowError, OSError, ValueError):
        return fallback
    return f"<!date^{epoch}^{shape}|{fallback}>"


def header(text: str) -> Block:
    plain = esc.truncate(esc.one_line(text), MAX_HEADER) or "driftbot"
    return {"type": "header", "text": {"type": "plain_text", "text": plain}}


def section(text: str, block_id: str | None = None, limit: int = MAX_SECTION_TEXT) -> Block:
    """A mrkdwn section (`text` already escaped), cut to `limit`."""
    block: Block = {"type": "section"}
    if block_id:
        block["block_id"] = block_id
    block["text"] = {"type": "mrkdwn", "text": fit_mrkdwn(text, limit) or "-"}
    return block


def field(label: str, value: str, limit: int = MAX_FIELD_TEXT) -> Block:
    """One of a section's fields: the label in bold over the value (already escaped)."""
    return {"type": "mrkdwn", "text": fit_mrkdwn(f"*{label}*\n{value or '-'}", limit)}


def context(
    texts: Sequence[str], block_id: str | None = None, limit: int = MAX_SECTION_TEXT
) -> Block:
    """A context block, one mrkdwn element per text (already escaped)."""
    elements = [{"type": "mrkdwn", "text": fit_mrkdwn(t, limit) or "-"} for t in texts]
    block: Block = {"type": "context"}
    if block_id:
        block["block_id"] = block_id
    block["elements"] = elements[:MAX_CONTEXT_ELEMENTS]
    return block
