"""Raw Flux objects, Events and notification bodies for tests, shaped like the real CRDs.

Objects follow kustomize.toolkit.fluxcd.io/v1, helm.toolkit.fluxcd.io/v2 and
source.toolkit.fluxcd.io/v1; HelmRelease history entries are copies of the upstream example
(flux/helmrelease-history-example.yaml), Events and webhook bodies are edited copies of the
fixtures in flux/. Times are RFC 3339 strings relative to T0 (`at(minutes)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.model import event_id
from tests.upstream import load_fixture

T0 = datetime(2026, 11, 20, 9, 40, tzinfo=UTC)

REV1 = "main@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9"
"""The revision of the change-set Event fixture."""
REV2 = "main@sha1:731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"

EVENT_CHANGESET = "flux/event-kustomization-changeset.json"
EVENT_HELM_ROLLBACK = "flux/event-helmrelease-rollback.json"
EVENT_HELM_DRIFT = "flux/event-helmrelease-drift.json"
WEBHOOK = "flux/generic-webhook-event.json"
HELM_HISTORY = "flux/helmrelease-history-example.yaml"

_GROUPS = {
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomize-controller"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helm-controller"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "source-controller"),
    "OCIRepository": ("source.toolkit.fluxcd.io", "v1", "source-controller"),
    "HelmRepository": ("source.toolkit.fluxcd.io", "v1", "source-controller"),
    "HelmChart": ("source.toolkit.fluxcd.io", "v1", "source-controller"),
    "Bucket": ("source.toolkit.fluxcd.io", "v1", "source-controller"),
}


GIT_URL = "https://github.com/stefanprodan/podinfo"
"""The GitRepository url of Flux's own getting-started example."""


def at(minutes: float = 0) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def api_version(kind: str) -> str:
    group, version, _ = _GROUPS[kind]
    return f"{group}/{version}"


def condition(
    type_: str, status: str, reason: str, message: str = "", minutes: float = 0
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at(minutes),
        "observedGeneration": 1,
    }


