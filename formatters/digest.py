"""A scheduled digest, written for people who do not run Kubernetes: what was deployed, what
drifted from Git, what was rolled back, which problems came and went, and what still needs
attention, per cluster, since the previous digest.

Pure: the content (`Digest`) is collected by the bot; this module only words and lays it out,
as plain text, Slack Block Kit (within Slack's limits whatever the input) and a Teams Adaptive
Card (under 28 KB). Every value from a cluster or Git is escaped for the target format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.model import EventKind, GitOpsEvent
from formatters import escape as esc
from formatters import phrases
from formatters.details import link
from formatters.escape import Escaper
from formatters.revision import short_revision
from formatters.slack import MAX_MESSAGE_CHARS, message_size
from formatters.status_paths import environment_page_url
from formatters.teams import MAX_PAYLOAD_BYTES, envelope, payload_size

Message = dict[str, Any]

TITLE_DEFAULT = "GitOps digest"
QUIET = "Nothing was deployed, drifted or rolled back, and nothing needs attention."
SECTION_DEPLOYS = "Deployed"
SECTION_ROLLBACKS = "Rolled back"
SECTION_DRIFTS = "Changed outside Git (drift)"
SECTION_PROBLEMS = "Problems"
SECTION_OPEN = "Still needs attention"
FIXED = "fixed after {lasted}"
FIXED_UNKNOWN = "fixed"
ROLLED_BACK = "rolled back after {lasted}, not shipped"
ROLLED_BACK_UNKNOWN = "rolled back, not shipped"
NOT_FIXED = "not fixed yet"
OPEN_DRIFTED = "{app} does not match Git"
OPEN_PENDING = "{app} has changes in Git waiting to be deployed{target}"
OPEN_FAILING = "{app} is failing"
OPEN_SINCE = " (since {when})"
OPEN_ACKED = ", acknowledged by {who}"

MAX_ITEMS = 20
"""Lines in one section before "and N more"."""
MAX_CLUSTERS = 10
"""Clusters shown in Slack and Teams before the rest are summed up."""
SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION = 2900
SLACK_MAX_HEADER = 150
SLACK_MAX_FALLBACK = 2000


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem announced in the period, and the recovery that ended it (if any yet)."""

    event: GitOpsEvent
    fixed_by: GitOpsEvent | None = None


@dataclass(frozen=True, slots=True)
class StillOpen:
    """An app that needs attention now: an alert still open, or a state that is not right.

    `state`: `failing`, `drifted` or `pending` (changes waiting to be deployed); `alert`, when
    an announced problem is still open, the sentence comes from it.
    """

    cluster: str
    namespace: str
    name: str
    state: str
    since: datetime | None = None
    alert: GitOpsEvent | None = None
    acked_by: str = ""
    target: str = ""
    """For `pending`: the revision waiting."""


@dataclass(frozen=True, slots=True)
class ClusterDigest:
    cluster: str
    deploys: tuple[GitOpsEvent, ...] = ()
    rollbacks: tuple[GitOpsEvent, ...] = ()
    drifts: tuple[Problem, ...] = ()
    problems: tuple[Problem, ...] = ()
    still_open: tuple[StillOpen, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.deploys or self.rollbacks or self.drifts or self.problems or self.still_open
        )


@dataclass(frozen=True, slots=True)
class Digest:
    """One digest: its period (`since` to `until`, shown in `timezone`) and, per cluster,
    what happened; clusters with nothing to tell are left out."""

    name: str
    since: datetime
    until: datetime
    timezone: str = "UTC"
    clusters: tuple[ClusterDigest, ...] = ()

    @property
    def quiet(self) -> bool:
        return all(c.empty for c in self.clusters)


# --- words ---------------------------------------------------------------------------------------


def _local(moment: datetime, timezone: str) -> datetime:
    try:
        return moment.astimezone(ZoneInfo(timezone))
    except (ValueError, OverflowError, KeyError):
        return moment


def _when(moment: datetime, digest: Digest) -> str:
    """`09:05` on the digest's last day, else `Nov 19 09:05` (in the digest's time zone)."""
    local = _local(moment, digest.timezone)
    if local.date() == _local(digest.until, digest.timezone).date():
        return local.strftime("%H:%M")
    return local.strftime("%b %d %H:%M")


