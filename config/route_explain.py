"""Why an event would or would not be taken, route by route: the text behind `driftbot routes
explain`, `driftbot check-config` and the chat `routes` answer. Pure.

Each route is shown by its `RouteId` label (its name, else `routes[N]`); fields not given are
unknown, and a route that depends on them is reported as matching only if they do.
"""

from __future__ import annotations

from collections.abc import Mapping

from config.annotation_routes import annotation_routes
from config.durations import format_duration
from config.route_id import RouteId, route_label
from config.routing import (
    EffectivePolicy,
    RouteMatch,
    Subject,
    check_match,
    default_policy,
    deliveries,
    route_match,
)
from config.schema import Config, Match, parse_event_kind, parse_severity
from core.model import DEFAULT_SEVERITY, EventKind, Severity, Tool


def describe_match(match: Match | None) -> str:
    """A route's conditions in one line, as in the file: `cluster=prod kinds=drift_detected`."""
    if match is None:
        return "(no match: every event)"
    parts: list[str] = []
    for field in (
        "tool",
        "cluster",
        "namespace",
        "destination_namespace",
        "object_kind",
        "destination_cluster",
        "name",
        "project",
        "source",
    ):
        patterns: tuple[str, ...] | None = getattr(match, field)
        if patterns is not None:
            parts.append(f"{field}={','.join(patterns)}")
    for key, pattern in (match.labels or {}).items():
        parts.append(f"labels.{key}={pattern}")
    for key, pattern in (match.annotations or {}).items():
        parts.append(f"annotations.{key}={pattern}")
    if match.kinds is not None:
        parts.append(f"kinds={','.join(k.value for k in match.kinds)}")
    if match.min_severity is not None:
        parts.append(f"min_severity={match.min_severity.value}")
    return " ".join(parts) or "(empty match: every event)"


def describe_policy(policy: EffectivePolicy) -> str:
    text = (
        f"grace {format_duration(policy.grace)}, group_wait {format_duration(policy.group_wait)}, "
        f"group_interval {format_duration(policy.group_interval)}, "
        f"repeat {format_duration(policy.repeat)}, group_by {','.join(policy.group_by)}"
    )
    if policy.quiet_hours is not None:
        q = policy.quiet_hours
        text += (
            f", quiet_hours {q.start:%H:%M}-{q.end:%H:%M} {q.timezone} "
            f"(below {q.min_severity.value} held)"
        )
    return text


def _delivery(taken: RouteMatch) -> str:
    if not taken.receivers:
        return "no receivers: the event is dropped"
    text = "receivers " + ", ".join(taken.receivers)
    if taken.mention:
        text += "; mention " + " ".join(taken.mention)
    return text + "; " + describe_policy(taken.policy)


def explain(
    app: str,
    cluster: str,
    kind: EventKind | str,
    config: Config,
    namespace: str | None = None,
    tool: str | None = None,
    labels: Mapping[str, str] | None = None,
    severity: Severity | str | None = None,
    project: str | None = None,
    object_kind: str | None = None,
    destination_namespace: str | None = None,
    destination_cluster: str | None = None,
    source: str | None = None,
    annotations: Mapping[str, str] | None = None,
    project_annotations: Mapping[str, str] | None = None,
) -> list[str]:
    """Lines saying, for each route, whether an event like this one would match and why not,
    who would get it, and where matching stops. Fields left None are unknown: a route that
    depends on them is reported as matching only if they do. Pure.

    Raises ValueError for an unknown kind or severity name.
    """
    event_kind = parse_event_kind(kind)
    if severity is None:
        level, level_note = DEFAULT_SEVERITY[event_kind], " (the default for this kind)"
    else:
        level, level_note = parse_severity(severity), ""
    subject = Subject(
        kind=event_kind,
        severity=level,
        cluster=cluster,
        name=app,
        namespace=namespace,
        tool=tool,
        project=project,
        labels=labels,
        object_kind=object_kind,
        destination_namespace=destination_namespace,
        destination_cluster=destination_cluster,
        source=source,
        annotations=annotations,
    )
    given = [f"namespace {namespace}" if namespace is not None else "namespace any"]
    if destination_namespace is not None:
        given.append(f"destination namespace {destination_namespace}")
    given.append(f"tool {tool}" if tool is not None else "tool any")
    if object_kind is not None:
        given.append(f"object kind {object_kind}")
    if project is not None:
        given.append(f"project {project}")
    if destination_cluster is not None:
        given.append(f"destination cluster {destination_cluster}")
    if source is not None:
        given.append(f"source {source}")
    if labels is not None:
        given.append("labels " + (",".join(f"{k}={v}" for k, v in labels.items()) or "none"))
    if annotations is not None:
        pairs = ",".join(f"{k}={v}" for k, v in annotations.items())
        given.append("annotations " + (pairs or "none"))
    lines = [
        f"event: {event_kind.value}, severity {level.value}{level_note}, app {app} "
        f"in cluster {cluster} ({', '.join(given)})"
    ]

    certain: list[RouteMatch] = []
    possible: list[tuple[RouteMatch, tuple[str, ...]]] = []
    stopped_at: int | None = None
    for index, route in enumerate(config.routes):
        head = f"{route_label(config, index)} {describe_match(route.match)}"
        if stopped_at is not None:
            stop = route_label(config, stopped_at)
            lines.append(f"{head}: not reached (matching stopped at {stop})")
            continue
        verdict = check_match(route.match, subject)
        taken = route_match(config, index, route)
        if verdict.outcome == "no":
            lines.append(f"{head}: no match: {verdict.reasons[0]}")
        elif verdict.outcome == "maybe":
            needs = " and ".join(verdict.reasons)
            then = "continue: true" if route.continue_ else "it would stop matching here"
            lines.append(f"{head}: matches only if {needs} -> {_delivery(taken)} ({then})")
            possible.append((taken, verdict.reasons))
        else:
            certain.append(taken)
            if route.continue_:
                lines.append(f"{head}: MATCH -> {_delivery(taken)}; continue: true, goes on")
            else:
                lines.append(f"{head}: MATCH -> {_delivery(taken)}; stop (no continue)")
                stopped_at = index

    if config.routing.annotations:
        owner = f"{object_kind or 'object'} {namespace or '?'}/{app}"
        lines += _explain_annotations(
            event_kind, owner, tool, annotations, project, project_annotations, config, certain
        )
    lines.extend(_per_receiver(certain, config))
    lines.append(_result(certain, possible))
    return lines


