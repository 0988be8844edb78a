"""Argo CD Notifications to driftbot: subscriptions become routes, services become receivers.

Subscriptions are where Argo CD's notifications-engine finds them: the
`notifications.argoproj.io/subscribe.<trigger>.<service>: <recipients>` annotations (and the
`subscribe.<service>` form that uses the default triggers, and the YAML
`notifications.argoproj.io/subscriptions` annotation) on Applications and AppProjects, and the
ConfigMap's `subscriptions` (with an optional label `selector`). An Application's subscription
matches that Application (tool, namespace, name); an AppProject's, the apps of the project; a
default subscription, every app or those with the selector's labels. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config.importers.argocd_cm import (
    NotificationsConfig,
    read_configmap,
    secret_ref,
    template_mentions,
)
from config.importers.argocd_triggers import CATALOG_TRIGGERS, map_conditions
from config.importers.draft import Draft, Route, env_name, literal, receiver_name
from config.importers.objects import (
    KubeObject,
    describe,
    metadata,
    name_of,
    namespace_of,
    text_map,
)
from config.importers.selectors import selector_variants
from config.subscriptions import argocd_subscriptions

SLACK_TYPES = {"slack"}
TEAMS_TYPES = {"teams", "teams-workflows"}
CATALOG_TEMPLATES = {
    "app-created",
    "app-deleted",
    "app-deployed",
    "app-health-degraded",
    "app-sync-failed",
    "app-sync-running",
    "app-sync-status-unknown",
    "app-sync-succeeded",
}


@dataclass(frozen=True)
class Scope:
    """Which apps a subscription is about: its match (without kinds) and how to name it."""

    match: Mapping[str, Any]
    label: str


@dataclass(frozen=True)
class Subscription:
    scope: Scope
    trigger: str
    """Empty: the default triggers."""
    service: str
    recipients: tuple[str, ...]
    origin: str


def import_argocd(
    configmap: KubeObject,
    objects: Sequence[KubeObject] = (),
    *,
    cluster: str | None = None,
    title: Sequence[str] = (),
) -> Draft:
    """The driftbot config for the notification setup in `configmap` and the subscriptions
    in the annotations of `objects` (Applications and AppProjects)."""
    cm = read_configmap(configmap)
    draft = Draft("Argo CD", title=list(title))
    for line in cm.notes:
        draft.note(f"{cm.source} {line}")
    base: dict[str, Any] = {"tool": "argocd"}
    if cluster:
        base["cluster"] = literal(cluster)
    subscriptions = list(_default_subscriptions(cm, base, draft))
    for obj in objects:
        kind = obj.get("kind")
        if kind == "Application":
            match = {**base, "namespace": literal(namespace_of(obj)), "name": literal(name_of(obj))}
        elif kind == "AppProject":
            match = {**base, "project": literal(name_of(obj))}
        else:
            draft.note(f"{describe(obj)}: not an Application or AppProject; ignored")
            continue
        subscriptions += _annotation_subscriptions(obj, Scope(match, describe(obj)), draft)
    used_triggers: set[str] = set()
    for sub in subscriptions:
        _import_subscription(sub, cm, draft, used_triggers)
    _note_leftovers(cm, draft, used_triggers)
    return draft


# --- where subscriptions are --------------------------------------------------------------------


def _default_subscriptions(
    cm: NotificationsConfig, base: Mapping[str, Any], draft: Draft
) -> Iterator[Subscription]:
    for index, entry in enumerate(cm.subscriptions):
        origin = f"{cm.source} subscriptions[{index}]"
        selector = entry.get("selector")
        variants = selector_variants(selector if isinstance(selector, str) else "")
        if isinstance(variants, str):
            draft.note(f"{origin}: selector {selector!r}: {variants}; not imported")
            continue
        triggers = [t for t in entry.get("triggers") or [] if isinstance(t, str)] or [""]
        recipients = [r for r in entry.get("recipients") or [] if isinstance(r, str)]
        for labels in variants:
            match = {**base, "labels": labels} if labels else dict(base)
            where = f"{origin} (every app" + (f" with {selector})" if selector else ")")
            for trigger in triggers:
                for recipient in recipients:
                    service, _, to = recipient.partition(":")
                    yield Subscription(
                        Scope(match, where),
                        trigger,
                        service.strip(),
                        (to.strip(),),
                        f"{where} recipient {recipient!r}",
                    )


def _annotation_subscriptions(obj: KubeObject, scope: Scope, draft: Draft) -> list[Subscription]:
    annotations = text_map(metadata(obj).get("annotations"))
    found, notes = argocd_subscriptions(annotations)
    for note in notes:
        draft.note(f"{scope.label} {note}")
    return [
        Subscription(scope, sub.trigger, sub.service, sub.recipients, f"{scope.label} {sub.where}")
        for sub in found
    ]


# --- one subscription --------------------------------------------------------------------------


def _import_subscription(
    sub: Subscription, cm: NotificationsConfig, draft: Draft, used: set[str]
) -> None:
    triggers = (
        [sub.trigger]
        if sub.trigger
        else cm.service_default_triggers.get(sub.service, cm.default_triggers)
    )
    if not triggers:
        draft.note(
            f"{sub.origin}: names no trigger and the ConfigMap has no defaultTriggers, so "
            "Argo CD sends nothing for it; not imported"
        )
        return
    receivers = _receivers(sub, cm, draft)
    if receivers is None:
        return
    names, receivers_origin = receivers
    for trigger in triggers:
        used.add(trigger)
        _route(sub, trigger, cm, draft, names, receivers_origin)


def _route(
    sub: Subscription,
    trigger: str,
    cm: NotificationsConfig,
    draft: Draft,
    receivers: tuple[str, ...],
    receivers_origin: str,
) -> None:
    notes: list[str] = []
    conditions = cm.triggers.get(trigger)
    if conditions is None:
        if trigger not in CATALOG_TRIGGERS:
            draft.note(f"{sub.origin}: trigger {trigger} is not defined; not imported")
            return
        conditions = [{"when": CATALOG_TRIGGERS[trigger]}]
        notes.append(
            f"trigger {trigger} is not defined in {cm.source}: read as Argo CD's catalog defines it"
        )
    mapping = map_conditions(conditions)
    if not mapping.kinds:
        draft.note(f"{sub.origin}: trigger {trigger}: {'; '.join(mapping.unmapped)}; not imported")
        return
    notes += [f"trigger {trigger}: {u}; that part is not imported" for u in mapping.unmapped]
    mention: list[str] = []
    mention_from: list[str] = []
    for condition in conditions:
        if condition.get("oncePer"):
            draft.note(
                f"trigger.{trigger} oncePer {condition['oncePer']}: not needed, driftbot "
                "announces each change once"
            )
        for template in condition.get("send") or []:
            found = template_mentions(cm.templates.get(str(template)) or {})
            if found and draft.receivers[receivers[0]].type == "slack":
                mention += [m for m in found if m not in mention]
                mention_from.append(str(template))
    kinds = [k.value for k in mapping.kinds]
    draft.routes.append(
        _make_route(
            sub,
            trigger,
            kinds,
            mapping.words,
            receivers,
            receivers_origin,
            notes,
            mention,
            mention_from,
        )
    )


def _make_route(
    sub: Subscription,
    trigger: str,
    kinds: list[str],
    words: Sequence[str],
    receivers: tuple[str, ...],
    receivers_origin: str,
    notes: list[str],
    mention: list[str],
    mention_from: list[str],
) -> Route:
    return Route(
        match={**sub.scope.match, "kinds": kinds},
        receivers=receivers,
        origin=sub.origin,
        kinds_origin=f"kinds: trigger {trigger} ({'; '.join(words)})",
        receivers_origin=receivers_origin,
        mention=tuple(mention),
        mention_origin=(
            f"written in template {', '.join(mention_from)} (driftbot mentions on critical "
            "events only)"
        ),
        notes=tuple(dict.fromkeys(notes)),
    )


def _receivers(
    sub: Subscription, cm: NotificationsConfig, draft: Draft
) -> tuple[tuple[str, ...], str] | None:
    """The receivers of a subscription's recipients, and where they came from; None (with a
    note) when driftbot cannot send where the service sends."""
    service = cm.services.get(sub.service)
    type_ = service.type if service is not None else sub.service
    where = service.key if service is not None else f"service {sub.service}"
    if service is None and type_ not in SLACK_TYPES | TEAMS_TYPES:
        draft.note(f"{sub.origin}: service {sub.service} is not defined; not imported")
        return None
    if service is None:
        where += f" (not defined in {cm.source}: taken as its type)"
    if type_ not in SLACK_TYPES | TEAMS_TYPES:
        draft.note(
            f"{sub.origin}: {where} is of type {type_}: driftbot sends only to Slack and "
            "Microsoft Teams; not imported"
        )
        return None
    if type_ == "slack" and service is not None:
        api_url = service.options.get("apiURL")
        if isinstance(api_url, str) and "slack.com" not in api_url:
            draft.note(
                f"{sub.origin}: {where} posts to another Slack-compatible server ({api_url}, "
                "Mattermost for example); driftbot posts only to Slack; not imported"
            )
            return None
    names: list[str] = []
    for recipient in sub.recipients:
        if not recipient:
            draft.note(f"{sub.origin}: an empty recipient; not imported")
            continue
        if type_ == "slack":
            prefix = "slack" if sub.service == "slack" else sub.service
            origin = f"{where}, channel {recipient}"
            names.append(
                draft.receiver(
                    receiver_name(prefix, recipient), "slack", {"channel": recipient}, origin
                )
            )
        else:
            names.append(_teams_receiver(sub, recipient, type_, where, service, draft))
    if not names:
        return None
    return tuple(names), f"{where}: {'; '.join(sub.recipients)}"


def _teams_receiver(
    sub: Subscription, recipient: str, type_: str, where: str, service: Any, draft: Draft
) -> str:
    urls = service.options.get("recipientUrls") if service is not None else None
    ref = secret_ref(urls.get(recipient)) if isinstance(urls, Mapping) else None
    held = (
        f"set it to the URL in argocd-notifications-secret key {ref}"
        if ref
        else f"set it to the URL of recipientUrls.{recipient}"
    )
    if type_ == "teams":
        held += " (an Office 365 connector URL, retired: make a Workflows webhook instead)"
    variable = env_name("teams", recipient, "webhook")
    origin = f"{where}, recipient {recipient}: ${variable} holds the webhook URL; {held}"
    return draft.receiver(
        receiver_name("teams", recipient), "teams", {"webhook_env": variable}, origin
    )


def _note_leftovers(cm: NotificationsConfig, draft: Draft, used: set[str]) -> None:
    for name in sorted(cm.triggers):
        if name not in used:
            draft.note(f"{cm.source} trigger.{name}: no subscription uses it")
    catalog = sorted(n for n in cm.templates if n in CATALOG_TEMPLATES)
    if catalog:
        draft.note(
            f"{cm.source} templates of the catalog ({', '.join(catalog)}): not needed, driftbot "
            "writes its own messages (what changed, revision, who, the controller's message, "
            "a link to Argo CD)"
        )
    for name in sorted(n for n in cm.templates if n not in CATALOG_TEMPLATES):
        message = cm.templates[name].get("message")
        first = message.strip().splitlines()[0] if isinstance(message, str) and message else ""
        draft.note(
            f"{cm.source} template.{name}: custom text, not imported (driftbot writes its own "
            "messages)" + (f"; it began: {first}" if first else "")
        )
    for service in cm.services.values():
        api_url = service.options.get("apiURL")
        if service.type == "slack" and isinstance(api_url, str) and "slack.com" not in api_url:
            draft.note(
                f"{cm.source} {service.key}: posts to a Slack-compatible server at {api_url} "
                "(Mattermost for example); driftbot posts only to Slack"
            )
            continue
        kept = ("recipientUrls", "token") if service.type == "slack" else ("recipientUrls",)
        settings = ", ".join(sorted(k for k in service.options if k not in kept))
        if service.type == "slack" and "token" in service.options:
            ref = secret_ref(service.options["token"])
            draft.note(
                f"{cm.source} {service.key} token: driftbot posts with its own Slack app: "
                f"SLACK_BOT_TOKEN" + (f" (argocd-notifications-secret key {ref})" if ref else "")
            )
        if settings:
            draft.note(f"{cm.source} {service.key}: settings {settings} not imported")
    url = cm.context.get("argocdUrl")
    if url:
        draft.note(f"{cm.source} context argocdUrl {url}: set clusters[].argocd_url to it")