def title(digest: Digest) -> str:
    """`Daily digest: Nov 20 09:00 to Nov 21 09:00 (Europe/Berlin)`."""
    name = phrases.value(digest.name, 80) or TITLE_DEFAULT
    since = _local(digest.since, digest.timezone).strftime("%b %d %H:%M")
    until = _local(digest.until, digest.timezone).strftime("%b %d %H:%M")
    return f"{name}: {since} to {until} ({digest.timezone})"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summary(digest: Digest) -> str:
    """`In short: 3 deploys, 2 rollbacks, 1 drift, 2 problems; 2 apps need attention.`"""
    if digest.quiet:
        return QUIET
    cs = digest.clusters
    parts = [
        _count(sum(len(c.deploys) for c in cs), "deploy", "deploys"),
        _count(sum(len(c.rollbacks) for c in cs), "rollback", "rollbacks"),
        _count(sum(len(c.drifts) for c in cs), "drift", "drifts"),
        _count(sum(len(c.problems) for c in cs), "problem", "problems"),
    ]
    opened = sum(len(c.still_open) for c in cs)
    tail = (
        f"{_count(opened, 'app needs', 'apps need')} attention"
        if opened
        else "nothing needs attention now"
    )
    return f"In short: {', '.join(parts)}; {tail}."


def _change_line(event: GitOpsEvent, digest: Digest, escape: Escaper) -> str:
    """`10:08 payments on prod was updated from ea87599 to 7d2e4f6 by carol`."""
    plain_news = replace(event, since=None, resolves="")
    return f"{_when(event.occurred_at, digest)} {phrases.headline(plain_news, escape)}"


def _problem_line(problem: Problem, digest: Digest, escape: Escaper) -> str:
    line = _change_line(problem.event, digest, escape)
    fixed = problem.fixed_by
    if fixed is None:
        return f"{line}: {NOT_FIXED}"
    lasted = phrases.recovery_time(fixed, problem.event.occurred_at)
    if fixed.kind is EventKind.ROLLBACK_SUCCEEDED:  # the release did not ship
        template, unknown = ROLLED_BACK, ROLLED_BACK_UNKNOWN
    else:
        template, unknown = FIXED, FIXED_UNKNOWN
    word = template.format(lasted=phrases.duration(lasted)) if lasted else unknown
    return f"{line}: {word}"


def _open_line(item: StillOpen, digest: Digest, escape: Escaper) -> str:
    app = phrases.value(item.name, phrases.MAX_NAME, escape) or phrases.UNNAMED
    if item.alert is not None:
        text = phrases.headline(item.alert, escape)
    elif item.state == "pending":
        target = escape(short_revision(item.target)) if item.target else ""
        text = OPEN_PENDING.format(app=app, target=f" ({target})" if target else "")
    elif item.state == "drifted":
        text = OPEN_DRIFTED.format(app=app)
    else:
        text = OPEN_FAILING.format(app=app)
    if item.since is not None:
        text += OPEN_SINCE.format(when=_when(item.since, digest))
    if item.acked_by:
        text += OPEN_ACKED.format(who=phrases.value(item.acked_by, phrases.MAX_ACTOR, escape))
    return text


def sections(
    cluster: ClusterDigest, digest: Digest, escape: Escaper
) -> list[tuple[str, list[str]]]:
    """The cluster's sections as (title, lines), empty sections left out (pure)."""
    out: list[tuple[str, list[str]]] = []
    deploys = [_change_line(e, digest, escape) for e in cluster.deploys]
    rollbacks = [_change_line(e, digest, escape) for e in cluster.rollbacks]
    drifts = [_problem_line(p, digest, escape) for p in cluster.drifts]
    problems = [_problem_line(p, digest, escape) for p in cluster.problems]
    still = [_open_line(o, digest, escape) for o in cluster.still_open]
    for name, lines in (
        (SECTION_OPEN, still),
        (SECTION_DEPLOYS, deploys),
        (SECTION_ROLLBACKS, rollbacks),
        (SECTION_DRIFTS, drifts),
        (SECTION_PROBLEMS, problems),
    ):
        if lines:
            out.append((name, lines))
    return out


def _cut_list(lines: Sequence[str], most: int) -> list[str]:
    if len(lines) <= most:
        return list(lines)
    return [*lines[:most], phrases.more(len(lines) - most)]


# --- plain text ----------------------------------------------------------------------------------


def render_digest_text(digest: Digest) -> str:
    """The digest as plain text: title, the short summary, then each cluster (pure)."""
    lines = [title(digest), summary(digest)]
    for cluster in digest.clusters:
        if cluster.empty:
            continue
        lines.append("")
        lines.append(phrases.value(cluster.cluster, phrases.MAX_CLUSTER) or "(no cluster)")
        for name, items in sections(cluster, digest, esc.plain):
            lines.append(f"  {name}:")
            lines += [f"    - {item}" for item in _cut_list(items, MAX_ITEMS)]
    return "\n".join(lines)


# --- Slack ---------------------------------------------------------------------------------------


def render_digest_slack(digest: Digest, public_url: str = "") -> Message:
    """`{"text", "blocks"}` for chat.postMessage: a header, the summary, one section per
    cluster and part; lists are shortened until the message is within Block Kit's limits
    (pure). With `public_url`, each cluster's name links to its status page."""
    message: Message = {}
    for most in (MAX_ITEMS, 10, 5, 2, 0):
        message = _slack_message(digest, most, public_url)
        if message_size(message) <= MAX_MESSAGE_CHARS:
            return message
    return {"text": message["text"], "blocks": message["blocks"][:2]}


