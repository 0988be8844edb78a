"""Answers from what was recorded: `history` (deploys and rollbacks, then the audit log),
`versions` (what runs in each cluster, mismatches flagged), `audit`, and `routes` (where alerts
about an app go, as config.routing explains it). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from config.route_explain import describe_match, explain
from config.routing import IN_CLUSTER, source_name
from config.schema import Config
from core.audit import AuditRecord
from core.model import AppState, EventKind
from core.summary import live
from formatters import chat_phrases as say
from formatters import escape as esc
from formatters import phrases
from formatters.chat.parts import (
    CLUSTER,
    MAX_BLOCKS,
    MAX_SECTION,
    Answer,
    answer,
    code,
    date,
    escaped,
    listing,
    who,
)
from formatters.revision import short_revision


def _audit_line(entry: AuditRecord) -> str:
    action = say.AUDIT_ACTIONS.get(entry.action, escaped(entry.action, 40))
    detail = entry.detail if isinstance(entry.detail, Mapping) else {}
    parts = []
    for key in ("target", "until", "reason", "command", "history", "revision", "why", "result"):
        value = detail.get(key)
        if isinstance(value, str) and value:
            parts.append(f"{key} {escaped(value, 120)}")
    if entry.app is not None and not detail.get("target"):
        parts.insert(0, f"on {escaped(entry.app.cluster, CLUSTER)}")
    return say.AUDIT_LINE.format(
        when=date(entry.at),
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
            chart = f", chart {escaped(entry.chart_version, 40)}" if entry.chart_version else ""
            if entry.status:
                chart += f" ({escaped(entry.status, 30)})"
            when = date(entry.deployed_at) if entry.deployed_at else say.HISTORY_UNKNOWN_TIME
            lines.append(
                "• "
                + say.HISTORY_DEPLOY.format(
                    when=when,
                    rev=code(rev, 60) if rev else "-",
                    chart=chart,
                    by=phrases.actor_phrase(entry.initiated_by, esc.slack),
                )
            )
        if lines:
            head = f"*{escaped(state.cluster, CLUSTER)}* / {escaped(state.namespace, CLUSTER)}"
            sections.append(head + "\n" + listing(lines, MAX_SECTION - 200))
    if audit:
        lines = ["• " + _audit_line(e) for e in audit]
        sections.append(f"*{say.HISTORY_AUDIT_TITLE}*\n" + listing(lines, MAX_SECTION - 100))
    if not sections:
        sections = [say.HISTORY_NONE.format(app=code(app)[1:-1])]
    return answer(title, sections[: MAX_BLOCKS - 2])


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
                rev=code(short_revision(state.desired_revision), 60)
            )
        lines.append(
            "• "
            + say.VERSIONS_LINE.format(
                cluster=escaped(state.cluster, CLUSTER),
                namespace=escaped(state.namespace, CLUSTER),
                rev=code(rev, 60) if rev else "-",
                chart=say.VERSIONS_CHART.format(chart=escaped(state.chart_version, 60))
                if state.chart_version
                else "",
                app_version=say.VERSIONS_APP_VERSION.format(version=escaped(state.app_version, 60))
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
    return answer(title, [s for s in (verdict, listing(lines)) if s])


def answer_audit(app: str, entries: Sequence[AuditRecord]) -> Answer:
    title = say.AUDIT_TITLE.format(app=esc.one_line(app))
    if not entries:
        return answer(title, [say.AUDIT_NONE.format(app=code(app)[1:-1])])
    return answer(title, [listing(["• " + _audit_line(e) for e in entries])])


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
            shown.append(escaped(name, 60))
    return ", ".join(shown) or say.ROUTES_DROPPED


def answer_routes(
    app: str | None,
    states: Sequence[AppState],
    config: Config,
    projects: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
) -> Answer:
    """`routes`: every rule in order; `routes APP`: where each kind of alert about APP goes,
    also by the annotations of the app (and of its Argo CD project, from `projects`)."""
    if not config.routes:
        return answer(say.ROUTES_TITLE_ALL, [say.ROUTES_NONE])
    if app is None:
        lines = [
            (say.ROUTES_RULE_NAMED if r.name else say.ROUTES_RULE).format(
                index=i,
                name=f"*{escaped(r.name or '', 60)}*",
                match=code(describe_match(r.match), 300),
                receivers=_receiver_names(config, r.receivers),
            )
            for i, r in enumerate(config.routes)
        ]
        return answer(say.ROUTES_TITLE_ALL, [listing(lines)])
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
                destination_cluster=state.destination_cluster or IN_CLUSTER,
                source=source_name(state.source_ref, state.kind, state.name),
                annotations=state.annotations,
                project_annotations=(projects or {}).get((state.cluster, state.project)),
            )[-1]
            lines.append(
                "• "
                + say.ROUTES_FOR_KIND.format(
                    kind=kind.value,
                    cluster=escaped(state.cluster, CLUSTER),
                    result=escaped(result, 400),
                )
            )
    title = say.ROUTES_TITLE.format(app=esc.one_line(app))
    return answer(title, [listing(lines)])
