"""An app's last 7 days on the status page, decided from the audit log: every event driftbot
told of, every mute and acknowledgement with who, and the stretches the app was in trouble.
Pure: decides only; formatters/status_svg.py draws it and formatters/status_json.py lists it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.audit import AuditRecord
from core.codec import CodecError, event_from_dict
from core.model import PROBLEM_KINDS, RESOLVED_BY, AppKey, EventKind, GitOpsEvent
from formatters import phrases
from formatters import status_words as say
from formatters.escape import one_line
from formatters.revision import short_revision
from formatters.status_view import version_words

WINDOW = timedelta(days=7)
"""How far back an app's timeline reaches."""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    category: str
    """deploy, drift, failure, rollback, recovery, mute, ack or other: the mark's shape."""
    text: str
    """What happened, in words, raw (the renderer escapes it)."""
    kind: str
    """The event kind, or the audit action for mutes and acks."""


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time the app was in trouble: from a problem to what resolved it (or now)."""

    start: datetime
    end: datetime
    category: str
    text: str
    open: bool


_CATEGORIES: dict[EventKind, str] = {
    EventKind.DEPLOY_STARTED: "deploy",
    EventKind.DEPLOY_SUCCEEDED: "deploy",
    EventKind.DEPLOY_FAILED: "failure",
    EventKind.DRIFT_DETECTED: "drift",
    EventKind.DRIFT_RESOLVED: "recovery",
    EventKind.HEALTH_DEGRADED: "failure",
    EventKind.HEALTH_RECOVERED: "recovery",
    EventKind.ROLLBACK_SUCCEEDED: "rollback",
    EventKind.ROLLBACK_FAILED: "failure",
    EventKind.OUT_OF_SYNC: "drift",
    EventKind.SOURCE_FAILED: "failure",
    EventKind.SOURCE_RECOVERED: "recovery",
}


def _who(actor: str) -> str:
    name = one_line(actor)
    if not name:
        return ""
    if name.lower() == phrases.AUTOMATED:
        return say.AUTOMATICALLY
    return say.BY.format(who=phrases.value(name, phrases.MAX_ACTOR))


def event_text(event: GitOpsEvent) -> str:
    """What the timeline says about one event of the app (raw text)."""
    template = say.EVENT_WORDS.get(event.kind, event.kind.value.replace("_", " "))
    target = version_words(event.chart_version) or short_revision(event.revision)
    return template.format(rev=f" {target}" if target else "", who=_who(event.actor))


def _about(event: GitOpsEvent, key: AppKey) -> bool:
    return event.key == key


def _events_of(record: AuditRecord) -> list[GitOpsEvent]:
    events = []
    for raw in record.detail.get("events") or ():
        try:
            events.append(event_from_dict(raw))
        except CodecError:
            continue
    return events


def _action_entry(record: AuditRecord) -> TimelineEntry | None:
    who = phrases.value(record.actor, phrases.MAX_ACTOR) or "someone"
    detail = record.detail
    if record.action == "mute":
        until = detail.get("until")
        try:
            shown_until = phrases.time_utc(datetime.fromisoformat(str(until)))
        except ValueError:
            shown_until = str(until or "?")
        reason = one_line(str(detail.get("reason") or ""))
        text = say.MUTED.format(
            until=shown_until,
            who=who,
            reason=say.REASON.format(reason=phrases.value(reason, 120)) if reason else "",
        )
        return TimelineEntry(record.at, "mute", text, "mute")
    if record.action == "unmute":
        return TimelineEntry(record.at, "mute", say.UNMUTED.format(who=who), "unmute")
    if record.action == "ack":
        return TimelineEntry(record.at, "ack", say.ACKED.format(who=who), "ack")
    return None


def timeline(
    records: Iterable[AuditRecord], key: AppKey, now: datetime
) -> tuple[list[TimelineEntry], list[Span]]:
    """The app's last 7 days from the audit log: every event driftbot told of (once, however
    often a storm that held it was sent again; reminders are not news), every mute,
    unmute and acknowledgement with who; oldest first. And the stretches it was in trouble.
    Pure."""
    start = now - WINDOW
    entries: list[TimelineEntry] = []
    seen: set[str] = set()
    events: list[GitOpsEvent] = []
    for record in records:
        if record.action in ("announce", "digest") or record.detail.get("events"):
            if record.action == "remind":
                continue
            for event in _events_of(record):
                if not _about(event, key) or event.id in seen:
                    continue
                seen.add(event.id)
                if start <= event.occurred_at <= now:
                    events.append(event)
            continue
        if record.app != key or not start <= record.at <= now:
            continue
        entry = _action_entry(record)
        if entry is not None:
            entries.append(entry)
    for event in events:
        entries.append(
            TimelineEntry(
                event.occurred_at,
                _CATEGORIES.get(event.kind, "other"),
                event_text(event),
                event.kind.value,
            )
        )
    entries.sort(key=lambda e: e.at)
    return entries, _spans(sorted(events, key=lambda e: e.occurred_at), now)


def _spans(events: Sequence[GitOpsEvent], now: datetime) -> list[Span]:
    spans: list[Span] = []
    opened: dict[EventKind, GitOpsEvent] = {}
    for event in events:
        for problem, recoveries in RESOLVED_BY.items():
            if event.kind in recoveries and problem in opened:
                began = opened.pop(problem)
                spans.append(_span(began, event.occurred_at, False))
        if event.kind in PROBLEM_KINDS and event.kind not in opened:
            opened[event.kind] = event
    spans += [_span(e, now, True) for e in opened.values()]
    return sorted(spans, key=lambda s: s.start)


def _span(problem: GitOpsEvent, end: datetime, still_open: bool) -> Span:
    return Span(
        problem.occurred_at, end, _CATEGORIES.get(problem.kind, "other"), event_text(problem),
        still_open,
    )  # fmt: skip
