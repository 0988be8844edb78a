"""Every word driftbot says about an event, in one place, for every output format.

Headlines are written for people who do not run Kubernetes ("checkout on prod no longer matches
Git"); details for those who do. Functions that put untrusted values (names, revisions, actors)
into a sentence take the escaper of the target format, so the sentence is ours and the values
are inert. Values are folded onto one line and shortened before they are escaped.
"""

from __future__ import annotations

from collections import Counter
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from core.model import PROBLEM_KINDS, RECOVERY_KINDS, EventKind, GitOpsEvent, Severity, Tool
from formatters.escape import Escaper, one_line, plain, truncate
from formatters.group import EventGroup
from formatters.revision import short_revision, short_version

MAX_NAME = 80
MAX_CLUSTER = 60
MAX_ACTOR = 60

TOOL_NAMES: dict[Tool, str] = {Tool.ARGOCD: "Argo CD", Tool.FLUX: "Flux"}

AUTOMATED = "automated"
"""The actor value detection uses for changes no person started."""

# Detail labels, in the order renderers show them.
LABEL_WHERE = "Where"
LABEL_REVISION = "Revision"
LABEL_COMMIT = "Commit"
LABEL_CHART_VERSION = "Chart version"
LABEL_ACTOR = "Initiated by"
LABEL_PROBLEM_BEGAN = "Problem began"
LABEL_RESOLVED_AT = "Resolved at"
LABEL_HAPPENED_AT = "Happened at"
LABEL_OBJECT = "Object"
LABEL_OUT_OF_SYNC = "Out of sync"
LABEL_UNHEALTHY = "Unhealthy"
LABEL_MESSAGE = "Controller message"
LABEL_WHY = "Why"
LABEL_WHAT_WENT_WRONG = "What went wrong"
"""The reason of an alert, shown again once it is resolved."""
LABEL_LINK = "Link"
LABEL_COMMIT_LINK = "Commit link"
LABEL_APPS = "Apps"
LABEL_CLUSTER = "Cluster"
LABEL_TOOL = "Tool"
LABEL_EARLIER_ALERT = "Earlier alert"
LABEL_SINCE = "Since"

TIME_LABELS: dict[EventKind, str] = {
    EventKind.DEPLOY_STARTED: "Started at",
    EventKind.DEPLOY_SUCCEEDED: "Deployed at",
    EventKind.ROLLBACK_SUCCEEDED: "Rolled back at",
    EventKind.SUSPENDED: "Paused at",
    EventKind.RESUMED: "Resumed at",
    EventKind.DELETED: "Deleted at",
    EventKind.OUT_OF_SYNC: "Waiting since",
}
"""When it happened, named for what happened; problems say "Problem began"."""

# What the reader has to do, in words (never colour alone).
WORD_ACTION = "Needs action"
WORD_ATTENTION = "Needs attention"
WORD_INFO = "For your information"
WORD_RESOLVED = "Resolved"
SEVERITY_WORDS: dict[Severity, str] = {
    Severity.CRITICAL: WORD_ACTION,
    Severity.WARNING: WORD_ATTENTION,
    Severity.INFO: WORD_INFO,
}
CLOSING_KINDS: frozenset[EventKind] = frozenset(
    {EventKind.DRIFT_RESOLVED, EventKind.HEALTH_RECOVERED, EventKind.SOURCE_RECOVERED}
)
"""Kinds whose whole news is that a problem is over: they read "Resolved"."""
SEPARATOR = " · "
"""Between the severity word and the headline."""

BUTTON_ACK = "Acknowledge"
BUTTON_MUTE = "Mute {hours}h"
BUTTON_OPEN: dict[Tool, str] = {Tool.ARGOCD: "Open in Argo CD", Tool.FLUX: "Open in Flux UI"}
BUTTON_COMMIT = "View commit"
BUTTON_PAGE = "Status page"
MUTE_HOURS = (1, 4, 24)

UNNAMED = "an unnamed app"


def value(text: str, limit: int, escape: Escaper = plain) -> str:
    """An untrusted value ready for a sentence: one line, at most `limit` characters, escaped."""
    return escape(truncate(one_line(text), limit))


