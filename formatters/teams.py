"""Microsoft Teams Adaptive Cards (1.4) for events, storms and resolutions.

Teams webhooks (Workflows) take either the message envelope or a bare card; both are built
here. The card opens with the same words as every other format ("Needs action · guestbook on prod
is unhealthy"), then why (for a problem), a FactSet of details, the resources out of sync, the
controller message and buttons to Argo CD or a Flux UI and to the commit.
Teams cannot edit a posted card, so a resolution is a new card naming the original alert.

Markdown in strings from a cluster or Git is escaped. The serialized payload, envelope
included, stays under MAX_PAYLOAD_BYTES whatever the input: lists end in "and N more" and long
texts are cut further until it fits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from core.model import EventKind, GitOpsEvent, Severity
from formatters import details, phrases
from formatters import escape as esc
from formatters import group_progress as progress
from formatters.budget import Budget, fit
from formatters.group import EventGroup

Payload = Literal["envelope", "card"]
Card = dict[str, Any]
Element = dict[str, Any]

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.4"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_PAYLOAD_BYTES = 28_000
"""Teams refuses messages over 28 KB; measured as ASCII-escaped JSON, the largest encoding."""
MAX_HEADLINE = 600

COLOR_CRITICAL = "Attention"
COLOR_WARNING = "Warning"
COLOR_GOOD = "Good"
COLOR_INFO = "Default"


_BUDGETS = (
    Budget(fact=300, resources=50, message=8000),
    Budget(fact=200, resources=20, message=3000),
    Budget(fact=120, resources=10, message=1000),
    Budget(fact=60, resources=5, message=0),
)
"""Tried in order until the payload fits; the last one fits any event."""


def render_teams(
    event: GitOpsEvent, payload: Payload = "envelope", *, public_url: str = ""
) -> Card:
    """An Adaptive Card for `event`, wrapped in the message envelope unless `payload="card"`.
    With `public_url` (driftbot's public address), a button opens the app's status page."""
    headline = phrases.first_line(event, esc.teams)
    return _fit(
        payload,
        lambda budget: _event_card(
            event,
            headline=headline,
            color=_color(event),
            earlier="",
            resolves=None,
            budget=budget,
            public_url=public_url,
        ),
    )


def render_teams_resolved(
    original: GitOpsEvent,
    recovery: GitOpsEvent,
    payload: Payload = "envelope",
    *,
    public_url: str = "",
) -> Card:
    """A new card saying `original`'s problem is over (or, for a rollback, that the release
    did not ship), naming the earlier alert and keeping its reason."""
    headline = phrases.first_line(recovery, esc.teams, resolves=original)
    earlier = (
        f"{phrases.LABEL_EARLIER_ALERT}: {phrases.headline(original, esc.teams)} "
        f"({phrases.time_utc(original.occurred_at)})"
        if recovery.kind is not EventKind.ROLLBACK_SUCCEEDED  # a rollback's sentence names it
        else ""
    )
    return _fit(
        payload,
        lambda budget: _event_card(
            recovery,
            headline=headline,
            color=_color(recovery, resolves=original),
            earlier=earlier,
            resolves=original,
            budget=budget,
            public_url=public_url,
        ),
    )


def render_teams_group(
    group: EventGroup, payload: Payload = "envelope", *, public_url: str = ""
) -> Card:
    """One card for a storm: the count and what they share, how many recovered, then one line
    per app; once every problem recovered, a green card saying the storm is over. With
    `public_url`, a button opens the environment's status page."""
    return _fit(payload, lambda budget: _group_card(group, budget, public_url))


def payload_size(payload: Card) -> int:
    """Bytes of `payload` serialized with every non-ASCII character escaped (an upper bound)."""
    return len(json.dumps(payload, ensure_ascii=True).encode())


