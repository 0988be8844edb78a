"""Answers about the apps as they are: `status` (per cluster, worst first), one or a few apps
in detail, and `drift` (what does not match Git, and since when). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from core.model import AppKey, AppState, GitOpsEvent
from core.summary import ClusterSummary, Condition, condition, live, summarize, worst_first
from formatters import chat_phrases as say
from formatters import details, phrases
from formatters import escape as esc
from formatters.blocks import MAX_FIELDS, field
from formatters.chat.parts import (
    CLUSTER,
    ICON_GREEN,
    ICON_ORANGE,
    ICON_RED,
    MAX_BLOCKS,
    MAX_FALLBACK,
    MAX_SECTION,
    Answer,
    Block,
    answer,
    answer_text,
    app_label,
    app_sentence,
    cluster_icon,
    code,
    context,
    date,
    escaped,
    fit,
    header,
    listing,
    section,
)
from formatters.revision import short_revision
from formatters.status_paths import app_page_url, environment_page_url

MAX_CLUSTERS = 20
MAX_APPS_DETAILED = 5
MAX_MESSAGE = 1500


def _cluster_line(summary: ClusterSummary, public_url: str = "") -> str:
    apps = say.plural(summary.total, "app", "apps")
    if summary.bad:
        text = say.STATUS_SOME_BAD.format(bad=summary.bad, n=summary.total, apps=apps)
    elif summary.problems:
        text = say.STATUS_SOME_BUSY.format(n=summary.total, apps=apps, busy=len(summary.problems))
    else:
        text = say.STATUS_ALL_GOOD.format(n=summary.total, apps=apps)
    name = escaped(summary.cluster, CLUSTER)
    page = details.link(environment_page_url(public_url, summary.cluster))
    if page:
        name = f"<{esc.slack(page)}|{name}>"
    return f"{cluster_icon(summary)} *{name}*: {text}"


def _counts(summary: ClusterSummary) -> str:
    return ", ".join(f"{n} {say.CONDITION_WORDS[c.value]}" for c, n in summary.counts)


def answer_status(
    states: Iterable[AppState],
    now: datetime,
    *,
    what: str | None = None,
    since: Mapping[AppKey, datetime] | None = None,
    empty: str = say.STATUS_NOTHING,
    public_url: str = "",
) -> Answer:
    """Green or red per cluster, worst first, with what is wrong in each (pure). With
    `public_url`, each cluster's name links to its status page."""
    since = since or {}
    title = say.STATUS_TITLE_FOR.format(what=what) if what else say.STATUS_TITLE_ALL
    summaries = summarize(states)
    if not summaries:
        return answer(title, [empty])
    sections = []
    for summary in summaries[:MAX_CLUSTERS]:
        lines = [_cluster_line(summary, public_url)]
        if summary.problems:
            problems = [f"• {app_sentence(s, since)}" for s in summary.problems]
            lines.append(listing(problems, MAX_SECTION - 400, 10))
            lines.append(f"_{_counts(summary)}_")
        sections.append("\n".join(lines))
    if len(summaries) > MAX_CLUSTERS:
        sections.append(say.STATUS_MORE_CLUSTERS.format(n=len(summaries) - MAX_CLUSTERS))
    return answer(title, sections, [say.STATUS_UPDATED.format(when=date(now))])


def answer_no_match(what: str, near: Sequence[str] = ()) -> Answer:
    shown = code(what)
    if near:
        options = ", ".join(code(n) for n in near[:3])
        return answer_text(say.STATUS_NO_MATCH_NEAR.format(what=shown[1:-1], near=options))
    return answer_text(say.STATUS_NO_MATCH.format(what=shown[1:-1]))


def _fields(pairs: Sequence[tuple[str, str]]) -> Block:
    fields = [field(label, value, 1900) for label, value in pairs[:MAX_FIELDS]]
    return {"type": "section", "fields": fields}


