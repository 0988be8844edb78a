"""Which receivers hear about an event, and with which policy settings. Pure: decides only.

Routes are tried in file order; the first that matches takes the event unless it says
`continue: true`, in which case matching goes on and later routes may take it too. A route
without `match` takes every event. `explain` tells, route by route, why an event would or would
not be taken: the text behind `driftbot routes explain` and `driftbot check-config`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from config.annotation_routes import annotation_routes, annotation_subjects
from config.durations import format_duration
from config.globs import any_match, glob_match
from config.schema import (
    Config,
    Match,
    PolicyConfig,
    QuietHours,
    RouteConfig,
    parse_event_kind,
    parse_severity,
)
from core.model import DEFAULT_SEVERITY, AppState, EventKind, GitOpsEvent, Severity, Tool


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """The policy defaults overlaid with one route's own settings."""

    grace: timedelta
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat: timedelta
    quiet_hours: QuietHours | None


def route_label(config: Config, index: int) -> str:
    """How people read which route: its `name`, else its place, `routes[2]`."""
    return config.routes[index].name or f"routes[{index}]"


def default_policy(config: Config) -> EffectivePolicy:
    """The policy of a route that sets nothing of its own (a route an annotation adds)."""
    return effective_policy(config.policy, RouteConfig.model_validate({"receivers": ()}))


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """One route that takes an event. `receivers` may be empty: the route drops the event."""

    route_index: int
    """The route's place in `routes`; -1 for a route an annotation adds."""
    receivers: tuple[str, ...]
    mention: tuple[str, ...]
    policy: EffectivePolicy
    origin: str = ""
    """For a route an annotation adds: which annotation, on which object."""
    label: str = dataclasses.field(default="", compare=False)
    """For a route of the file: its name, else `routes[N]` (`route_label`)."""

    @property
    def shown(self) -> str:
        """How people read which route this is."""
        return self.origin or self.label or f"routes[{self.route_index}]"


def effective_policy(defaults: PolicyConfig, route: RouteConfig) -> EffectivePolicy:
    def pick(own: timedelta | None, default: timedelta) -> timedelta:
        return default if own is None else own

    return EffectivePolicy(
        grace=pick(route.grace, defaults.grace),
        group_by=tuple(route.group_by if route.group_by is not None else defaults.group_by),
        group_wait=pick(route.group_wait, defaults.group_wait),
        group_interval=pick(route.group_interval, defaults.group_interval),
        repeat=pick(route.repeat, defaults.repeat),
        quiet_hours=route.quiet_hours if route.quiet_hours is not None else defaults.quiet_hours,
    )


@dataclass(frozen=True, slots=True)
class Subject:
    """What routing looks at. None means not known (only `explain` asks about such cases)."""

    kind: EventKind
    severity: Severity
    cluster: str | None = None
    name: str | None = None
    namespace: str | None = None
    tool: str | None = None
    project: str | None = None
    labels: Mapping[str, str] | None = None
    object_kind: str | None = None
    destination_namespace: str | None = None
    destination_cluster: str | None = None
    source: str | None = None
    annotations: Mapping[str, str] | None = None


IN_CLUSTER = "in-cluster"
"""How `destination_cluster` names the cluster the tool itself runs in (Argo CD's own name)."""
FLUX_SOURCE_KINDS = frozenset(
    {"GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket"}
)


def source_name(source_ref: str, object_kind: str, name: str) -> str:
    """The name of the Flux source an object reads (`source_ref` is `Kind/namespace/name`), or
    a source's own name; "" if none."""
    if source_ref:
        return source_ref.rsplit("/", 1)[-1]
    return name if object_kind in FLUX_SOURCE_KINDS else ""


def subject_of(event: GitOpsEvent) -> Subject:
    return Subject(
        kind=event.kind,
        severity=event.severity,
        cluster=event.cluster,
        name=event.name,
        namespace=event.namespace,
        tool=event.tool.value,
        project=event.project,
        labels=event.labels,
        object_kind=event.object_kind,
        destination_namespace=destination_namespace(event),
        destination_cluster=event.destination_cluster or IN_CLUSTER,
        source=source_name(event.source_ref, event.object_kind, event.name),
        annotations=event.annotations,
    )


