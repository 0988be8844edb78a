"""Answers to chat commands and the App Home view, as Slack Block Kit. Pure: decides only.

Each `answer_*` function takes the facts (app states, alerts, audit entries, mutes, the config)
and returns `{"text", "blocks"}` ready for chat.postEphemeral. The first line answers the
question in plain words for someone who does not run Kubernetes ("prod: 2 of 14 apps need
attention"); details for engineers follow. Every value from a cluster, from Git or from the
person asking is escaped, and every answer stays within Block Kit's limits whatever the input.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from config.routing import describe_match, explain
from config.schema import Config
from core.model import AppKey, AppState, EventKind, GitOpsEvent, Health, SyncStatus
from formatters import chat_phrases as say
from formatters import escape as esc
from formatters import phrases
from formatters.revision import short_revision

Answer = dict[str, Any]
Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION = 2900
"""Section text budget, under Slack's 3,000."""
MAX_HEADER = 150
MAX_FALLBACK = 2000
MAX_LIST = 25
"""Longest list in one section before "and N more"."""
MAX_CLUSTERS = 20
MAX_APPS_DETAILED = 5
MAX_MESSAGE = 1500
MAX_REASON = 200
NAME = phrases.MAX_NAME
CLUSTER = phrases.MAX_CLUSTER

BLOCK_NOTE = "driftbot_note"
"""The context block a button click adds to an alert (who acknowledged or muted it)."""

ICON_RED = ":red_circle:"
ICON_ORANGE = ":large_orange_circle:"
ICON_GREEN = ":large_green_circle:"
ICON_GREY = ":white_circle:"


class Condition(StrEnum):
    """What an app's state means for the people reading `status`, worst first."""

    FAILING = "failing"
    DRIFTED = "drifted"
    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    UNKNOWN = "unknown"
    OK = "ok"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def bad(self) -> bool:
        return self in (Condition.FAILING, Condition.DRIFTED)


_RANK = {c: i for i, c in enumerate(Condition)}
_FAILED_PHASES = frozenset({"Failed", "Error"})
_FLUX_BUSY = frozenset({"Progressing", "ProgressingWithRetry", "DependencyNotReady"})


def condition(state: AppState) -> Condition:
    """The one word that sums up `state` (pure)."""
    if state.health in (Health.DEGRADED, Health.MISSING):
        return Condition.FAILING
    if state.operation is not None and state.operation.phase in _FAILED_PHASES:
        return Condition.FAILING
    if state.ready is False and not state.suspended and state.ready_reason not in _FLUX_BUSY:
        return Condition.FAILING
    comparison = state.condition("ComparisonError")
    if state.sync is SyncStatus.UNKNOWN and comparison is not None:
        return Condition.FAILING
    if state.sync is SyncStatus.OUT_OF_SYNC:
        pending = state.desired_revision and state.desired_revision != state.revision
        return Condition.PENDING if pending else Condition.DRIFTED
    if state.suspended:
        return Condition.PAUSED
    running = state.operation is not None and state.operation.phase == "Running"
    if state.health is Health.PROGRESSING or running or state.ready_reason in _FLUX_BUSY:
        return Condition.PROGRESSING
    if state.health is Health.HEALTHY or state.ready is True:
        return Condition.OK
    if state.sync is SyncStatus.SYNCED and state.health is Health.UNKNOWN and state.ready is None:
        return Condition.OK if state.tool.value == "flux" else Condition.UNKNOWN
    return Condition.UNKNOWN


def _order(state: AppState) -> tuple[int, str, str, str]:
    return (condition(state).rank, state.name, state.namespace, state.kind)


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """One cluster's apps by condition; `problems` are those not fine, worst first."""

    cluster: str
    total: int
    counts: tuple[tuple[Condition, int], ...]
    problems: tuple[AppState, ...]
    synced: int
    """In sync with Git and not failing (so synced, drifted and failing never overlap)."""

    def count(self, cond: Condition) -> int:
        return dict(self.counts).get(cond, 0)

    @property
    def bad(self) -> int:
        return self.count(Condition.FAILING) + self.count(Condition.DRIFTED)

    @property
    def drifted(self) -> int:
        return self.count(Condition.DRIFTED) + self.count(Condition.PENDING)

    @property
    def failing(self) -> int:
        return self.count(Condition.FAILING)

    @property
    def icon(self) -> str:
        if self.bad:
            return ICON_RED
        if self.problems:
            return ICON_ORANGE
        return ICON_GREEN

    def fingerprint(self) -> tuple[str, int, int, int, int]:
        return (self.cluster, self.total, self.synced, self.drifted, self.failing)