def envelope(card: Card) -> Card:
    """The message envelope Teams Workflows webhooks accept around a card."""
    return {
        "type": "message",
        "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def _fit(payload: Payload, build: Callable[[Budget], Card]) -> Card:
    wrap: Callable[[Card], Card] = envelope if payload == "envelope" else (lambda c: c)
    return fit(
        _BUDGETS,
        lambda budget: wrap(build(budget)),
        lambda card: payload_size(card) <= MAX_PAYLOAD_BYTES,
        lambda last: wrap(_card([_text(_headline_of(last), weight="Bolder")], [])),
    )


def _headline_of(payload: Card) -> str:
    card = payload["attachments"][0]["content"] if payload.get("type") == "message" else payload
    text: str = card["body"][0]["text"]
    return _cut(text, MAX_HEADLINE)


def _event_card(
    event: GitOpsEvent,
    *,
    headline: str,
    color: str,
    earlier: str,
    resolves: GitOpsEvent | None,
    budget: Budget,
    public_url: str = "",
) -> Card:
    body = [_text(_cut(headline, MAX_HEADLINE), weight="Bolder", size="Medium", color=color)]
    if earlier:
        body.append(_text(_cut(earlier, MAX_HEADLINE * 2), subtle=True))
    said, sick = details.why(resolves if resolves is not None else event)
    if (said or sick) and budget.message:
        lines = [esc.fit(said, budget.message, _teams_paragraphs)] if said else []
        lines += [f"- {esc.fit(line, 400, esc.teams)}" for line in sick]
        label = phrases.LABEL_WHY
        if resolves is not None and event.kind is not EventKind.ROLLBACK_SUCCEEDED:
            label = phrases.LABEL_WHAT_WENT_WRONG
        body.append(_text(f"**{label}**", spacing="Medium"))
        body.append(_text("\r".join(lines), spacing="None"))
    facts = [
        {"title": fact.label, "value": esc.fit(fact.value, budget.fact, esc.teams) or "-"}
        for fact in details.facts(event, resolves=resolves)
    ]
    facts.append(
        {
            "title": phrases.LABEL_OBJECT,
            "value": esc.fit(phrases.object_line(event), budget.fact, esc.teams),
        }
    )
    body.append({"type": "FactSet", "facts": facts})
    names, total = details.resources(event)
    if total:
        body.append(_text(f"**{phrases.LABEL_OUT_OF_SYNC} ({total})**", spacing="Medium"))
        shown = [esc.fit(name, 200, esc.teams) for name in names[: budget.resources]]
        lines = [f"- {name}" for name in shown]
        if total > len(shown):
            lines.append(f"- {phrases.more(total - len(shown))}")
        body.append(_text("\r".join(lines), spacing="None"))
    message = details.detail_message(event)
    if message and budget.message:
        body.append(_text(f"**{phrases.LABEL_MESSAGE}**", spacing="Medium"))
        body.append(_text(esc.fit(message, budget.message, _teams_paragraphs), subtle=True))
    return _card(body, _open_actions(event, public_url))


def _group_card(group: EventGroup, budget: Budget, public_url: str = "") -> Card:
    headline = phrases.group_headline(group, esc.teams)
    if group.cleared:
        headline = progress.cleared_headline(group, esc.teams)
    headline = f"{phrases.group_status_word(group)}{phrases.SEPARATOR}{headline}"
    body = [
        _text(
            _cut(headline, MAX_HEADLINE),
            weight="Bolder",
            size="Medium",
            color=COLOR_GOOD if group.cleared else _group_color(group),
        )
    ]
    if group.cleared:
        earlier = phrases.group_headline(group, esc.teams)
        body.append(_text(_cut(earlier, MAX_HEADLINE), subtle=True, spacing="None"))
    breakdown = phrases.group_breakdown(group)
    if breakdown:
        body.append(_text(esc.teams(breakdown), subtle=True, spacing="None"))
    counted = progress.progress(group)
    if counted:
        body.append(_text(counted, weight="Bolder", spacing="None"))
    facts = []
    cluster, revision = esc.one_line(group.cluster), esc.one_line(group.revision)
    if cluster:
        facts.append(
            {"title": phrases.LABEL_CLUSTER, "value": esc.fit(cluster, budget.fact, esc.teams)}
        )
    if revision:
        value = esc.fit(revision, budget.fact, esc.teams)
        facts.append({"title": phrases.LABEL_REVISION, "value": value})
    facts.append({"title": phrases.LABEL_TOOL, "value": phrases.tool_name(group.tool)})
    facts.append({"title": phrases.LABEL_APPS, "value": str(group.count)})
    first = min(e.occurred_at for e in group.events) if _comparable(group) else None
    if first is not None:
        facts.append({"title": phrases.LABEL_SINCE, "value": phrases.time_utc(first)})
    body.append({"type": "FactSet", "facts": facts})
    limit = budget.resources * 2
    members = group.events[:limit]
    done = progress.recovered(group)
    lines = [
        f"- {_member(event, group)}{progress.member_state(event, group, done)}"
        for event in members
    ]
    if group.count > len(members):
        lines.append(f"- {phrases.more(group.count - len(members))}")
    body.append(_text("\r".join(lines), spacing="Medium"))
    page = details.group_page(group.cluster, public_url) if public_url else ""
    actions = [{"type": "Action.OpenUrl", "title": phrases.BUTTON_PAGE, "url": page}]
    return _card(body, actions if page else [])


def _comparable(group: EventGroup) -> bool:
    aware = {e.occurred_at.utcoffset() is not None for e in group.events}
    return len(aware) == 1


def _member(event: GitOpsEvent, group: EventGroup) -> str:
    line = _cut(phrases.member_line(event, group, esc.teams), 400)
    url = details.link(event.url)
    name = phrases.app_name(event, esc.teams)
    if url and line.startswith(name) and name != phrases.UNNAMED:
        target = url.replace("(", "%28").replace(")", "%29")
        return f"[{name}]({target}){line[len(name) :]}"
    return line


def _card(body: list[Element], actions: list[Element]) -> Card:
    card: Card = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return card


def _open_actions(event: GitOpsEvent, public_url: str = "") -> list[Element]:
    return [
        {"type": "Action.OpenUrl", "title": label, "url": url}
        for label, url in details.links(event, public_url)
    ]


def _text(
    text: str,
    *,
    weight: str = "",
    size: str = "",
    color: str = "",
    subtle: bool = False,
    spacing: str = "",
) -> Element:
    block: Element = {"type": "TextBlock", "text": text or "-", "wrap": True}
    for key, value in (("weight", weight), ("size", size), ("color", color), ("spacing", spacing)):
        if value:
            block[key] = value
    if subtle:
        block["isSubtle"] = True
    return block


def _teams_paragraphs(text: str) -> str:
    """Escaped, with each newline doubled: Teams markdown joins single-newline lines."""
    return esc.teams(text).replace("\n", "\n\n")


def _cut(text: str, limit: int) -> str:
    """Composed markdown cut to `limit`, never ending on a lone escaping backslash."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    trailing = len(head) - len(head.rstrip("\\"))
    if trailing % 2:
        head = head[:-1]
    return head + esc.ELLIPSIS


_COLORS: dict[Severity | str, str] = {
    phrases.GOOD: COLOR_GOOD,
    Severity.CRITICAL: COLOR_CRITICAL,
    Severity.WARNING: COLOR_WARNING,
    Severity.INFO: COLOR_INFO,
}


def _color(event: GitOpsEvent, *, resolves: GitOpsEvent | None = None) -> str:
    return _COLORS[phrases.tone(event, resolves=resolves)]


def _group_color(group: EventGroup) -> str:
    return _COLORS[phrases.group_tone(group)]
