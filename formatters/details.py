"""What every format shows below the headline, worked out once: labelled facts, the resources
out of sync, the controller message and a link.

Values here are clean but not escaped and not yet cut to a format's limits: each renderer
escapes and fits them for its own surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from core.model import PROBLEM_KINDS, GitOpsEvent
from formatters import phrases
from formatters.escape import clean, one_line, truncate

MAX_FACT = 300
"""Longest value of one fact (a full revision, an actor, a project)."""
MAX_RESOURCE = 300
"""Longest name of one resource."""
MAX_URL = 3000
"""Slack refuses button URLs longer than this; Teams has no lower limit."""


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str


def facts(event: GitOpsEvent, *, problem_start: datetime | None = None) -> list[Fact]:
    """The labelled details of `event`, most useful first (pure)."""
    rows = [Fact(phrases.LABEL_WHERE, phrases.where(event))]
    if event.revision:
        rows.append(Fact(phrases.LABEL_REVISION, event.revision))
    if event.previous_revision and event.previous_revision != event.revision:
        rows.append(Fact(phrases.LABEL_PREVIOUS_REVISION, event.previous_revision))
    commit = phrases.commit(event.commit_subject, event.commit_author)
    if commit:
        rows.append(Fact(phrases.LABEL_COMMIT, commit))
    if event.chart_version:
        chart = event.chart_version
        if event.previous_chart_version and event.previous_chart_version != chart:
            chart = f"{chart} (was {one_line(event.previous_chart_version)})"
        rows.append(Fact(phrases.LABEL_CHART_VERSION, chart))
    if phrases.actor_label(event.actor):
        rows.append(Fact(phrases.LABEL_ACTOR, phrases.actor_label(event.actor)))
    lasted = phrases.recovery_time(event, problem_start)
    began = event.since or problem_start
    if lasted is not None and began is not None:
        rows.append(Fact(phrases.LABEL_PROBLEM_BEGAN, phrases.time_utc(began)))
        rows.append(Fact(phrases.LABEL_RESOLVED_AFTER, phrases.duration(lasted)))
    label = phrases.LABEL_SINCE if event.kind in PROBLEM_KINDS else phrases.LABEL_WHEN
    rows.append(Fact(label, phrases.time_utc(event.occurred_at)))
    if event.project:
        rows.append(Fact(phrases.LABEL_PROJECT, event.project))
    rows = [Fact(row.label, truncate(one_line(row.value), MAX_FACT)) for row in rows]
    return [row for row in rows if row.value]


def resources(event: GitOpsEvent) -> tuple[list[str], int]:
    """The names of the out-of-sync resources, and how many exist in all (pure)."""
    names = [truncate(one_line(str(ref)), MAX_RESOURCE) for ref in event.resources]
    names = [name or "?" for name in names]
    return names, max(event.resource_count, len(names))


def message(event: GitOpsEvent) -> str:
    """The controller message, cleaned, blank lines at the ends removed."""
    return clean(event.message).strip()


def link(url: str) -> str:
    """`url` when it is an http(s) URL a chat client will accept as a link, else empty."""
    if not url or len(url) > MAX_URL or not url.isascii() or url != one_line(url) or " " in url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    if any(char in url for char in '<>|"\\`{}^'):
        return ""
    return url