def _cluster_page(cluster: str, public_url: str) -> str:
    return link(environment_page_url(public_url, cluster)) if public_url else ""


def _slack_message(digest: Digest, most: int, public_url: str = "") -> Message:
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": esc.truncate(title(digest), SLACK_MAX_HEADER)},
        },
        _slack_section(esc.fit(summary(digest), SLACK_MAX_SECTION)),
    ]
    shown = [c for c in digest.clusters if not c.empty]
    hidden = shown[MAX_CLUSTERS:]
    for cluster in shown[:MAX_CLUSTERS]:
        blocks.append({"type": "divider"})
        name = phrases.value(cluster.cluster, phrases.MAX_CLUSTER, esc.slack) or "(no cluster)"
        page = _cluster_page(cluster.cluster, public_url)
        if page:
            name = f"<{esc.slack(page)}|{name}>"
        parts = sections(cluster, digest, esc.slack)
        for index, (part, items) in enumerate(parts):
            head = f"*{name}*\n" if index == 0 else ""
            blocks.append(_slack_section(_slack_list(head + f"*{part}*", items, most)))
    if hidden:
        names = ", ".join(phrases.value(c.cluster, 40, esc.slack) for c in hidden[:20])
        blocks.append(_slack_section(f"and {len(hidden)} more clusters: {names}"))
    if len(blocks) > SLACK_MAX_BLOCKS:
        left = len(blocks) - SLACK_MAX_BLOCKS + 1
        blocks = [*blocks[: SLACK_MAX_BLOCKS - 1], _slack_section(f"and {left} more sections")]
    fallback = esc.truncate(f"{title(digest)}. {summary(digest)}", SLACK_MAX_FALLBACK)
    return {"text": esc.slack(fallback), "blocks": blocks}


def _slack_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _slack_list(head: str, items: Sequence[str], most: int = MAX_ITEMS) -> str:
    """`head` then `• item` lines, at most `most` and as many as fit in one section, then
    "and N more"."""
    text = head
    for index, item in enumerate(items[:most]):
        line = "\n• " + item
        rest = len(items) - index
        reserve = len("\n• " + phrases.more(rest))
        if len(text) + len(line) + reserve > SLACK_MAX_SECTION:
            return text + "\n• " + phrases.more(rest)
        text += line
    if len(items) > most:
        text += "\n• " + phrases.more(len(items) - most)
    return text


# --- Teams ---------------------------------------------------------------------------------------


def render_digest_teams(
    digest: Digest, payload: str = "envelope", public_url: str = ""
) -> Message:
    """An Adaptive Card (1.4) of the digest, in the message envelope unless `payload="card"`;
    lists are shortened until the payload fits under Teams' 28 KB (pure). With `public_url`,
    each cluster's name links to its status page."""
    wrap: Callable[[Message], Message] = envelope if payload == "envelope" else (lambda c: c)
    result: Message = {}
    for most in (MAX_ITEMS, 10, 5, 2, 0):
        result = wrap(_teams_card(digest, most, public_url))
        if payload_size(result) <= MAX_PAYLOAD_BYTES:
            return result
    return wrap(_card([_teams_text(esc.teams(title(digest)), bold=True)]))


def _teams_card(digest: Digest, most: int, public_url: str = "") -> Message:
    body = [
        _teams_text(esc.teams(title(digest)), bold=True, size="Medium"),
        _teams_text(esc.teams(summary(digest))),
    ]
    shown = [c for c in digest.clusters if not c.empty]
    for cluster in shown[:MAX_CLUSTERS]:
        name = phrases.value(cluster.cluster, phrases.MAX_CLUSTER, esc.teams) or "(no cluster)"
        page = _cluster_page(cluster.cluster, public_url)
        if page:
            name = f"[{name}]({page})"
        body.append(_teams_text(name, bold=True, separator=True))
        for part, items in sections(cluster, digest, esc.teams):
            lines = _cut_list([esc.truncate(i, 400) for i in items], most)
            body.append(_teams_text(f"**{part}**\n\n" + "\n\n".join(f"• {i}" for i in lines)))
    if len(shown) > MAX_CLUSTERS:
        body.append(_teams_text(f"and {len(shown) - MAX_CLUSTERS} more clusters"))
    return _card(body)


def _teams_text(
    text: str, *, bold: bool = False, size: str = "", separator: bool = False
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "TextBlock", "text": text, "wrap": True}
    if bold:
        element["weight"] = "Bolder"
    if size:
        element["size"] = size
    if separator:
        element["separator"] = True
    return element


def _card(body: list[dict[str, Any]]) -> Message:
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
