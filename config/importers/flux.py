"""Flux notification-controller Alerts and Providers to driftbot routes and receivers. Pure.

An Alert forwards the events of its `eventSources` (kind, name or `*`, namespace defaulting to
the Alert's, `matchLabels`) at or above its `eventSeverity` to its Provider. Each event source
becomes a route (tool flux, object_kind, namespace, name, labels); `eventSeverity: error` keeps
the kinds Flux reports as errors. Slack and Microsoft Teams Providers become receivers. A
`generic`/`generic-hmac` Provider posts Flux's own event JSON: when it points at driftbot's
`/webhooks/flux` it is driftbot's input (its token goes to `server.flux_webhook_token_env`);
anywhere else driftbot has no equivalent, and says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from config.importers.draft import Draft, Route, env_name, literal, receiver_name
from config.importers.objects import KubeObject, describe, name_of, namespace_of, spec, text_map
from core.model import FLUX_KINDS, FLUX_SOURCE_KINDS, EventKind

GROUP = "notification.toolkit.fluxcd.io"
WATCHED_KINDS = FLUX_KINDS
SOURCE_KINDS = FLUX_SOURCE_KINDS
ERROR_KINDS = (
    EventKind.DEPLOY_FAILED,
    EventKind.HEALTH_DEGRADED,
    EventKind.ROLLBACK_FAILED,
    EventKind.DRIFT_DETECTED,
)
"""What Flux reports with severity error (Warning events) about a Kustomization or HelmRelease:
failed reconciliations, failing health checks, failed remediation, and helm-controller's
DriftDetected. About a source kind, it is a fetch that failed: source_failed."""

WEBHOOK_PATH = "/webhooks/flux"
TOKEN_ENV = "FLUX_WEBHOOK_TOKEN"


def import_flux(
    objects: Sequence[KubeObject], *, cluster: str | None = None, title: Sequence[str] = ()
) -> Draft:
    """The driftbot config for the Alerts and Providers among `objects`."""
    draft = Draft("Flux", title=list(title))
    providers: dict[tuple[str, str], KubeObject] = {}
    alerts: list[KubeObject] = []
    for obj in objects:
        group = str(obj.get("apiVersion") or "").partition("/")[0]
        kind = obj.get("kind")
        if group == GROUP and kind == "Provider":
            providers[(namespace_of(obj, "default"), name_of(obj))] = obj
        elif group == GROUP and kind == "Alert":
            alerts.append(obj)
        else:
            draft.note(f"{describe(obj)}: not a Flux Alert or Provider; ignored")
    used: set[tuple[str, str]] = set()
    for alert in alerts:
        namespace = namespace_of(alert, "default")
        ref = spec(alert).get("providerRef")
        provider_name = str(ref.get("name") or "") if isinstance(ref, Mapping) else ""
        provider = providers.get((namespace, provider_name))
        if provider is None:
            draft.note(
                f"{describe(alert)}: its Provider {namespace}/{provider_name} is not among the "
                "objects given; not imported"
            )
            continue
        used.add((namespace, provider_name))
        _import_alert(alert, provider, draft, cluster)
    for key, provider in providers.items():
        if key not in used:
            draft.note(f"{describe(provider)}: no Alert uses it; not imported")
    return draft


def _import_alert(
    alert: KubeObject, provider: KubeObject, draft: Draft, cluster: str | None
) -> None:
    label = describe(alert)
    alert_spec, provider_spec = spec(alert), spec(provider)
    if not str(alert.get("apiVersion", "")).endswith("/v1beta3"):
        draft.note(f"{label}: {alert.get('apiVersion')} read as v1beta3")
    for obj, obj_spec in ((alert, alert_spec), (provider, provider_spec)):
        if obj_spec.get("suspend") is True:
            draft.note(
                f"{describe(obj)} is suspended: Flux sends nothing for {label}; not imported"
            )
            return
    receiver = _receiver(provider, draft, cluster)
    if receiver is None:
        return
    name, receiver_origin = receiver
    _note_alert_extras(alert, draft)
    severity = str(alert_spec.get("eventSeverity") or "info")
    kinds_origin = f"eventSeverity {severity}: every event"
    if severity == "error":
        kinds_origin = "eventSeverity error: the kinds Flux reports as errors"
    sources = alert_spec.get("eventSources")
    for index, source in enumerate(sources if isinstance(sources, list) else []):
        if not isinstance(source, Mapping):
            continue
        match = _source_match(source, namespace_of(alert, "default"), cluster)
        where = f"{label} eventSources[{index}]"
        if isinstance(match, str):
            draft.note(f"{where}: {match}; not imported")
            continue
        if severity == "error":
            errors = (
                (EventKind.SOURCE_FAILED,) if match["object_kind"] in SOURCE_KINDS else ERROR_KINDS
            )
            match["kinds"] = [k.value for k in errors]
        draft.routes.append(
            Route(
                match=match,
                receivers=(name,),
                origin=f"{where} ({_source_words(source)})",
                kinds_origin=kinds_origin,
                receivers_origin=receiver_origin,
            )
        )


def _source_match(source: Mapping[str, Any], namespace: str, cluster: str | None) -> Any:
    """The match of one event source, or why there is none."""
    kind = str(source.get("kind") or "")
    if kind not in WATCHED_KINDS:
        return f"kind {kind or '(none)'}: driftbot watches only {', '.join(WATCHED_KINDS)}"
    match: dict[str, Any] = {"tool": "flux"}
    if cluster:
        match["cluster"] = literal(cluster)
    match["namespace"] = literal(str(source.get("namespace") or namespace))
    match["object_kind"] = kind
    name = str(source.get("name") or "*")
    if name != "*":
        match["name"] = literal(name)
    labels = text_map(source.get("matchLabels"))
    if labels:
        match["labels"] = {key: literal(value) for key, value in labels.items()}
    return match


def _source_words(source: Mapping[str, Any]) -> str:
    words = f"{source.get('kind')} {source.get('name') or '*'}"
    if source.get("namespace"):
        words += f" in {source.get('namespace')}"
    labels = text_map(source.get("matchLabels"))
    if labels:
        words += " with labels " + ",".join(f"{k}={v}" for k, v in labels.items())
    return words


def _note_alert_extras(alert: KubeObject, draft: Draft) -> None:
    label, alert_spec = describe(alert), spec(alert)
    for key, what in (
        ("inclusionList", "only events whose message matches one of"),
        ("exclusionList", "no event whose message matches one of"),
    ):
        patterns = alert_spec.get(key)
        if isinstance(patterns, list) and patterns:
            draft.note(
                f"{label} {key} {patterns}: Flux sends {what} these; driftbot cannot filter on "
                "message text, so its routes take these events whatever their message"
            )
    summary = alert_spec.get("summary")
    if isinstance(summary, str) and summary:
        draft.note(f"{label} summary {summary!r}: driftbot messages carry no summary line")
    for key, value in text_map(alert_spec.get("eventMetadata")).items():
        draft.note(
            f"{label} eventMetadata {key}={value!r}: driftbot messages carry no extra metadata"
        )
    if any(
        isinstance(s, Mapping) and s.get("matchLabels")
        for s in alert_spec.get("eventSources") or []
    ):
        draft.note(
            f"{label} matchLabels: driftbot matches the labels of the objects it watches; "
            "events that reach it only through /webhooks/flux carry no labels"
        )


def _receiver(provider: KubeObject, draft: Draft, cluster: str | None) -> tuple[str, str] | None:
    label, provider_spec = describe(provider), spec(provider)
    type_ = str(provider_spec.get("type") or "")
    secret = provider_spec.get("secretRef")
    secret_name = str(secret.get("name") or "") if isinstance(secret, Mapping) else ""
    skipped = ("username", "proxy", "certSecretRef", "timeout", "interval", "commitStatusExpr")
    settings = [k for k in skipped if provider_spec.get(k)]
    if settings:
        draft.note(f"{label}: settings {', '.join(settings)} not imported")
    if type_ == "slack":
        channel = str(provider_spec.get("channel") or "")
        if not channel:
            draft.note(
                f"{label}: no channel (a Slack incoming webhook in Secret {secret_name or '?'} "
                "picks it); add a slack receiver with that channel by hand; not imported"
            )
            return None
        token = f" (the token key of Secret {secret_name})" if secret_name else ""
        origin = f"{label} type slack, channel {channel}: posts with SLACK_BOT_TOKEN{token}"
        body = {"channel": channel}
        return draft.receiver(receiver_name("slack", channel), "slack", body, origin), origin
    if type_ == "msteams":
        variable = env_name("teams", name_of(provider), "webhook")
        held = f"the address key of Secret {secret_name}" if secret_name else "spec.address"
        origin = f"{label} type msteams: ${variable} holds the Workflows webhook URL ({held})"
        name = receiver_name("teams", name_of(provider))
        return draft.receiver(name, "teams", {"webhook_env": variable}, origin), origin
    if type_ in ("generic", "generic-hmac"):
        _generic(provider, type_, secret_name, draft, cluster)
        return None
    draft.note(
        f"{label} type {type_ or '(none)'}: driftbot sends only to Slack and Microsoft Teams; "
        "its Alerts are not imported"
    )
    return None


def _generic(
    provider: KubeObject, type_: str, secret_name: str, draft: Draft, cluster: str | None
) -> None:
    label = describe(provider)
    address = str(spec(provider).get("address") or "")
    parts = urlsplit(address) if address else None
    if parts is not None and parts.path.rstrip("/").endswith(WEBHOOK_PATH):
        draft.note(f"{label} type {type_}: posts to driftbot's {WEBHOOK_PATH}, its input; keep it")
        named = parse_qs(parts.query).get("cluster", [])
        _feed(draft, label, type_, secret_name, named[0] if named else cluster)
        return
    where = (
        f"{parts.scheme}://{parts.netloc}"
        if parts is not None and parts.netloc
        else f"the address in Secret {secret_name or '?'}"
    )
    draft.note(
        f"{label} type {type_}: posts Flux's event JSON to {where}; driftbot posts to Slack and "
        f"Teams only; point the Provider at driftbot's {WEBHOOK_PATH} to feed it instead; "
        "its Alerts are not imported"
    )


def _feed(draft: Draft, label: str, type_: str, secret_name: str, cluster: str | None) -> None:
    """The `server` keys that let this Provider's events in: its cluster (when known) among
    `flux_webhook_clusters`, with a token of its own for generic-hmac; unsigned events allowed
    for generic."""
    token = f"the token key of Secret {secret_name or '?'}"
    if type_ == "generic":
        draft.server["flux_webhook_accept_unsigned"] = (
            True,
            f"{label} type generic sends unsigned events (generic-hmac with a token is safer)",
        )
    if cluster and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}", cluster):
        draft.note(f"{label}: cluster {cluster!r} is not a driftbot cluster name; not imported")
    elif cluster:
        entry: dict[str, str] = {"name": cluster}
        if type_ == "generic-hmac":
            entry["token_env"] = env_name("flux", cluster, "token")
            token = f"${entry['token_env']} holds {token}"
        listed, origins = draft.server.get("flux_webhook_clusters", ([], ""))
        if entry not in listed:
            listed = [*listed, entry]
        origin = f"{origins}; " if origins else ""
        draft.server["flux_webhook_clusters"] = (
            listed,
            f"{origin}{label} type {type_}, cluster {cluster}"
            + (f": {token}" if type_ == "generic-hmac" else ""),
        )
    elif type_ == "generic-hmac":
        draft.server["flux_webhook_token_env"] = (
            TOKEN_ENV,
            f"{label} type generic-hmac: ${TOKEN_ENV} holds {token}",
        )
