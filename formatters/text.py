"""Plain text: what `driftbot demo` and the console receiver print.

The same words as Slack and Teams: what the reader has to do and what happened, on one line a
non-engineer can read ("Needs action · guestbook on prod is unhealthy"), then why, then
indented details for the engineer. No markup: the
only escaping needed is removing control characters, so a commit message cannot move the
terminal's cursor or recolour it.
"""

from __future__ import annotations

from core.model import EventKind, GitOpsEvent
from formatters import details, phrases
from formatters import group_progress as progress
from formatters.escape import truncate
from formatters.group import EventGroup

INDENT = "    "
MAX_MESSAGE = 2000
MAX_RESOURCES = 5
"""Resources named before `and N more`."""
MAX_MEMBERS = 20
"""Members of a group listed before `and N more`."""


def render_text(event: GitOpsEvent) -> str:
    """The severity word and headline, then why, then one indented line per detail (pure)."""
    lines = [phrases.first_line(event)]
    lines += _detail_lines(event)
    return "\n".join(lines)


def render_text_resolved(original: GitOpsEvent, recovery: GitOpsEvent) -> str:
    """A recovery (or a rollback), naming the alert it closes and keeping its reason."""
    lines = [phrases.first_line(recovery, resolves=original)]
    if recovery.kind is not EventKind.ROLLBACK_SUCCEEDED:  # a rollback's sentence names it
        lines.append(_row(phrases.LABEL_EARLIER_ALERT, phrases.headline(original)))
    lines += _detail_lines(recovery, resolves=original)
    return "\n".join(lines)


def render_group_text(group: EventGroup) -> str:
    """`37 apps drifted on prod after revision 1a2b3c4`, then one line per app."""
    if group.count == 1:
        return render_text(group.events[0])
    word = f"{phrases.group_status_word(group)}{phrases.SEPARATOR}"
    if group.cleared:
        lines = [word + progress.cleared_headline(group)]
        lines.append(f"{INDENT}earlier: {phrases.group_headline(group)}")
    else:
        lines = [word + phrases.group_headline(group)]
    breakdown = phrases.group_breakdown(group)
    if breakdown:
        lines.append(INDENT + breakdown)
    counted = progress.progress(group)
    if counted:
        lines.append(INDENT + counted)
    members = group.events[:MAX_MEMBERS]
    done = progress.recovered(group)
    lines += [
        f"{INDENT}- {phrases.member_line(e, group)}{progress.member_state(e, group, done)}"
        for e in members
    ]
    if group.count > len(members):
        lines.append(f"{INDENT}  {phrases.more(group.count - len(members))}")
    return "\n".join(lines)


def _detail_lines(event: GitOpsEvent, *, resolves: GitOpsEvent | None = None) -> list[str]:
    said, sick = details.why(resolves if resolves is not None else event)
    reason = "\n".join(part for part in (truncate(said, MAX_MESSAGE), *sick) if part)
    label = phrases.LABEL_WHY
    if resolves is not None and event.kind is not EventKind.ROLLBACK_SUCCEEDED:
        label = phrases.LABEL_WHAT_WENT_WRONG
    rows = [_row(label, reason)] if reason else []
    rows += [_row(fact.label, fact.value) for fact in details.facts(event, resolves=resolves)]
    rows.append(_row(phrases.LABEL_OBJECT, phrases.object_line(event)))
    names, total = details.resources(event)
    if total:
        shown = names[:MAX_RESOURCES]
        hidden = total - len(shown)
        listed = "\n".join(shown + ([phrases.more(hidden)] if hidden and shown else []))
        rows.append(_row(f"{phrases.LABEL_OUT_OF_SYNC} ({total})", listed))
    text = details.detail_message(event)
    if text:
        rows.append(_row(phrases.LABEL_MESSAGE, truncate(text, MAX_MESSAGE)))
    for label, url in details.links(event):
        name = phrases.LABEL_COMMIT_LINK if label == phrases.BUTTON_COMMIT else phrases.LABEL_LINK
        rows.append(_row(name, url))
    return rows


_LABEL_WIDTH = 20


def _row(label: str, value: str) -> str:
    head = f"{INDENT}{label.lower() + ':':<{_LABEL_WIDTH}}"
    pad = "\n" + " " * len(head)
    return head + pad.join(value.splitlines() or [""])