def app_name(event: GitOpsEvent, escape: Escaper = plain) -> str:
    return value(event.name, MAX_NAME, escape) or UNNAMED


def subject(event: GitOpsEvent, escape: Escaper = plain) -> str:
    """`checkout on prod`: what a headline is about (the cluster the app runs in)."""
    cluster = value(cluster_name(event), MAX_CLUSTER, escape)
    name = app_name(event, escape)
    return f"{name} on {cluster}" if cluster else name


def cluster_name(event: GitOpsEvent) -> str:
    """The cluster the workload runs in: a remote Argo CD destination (a server URL shown as
    its host), else the cluster driftbot watches (unescaped)."""
    remote = one_line(event.destination_cluster)
    if remote:
        with suppress(ValueError):
            host = urlsplit(remote).hostname if "://" in remote else None
            if host:
                return host
        return remote
    return one_line(event.cluster)


def tool_name(tool: Tool | None) -> str:
    return TOOL_NAMES.get(tool, "GitOps") if tool is not None else "GitOps"


def duration(delta: timedelta) -> str:
    """`45 s`, `14 min`, `2 h 5 min`, `3 d 4 h`: how long, in the fewest words."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def time_utc(moment: datetime) -> str:
    """`2026-11-20 09:40 UTC` (naive datetimes are taken as UTC)."""
    if moment.utcoffset() is not None:
        with suppress(OverflowError):  # within hours of year 1 or 9999: shown as given
            moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def recovery_time(event: GitOpsEvent, problem_start: datetime | None = None) -> timedelta | None:
    """How long the problem lasted that `event` resolves, when known and positive."""
    start = event.since or problem_start
    if start is None:
        return None
    try:
        delta = event.occurred_at - start
    except TypeError:  # one naive, one aware: no honest answer
        return None
    return delta if delta.total_seconds() > 0 else None


def actor_phrase(actor: str, escape: Escaper = plain) -> str:
    """` by alice`, ` automatically`, or nothing."""
    who = one_line(actor)
    if not who:
        return ""
    if who.lower() == AUTOMATED:
        return " automatically"
    return f" by {value(who, MAX_ACTOR, escape)}"


def actor_label(actor: str) -> str:
    """Who initiated, for a detail line (unescaped)."""
    who = one_line(actor)
    return "automation (auto-sync)" if who.lower() == AUTOMATED else who


def commit(subject: str, author: str) -> str:
    """`Fix checkout timeout (by alice)`, `by alice`, or the subject alone (unescaped)."""
    subject, author = one_line(subject), one_line(author)
    if subject and author:
        return f"{subject} (by {author})"
    return subject or (f"by {author}" if author else "")


def more(count: int) -> str:
    """`and 3 more`: the tail of a list that was cut."""
    return f"and {count} more"


def headline(
    event: GitOpsEvent, escape: Escaper = plain, *, problem_start: datetime | None = None
) -> str:
    """The one sentence that says what happened and where (pure)."""
    who = subject(event, escape)
    rev = escape(short_version(event.revision))
    prev = escape(short_version(event.previous_revision))
    target = rev or (escape(value(short_version(event.chart_version), 40)))
    by = actor_phrase(event.actor, escape)
    kind = event.kind
    if kind is EventKind.DRIFT_DETECTED:
        text = f"{who} no longer matches Git"
    elif kind is EventKind.DRIFT_RESOLVED:
        text = f"{who} matches Git again"
    elif kind is EventKind.DEPLOY_STARTED:
        text = f"{who}: deploying {target}{by}" if target else f"{who}: deploy started{by}"
    elif kind is EventKind.DEPLOY_SUCCEEDED:
        if target and prev and prev != target:
            text = f"{who} was updated from {prev} to {target}{by}"
        else:
            text = f"{who}: deployed {target}{by}" if target else f"{who}: deploy succeeded{by}"
    elif kind is EventKind.DEPLOY_FAILED:
        text = f"{who}: deploy of {target} failed" if target else f"{who}: deploy failed"
    elif kind is EventKind.HEALTH_DEGRADED:
        text = f"{who} is unhealthy"
    elif kind is EventKind.HEALTH_RECOVERED:
        text = f"{who} is healthy again"
    elif kind is EventKind.ROLLBACK_SUCCEEDED:
        text = rollback_sentence(event, escape)
    elif kind is EventKind.ROLLBACK_FAILED:
        text = f"{who}: rollback to {target} failed" if target else f"{who}: rollback failed"
    elif kind is EventKind.OUT_OF_SYNC:
        text = (
            f"{who}: {target} is waiting to be deployed"
            if target
            else f"{who} has changes in Git waiting to be deployed"
        )
    elif kind is EventKind.SUSPENDED:
        text = f"{who} was paused{by}: new changes in Git are not deployed"
    elif kind is EventKind.RESUMED:
        text = f"{who} was resumed{by} and follows Git again"
    elif kind is EventKind.SOURCE_FAILED:
        text = f"{who} cannot fetch its source"
    elif kind is EventKind.SOURCE_RECOVERED:
        text = f"{who} can fetch its source again"
    elif kind is EventKind.DELETED:
        text = f"{who} was deleted{by}"
    elif kind is EventKind.FLAPPING:
        text = f"{who} keeps flipping between states; further changes are held until it settles"
    else:  # a kind added to the model before a phrase was written for it
        text = f"{who}: {escape(str(kind).replace('_', ' '))}"
    if kind in RECOVERY_KINDS and kind is not EventKind.ROLLBACK_SUCCEEDED:
        lasted = recovery_time(event, problem_start)
        if lasted is not None:
            text += f" (after {duration(lasted)})"
    return text


def rollback_sentence(
    event: GitOpsEvent, escape: Escaper = plain, *, problem: GitOpsEvent | None = None
) -> str:
    """A rollback says that the release did not ship: `podinfo on staging: upgrade to 6.6.1
    failed and was rolled back to 6.6.0`; `payments on prod: 7d2e4f6 was rolled back to
    ea87599 by alice`. `problem` is the alert the rollback closes, when there is one."""
    who = subject(event, escape)
    target = escape(short_version(event.revision or event.chart_version))
    prev = escape(short_version(event.previous_revision))
    if problem is not None and problem.kind is EventKind.DEPLOY_FAILED:
        prev = escape(short_version(problem.revision or problem.chart_version)) or prev
    to = f" to {target}" if target else ""
    by = actor_phrase(event.actor, escape)
    if event.tool is Tool.FLUX and event.object_kind == "HelmRelease":
        attempt = f"upgrade to {prev}" if prev else "the upgrade"
        return f"{who}: {attempt} failed and was rolled back{to}{by}"
    if problem is not None and problem.kind is EventKind.DEPLOY_FAILED:
        attempt = f"deploy of {prev}" if prev else "the deploy"
        return f"{who}: {attempt} failed and was rolled back{to}{by}"
    if problem is not None and problem.kind is EventKind.HEALTH_DEGRADED:
        attempt = prev or "the release"
        return f"{who}: {attempt} was unhealthy and was rolled back{to}{by}"
    if prev and target:
        return f"{who}: {prev} was rolled back{by}; {target} runs again"
    if prev:
        return f"{who}: {prev} was rolled back{by}"
    return f"{who} was rolled back{to}{by}"


def resolved_headline(original: GitOpsEvent, recovery: GitOpsEvent, escape: Escaper = plain) -> str:
    """The sentence of an alert once `recovery` closed it: `checkout on prod matches Git
    again (after 14 min)`; a rollback says the release did not ship."""
    if recovery.kind is EventKind.ROLLBACK_SUCCEEDED:
        return rollback_sentence(recovery, escape, problem=original)
    return headline(recovery, escape, problem_start=recovery.since or original.occurred_at)


def status_word(event: GitOpsEvent, *, resolves: GitOpsEvent | None = None) -> str:
    """`Needs action`, `Needs attention`, `For your information` or `Resolved`: what the
    reader has to do, said in words. `resolves` is the alert `event` closes, if any (a
    recovery whose problem is known, `since`, closes one too); a rollback is never
    "Resolved" (the release did not ship)."""
    closes = (
        resolves is not None
        or event.kind in CLOSING_KINDS
        or (event.since is not None and event.kind in RECOVERY_KINDS)
    )
    if closes and event.kind is not EventKind.ROLLBACK_SUCCEEDED:
        return WORD_RESOLVED
    return SEVERITY_WORDS[event.severity]


def first_line(
    event: GitOpsEvent, escape: Escaper = plain, *, resolves: GitOpsEvent | None = None
) -> str:
    """`Needs action · guestbook on prod is unhealthy`: the word, then the sentence (pure)."""
    sentence = (
        resolved_headline(resolves, event, escape)
        if resolves is not None
        else headline(event, escape)
    )
    return f"{status_word(event, resolves=resolves)}{SEPARATOR}{sentence}"


def is_problem(event: GitOpsEvent) -> bool:
    return event.kind in PROBLEM_KINDS


def is_recovery(event: GitOpsEvent) -> bool:
    return event.kind in RECOVERY_KINDS and event.kind not in PROBLEM_KINDS


GOOD = "good"
"""The tone of a message that says all is well again; otherwise a message takes its severity."""


def tone(event: GitOpsEvent, *, resolves: GitOpsEvent | None = None) -> Severity | str:
    """GOOD when `event` closes an alert (as `status_word` says "Resolved"), else its
    severity: the icon of a Slack message, the colour of a Teams card."""
    if status_word(event, resolves=resolves) == WORD_RESOLVED:
        return GOOD
    return event.severity


def group_tone(group: EventGroup) -> Severity | str:
    """GOOD when every member of `group` is a recovery, else the group's severity."""
    return GOOD if all(is_recovery(e) for e in group.events) else group.severity


