"""What every chat answer is built of: the answer's shape (`{"text", "blocks"}`), its limits,
untrusted values escaped for mrkdwn, dates, user mentions, lists that end in "and N more", and
the sentence that says how one app is doing. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from core.model import AppKey, AppState
from core.summary import ClusterSummary, Condition, condition
from formatters import blocks, phrases
from formatters import chat_phrases as say
from formatters import escape as esc

Answer = dict[str, Any]
Block = blocks.Block

MAX_BLOCKS = blocks.MAX_BLOCKS
MAX_SECTION = 2900
"""Section text budget, under Slack's 3,000."""
MAX_FALLBACK = 2000
MAX_LIST = 25
"""Longest list in one section before "and N more"."""
NAME = phrases.MAX_NAME
CLUSTER = phrases.MAX_CLUSTER

ICON_RED = ":red_circle:"
ICON_ORANGE = ":large_orange_circle:"
ICON_GREEN = ":large_green_circle:"


def escaped(text: str, limit: int = NAME) -> str:
    """Untrusted text (a user's input, a cluster's value) for mrkdwn: one line, bounded."""
    return phrases.value(text, limit, esc.slack)


def code(text: str, limit: int = 120) -> str:
    """An untrusted value shown as inline code (backticks cannot close it early)."""
    value = phrases.value(text.replace("`", "'"), limit, esc.slack)
    return f"`{value}`" if value else "``"


def date(moment: datetime) -> str:
    """A date Slack shows in each reader's time zone, with a UTC fallback."""
    return blocks.slack_date(moment, blocks.DATE_SHORT)


_USER_ID = re.compile(r"[UW][A-Z0-9]{2,40}")


def who(user: str) -> str:
    """A Slack user id as a mention; anything else as inert text."""
    if _USER_ID.fullmatch(user):
        return f"<@{user}>"
    return escaped(user, phrases.MAX_ACTOR) or "someone"


def app_label(state: AppState) -> str:
    return escaped(state.name) or phrases.UNNAMED


def header(text: str) -> Block:
    return blocks.header(text)


def section(text: str) -> Block:
    return blocks.section(text, limit=MAX_SECTION)


def context(text: str, block_id: str | None = None) -> Block:
    return blocks.context([text], block_id, MAX_SECTION)


def fit(text: str, limit: int = MAX_SECTION) -> str:
    """Already escaped mrkdwn cut to `limit`, never inside an entity or a `<...>` token."""
    return blocks.fit_mrkdwn(text, limit)


def listing(lines: Sequence[str], limit: int = MAX_SECTION, most: int = MAX_LIST) -> str:
    """Whole lines (already escaped) as long as they fit, then "and N more"."""
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        tail = len(lines) - index - 1
        room = limit - 30 if tail else limit
        if index >= most or size + len(line) + 1 > room:
            kept.append(phrases.more(len(lines) - index))
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


def answer(title: str, sections: Sequence[str], notes: Sequence[str] = ()) -> Answer:
    """A header, a section per text and a context line per note, with the first section as
    the notification's fallback text."""
    built: list[Block] = [header(title)]
    built += [section(s) for s in sections if s][: MAX_BLOCKS - 1 - len(notes)]
    built += [context(c) for c in notes if c]
    first = next((s for s in sections if s), "")
    fallback = f"{esc.one_line(title)}: {first}" if first else esc.one_line(title)
    return {"text": fit(fallback, MAX_FALLBACK), "blocks": built}


def answer_text(text: str) -> Answer:
    """A one-sentence answer (already escaped)."""
    return {"text": fit(text, MAX_FALLBACK), "blocks": [section(text)]}


def app_sentence(state: AppState, since: Mapping[AppKey, datetime]) -> str:
    """How one app is doing, in a sentence, with since when when it is not fine."""
    cond = condition(state)
    text = say.CONDITION_SENTENCES[cond.value].format(app=app_label(state))
    began = since.get(state.key)
    if began is not None and cond is not Condition.OK:
        text += say.SINCE.format(when=date(began))
    return text


def cluster_icon(summary: ClusterSummary) -> str:
    """Red when an app fails or drifted, orange when one is busy or paused, else green."""
    if summary.bad:
        return ICON_RED
    if summary.problems:
        return ICON_ORANGE
    return ICON_GREEN
