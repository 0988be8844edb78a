"""Slack Block Kit messages for events, storms and resolutions.

A message opens with what the reader has to do and what happened, in plain words ("Needs
action · guestbook on prod is unhealthy"), and for a problem why, quoted; the on-call details
follow (where, revision, who, when: every time in the reader's own time zone), then the
object that reported it, then buttons: open in Argo CD or a Flux UI, view the commit,
acknowledge, mute. Every string from a cluster or Git is escaped
(`&`, `<`, `>`), so only driftbot's own mentions, dates and links are live.

Whatever the input, the result respects every Block Kit limit: lists end in "and N more", long
texts are cut, and when the whole message would still be too big the longer parts are cut
further until it fits (`MAX_MESSAGE_CHARS`, measured as the serialized JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from core.model import EventKind, GitOpsEvent, Severity, Tool
from formatters import details, phrases
from formatters import escape as esc
from formatters import group_progress as progress
from formatters.alert_actions import act_buttons
from formatters.blocks import (
    MAX_BLOCKS,
    MAX_FIELDS,
    MAX_SECTION_TEXT,
    Block,
    context,
    field,
    fit_mrkdwn,
    section,
    slack_date,
)
from formatters.budget import Budget, fit
from formatters.group import EventGroup
from formatters.slack_actions import (
    ACTION_ACK,
    ACTION_OPEN,
    ACTION_OPEN_COMMIT,
    ACTION_OPEN_PAGE,
    action_value,
    group_action_value,
    mute_action_id,
)

Message = dict[str, Any]

MAX_BUTTON_TEXT = 75
MAX_ID = 255
MAX_MESSAGE_CHARS = 12000
"""Bound on the serialized message (JSON, as sent): Slack's own ceiling is near 13k."""
MAX_MENTIONS = 20
MAX_FALLBACK = 3000
"""The `text` fallback only has to carry the mentions and headline into notifications."""

ICON_CRITICAL = ":red_circle:"
ICON_WARNING = ":large_orange_circle:"
ICON_INFO = ":large_blue_circle:"
ICON_GOOD = ":large_green_circle:"

BLOCK_HEADLINE = "driftbot_headline"
BLOCK_FACTS = "driftbot_facts"
BLOCK_RESOURCES = "driftbot_resources"
BLOCK_MESSAGE = "driftbot_message"
BLOCK_MEMBERS = "driftbot_members"
BLOCK_CONTEXT = "driftbot_context"
BLOCK_ACTIONS = "driftbot_actions"


_BUDGETS = (
    Budget(fact=600, resources=2900, message=2900),
    Budget(fact=300, resources=1500, message=1500),
    Budget(fact=120, resources=500, message=500),
    Budget(fact=60, resources=200, message=0),
)
"""Tried in order until the message fits MAX_MESSAGE_CHARS (escaped characters); the last
one always fits."""


def render_slack(
    event: GitOpsEvent,
    mention: Sequence[str] = (),
    *,
    mention_severity: Severity = Severity.CRITICAL,
    actions: bool = False,
    public_url: str = "",
) -> Message:
    """`{"text", "blocks"}` for `event` (pure). `actions`: add the button of the action that
    fits the alert (formatters/alert_actions.py).

    `mention` (user ids, group ids, "@here", "@channel") is used when the event is at least
    `mention_severity`; unrecognised entries are shown as inert text. With `public_url`
    (driftbot's public address), a button opens the app's status page.
    """
    tokens = mention_tokens(mention) if event.severity.rank >= mention_severity.rank else []
    word = phrases.status_word(event)
    sentence = phrases.headline(event, esc.slack)
    return _fit(
        lambda budget: _event_message(
            event,
            headline_line=f"{_icon(event)} *{word}{phrases.SEPARATOR}{sentence}*",
            fallback=f"{word}{phrases.SEPARATOR}{sentence}",
            tokens=tokens,
            budget=budget,
            resolves=None,
            buttons=_buttons(event, ack=phrases.is_problem(event), mute=True, page=public_url)
            + (act_buttons(event) if actions else []),
        )
    )