def live(states: Iterable[AppState]) -> list[AppState]:
    """The states of apps that still exist."""
    return [s for s in states if not s.deleted]


def summarize(states: Iterable[AppState]) -> list[ClusterSummary]:
    """Per cluster, worst first: most failing, then most drifted, then by name (pure)."""
    by_cluster: dict[str, list[AppState]] = {}
    for state in live(states):
        by_cluster.setdefault(state.cluster, []).append(state)
    summaries = []
    for cluster, members in by_cluster.items():
        conds = Counter(condition(s) for s in members)
        problems = sorted((s for s in members if condition(s) is not Condition.OK), key=_order)
        summaries.append(
            ClusterSummary(
                cluster=cluster,
                total=len(members),
                counts=tuple(sorted(conds.items(), key=lambda kv: kv[0].rank)),
                problems=tuple(problems),
                synced=sum(
                    1
                    for s in members
                    if s.sync is SyncStatus.SYNCED
                    and condition(s) not in (Condition.FAILING, Condition.DRIFTED)
                ),
            )
        )
    return sorted(
        summaries,
        key=lambda s: (-s.failing, -s.bad, -len(s.problems), s.cluster),
    )


# --- building blocks -----------------------------------------------------------------------------


def _v(text: str, limit: int = NAME) -> str:
    """An untrusted value for mrkdwn: one line, bounded, escaped."""
    return phrases.value(text, limit, esc.slack)


def escaped(text: str, limit: int = NAME) -> str:
    """Untrusted text (a user's input, a cluster's value) for mrkdwn: one line, bounded."""
    return _v(text, limit)


def _code(text: str, limit: int = 120) -> str:
    """An untrusted value shown as inline code (backticks cannot close it early)."""
    value = phrases.value(text.replace("`", "'"), limit, esc.slack)
    return f"`{value}`" if value else "``"


def _date(moment: datetime) -> str:
    """A date Slack shows in each reader's time zone, with a UTC fallback."""
    fallback = phrases.time_utc(moment)
    try:
        epoch = int(moment.timestamp())
    except (OverflowError, OSError, ValueError):
        return fallback
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"


_USER_ID = re.compile(r"[UW][A-Z0-9]{2,40}")


def who(user: str) -> str:
    """A Slack user id as a mention; anything else as inert text."""
    if _USER_ID.fullmatch(user):
        return f"<@{user}>"
    return _v(user, phrases.MAX_ACTOR) or "someone"


def app_label(state: AppState) -> str:
    return _v(state.name) or phrases.UNNAMED


def _header(text: str) -> Block:
    plain = esc.truncate(esc.one_line(text), MAX_HEADER) or "driftbot"
    return {"type": "header", "text": {"type": "plain_text", "text": plain}}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _fit_mrkdwn(text) or "-"}}


def _context(text: str, block_id: str | None = None) -> Block:
    block: Block = {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _fit_mrkdwn(text) or "-"}],
    }
    if block_id:
        block["block_id"] = block_id
    return block


_PARTIAL = re.compile(r"(&[a-z]{0,3}|<[^>]*)$")


def _fit_mrkdwn(text: str, limit: int = MAX_SECTION) -> str:
    """Already escaped mrkdwn cut to `limit`, never inside an entity or a `<...>` token."""
    if len(text) <= limit:
        return text
    cut = _PARTIAL.sub("", text[: limit - 1])
    return cut + esc.ELLIPSIS


def _listing(lines: Sequence[str], limit: int = MAX_SECTION, most: int = MAX_LIST) -> str:
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