# Group headlines: {n} count, {apps} "app"/"apps", {on} " on prod", {rev} " 1a2b3c4",
# {after} " after revision 1a2b3c4".
_GROUP: dict[EventKind, str] = {
    EventKind.DRIFT_DETECTED: "{n} {apps} drifted{on}{after}",
    EventKind.DRIFT_RESOLVED: "{n} {apps} match Git again{on}",
    EventKind.DEPLOY_STARTED: "{n} {apps} started deploying{rev}{on}",
    EventKind.DEPLOY_SUCCEEDED: "{n} {apps} deployed{rev}{on}",
    EventKind.DEPLOY_FAILED: "{n} {apps} failed to deploy{rev}{on}",
    EventKind.HEALTH_DEGRADED: "{n} {apps} became unhealthy{on}{after}",
    EventKind.HEALTH_RECOVERED: "{n} {apps} are healthy again{on}",
    EventKind.ROLLBACK_SUCCEEDED: "{n} {apps} were rolled back{on}",
    EventKind.ROLLBACK_FAILED: "{n} rollbacks failed{on}",
    EventKind.OUT_OF_SYNC: "{n} {apps} have changes waiting to be deployed{on}",
    EventKind.SUSPENDED: "{n} {apps} were paused{on}",
    EventKind.RESUMED: "{n} {apps} follow Git automatically again{on}",
    EventKind.SOURCE_FAILED: "{n} {apps} cannot fetch their source{on}{after}",
    EventKind.SOURCE_RECOVERED: "{n} {apps} can fetch their source again{on}",
    EventKind.DELETED: "{n} {apps} were deleted{on}",
    EventKind.FLAPPING: "{n} {apps} keep flipping between states{on}",
}
_GROUP_MIXED_PROBLEM = "{n} {apps} need attention{on}{after}"
_GROUP_MIXED = "{n} changes{on}{after}"