def render_slack_resolved(
    original: GitOpsEvent, recovery: GitOpsEvent, *, public_url: str = ""
) -> Message:
    """The in-place update of `original`'s message once `recovery` closed it (pure).

    "Resolved · checkout on prod matches Git again (after 14 min)", the original headline
    struck through and its reason still quoted, no ack/mute. A rollback is not "Resolved": it
    says the release failed and was rolled back, in the rollback's colour.
    """
    word = phrases.status_word(recovery, resolves=original)
    sentence = phrases.resolved_headline(original, recovery, esc.slack)
    head = f"{_icon(recovery, resolves=original)} *{word}{phrases.SEPARATOR}{sentence}*"
    if recovery.kind is not EventKind.ROLLBACK_SUCCEEDED:
        head += f"\n~{phrases.headline(original, esc.slack)}~"
    return _fit(
        lambda budget: _event_message(
            recovery,
            headline_line=head,
            fallback=f"{word}{phrases.SEPARATOR}{sentence}",
            tokens=[],
            budget=budget,
            resolves=original,
            buttons=_buttons(recovery, ack=False, mute=False, page=public_url),
        )
    )


def render_slack_recovery_reply(original: GitOpsEvent, recovery: GitOpsEvent) -> Message:
    """The one reply a recovery adds in its alert's thread, under the alert it edited (pure):
    the headline and when, nothing more; every fact is in the edited alert above it."""
    word = phrases.status_word(recovery, resolves=original)
    sentence = phrases.resolved_headline(original, recovery, esc.slack)
    said = f"{word}{phrases.SEPARATOR}{sentence}"
    icon = _icon(recovery, resolves=original)
    return _short_reply(icon, said, recovery.tool, recovery.occurred_at)


def render_slack_group(
    group: EventGroup,
    mention: Sequence[str] = (),
    *,
    mention_severity: Severity = Severity.CRITICAL,
    public_url: str = "",
) -> Message:
    """One message for a storm: the count and what they share, how many have recovered, then
    one line per app, and Acknowledge and Mute acting on every member (pure). Once every
    problem has recovered: green, "All 8 apps match Git again on prod after 7 min", the
    original headline struck through, no buttons but the status page's. With `public_url`,
    a button opens the status page of the environment (of every environment when the apps
    run in several)."""
    headline = phrases.group_headline(group, esc.slack)
    word = phrases.group_status_word(group)
    page = _page_buttons(details.group_page(group.cluster, public_url) if public_url else "")
    if group.cleared:
        cleared = f"{word}{phrases.SEPARATOR}{progress.cleared_headline(group, esc.slack)}"
        line = f"{ICON_GOOD} *{cleared}*\n~{headline}~"
        return _fit(lambda budget: _group_message(group, line, cleared, [], budget, page))
    tokens = mention_tokens(mention) if group.severity.rank >= mention_severity.rank else []
    said = f"{word}{phrases.SEPARATOR}{headline}"
    line = f"{_group_icon(group)} *{said}*"
    buttons = page + (_group_buttons(group) if group.problem_count else [])
    return _fit(lambda budget: _group_message(group, line, said, tokens, budget, buttons))


def render_slack_cleared(group: EventGroup) -> Message:
    """The one reply in a storm's thread that says it is over (pure)."""
    cleared = (
        f"{phrases.WORD_RESOLVED}{phrases.SEPARATOR}{progress.cleared_headline(group, esc.slack)}"
    )
    return _short_reply(ICON_GOOD, cleared, group.tool, _last_recovery(group))


def _short_reply(icon: str, said: str, tool: Tool | None, when: datetime) -> Message:
    """A thread reply that says only what happened and when."""
    blocks = [
        section(f"{icon} *{said}*", BLOCK_HEADLINE),
        context([f"{phrases.tool_name(tool)} · {slack_date(when)}"], BLOCK_CONTEXT),
    ]
    return {"text": fit_mrkdwn(said, MAX_FALLBACK), "blocks": blocks}


def mention_tokens(mention: Iterable[str]) -> list[str]:
    """Slack mention syntax for each entry: `U…`/`W…` users, `S…` groups, @here, @channel.

    Anything else is kept as escaped text, so a typo in a config file cannot ping anyone.
    """
    tokens: list[str] = []
    for entry in list(mention)[:MAX_MENTIONS]:
        token = _mention_token(entry)
        if token and token not in tokens:
            tokens.append(token)
    return tokens


_SPECIAL_MENTIONS = {"here": "<!here>", "channel": "<!channel>", "everyone": "<!everyone>"}
_USER_ID = re.compile(r"<?@?(?P<id>[UW](?=[A-Z]*[0-9])[A-Z0-9]{2,40})(\|[^>]*)?>?")
_GROUP_ID = re.compile(r"<?!?(subteam\^)?(?P<id>S(?=[A-Z]*[0-9])[A-Z0-9]{2,40})(\|[^>]*)?>?")


