"""Short replies: help, what was not understood, who may not do what, mutes and acks, and the
note a button click adds to an alert. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from formatters import chat_phrases as say
from formatters.chat.parts import (
    MAX_BLOCKS,
    Answer,
    Block,
    answer,
    answer_text,
    code,
    context,
    date,
    escaped,
    listing,
    who,
)

MAX_REASON = 200

BLOCK_NOTE = "driftbot_note"
"""The context block a button click adds to an alert (who acknowledged or muted it)."""


def answer_help(command: str) -> Answer:
    lines = [f"`{command} {usage}`: {meaning}" for usage, meaning in say.HELP_LINES]
    return answer(say.HELP_TITLE, ["\n".join(lines)], [say.HELP_TARGETS])


def answer_usage(command: str, problem: str, verb: str | None = None) -> Answer:
    """`problem` (already escaped) with an example of the verb and a pointer to help."""
    lines = [problem]
    if verb in say.EXAMPLES:
        lines.append(say.USAGE_EXAMPLE.format(command=command, example=say.EXAMPLES[verb]))
    lines.append(say.USAGE_SEE_HELP.format(command=command))
    return answer_text("\n".join(lines))


@dataclass(frozen=True, slots=True)
class MuteInfo:
    """A mute as people see it: what, until when, who set it and why."""

    target: str
    until: datetime
    who: str
    reason: str = ""


def _reason(reason: str) -> str:
    return say.MUTE_REASON.format(reason=escaped(reason, MAX_REASON)) if reason.strip() else ""


def answer_mutes(mutes: Sequence[MuteInfo]) -> Answer:
    if not mutes:
        return answer(say.MUTES_TITLE, [say.MUTES_NONE])
    lines = [
        "• "
        + say.MUTE_LINE.format(
            target=code(m.target), until=date(m.until), who=who(m.who), reason=_reason(m.reason)
        )
        for m in sorted(mutes, key=lambda m: (m.until, m.target))
    ]
    return answer(say.MUTES_TITLE, [listing(lines)])


def answer_muted(mute: MuteInfo) -> Answer:
    return answer_text(
        say.MUTED.format(
            target=code(mute.target), until=date(mute.until), reason=_reason(mute.reason)
        )
    )


def answer_unmuted(target: str, found: bool) -> Answer:
    template = say.UNMUTED if found else say.UNMUTE_NOTHING
    return answer_text(template.format(target=code(target)))


def answer_acked(app: str, count: int) -> Answer:
    if count == 0:
        return answer_text(say.ACK_NOTHING.format(app=code(app)))
    alerts = say.plural(count, "alert", "alerts")
    return answer_text(say.ACKED.format(n=count, alerts=alerts, app=code(app)))


def answer_denied(action: str | None) -> Answer:
    """A polite refusal: to operate when `action` is given, to view at all otherwise."""
    if action is None:
        return answer_text(say.DENIED_VIEW)
    return answer_text(
        say.DENIED_OPERATE.format(action=say.DENIED_ACTIONS.get(action, escaped(action, 40)))
    )


def with_note(blocks: Sequence[Any], note: str, *, drop_actions: Iterable[str] = ()) -> list[Block]:
    """An alert's blocks with `note` (escaped mrkdwn) as its last line, replacing an earlier
    note, and without the buttons named in `drop_actions` (pure)."""
    dropped = set(drop_actions)
    kept: list[Block] = []
    for block in blocks:
        if not isinstance(block, dict) or block.get("block_id") == BLOCK_NOTE:
            continue
        if block.get("type") == "actions" and dropped:
            elements = [
                e
                for e in block.get("elements") or []
                if not (isinstance(e, dict) and e.get("action_id") in dropped)
            ]
            if not elements:
                continue
            block = {**block, "elements": elements}
        kept.append(block)
    return [*kept[: MAX_BLOCKS - 1], context(note, BLOCK_NOTE)]


def note_acked(user: str, now: datetime) -> str:
    return say.NOTE_ACKED.format(who=who(user), when=date(now))


def note_muted(user: str, until: datetime) -> str:
    return say.NOTE_MUTED.format(who=who(user), until=date(until))
