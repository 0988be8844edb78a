"""What every format shows below the headline, worked out once: why a problem was raised,
labelled facts (each fact once; times as moments, so Slack can show them in the reader's own
time zone), the resources out of sync, the controller message and the links.

Values here are clean but not escaped and not yet cut to a format's limits: each renderer
escapes and fits them for its own surface.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from core.model import PROBLEM_KINDS, EventKind, GitOpsEvent, ResourceRef
from formatters import forge, phrases
from formatters.escape import clean, one_line, truncate
from formatters.revision import short_revision
from formatters.status_paths import absolute, app_page_url, environment_page_url

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
    at: datetime | None = None
    """For a time: the moment itself, so a renderer can show it in the reader's time zone
    (`value` is its UTC text, the fallback)."""
    url: str = ""
    """A link for the value (a commit page), already checked by `link`."""


MAX_WHY_RESOURCES = 3
"""Unhealthy resources named in the reason before "and N more"."""

_NEWS_REVISION = frozenset({EventKind.DEPLOY_SUCCEEDED, EventKind.ROLLBACK_SUCCEEDED})
"""Kinds whose previous revision is gone ("was"); for the others it still runs."""


def facts(event: GitOpsEvent, *, resolves: GitOpsEvent | None = None) -> list[Fact]:
    """The labelled details of `event`, most useful first, each fact once (pure).

    `resolves` is the alert `event` closes, when the message is that alert edited in place.
    """
    rows = [Fact(phrases.LABEL_WHERE, phrases.where(event))]
    rows += _version_facts(event)
    commit = phrases.commit(event.commit_subject, event.commit_author)
    if commit:
        rows.append(Fact(phrases.LABEL_COMMIT, commit))
    if phrases.actor_label(event.actor):
        rows.append(Fact(phrases.LABEL_ACTOR, phrases.actor_label(event.actor)))
    rows += _time_facts(event, resolves)
    rows = [replace(row, value=truncate(one_line(row.value), MAX_FACT)) for row in rows]
    return [row for row in rows if row.value]


def _version_facts(event: GitOpsEvent) -> list[Fact]:
    """What runs (or was tried): a revision with the one before it, or a Helm chart version
    when that is the revision. Said once."""
    rev, chart = one_line(event.revision), one_line(event.chart_version)
    previous_rev = one_line(event.previous_revision)
    previous_chart = one_line(event.previous_chart_version) or (previous_rev if not rev else "")
    relation = "was" if event.kind in _NEWS_REVISION else "still running"
    rows: list[Fact] = []
    if rev and rev != chart:
        text = short_revision(rev)
        if previous_rev and previous_rev != rev:
            text += f" ({relation} {short_revision(previous_rev)})"
        url = link(forge.commit_url(event.repo_url, rev))
        rows.append(Fact(phrases.LABEL_REVISION, text, url=url))
    if chart:
        before = previous_chart or (previous_rev if rev == chart else "")
        text = chart if not before or before == chart else f"{chart} ({relation} {before})"
        rows.append(Fact(phrases.LABEL_CHART_VERSION, text))
    return rows


def _time_facts(event: GitOpsEvent, resolves: GitOpsEvent | None) -> list[Fact]:
    began = resolves.occurred_at if resolves is not None else event.since
    if began is None:
        return [_time(phrases.time_label(event), event.occurred_at)]
    closing = (
        phrases.time_label(event)
        if event.kind is EventKind.ROLLBACK_SUCCEEDED
        else phrases.LABEL_RESOLVED_AT
    )
    return [_time(phrases.LABEL_PROBLEM_BEGAN, began), _time(closing, event.occurred_at)]


def _time(label: str, moment: datetime) -> Fact:
    return Fact(label, phrases.time_utc(moment), at=moment)


def why(event: GitOpsEvent) -> tuple[str, list[str]]:
    """Why a problem was raised: the controller's or the health message (cleaned, may span
    lines), and the unhealthy resources with their health messages, a few then "and N more".
    Empty for events that are not problems (their message is a detail, see `message`)."""
    if event.kind not in PROBLEM_KINDS:
        return "", []
    sick = [ref for ref in event.resources if ref.health]
    lines = [_sick_line(ref) for ref in sick[:MAX_WHY_RESOURCES]]
    total = max(event.resource_count, len(sick)) if sick else 0
    if total > len(lines):
        lines.append(phrases.more(total - len(lines)))
    return message(event), lines


def _sick_line(ref: ResourceRef) -> str:
    name = truncate(one_line(str(ref)), MAX_RESOURCE) or "?"
    said = truncate(one_line(ref.message), MAX_FACT)
    state = one_line(ref.health).lower()
    return f"{name} is {state}: {said}" if said else f"{name} is {state}"


def links(event: GitOpsEvent, public_url: str = "") -> list[tuple[str, str]]:
    """(button label, url): the app in its tool's UI, the commit on its forge, and the app's
    status page when driftbot has a public address (`public_url`)."""
    found = []
    tool = link(event.url)
    if tool:
        found.append((phrases.BUTTON_OPEN[event.tool], tool))
    commit = link(forge.commit_url(event.repo_url, event.revision))
    if commit:
        found.append((phrases.BUTTON_COMMIT, commit))
    page = link(app_page_url(public_url, event.cluster, event.namespace, event.name))
    if page:
        found.append((phrases.BUTTON_PAGE, page))
    return found


def group_page(cluster: str, public_url: str) -> str:
    """The status page of a storm's environment (`cluster`, shared by its apps), or of every
    environment when its apps run in several; "" without a public address."""
    if cluster:
        return link(environment_page_url(public_url, cluster))
    return link(absolute(public_url, "/status"))


def resources(event: GitOpsEvent) -> tuple[list[str], int]:
    """The names of the out-of-sync resources, and how many exist in all (pure). Unhealthy
    resources are not listed here: `why` names them."""
    if any(ref.health for ref in event.resources):
        return [], 0
    names = [truncate(one_line(str(ref)), MAX_RESOURCE) for ref in event.resources]
    names = [name or "?" for name in names]
    return names, max(event.resource_count, len(names))


def message(event: GitOpsEvent) -> str:
    """The controller message, cleaned, blank lines at the ends removed."""
    return clean(event.message).strip()


_SAID_BY_THE_FACTS = frozenset(
    {EventKind.DEPLOY_STARTED, EventKind.DEPLOY_SUCCEEDED, EventKind.ROLLBACK_SUCCEEDED}
)
"""Kinds whose controller message only repeats the headline ("Applied revision: …")."""


def detail_message(event: GitOpsEvent) -> str:
    """The controller message as a detail: for a problem it is the reason (`why`) instead, and
    for a deploy or rollback it only says again what the headline and facts say."""
    if event.kind in PROBLEM_KINDS or event.kind in _SAID_BY_THE_FACTS:
        return ""
    return message(event)


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