def _mention_token(entry: str) -> str:
    text = esc.one_line(entry)
    bare = text.strip("<>").lstrip("@!").lower()
    if bare in _SPECIAL_MENTIONS:
        return _SPECIAL_MENTIONS[bare]
    match = _USER_ID.fullmatch(text)
    if match:
        return f"<@{match['id']}>"
    match = _GROUP_ID.fullmatch(text)
    if match:
        return f"<!subteam^{match['id']}>"
    return esc.fit(text, 40, esc.slack)


def message_size(message: Message) -> int:
    """Characters of `message` as sent (compact JSON, UTF-8 kept as is)."""
    return len(json.dumps(message, ensure_ascii=False, separators=(",", ":")))


def _fit(build: Callable[[Budget], Message]) -> Message:
    return fit(_BUDGETS, build, lambda m: message_size(m) <= MAX_MESSAGE_CHARS, _minimal)


def _minimal(message: Message) -> Message:
    """The headline alone: for inputs so hostile that nothing else fits."""
    head = message["blocks"][0]["text"]["text"]
    return {
        "text": fit_mrkdwn(message["text"], MAX_FALLBACK),
        "blocks": [section(fit_mrkdwn(head, MAX_FALLBACK), BLOCK_HEADLINE)],
    }


def _event_message(
    event: GitOpsEvent,
    *,
    headline_line: str,
    fallback: str,
    tokens: list[str],
    budget: Budget,
    resolves: GitOpsEvent | None,
    buttons: list[Block],
) -> Message:
    mentions = " ".join(tokens)
    head = f"{mentions}\n{headline_line}" if mentions else headline_line
    reason = _why(resolves if resolves is not None else event, budget.message)
    if reason:
        head += "\n" + reason
    blocks = [section(head, BLOCK_HEADLINE, MAX_SECTION_TEXT)]
    fields = [_factfield(fact, budget.fact) for fact in details.facts(event, resolves=resolves)]
    if fields:
        blocks.append({"type": "section", "block_id": BLOCK_FACTS, "fields": fields[:MAX_FIELDS]})
    resources = _resources_text(event, budget.resources)
    if resources:
        blocks.append(section(resources, BLOCK_RESOURCES, MAX_SECTION_TEXT))
    quoted = _quote(details.detail_message(event), budget.message)
    if quoted:
        title = f"*{phrases.LABEL_MESSAGE}*\n"
        blocks.append(section(title + quoted, BLOCK_MESSAGE, MAX_SECTION_TEXT))
    about = esc.fit(phrases.object_line(event), budget.fact, esc.slack)
    blocks.append(context([about], BLOCK_CONTEXT))
    if buttons:
        blocks.append({"type": "actions", "block_id": BLOCK_ACTIONS, "elements": buttons})
    text = f"{mentions} {fallback}" if mentions else fallback
    return {"text": fit_mrkdwn(text, MAX_FALLBACK), "blocks": blocks[:MAX_BLOCKS]}


def _why(event: GitOpsEvent, limit: int) -> str:
    """Why a problem was raised, quoted under the headline: its message and the unhealthy
    resources. Kept in the edit that resolves it, so the failure stays readable."""
    said, sick = details.why(event)
    text = "\n".join(part for part in (said, *sick) if part)
    return _quote(text, max(limit, 200))


def _factfield(fact: details.Fact, limit: int) -> Block:
    if fact.at is not None:
        return field(fact.label, slack_date(fact.at))
    value = esc.fit(fact.value, limit, esc.slack)
    url = details.link(fact.url)
    if url:
        value = f"<{esc.slack(url)}|{value}>"
    return field(fact.label, value)


def _group_message(
    group: EventGroup,
    headline_line: str,
    fallback: str,
    tokens: list[str],
    budget: Budget,
    buttons: list[Block],
) -> Message:
    mentions = " ".join(tokens)
    head = headline_line
    breakdown = phrases.group_breakdown(group)
    if breakdown:
        head += f"\n{breakdown}"
    counted = progress.progress(group)
    if counted:
        head += f"\n*{counted}*"
    if mentions:
        head = f"{mentions}\n{head}"
    blocks = [section(head, BLOCK_HEADLINE, MAX_SECTION_TEXT)]
    members = _members_text(group, max(budget.resources, 500))
    if members:
        blocks.append(section(members, BLOCK_MEMBERS, MAX_SECTION_TEXT))
    about = [phrases.tool_name(group.tool), slack_date(group.events[0].occurred_at)]
    revision = esc.one_line(group.revision)
    if revision:
        about.insert(1, esc.fit(revision, budget.fact, esc.slack))
    blocks.append(context([" · ".join(about)], BLOCK_CONTEXT))
    if buttons:
        blocks.append({"type": "actions", "block_id": BLOCK_ACTIONS, "elements": buttons})
    text = f"{mentions} {fallback}" if mentions else fallback
    return {"text": fit_mrkdwn(text, MAX_FALLBACK), "blocks": blocks[:MAX_BLOCKS]}