def _answer(title: str, sections: Sequence[str], context: Sequence[str] = ()) -> Answer:
    blocks: list[Block] = [_header(title)]
    blocks += [_section(s) for s in sections if s][: MAX_BLOCKS - 1 - len(context)]
    blocks += [_context(c) for c in context if c]
    first = next((s for s in sections if s), "")
    fallback = f"{esc.one_line(title)}: {first}" if first else esc.one_line(title)
    return {"text": _fit_mrkdwn(fallback, MAX_FALLBACK), "blocks": blocks}


def answer_text(text: str) -> Answer:
    """A one-sentence answer (already escaped)."""
    return {"text": _fit_mrkdwn(text, MAX_FALLBACK), "blocks": [_section(text)]}


# --- help and usage ------------------------------------------------------------------------------


def answer_help(command: str) -> Answer:
    lines = [f"`{command} {usage}`: {meaning}" for usage, meaning in say.HELP_LINES]
    return _answer(say.HELP_TITLE, ["\n".join(lines)], [say.HELP_TARGETS])


def answer_usage(command: str, problem: str, verb: str | None = None) -> Answer:
    """`problem` (already escaped) with an example of the verb and a pointer to help."""
    lines = [problem]
    if verb in say.EXAMPLES:
        lines.append(say.USAGE_EXAMPLE.format(command=command, example=say.EXAMPLES[verb]))
    lines.append(say.USAGE_SEE_HELP.format(command=command))
    return answer_text("\n".join(lines))


# --- status --------------------------------------------------------------------------------------


def _app_sentence(state: AppState, since: Mapping[AppKey, datetime]) -> str:
    cond = condition(state)
    text = say.CONDITION_SENTENCES[cond.value].format(app=app_label(state))
    began = since.get(state.key)
    if began is not None and cond is not Condition.OK:
        text += say.SINCE.format(when=_date(began))
    return text


def _cluster_line(summary: ClusterSummary) -> str:
    apps = say.plural(summary.total, "app", "apps")
    if summary.bad:
        text = say.STATUS_SOME_BAD.format(bad=summary.bad, n=summary.total, apps=apps)
    elif summary.problems:
        text = say.STATUS_SOME_BUSY.format(n=summary.total, apps=apps, busy=len(summary.problems))
    else:
        text = say.STATUS_ALL_GOOD.format(n=summary.total, apps=apps)
    return f"{summary.icon} *{_v(summary.cluster, CLUSTER)}*: {text}"


def _counts(summary: ClusterSummary) -> str:
    return ", ".join(f"{n} {say.CONDITION_WORDS[c.value]}" for c, n in summary.counts)


def answer_status(
    states: Iterable[AppState],
    now: datetime,
    *,
    what: str | None = None,
    since: Mapping[AppKey, datetime] | None = None,
    empty: str = say.STATUS_NOTHING,
) -> Answer:
    """Green or red per cluster, worst first, with what is wrong in each (pure)."""
    since = since or {}
    title = say.STATUS_TITLE_FOR.format(what=what) if what else say.STATUS_TITLE_ALL
    summaries = summarize(states)
    if not summaries:
        return _answer(title, [empty])
    sections = []
    for summary in summaries[:MAX_CLUSTERS]:
        lines = [_cluster_line(summary)]
        if summary.problems:
            problems = [f"• {_app_sentence(s, since)}" for s in summary.problems]
            lines.append(_listing(problems, MAX_SECTION - 400, 10))
            lines.append(f"_{_counts(summary)}_")
        sections.append("\n".join(lines))
    if len(summaries) > MAX_CLUSTERS:
        sections.append(say.STATUS_MORE_CLUSTERS.format(n=len(summaries) - MAX_CLUSTERS))
    return _answer(title, sections, [say.STATUS_UPDATED.format(when=_date(now))])


def answer_no_match(what: str, near: Sequence[str] = ()) -> Answer:
    shown = _code(what)
    if near:
        options = ", ".join(_code(n) for n in near[:3])
        return answer_text(say.STATUS_NO_MATCH_NEAR.format(what=shown[1:-1], near=options))
    return answer_text(say.STATUS_NO_MATCH.format(what=shown[1:-1]))


def _fields(pairs: Sequence[tuple[str, str]]) -> Block:
    fields = [
        {"type": "mrkdwn", "text": _fit_mrkdwn(f"*{label}*\n{value or '-'}", 1900)}
        for label, value in pairs[:10]
    ]
    return {"type": "section", "fields": fields}