def _per_receiver(certain: list[RouteMatch], config: Config) -> list[str]:
    """For each receiver the event reaches through several routes, or whose settings come from
    a route that did not take it: one message, whose mentions, grace and grouping."""
    lines = []
    for d in deliveries(certain, config):
        if len(d.routes) == 1 and d.owner in (d.routes[0], None):
            continue
        text = f"  {d.receiver} (by {', '.join(d.by)}): one message"
        if d.mention:
            text += f"; mention {' '.join(d.mention)}"
        text += f"; grace {format_duration(d.grace)}"
        if len(d.routes) > 1:
            text += " (the shortest)"
        if d.owner is None:
            text += "; grouping, repeat, quiet hours of the policy defaults (no route names it)"
        else:
            text += f"; grouping, repeat, quiet hours of {d.owner} (the first naming it)"
        lines.append(text)
    return lines


def _explain_annotations(
    kind: EventKind,
    owner: str,
    tool: str | None,
    annotations: Mapping[str, str] | None,
    project: str | None,
    project_annotations: Mapping[str, str] | None,
    config: Config,
    certain: list[RouteMatch],
) -> list[str]:
    """The lines about the routes annotations add (appending those that take the event to
    `certain`)."""
    if annotations is None and project_annotations is None:
        return ["annotations not given: the routes they may add are not shown"]
    argocd = tool in (None, Tool.ARGOCD.value)
    written = [(owner, annotations or {})]
    if argocd and project and project_annotations:
        written.append((f"AppProject {project}", project_annotations))
    policy = default_policy(config)
    lines: list[str] = []
    for who, found in written:
        for route in annotation_routes(found, who, config, argocd=argocd):
            refused = f" (refused: {'; '.join(route.refused)})" if route.refused else ""
            if not route.receivers:
                lines.append(f"{route.origin}: sends nothing{refused}")
            elif route.kinds is not None and kind not in route.kinds:
                kinds = ", ".join(sorted(k.value for k in route.kinds))
                lines.append(f"{route.origin}: no match: kind {kind.value} is not in [{kinds}]")
            else:
                taken = RouteMatch(RouteId(None, origin=route.origin), route.receivers, (), policy)
                certain.append(taken)
                lines.append(f"{route.origin}: MATCH -> {_delivery(taken)}{refused}")
    if not lines:
        lines.append("annotations: none that route")
    return lines


def _result(certain: list[RouteMatch], possible: list[tuple[RouteMatch, tuple[str, ...]]]) -> str:
    def names(taken: list[RouteMatch]) -> str:
        receivers = list(dict.fromkeys(r for t in taken for r in t.receivers))
        routes = ", ".join(t.shown for t in taken)
        return f"{', '.join(receivers) or 'nobody (dropped)'} (by {routes})"

    maybe = names([t for t, _ in possible])
    if certain:
        text = "result: sent to " + names(certain)
        return text + (f"; depending on the fields not given, also {maybe}" if possible else "")
    if possible:
        return f"result: depending on the fields not given, sent to {maybe}; otherwise not sent"
    return "result: no route takes this event; it is not sent"