# Short verbs for a member of a group whose kinds differ.
_MEMBER: dict[EventKind, str] = {
    EventKind.DRIFT_DETECTED: "drifted",
    EventKind.DRIFT_RESOLVED: "matches Git again",
    EventKind.DEPLOY_STARTED: "deploying",
    EventKind.DEPLOY_SUCCEEDED: "deployed",
    EventKind.DEPLOY_FAILED: "deploy failed",
    EventKind.HEALTH_DEGRADED: "unhealthy",
    EventKind.HEALTH_RECOVERED: "healthy again",
    EventKind.ROLLBACK_SUCCEEDED: "rolled back",
    EventKind.ROLLBACK_FAILED: "rollback failed",
    EventKind.OUT_OF_SYNC: "waiting to be deployed",
    EventKind.SUSPENDED: "paused",
    EventKind.RESUMED: "resumed",
    EventKind.SOURCE_FAILED: "source failing",
    EventKind.SOURCE_RECOVERED: "source back",
    EventKind.DELETED: "deleted",
    EventKind.FLAPPING: "flapping",
}


def group_headline(group: EventGroup, escape: Escaper = plain) -> str:
    """`37 apps drifted on prod after revision 1a2b3c4` (pure)."""
    if group.count == 1:
        return headline(group.events[0], escape)
    names = {e.name for e in group.events}
    cluster = value(group.cluster, MAX_CLUSTER, escape)
    rev = escape(short_revision(group.revision))
    if group.kind is not None:
        template = _GROUP.get(group.kind, _GROUP_MIXED)
    elif all(e.kind in PROBLEM_KINDS for e in group.events):
        template = _GROUP_MIXED_PROBLEM
    else:
        template = _GROUP_MIXED
    return template.format(
        n=len(names) if len(names) > 1 else group.count,
        apps="app" if len(names) == 1 else "apps",
        on=f" on {cluster}" if cluster else "",
        rev=f" {rev}" if rev else "",
        after=f" after revision {rev}" if rev else "",
    )