def _app_blocks(
    state: AppState, alerts: Sequence[GitOpsEvent], since: Mapping[AppKey, datetime]
) -> list[Block]:
    cond = condition(state)
    icon = {Condition.FAILING: ICON_RED, Condition.DRIFTED: ICON_RED, Condition.OK: ICON_GREEN}
    head = f"{icon.get(cond, ICON_ORANGE)} *{_app_sentence(state, since)}*"
    head += f" on *{_v(state.cluster, CLUSTER)}*"
    pairs: list[tuple[str, str]] = [
        (say.APP_FIELD_WHERE, _v(f"{state.cluster} / {state.namespace} / {state.kind}", 200)),
        (say.APP_FIELD_SYNC, state.sync.value.replace("_", " ")),
        (say.APP_FIELD_HEALTH, state.health.value),
        (say.APP_FIELD_REVISION, _code(state.revision, 100) if state.revision else ""),
    ]
    if state.desired_revision and state.desired_revision != state.revision:
        pairs.append((say.APP_FIELD_DESIRED, _code(state.desired_revision, 100)))
    if state.chart or state.chart_version:
        pairs.append((say.APP_FIELD_CHART, _v(f"{state.chart} {state.chart_version}".strip())))
    if state.operation is not None and state.operation.phase:
        op = state.operation
        text = _v(op.phase, 40)
        if op.finished_at or op.started_at:
            text += " " + _date(op.finished_at or op.started_at or state.observed_at)
        text += phrases.actor_phrase(op.initiated_by, esc.slack)
        pairs.append((say.APP_FIELD_LAST_OP, text))
    if state.tool.value == "argocd":
        auto = say.APP_AUTO_ON.format(heal="on" if state.self_heal else "off")
        pairs.append((say.APP_FIELD_AUTO, auto if state.auto_sync else say.APP_AUTO_OFF))
    if alerts:
        listed = ", ".join(
            f"{e.kind.value.replace('_', ' ')} {_date(e.occurred_at)}" for e in alerts[:4]
        )
        pairs.append((say.APP_FIELD_ALERTS, listed))
    blocks = [_section(head), _fields(pairs)]
    extra: list[str] = []
    if state.out_of_sync_resources:
        names = [_code(str(r), 150) for r in state.out_of_sync_resources[:10]]
        rest = max(state.out_of_sync_count, len(state.out_of_sync_resources)) - len(names)
        if rest > 0:
            names.append(phrases.more(rest))
        extra.append(say.APP_OUT_OF_SYNC.format(resources=", ".join(names)))
    if state.message:
        quoted = "\n".join(
            "> " + line
            for line in esc.fit(esc.clean(state.message), MAX_MESSAGE, esc.slack).split("\n")[:15]
        )
        extra.append(f"{say.APP_MESSAGE}\n{quoted}")
    link = _link(state)
    if link:
        extra.append(link)
    if extra:
        blocks.append(_section("\n".join(extra)))
    return blocks


def _link(state: AppState) -> str:
    url = state.url
    if not url or not re.fullmatch(r"https?://[^\s<>|]{1,2000}", url):
        return ""
    return say.APP_LINK.format(url=url, tool=phrases.tool_name(state.tool))


def answer_apps(
    states: Sequence[AppState],
    now: datetime,
    *,
    what: str,
    alerts: Mapping[AppKey, Sequence[GitOpsEvent]] | None = None,
    since: Mapping[AppKey, datetime] | None = None,
) -> Answer:
    """One or a few apps in detail, worst first (pure)."""
    alerts, since = alerts or {}, since or {}
    ordered = sorted(live(states), key=lambda s: (*_order(s), s.cluster))
    blocks: list[Block] = [_header(say.STATUS_TITLE_FOR.format(what=what))]
    for state in ordered[:MAX_APPS_DETAILED]:
        blocks += _app_blocks(state, alerts.get(state.key, ()), since)
        blocks.append({"type": "divider"})
    if len(ordered) > MAX_APPS_DETAILED:
        blocks.append(_context(say.APP_MORE.format(n=len(ordered) - MAX_APPS_DETAILED)))
    blocks.append(_context(say.STATUS_UPDATED.format(when=_date(now))))
    first = _app_sentence(ordered[0], since) if ordered else ""
    return {"text": _fit_mrkdwn(first or what, MAX_FALLBACK), "blocks": blocks[:MAX_BLOCKS]}