def destination_namespace(event: GitOpsEvent) -> str:
    """The namespace `event`'s app deploys into, as `destination_namespace` in a route matches
    it: the event's own field, and for a Flux object that names none, its own namespace."""
    if event.destination_namespace:
        return event.destination_namespace
    return event.namespace if event.tool is Tool.FLUX else ""


def subject_of_state(state: AppState, kind: EventKind) -> Subject:
    """What routing looks at for an event of `kind` about `state`, at the kind's default
    severity: how a state that is not right (a digest's still-open item) is matched."""
    return Subject(
        kind=kind,
        severity=DEFAULT_SEVERITY[kind],
        cluster=state.cluster,
        name=state.name,
        namespace=state.namespace,
        tool=state.tool.value,
        project=state.project,
        labels=state.labels,
        object_kind=state.kind,
        destination_namespace=state.destination_namespace
        or (state.namespace if state.tool is Tool.FLUX else ""),
        destination_cluster=state.destination_cluster or IN_CLUSTER,
        source=source_name(state.source_ref, state.kind, state.name),
        annotations=state.annotations,
    )


Outcome = Literal["match", "no", "maybe"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """`match`, `no` (with the first failing condition), or `maybe` (with what it depends on)."""

    outcome: Outcome
    reasons: tuple[str, ...] = ()


def _patterns(patterns: tuple[str, ...]) -> str:
    quoted = [f"'{p}'" for p in patterns]
    return quoted[0] if len(quoted) == 1 else "one of " + ", ".join(quoted)


def check_match(match: Match | None, subject: Subject) -> Verdict:
    """Does `match` take `subject`? Conditions are checked in the order tool, cluster,
    namespace, destination_namespace, object_kind, destination_cluster, name, project, source,
    labels, annotations, kinds, min_severity; the first that fails is the reason. Conditions on
    unknown fields make the answer `maybe`, unless a known one fails."""
    if match is None:
        return Verdict("match")
    unknown: list[str] = []
    fields: tuple[tuple[str, tuple[str, ...] | None, str | None], ...] = (
        ("tool", match.tool, subject.tool),
        ("cluster", match.cluster, subject.cluster),
        ("namespace", match.namespace, subject.namespace),
        ("destination_namespace", match.destination_namespace, subject.destination_namespace),
        ("object_kind", match.object_kind, subject.object_kind),
        ("destination_cluster", match.destination_cluster, subject.destination_cluster),
        ("name", match.name, subject.name),
        ("project", match.project, subject.project),
        ("source", match.source, subject.source),
    )
    for field, patterns, value in fields:
        if patterns is None:
            continue
        if value is None:
            unknown.append(f"{field} matches {_patterns(patterns)} ({field} not given)")
        elif not any_match(patterns, value):
            return Verdict("no", (f"{field} '{value}' does not match {_patterns(patterns)}",))
    for what, wanted, given in (
        ("label", match.labels, subject.labels),
        ("annotation", match.annotations, subject.annotations),
    ):
        failed = _check_mapping(what, wanted or {}, given, unknown)
        if failed is not None:
            return Verdict("no", (failed,))
    if match.kinds is not None and subject.kind not in match.kinds:
        kinds = ", ".join(k.value for k in match.kinds)
        return Verdict("no", (f"kind {subject.kind.value} is not in kinds [{kinds}]",))
    if match.min_severity is not None and subject.severity.rank < match.min_severity.rank:
        below = f"severity {subject.severity.value} is below min_severity"
        return Verdict("no", (f"{below} {match.min_severity.value}",))
    return Verdict("maybe", tuple(unknown)) if unknown else Verdict("match")


def _check_mapping(
    what: str, wanted: Mapping[str, str], given: Mapping[str, str] | None, unknown: list[str]
) -> str | None:
    """The first of `wanted` (key: pattern) that `given` fails, as a reason; None if none
    fails. With `given` unknown, each condition is added to `unknown` instead."""
    for key, pattern in wanted.items():
        if given is None:
            unknown.append(f"{what} {key} matches '{pattern}' ({what}s not given)")
        elif key not in given:
            return f"{what} {key} is not set (wanted '{pattern}')"
        elif not glob_match(pattern, given[key]):
            return f"{what} {key}='{given[key]}' does not match '{pattern}'"
    return None


def _route_match(config: Config, index: int, route: RouteConfig) -> RouteMatch:
    return RouteMatch(
        route_index=index,
        receivers=tuple(route.receivers),
        mention=tuple(route.mention),
        policy=effective_policy(config.policy, route),
        label=route_label(config, index),
    )


def match_routes(
    event: GitOpsEvent, config: Config, project_annotations: Mapping[str, str] | None = None
) -> list[RouteMatch]:
    """The routes that take `event`, in file order, then those its annotations (and its Argo
    CD project's, `project_annotations`) add when `routing.annotations` is on. Empty: no
    route takes it (not sent)."""
    subject = subject_of(event)
    taken: list[RouteMatch] = []
    for index, route in enumerate(config.routes):
        if check_match(route.match, subject).outcome != "match":
            continue
        taken.append(_route_match(config, index, route))
        if not route.continue_:
            break
    return taken + annotation_matches(event, config, project_annotations)


def annotation_matches(
    event: GitOpsEvent, config: Config, project_annotations: Mapping[str, str] | None = None
) -> list[RouteMatch]:
    """The routes `event`'s annotations add that take it (see `config.annotation_routes`)."""
    if not config.routing.annotations:
        return []
    policy = default_policy(config)
    taken: list[RouteMatch] = []
    for owner, written, argocd in annotation_subjects(event, project_annotations):
        for route in annotation_routes(written, owner, config, argocd=argocd):
            if route.receivers and (route.kinds is None or event.kind in route.kinds):
                taken.append(RouteMatch(-1, route.receivers, (), policy, route.origin))
    return taken


# --- several routes, one receiver --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one receiver gets of an event, whichever of the routes that took it name it.

    A receiver reached by several routes gets one message per event: `mention` joins the
    mentions of every route that took the event and names the receiver (in file order),
    `grace` is the shortest of their graces, and the receiver's grouping, group_wait,
    group_interval, repeat and quiet hours are its own: those of `owner`, the first route in
    the file that names it (`receiver_policy`), whether or not that route took the event; a
    receiver no route names (only annotations send to it) has the `policy` defaults (`owner`
    None).
    """

    receiver: str
    routes: tuple[int, ...]
    mention: tuple[str, ...]
    grace: timedelta
    owner: int | None
    by: tuple[str, ...] = ()
    """The routes as people read them: `routes[2]`, or the annotation that added one."""


def receiver_owners(config: Config) -> dict[str, int]:
    """Each receiver named by a route -> the index of the first route naming it (pure)."""
    owners: dict[str, int] = {}
    for index, route in enumerate(config.routes):
        for name in route.receivers:
            owners.setdefault(name, index)
    return owners


def receiver_policy(config: Config, receiver: str) -> EffectivePolicy | None:
    """The policy a receiver's messages follow: that of the first route naming it (pure)."""
    owner = receiver_owners(config).get(receiver)
    if owner is None:
        return None
    return effective_policy(config.policy, config.routes[owner])


def deliveries(taken: list[RouteMatch], config: Config) -> list[Delivery]:
    """The receivers of the routes in `taken` (as `match_routes` returns them), each once, in
    the order first named, with the settings combined as `Delivery` says (pure)."""
    owners = receiver_owners(config)
    by_receiver: dict[str, list[RouteMatch]] = {}
    for match in taken:
        for name in match.receivers:
            by_receiver.setdefault(name, [])
            if match not in by_receiver[name]:
                by_receiver[name].append(match)
    return [
        Delivery(
            receiver=name,
            routes=tuple(m.route_index for m in matches),
            mention=tuple(dict.fromkeys(e for m in matches for e in m.mention)),
            grace=min(m.policy.grace for m in matches),
            owner=owners.get(name),
            by=tuple(m.shown for m in matches),
        )
        for name, matches in by_receiver.items()
    ]


# --- explain ------------------------------------------------------------------------------------


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
        taken = _route_match(config, index, route)
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
            owner = route_label(config, d.owner)
            text += f"; grouping, repeat, quiet hours of {owner} (the first naming it)"
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
                taken = RouteMatch(-1, route.receivers, (), policy, route.origin)
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