def _group_buttons(group: EventGroup) -> list[Block]:
    value = group_action_value(group.id)
    buttons = [_button(phrases.BUTTON_ACK, ACTION_ACK, value)]
    for hours in phrases.MUTE_HOURS:
        label = phrases.BUTTON_MUTE.format(hours=hours)
        buttons.append(_button(label, mute_action_id(hours), value))
    return buttons


def _last_recovery(group: EventGroup) -> datetime:
    return group.resolved[-1].occurred_at if group.resolved else group.events[-1].occurred_at


def _members_text(group: EventGroup, limit: int) -> str:
    lines: list[str] = []
    used = 0
    done = progress.recovered(group)
    for index, event in enumerate(group.events):
        line = "• " + _member(event, group) + progress.member_state(event, group, done)
        tail = len(phrases.more(group.count)) + 1
        if used + len(line) + 1 + tail > limit:
            lines.append(phrases.more(group.count - index))
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def _member(event: GitOpsEvent, group: EventGroup) -> str:
    line = phrases.member_line(event, group, esc.slack)
    url = details.link(event.url)
    name = phrases.app_name(event, esc.slack)
    if url and line.startswith(name) and name != phrases.UNNAMED:
        return f"<{esc.slack(url)}|{name}>{line[len(name) :]}"
    return line


def _resources_text(event: GitOpsEvent, limit: int) -> str:
    names, total = details.resources(event)
    if not total:
        return ""
    title = f"*{phrases.LABEL_OUT_OF_SYNC} ({total})*"
    lines = [title]
    used = len(title)
    for index, name in enumerate(names):
        line = "• " + esc.fit(name, 200, esc.slack)
        tail = len(phrases.more(total)) + 1
        if used + len(line) + 1 + tail > limit:
            lines.append(phrases.more(total - index))
            break
        lines.append(line)
        used += len(line) + 1
    else:
        if total > len(names):
            lines.append(phrases.more(total - len(names)))
    return "\n".join(lines)


def _quote(text: str, limit: int) -> str:
    """`text` as a mrkdwn quote, escaped and cut to `limit`; code fences defused."""
    if not text or limit <= 0:
        return ""
    text = text.replace("```", "`\u200b`\u200b`")
    return esc.fit(text, limit, _quote_escape)


def _quote_escape(text: str) -> str:
    return "\n".join("> " + line for line in esc.slack(text).split("\n"))


_LINK_ACTION = {phrases.BUTTON_COMMIT: ACTION_OPEN_COMMIT, phrases.BUTTON_PAGE: ACTION_OPEN_PAGE}


def _page_buttons(url: str) -> list[Block]:
    if not url:
        return []
    button = _button(phrases.BUTTON_PAGE, ACTION_OPEN_PAGE)
    button["url"] = url
    return [button]


def _buttons(event: GitOpsEvent, *, ack: bool, mute: bool, page: str = "") -> list[Block]:
    buttons: list[Block] = []
    for label, url in details.links(event, page):
        button = _button(label, _LINK_ACTION.get(label, ACTION_OPEN))
        button["url"] = url
        buttons.append(button)
    value = action_value(event)
    if ack:
        buttons.append(_button(phrases.BUTTON_ACK, ACTION_ACK, value))
    if mute:
        for hours in phrases.MUTE_HOURS:
            label = phrases.BUTTON_MUTE.format(hours=hours)
            buttons.append(_button(label, mute_action_id(hours), value))
    return buttons


def _button(text: str, action_id: str, value: str = "") -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": esc.truncate(text, MAX_BUTTON_TEXT)},
        "action_id": action_id[:MAX_ID],
    }
    if value:
        button["value"] = value
    return button


_ICONS: dict[Severity | str, str] = {
    phrases.GOOD: ICON_GOOD,
    Severity.CRITICAL: ICON_CRITICAL,
    Severity.WARNING: ICON_WARNING,
    Severity.INFO: ICON_INFO,
}


def _icon(event: GitOpsEvent, *, resolves: GitOpsEvent | None = None) -> str:
    return _ICONS[phrases.tone(event, resolves=resolves)]


def _group_icon(group: EventGroup) -> str:
    return _ICONS[phrases.group_tone(group)]
