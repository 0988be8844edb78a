"""Routes an app team adds with annotations, when the central config opts in
(`routing.annotations: true`): who hears about an app, decided next to the app.

The annotations are read as `config.subscriptions` reads them for `driftbot import`: Argo CD
Notifications' `subscribe` annotations on an Application and on its AppProject, and
driftbot's `driftbot.dev/notify[.<kind>]` on any watched object. A trigger means the event kinds
of its catalog condition (`config.importers.argocd_triggers`); a recipient is sent to only if
`routing.allow` allows it (`config.allow_list`), otherwise it is refused and `routes explain`
says why. Such routes take their app's events whatever the central routes did (as Argo CD sends
every subscription), with the `policy` defaults. Pure: decides only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from config.allow_list import split_entry
from config.importers.argocd_triggers import CATALOG_TRIGGERS, map_conditions
from config.schema import Config, ReceiverConfig, RoutingConfig
from config.subscriptions import (
    AnnotationSubscription,
    argocd_subscriptions,
    driftbot_subscriptions,
)
from core.model import EventKind, GitOpsEvent, Tool

SLACK_SERVICES = frozenset({"slack"})
TEAMS_SERVICES = frozenset({"teams", "teams-workflows"})


@dataclass(frozen=True, slots=True)
class AnnotationRoute:
    """A route one annotation adds: the kinds it takes (None: every kind), the receivers it may
    send to, and what was refused and why."""

    origin: str
    """`annotation <key>: '<value>' on Application argocd/checkout`."""
    kinds: frozenset[EventKind] | None
    receivers: tuple[str, ...]
    refused: tuple[str, ...] = ()


def owner_of(event: GitOpsEvent) -> str:
    return f"{event.object_kind} {event.namespace}/{event.name}"


def annotation_routes(
    annotations: Mapping[str, str], owner: str, config: Config, *, argocd: bool
) -> list[AnnotationRoute]:
    """The routes that `annotations` of the object `owner` (`Application argocd/checkout`,
    `AppProject shop`) add; Argo CD's are read only when `argocd`. Empty when the config does
    not opt in."""
    routing = config.routing
    if not routing.annotations or not annotations:
        return []
    routes: list[AnnotationRoute] = []
    if argocd:
        found, _ = argocd_subscriptions(annotations)
        for sub in found:
            routes += _argocd_routes(sub, owner, config)
    for sub in driftbot_subscriptions(annotations):
        routes.append(_driftbot_route(sub, owner, config))
    return routes


def _argocd_routes(
    sub: AnnotationSubscription, owner: str, config: Config
) -> list[AnnotationRoute]:
    origin = f"{sub.where} on {owner}"
    triggers = [sub.trigger] if sub.trigger else list(config.routing.default_triggers)
    if not triggers:
        why = "names no trigger and routing.default_triggers is empty (Argo CD sends nothing)"
        return [AnnotationRoute(origin, frozenset(), (), (why,))]
    if sub.service in SLACK_SERVICES:
        kind = "slack"
    elif sub.service in TEAMS_SERVICES:
        kind = "teams"
    else:
        why = f"service {sub.service}: driftbot sends only to Slack (slack) and Teams (teams)"
        return [AnnotationRoute(origin, frozenset(), (), (why,))]
    receivers, refused = _resolve([f"{kind}:{r}" for r in sub.recipients], config)
    routes = []
    for trigger in triggers:
        kinds, why = _trigger_kinds(trigger)
        extra = "" if sub.trigger else f" (default trigger {trigger})"
        routes.append(
            AnnotationRoute(origin + extra, kinds, receivers, refused + ((why,) if why else ()))
        )
    return routes


def _trigger_kinds(trigger: str) -> tuple[frozenset[EventKind], str]:
    condition = CATALOG_TRIGGERS.get(trigger)
    if condition is None:
        return frozenset(), f"trigger {trigger} is not one of Argo CD's catalog"
    mapping = map_conditions([{"when": condition}])
    why = f"trigger {trigger}: {'; '.join(mapping.unmapped)}" if not mapping.kinds else ""
    return frozenset(mapping.kinds), why


def _driftbot_route(sub: AnnotationSubscription, owner: str, config: Config) -> AnnotationRoute:
    origin = f"{sub.where} on {owner}"
    receivers, refused = _resolve(list(sub.recipients), config)
    if not sub.trigger:
        return AnnotationRoute(origin, None, receivers, refused)
    try:
        kind = EventKind(sub.trigger)
    except ValueError:
        why = f"{sub.trigger} is not an event kind (one of {', '.join(k.value for k in EventKind)})"
        return AnnotationRoute(origin, frozenset(), (), (why,))
    return AnnotationRoute(origin, frozenset({kind}), receivers, refused)


def _resolve(recipients: list[str], config: Config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The receivers `recipients` (`slack:<channel>`, `teams:<name>`, `<name>`) stand for, as
    far as `routing.allow` allows them, and a reason for each refused."""
    names: list[str] = []
    refused: list[str] = []
    for recipient in recipients:
        name = _allowed(recipient, config.routing, config.receivers)
        if name is None:
            refused.append(f"{recipient} is not allowed by routing.allow")
        elif name not in names:
            names.append(name)
    return tuple(names), tuple(refused)


def _allowed(
    recipient: str, routing: RoutingConfig, receivers: tuple[ReceiverConfig, ...]
) -> str | None:
    """The receiver `recipient` stands for if an entry of `routing.allow` allows it."""
    kind, value = _key(recipient)
    if not value or (kind, value) not in {_key(entry) for entry in routing.allow}:
        return None
    for receiver in receivers:
        if kind == "slack":
            found = receiver.slack is not None and receiver.slack.channel.lstrip("#") == value
        else:
            found = receiver.name == value and (kind == "receiver" or receiver.teams is not None)
        if found:
            return receiver.name
    return None


def _key(entry: str) -> tuple[str, str]:
    kind, value = split_entry(entry)
    return kind, value.lstrip("#") if kind == "slack" else value


def annotation_subjects(
    event: GitOpsEvent, project_annotations: Mapping[str, str] | None
) -> list[tuple[str, Mapping[str, str], bool]]:
    """The annotated objects whose routes concern `event`: its own object, and for an Argo CD
    app its AppProject (owner, annotations, read Argo CD's)."""
    argocd = event.tool is Tool.ARGOCD
    found: list[tuple[str, Mapping[str, str], bool]] = [
        (owner_of(event), event.annotations, argocd)
    ]
    if argocd and event.project and project_annotations:
        found.append((f"AppProject {event.project}", project_annotations, True))
    return found