def group_breakdown(group: EventGroup) -> str:
    """`30 drifted, 7 deploy failed` for a group of mixed kinds; empty when all share a kind."""
    if group.kind is not None:
        return ""
    counts = Counter(e.kind for e in group.events)
    return ", ".join(f"{n} {_MEMBER.get(k, str(k))}" for k, n in counts.most_common())


def member_line(event: GitOpsEvent, group: EventGroup, escape: Escaper = plain) -> str:
    """One member of a group, saying only what the group headline does not."""
    line = app_name(event, escape)
    if event.namespace and event.namespace != group.namespace:
        line += f" in {value(event.namespace, MAX_CLUSTER, escape)}"
    if event.cluster and not group.cluster:
        line += f" on {value(event.cluster, MAX_CLUSTER, escape)}"
    notes = []
    if group.kind is None:
        notes.append(_MEMBER.get(event.kind, str(event.kind)))
    if event.revision and not group.revision:
        notes.append(escape(short_revision(event.revision)))
    return f"{line}: {', '.join(notes)}" if notes else line


def where(event: GitOpsEvent) -> str:
    """`namespace shop on prod`: where the workload runs (unescaped). For Argo CD that is the
    Application's destination, not the namespace the Application object lives in."""
    cluster = cluster_name(event)
    namespace = one_line(event.destination_namespace)
    if not namespace and event.tool is Tool.FLUX:
        namespace = one_line(event.namespace)
    place = f"namespace {namespace}" if namespace else ""
    if cluster:
        place = f"{place} on {cluster}" if place else f"cluster {cluster}"
    if one_line(event.destination_cluster) and one_line(event.cluster):
        place += f" (deployed from {one_line(event.cluster)})"
    return place


def object_line(event: GitOpsEvent) -> str:
    """`Application argocd/checkout (Argo CD), project shop`: the object that reported it."""
    path = "/".join(p for p in (one_line(event.namespace), one_line(event.name)) if p)
    text = " ".join(p for p in (one_line(event.object_kind), path) if p)
    text = f"{text} ({tool_name(event.tool)})" if text else tool_name(event.tool)
    project = one_line(event.project)
    return f"{text}, project {project}" if project else text


def time_label(event: GitOpsEvent) -> str:
    """What the time of `event` is called: `Problem began`, `Deployed at`, `Happened at` …"""
    if event.kind in PROBLEM_KINDS and event.kind not in TIME_LABELS:
        return LABEL_PROBLEM_BEGAN
    return TIME_LABELS.get(event.kind, LABEL_HAPPENED_AT)


def severity_word(severity: Severity) -> str:
    return SEVERITY_WORDS[severity]


def group_status_word(group: EventGroup) -> str:
    """A storm's word: `Resolved` once every problem has recovered, else its worst severity's."""
    return WORD_RESOLVED if group.cleared else SEVERITY_WORDS[group.severity]