def _app_blocks(
    state: AppState,
    alerts: Sequence[GitOpsEvent],
    since: Mapping[AppKey, datetime],
    public_url: str = "",
) -> list[Block]:
    cond = condition(state)
    icon = {Condition.FAILING: ICON_RED, Condition.DRIFTED: ICON_RED, Condition.OK: ICON_GREEN}
    head = f"{icon.get(cond, ICON_ORANGE)} *{app_sentence(state, since)}*"
    head += f" on *{escaped(state.cluster, CLUSTER)}*"
    pairs: list[tuple[str, str]] = [
        (say.APP_FIELD_WHERE, escaped(f"{state.cluster} / {state.namespace} / {state.kind}", 200)),
        (say.APP_FIELD_SYNC, state.sync.value.replace("_", " ")),
        (say.APP_FIELD_HEALTH, state.health.value),
        (say.APP_FIELD_REVISION, code(state.revision, 100) if state.revision else ""),
    ]
    if state.desired_revision and state.desired_revision != state.revision:
        pairs.append((say.APP_FIELD_DESIRED, code(state.desired_revision, 100)))
    if state.chart or state.chart_version:
        pairs.append((say.APP_FIELD_CHART, escaped(f"{state.chart} {state.chart_version}".strip())))
    if state.operation is not None and state.operation.phase:
        op = state.operation
        text = escaped(op.phase, 40)
        if op.finished_at or op.started_at:
            text += " " + date(op.finished_at or op.started_at or state.observed_at)
        text += phrases.actor_phrase(op.initiated_by, esc.slack)
        pairs.append((say.APP_FIELD_LAST_OP, text))
    if state.tool.value == "argocd":
        auto = say.APP_AUTO_ON.format(heal="on" if state.self_heal else "off")
        pairs.append((say.APP_FIELD_AUTO, auto if state.auto_sync else say.APP_AUTO_OFF))
    if alerts:
        listed = ", ".join(
            f"{e.kind.value.replace('_', ' ')} {date(e.occurred_at)}" for e in alerts[:4]
        )
        pairs.append((say.APP_FIELD_ALERTS, listed))
    blocks = [section(head), _fields(pairs)]
    extra: list[str] = []
    if state.out_of_sync_resources:
        names = [code(str(r), 150) for r in state.out_of_sync_resources[:10]]
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
    links = [_link(state), _page_link(state, public_url)]
    if any(links):
        extra.append(" · ".join(link for link in links if link))
    if extra:
        blocks.append(section("\n".join(extra)))
    return blocks


def _link(state: AppState) -> str:
    url = state.url
    if not url or not re.fullmatch(r"https?://[^\s<>|]{1,2000}", url):
        return ""
    return say.APP_LINK.format(url=url, tool=phrases.tool_name(state.tool))


def _page_link(state: AppState, public_url: str) -> str:
    url = details.link(app_page_url(public_url, state.cluster, state.namespace, state.name))
    return say.APP_PAGE_LINK.format(url=esc.slack(url)) if url else ""


def answer_apps(
    states: Sequence[AppState],
    now: datetime,
    *,
    what: str,
    alerts: Mapping[AppKey, Sequence[GitOpsEvent]] | None = None,
    since: Mapping[AppKey, datetime] | None = None,
    public_url: str = "",
) -> Answer:
    """One or a few apps in detail, worst first (pure). With `public_url`, each links to its
    status page."""
    alerts, since = alerts or {}, since or {}
    ordered = sorted(live(states), key=lambda s: (*worst_first(s), s.cluster))
    blocks: list[Block] = [header(say.STATUS_TITLE_FOR.format(what=what))]
    for state in ordered[:MAX_APPS_DETAILED]:
        blocks += _app_blocks(state, alerts.get(state.key, ()), since, public_url)
        blocks.append({"type": "divider"})
    if len(ordered) > MAX_APPS_DETAILED:
        blocks.append(context(say.APP_MORE.format(n=len(ordered) - MAX_APPS_DETAILED)))
    blocks.append(context(say.STATUS_UPDATED.format(when=date(now))))
    first = app_sentence(ordered[0], since) if ordered else ""
    return {"text": fit(first or what, MAX_FALLBACK), "blocks": blocks[:MAX_BLOCKS]}


def answer_drift(
    states: Iterable[AppState], now: datetime, since: Mapping[AppKey, datetime] | None = None
) -> Answer:
    """Every app out of sync now, the longest-standing first, with since when (pure)."""
    since = since or {}
    out = [s for s in live(states) if condition(s) in (Condition.DRIFTED, Condition.PENDING)]
    if not out:
        return answer(say.DRIFT_TITLE, [f"{ICON_GREEN} {say.DRIFT_NONE}"])

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
                say.DRIFT_WHAT_PENDING.format(rev=code(rev, 60))
                if rev
                else say.DRIFT_WHAT_PENDING_NO_REV
            )
        moment = since.get(state.key)
        lines.append(
            "• "
            + say.DRIFT_LINE.format(
                app=app_label(state),
                cluster=escaped(state.cluster, CLUSTER),
                what=what,
                since=say.SINCE.format(when=date(moment)) if moment else "",
            )
        )
    return answer(say.DRIFT_TITLE, [listing(lines)], [say.STATUS_UPDATED.format(when=date(now))])