# --- drift ---------------------------------------------------------------------------------------


def answer_drift(
    states: Iterable[AppState], now: datetime, since: Mapping[AppKey, datetime] | None = None
) -> Answer:
    """Every app out of sync now, the longest-standing first, with since when (pure)."""
    since = since or {}
    out = [s for s in live(states) if condition(s) in (Condition.DRIFTED, Condition.PENDING)]
    if not out:
        return _answer(say.DRIFT_TITLE, [f"{ICON_GREEN} {say.DRIFT_NONE}"])

    def began(state: AppState) -> tuple[float, str, str]:
        moment = since.get(state.key)
        return (moment.timestamp() if moment else float("inf"), state.cluster, state.name)

    lines = []
    for state in sorted(out, key=began):
        if condition(state) is Condition.DRIFTED:
            what = say.DRIFT_WHAT_DRIFT
            count = max(state.out_of_sync_count, len(state.out_of_sync_resources))
            if count:
                noun = say.plural(count, "resource", "resources")
                what += " (" + say.DRIFT_RESOURCES.format(count=count, resources=noun) + ")"
        else:
            rev = short_revision(state.desired_revision)
            what = (
                say.DRIFT_WHAT_PENDING.format(rev=_code(rev, 60))
                if rev
                else say.DRIFT_WHAT_PENDING_NO_REV
            )
        moment = since.get(state.key)
        lines.append(
            "• "
            + say.DRIFT_LINE.format(
                app=app_label(state),
                cluster=_v(state.cluster, CLUSTER),
                what=what,
                since=say.SINCE.format(when=_date(moment)) if moment else "",
            )
        )
    return _answer(say.DRIFT_TITLE, [_listing(lines)], [say.STATUS_UPDATED.format(when=_date(now))])


# --- history, versions, audit --------------------------------------------------------------------


class AuditRecord(Protocol):
    """One audit log entry, as the store returns it."""

    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def app(self) -> AppKey | None: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...


def _audit_line(entry: AuditRecord) -> str:
    action = say.AUDIT_ACTIONS.get(entry.action, _v(entry.action, 40))
    detail = entry.detail if isinstance(entry.detail, Mapping) else {}
    parts = []
    for key in ("target", "until", "reason", "command", "revision"):
        value = detail.get(key)
        if isinstance(value, str) and value:
            parts.append(f"{key} {_v(value, 120)}")
    if entry.app is not None and not detail.get("target"):
        parts.insert(0, f"on {_v(entry.app.cluster, CLUSTER)}")
    return say.AUDIT_LINE.format(
        when=_date(entry.at),
        actor=who(entry.actor),
        action=action,
        detail=f" ({', '.join(parts)})" if parts else "",
    )


def answer_history(app: str, states: Sequence[AppState], audit: Sequence[AuditRecord]) -> Answer:
    """Recent deploys and rollbacks per cluster, then what driftbot recorded (pure)."""
    title = say.HISTORY_TITLE.format(app=esc.one_line(app))
    sections = []
    for state in sorted(states, key=lambda s: (s.cluster, s.namespace, s.kind)):
        lines = []
        for entry in state.history:
            rev = short_revision(entry.revision)
            chart = f", chart {_v(entry.chart_version, 40)}" if entry.chart_version else ""
            if entry.status:
                chart += f" ({_v(entry.status, 30)})"
            when = _date(entry.deployed_at) if entry.deployed_at else say.HISTORY_UNKNOWN_TIME
            lines.append(
                "• "
                + say.HISTORY_DEPLOY.format(
                    when=when,
                    rev=_code(rev, 60) if rev else "-",
                    chart=chart,
                    by=phrases.actor_phrase(entry.initiated_by, esc.slack),
                )
            )
        if lines:
            head = f"*{_v(state.cluster, CLUSTER)}* / {_v(state.namespace, CLUSTER)}"
            sections.append(head + "\n" + _listing(lines, MAX_SECTION - 200))
    if audit:
        lines = ["• " + _audit_line(e) for e in audit]
        sections.append(f"*{say.HISTORY_AUDIT_TITLE}*\n" + _listing(lines, MAX_SECTION - 100))
    if not sections:
        sections = [say.HISTORY_NONE.format(app=_code(app)[1:-1])]
    return _answer(title, sections[: MAX_BLOCKS - 2])