def _conditions(
    ready: str | None, reason: str, message: str, extra: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    out = [dict(c) for c in extra]
    if ready is not None:
        out.insert(0, condition("Ready", ready, reason, message))
    if ready == "Unknown":
        out.append(condition("Reconciling", "True", "Progressing", message))
    return out


def _meta(name: str, namespace: str, labels: Mapping[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "generation": 1}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def kustomization(
    name: str = "apps",
    namespace: str = "flux-system",
    *,
    ready: str | None = "True",
    reason: str = "ReconciliationSucceeded",
    message: str | None = None,
    applied: str = REV1,
    attempted: str | None = None,
    suspend: bool = False,
    healthy: str | None = None,
    last_status: str | None = None,
    conditions: Sequence[Mapping[str, Any]] = (),
    labels: Mapping[str, str] | None = None,
    target_namespace: str | None = None,
    healthy_message: str | None = None,
) -> dict[str, Any]:
    """A Kustomization; `attempted` defaults to `applied`, `last_status` adds a history
    snapshot with that lastReconciledStatus, `healthy` a Healthy condition (with
    `healthy_message`), `target_namespace` sets spec.targetNamespace."""
    if message is None:
        message = f"Applied revision: {applied}" if ready == "True" else "failed"
    extra = list(conditions)
    if healthy is not None:
        extra.append(
            condition(
                "Healthy",
                healthy,
                "Succeeded" if healthy == "True" else reason,
                healthy_message or "",
            )
        )
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "conditions": _conditions(ready, reason, message, extra),
        "lastAppliedRevision": applied,
        "lastAttemptedRevision": applied if attempted is None else attempted,
    }
    if last_status is not None:
        status["history"] = [
            {
                "digest": "sha256:e59349a6d8cf01d625de9fe73efd94b5e2a8cc8453d1b893ec367cfa2105bae9",
                "firstReconciled": at(-60),
                "lastReconciled": at(0),
                "lastReconciledDuration": "2.1s",
                "lastReconciledStatus": last_status,
                "totalReconciliations": 3,
                "metadata": {"revision": applied},
            }
        ]
    spec: dict[str, Any] = {
        "interval": "10m",
        "path": "./apps",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        "suspend": suspend,
    }
    if target_namespace is not None:
        spec["targetNamespace"] = target_namespace
    return {
        "apiVersion": api_version("Kustomization"),
        "kind": "Kustomization",
        "metadata": _meta(name, namespace, labels),
        "spec": spec,
        "status": status,
    }


def helm_snapshot(
    version: int, chart_version: str, status: str = "deployed", minutes: float = 0
) -> dict[str, Any]:
    """A HelmRelease history entry: the upstream example's newest one, edited."""
    snap: dict[str, Any] = load_fixture(HELM_HISTORY)["status"]["history"][0]
    snap.update(
        version=version,
        chartVersion=chart_version,
        appVersion=chart_version.split("+")[0],
        status=status,
        lastDeployed=at(minutes),
    )
    return snap


def helmrelease(
    name: str = "podinfo",
    namespace: str = "podinfo",
    *,
    ready: str | None = "True",
    reason: str = "UpgradeSucceeded",
    message: str | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    attempted: str | None = None,
    suspend: bool = False,
    released: tuple[str, str] | None = None,
    remediated: tuple[str, str, str] | None = None,
    conditions: Sequence[Mapping[str, Any]] = (),
    chart: str = "podinfo",
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A HelmRelease; `history` defaults to the upstream example (6.6.1 over 6.6.0),
    `released` = (status, reason), `remediated` = (status, reason, message)."""
    snaps = (
        load_fixture(HELM_HISTORY)["status"]["history"]
        if history is None
        else [dict(h) for h in history]
    )
    latest = snaps[0]["chartVersion"] if snaps else ""
    if message is None:
        message = (
            f"Helm upgrade succeeded for release {namespace}/{name}.v{snaps[0]['version']} "
            f"with chart {chart}@{latest}"
            if snaps and ready == "True"
            else "failed"
        )
    extra = list(conditions)
    if released is not None:
        extra.append(condition("Released", released[0], released[1], message))
    if remediated is not None:
        extra.append(condition("Remediated", *remediated))
    return {
        "apiVersion": api_version("HelmRelease"),
        "kind": "HelmRelease",
        "metadata": _meta(name, namespace, labels),
        "spec": {
            "interval": "5m",
            "chart": {
                "spec": {
                    "chart": chart,
                    "version": "6.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                }
            },
            "suspend": suspend,
        },
        "status": {
            "observedGeneration": 1,
            "conditions": _conditions(ready, reason, message, extra),
            "history": snaps,
            "lastAttemptedRevision": latest if attempted is None else attempted,
            "helmChart": f"{namespace}/{namespace}-{name}",
        },
    }


def source(
    kind: str = "GitRepository",
    name: str = "flux-system",
    namespace: str = "flux-system",
    *,
    ready: str | None = "True",
    reason: str = "Succeeded",
    message: str | None = None,
    revision: str = REV1,
    suspend: bool = False,
    url: str | None = None,
) -> dict[str, Any]:
    """A source-controller object (GitRepository, OCIRepository, HelmRepository, HelmChart,
    Bucket) with an artifact at `revision` (no artifact when `revision` is empty); `url` sets
    spec.url (a GitRepository gets the podinfo repository by default)."""
    if message is None:
        message = f"stored artifact for revision '{revision}'" if ready == "True" else "failed"
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "conditions": _conditions(ready, reason, message, ()),
    }
    if revision:
        status["artifact"] = {
            "digest": "sha256:cdd538a0167e4b51152b71a477e51eb6737553510ce8797dbcc537e1342311bb",
            "lastUpdateTime": at(0),
            "path": f"{kind.lower()}/{namespace}/{name}/latest.tar.gz",
            "revision": revision,
            "size": 1024,
            "url": f"http://source-controller.flux-system.svc/{kind.lower()}/latest.tar.gz",
        }
    spec: dict[str, Any] = {"interval": "1m", "suspend": suspend}
    if url is None and kind == "GitRepository":
        url = GIT_URL
    if url is not None:
        spec["url"] = url
    if kind == "HelmChart":
        spec.update(chart="podinfo", sourceRef={"kind": "HelmRepository", "name": "podinfo"})
        status["observedChartName"] = "podinfo"
    return {
        "apiVersion": api_version(kind),
        "kind": kind,
        "metadata": _meta(name, namespace, None),
        "spec": spec,
        "status": status,
    }


def gitrepository(name: str = "flux-system", **kwargs: Any) -> dict[str, Any]:
    return source("GitRepository", name, **kwargs)


def flux_event(
    kind: str = "Kustomization",
    name: str = "apps",
    namespace: str = "flux-system",
    *,
    reason: str = "ReconciliationSucceeded",
    message: str = "Reconciliation finished in 1.2s, next run in 10m0s",
    warning: bool = False,
    revision: str | None = REV1,
    annotations: Mapping[str, str] | None = None,
    minutes: float = 0,
    count: int = 1,
) -> dict[str, Any]:
    """A core/v1 Event from a Flux controller: the change-set fixture, edited."""
    event: dict[str, Any] = load_fixture(EVENT_CHANGESET)
    group, version, component = _GROUPS[kind]
    notes = dict(annotations or {})
    if revision is not None:
        notes[f"{group}/revision"] = revision
    event["metadata"] = {
        "name": f"{name}.{event_id(kind, name, reason, message, minutes)}",
        "namespace": namespace,
        "annotations": notes,
    }
    event["involvedObject"] = {
        "apiVersion": f"{group}/{version}",
        "kind": kind,
        "name": name,
        "namespace": namespace,
        "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632",
        "resourceVersion": "48213",
    }
    event.update(
        reason=reason,
        message=message,
        type="Warning" if warning else "Normal",
        source={"component": component},
        firstTimestamp=at(minutes),
        lastTimestamp=at(minutes),
        count=count,
    )
    return event


def notification(
    kind: str = "Kustomization",
    name: str = "webapp",
    namespace: str = "apps",
    *,
    severity: str = "error",
    reason: str = "ValidationFailed",
    message: str = "service/apps/webapp validation error: spec.type: Unsupported value: Ingress",
    revision: str | None = REV2,
    prefixed: bool = True,
    metadata: Mapping[str, str] | None = None,
    minutes: float = 0,
) -> dict[str, Any]:
    """A notification-controller generic webhook body: the upstream example, edited.
    `prefixed` picks the metadata key spelling (group-prefixed or stripped)."""
    body: dict[str, Any] = load_fixture(WEBHOOK)
    group, version, component = _GROUPS[kind]
    meta = dict(metadata or {})
    if revision is not None:
        meta[f"{group}/revision" if prefixed else "revision"] = revision
    body["involvedObject"] = {
        "apiVersion": f"{group}/{version}",
        "kind": kind,
        "name": name,
        "namespace": namespace,
        "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632",
    }
    body.update(
        metadata=meta,
        severity=severity,
        reason=reason,
        message=message,
        reportingController=component,
        reportingInstance=f"{component}-7c7b47f5f-8bhrp",
        timestamp=at(minutes),
    )
    return body
