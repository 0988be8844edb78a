"""Which receivers hear about an event, and with which policy settings. Pure: decides only.

Routes are tried in file order; the first that matches takes the event unless it says
`continue: true`, in which case matching goes on and later routes may take it too. A route
without `match` takes every event. A route is known by its `RouteId` (config/route_id.py), not
by its place. config/route_explain.py tells, route by route, why an event would or would not be
taken: the text behind `driftbot routes explain` and `driftbot check-config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from config.annotation_routes import annotation_routes, annotation_subjects
from config.globs import any_match, glob_match
from config.route_id import RouteId, find_route, route_id
from config.schema import (
    Config,
    Match,
    PolicyConfig,
    QuietHours,
    RouteConfig,
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


def default_policy(config: Config) -> EffectivePolicy:
    """The policy of a route that sets nothing of its own (a route an annotation adds)."""
    return effective_policy(config.policy, RouteConfig.model_validate({"receivers": ()}))


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """One route that takes an event. `receivers` may be empty: the route drops the event."""

    route: RouteId
    receivers: tuple[str, ...]
    mention: tuple[str, ...]
    policy: EffectivePolicy

    @property
    def route_index(self) -> int:
        """The route's place in `routes`; -1 for a route an annotation adds."""
        return -1 if self.route.place is None else self.route.place

    @property
    def shown(self) -> str:
        """How people read which route this is (`RouteId.label`)."""
        return self.route.label


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


def route_match(config: Config, index: int, route: RouteConfig) -> RouteMatch:
    """`route`, the `index`th of `config`, as it takes an event."""
    return RouteMatch(
        route=route_id(config, index),
        receivers=tuple(route.receivers),
        mention=tuple(route.mention),
        policy=effective_policy(config.policy, route),
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
        taken.append(route_match(config, index, route))
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
                added = RouteId(None, origin=route.origin)
                taken.append(RouteMatch(added, route.receivers, (), policy))
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
    routes: tuple[RouteId, ...]
    mention: tuple[str, ...]
    grace: timedelta
    owner: RouteId | None

    @property
    def by(self) -> tuple[str, ...]:
        """The routes as people read them: a name, `routes[2]`, or the annotation that added one."""
        return tuple(r.label for r in self.routes)


def receiver_owners(config: Config) -> dict[str, RouteId]:
    """Each receiver named by a route -> the first route naming it (pure)."""
    owners: dict[str, RouteId] = {}
    for index, route in enumerate(config.routes):
        for name in route.receivers:
            if name not in owners:
                owners[name] = route_id(config, index)
    return owners


def owner_policy(config: Config, owner: RouteId | None) -> EffectivePolicy:
    """The policy of the receiver whose first route is `owner`: that route's effective policy,
    or the policy defaults when no route names it (`owner` None) (pure)."""
    route = find_route(config, owner) if owner is not None else None
    return default_policy(config) if route is None else effective_policy(config.policy, route)


def receiver_policy(config: Config, receiver: str) -> EffectivePolicy | None:
    """The policy a receiver's messages follow: that of the first route naming it (pure)."""
    owner = receiver_owners(config).get(receiver)
    if owner is None:
        return None
    return owner_policy(config, owner)


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
            routes=tuple(m.route for m in matches),
            mention=tuple(dict.fromkeys(e for m in matches for e in m.mention)),
            grace=min(m.policy.grace for m in matches),
            owner=owners.get(name),
        )
        for name, matches in by_receiver.items()
    ]