def answer_versions(app: str, states: Sequence[AppState]) -> Answer:
    """Revision and chart version in each cluster; a mismatch between clusters is flagged."""
    title = say.VERSIONS_TITLE.format(app=esc.one_line(app))
    present = sorted(live(states), key=lambda s: (s.cluster, s.namespace, s.kind))
    lines = []
    for state in present:
        rev = short_revision(state.revision)
        pending = ""
        if state.desired_revision and state.desired_revision != state.revision:
            pending = say.VERSIONS_PENDING.format(
                rev=_code(short_revision(state.desired_revision), 60)
            )
        lines.append(
            "• "
            + say.VERSIONS_LINE.format(
                cluster=_v(state.cluster, CLUSTER),
                namespace=_v(state.namespace, CLUSTER),
                rev=_code(rev, 60) if rev else "-",
                chart=say.VERSIONS_CHART.format(chart=_v(state.chart_version, 60))
                if state.chart_version
                else "",
                app_version=say.VERSIONS_APP_VERSION.format(version=_v(state.app_version, 60))
                if state.app_version
                else "",
                pending=pending,
            )
        )
    differ = []
    if len({s.revision for s in present}) > 1:
        differ.append(say.VERSIONS_WHAT_REVISION)
    if len({s.chart_version for s in present}) > 1:
        differ.append(say.VERSIONS_WHAT_CHART)
    verdict = ""
    if len(present) > 1:
        verdict = (
            say.VERSIONS_MISMATCH.format(what=" and ".join(differ)) if differ else say.VERSIONS_SAME
        )
    return _answer(title, [s for s in (verdict, _listing(lines)) if s])


def answer_audit(app: str, entries: Sequence[AuditRecord]) -> Answer:
    title = say.AUDIT_TITLE.format(app=esc.one_line(app))
    if not entries:
        return _answer(title, [say.AUDIT_NONE.format(app=_code(app)[1:-1])])
    return _answer(title, [_listing(["• " + _audit_line(e) for e in entries])])


# --- routes --------------------------------------------------------------------------------------

ROUTE_KINDS = (EventKind.DRIFT_DETECTED, EventKind.DEPLOY_FAILED, EventKind.DEPLOY_SUCCEEDED)
"""The kinds `routes APP` explains: a problem, a failure and good news."""


def _receiver_names(config: Config, names: Iterable[str]) -> str:
    by_name = {r.name: r for r in config.receivers}
    shown = []
    for name in names:
        receiver = by_name.get(name)
        channel = receiver.slack.channel if receiver and receiver.slack else ""
        if re.fullmatch(r"[CG][A-Z0-9]{2,40}", channel):
            shown.append(f"<#{channel}>")
        else:
            shown.append(_v(name, 60))
    return ", ".join(shown) or say.ROUTES_DROPPED


def answer_routes(app: str | None, states: Sequence[AppState], config: Config) -> Answer:
    """`routes`: every rule in order; `routes APP`: where each kind of alert about APP goes."""
    if not config.routes:
        return _answer(say.ROUTES_TITLE_ALL, [say.ROUTES_NONE])
    if app is None:
        lines = [
            say.ROUTES_RULE.format(
                index=i,
                match=_code(describe_match(r.match), 300),
                receivers=_receiver_names(config, r.receivers),
            )
            for i, r in enumerate(config.routes)
        ]
        return _answer(say.ROUTES_TITLE_ALL, [_listing(lines)])
    lines = []
    for state in sorted(live(states), key=lambda s: (s.cluster, s.namespace))[:10]:
        for kind in ROUTE_KINDS:
            result = explain(
                state.name,
                state.cluster,
                kind,
                config,
                namespace=state.namespace,
                tool=state.tool.value,
                labels=state.labels,
                project=state.project,
                object_kind=state.kind,
            )[-1]
            lines.append(
                "• "
                + say.ROUTES_FOR_KIND.format(
                    kind=kind.value, cluster=_v(state.cluster, CLUSTER), result=_v(result, 400)
                )
            )
    title = say.ROUTES_TITLE.format(app=esc.one_line(app))
    return _answer(title, [_listing(lines)])


# --- mutes and acks ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MuteInfo:
    """A mute as people see it: what, until when, who set it and why."""

    target: str
    until: datetime
    who: str
    reason: str = ""


def _reason(reason: str) -> str:
    return say.MUTE_REASON.format(reason=_v(reason, MAX_REASON)) if reason.strip() else ""


def answer_mutes(mutes: Sequence[MuteInfo]) -> Answer:
    if not mutes:
        return _answer(say.MUTES_TITLE, [say.MUTES_NONE])
    lines = [
        "• "
        + say.MUTE_LINE.format(
            target=_code(m.target), until=_date(m.until), who=who(m.who), reason=_reason(m.reason)
        )
        for m in sorted(mutes, key=lambda m: (m.until, m.target))
    ]
    return _answer(say.MUTES_TITLE, [_listing(lines)])


def answer_muted(mute: MuteInfo) -> Answer:
    return answer_text(
        say.MUTED.format(
            target=_code(mute.target), until=_date(mute.until), reason=_reason(mute.reason)
        )
    )


def answer_unmuted(target: str, found: bool) -> Answer:
    template = say.UNMUTED if found else say.UNMUTE_NOTHING
    return answer_text(template.format(target=_code(target)))


def answer_acked(app: str, count: int) -> Answer:
    if count == 0:
        return answer_text(say.ACK_NOTHING.format(app=_code(app)))
    alerts = say.plural(count, "alert", "alerts")
    return answer_text(say.ACKED.format(n=count, alerts=alerts, app=_code(app)))


def answer_denied(action: str | None) -> Answer:
    """A polite refusal: to operate when `action` is given, to view at all otherwise."""
    if action is None:
        return answer_text(say.DENIED_VIEW)
    return answer_text(
        say.DENIED_OPERATE.format(action=say.DENIED_ACTIONS.get(action, _v(action, 40)))
    )


# --- buttons -------------------------------------------------------------------------------------


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
    return [*kept[: MAX_BLOCKS - 1], _context(note, BLOCK_NOTE)]


def note_acked(user: str, now: datetime) -> str:
    return say.NOTE_ACKED.format(who=who(user), when=_date(now))


def note_muted(user: str, until: datetime) -> str:
    return say.NOTE_MUTED.format(who=who(user), until=_date(until))


# --- App Home ------------------------------------------------------------------------------------


def home_fingerprint(summaries: Sequence[ClusterSummary]) -> tuple[Any, ...]:
    """What the home view shows, without the time: equal fingerprints, same view."""
    return tuple(s.fingerprint() for s in summaries)


def home_view(summaries: Sequence[ClusterSummary], now: datetime, command: str) -> dict[str, Any]:
    """The App Home tab: per cluster, synced, drifted and failing, worst first (pure)."""
    blocks: list[Block] = [_header(say.HOME_TITLE)]
    if not summaries:
        blocks.append(_section(say.HOME_NOTHING))
    room = (MAX_VIEW_BLOCKS - 4) // 2
    for summary in summaries[:room]:
        counts = say.HOME_COUNTS.format(
            total=summary.total,
            apps=say.plural(summary.total, "app", "apps"),
            synced=summary.synced,
            drifted=summary.drifted,
            failing=summary.failing,
        )
        line = say.HOME_CLUSTER.format(
            icon=summary.icon, cluster=_v(summary.cluster, CLUSTER), summary=counts
        )
        worst = [_app_sentence(s, {}) for s in summary.problems if condition(s).bad][:5]
        if worst:
            line += "\n" + "\n".join(f"• {w}" for w in worst)
        blocks.append(_section(line))
        blocks.append({"type": "divider"})
    if len(summaries) > room:
        blocks.append(_section(say.HOME_MORE.format(n=len(summaries) - room)))
    blocks.append(_context(say.HOME_UPDATED.format(when=_date(now), command=command)))
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def home_denied_view() -> dict[str, Any]:
    return {"type": "home", "blocks": [_section(say.HOME_DENIED)]}
