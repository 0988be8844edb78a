"""Flux objects (Kustomization, HelmRelease and the source kinds) to the tool-neutral AppState.

Field mapping follows the CRDs (kustomize.toolkit.fluxcd.io/v1, helm.toolkit.fluxcd.io/v2,
source.toolkit.fluxcd.io/v1). Normalizing decides and never raises: anything malformed comes
back as `Rejected`, and a field of the wrong type is treated as absent.

Derived fields:
- `ready`, `ready_reason`, `message`: the Ready condition (status Unknown -> `ready` None).
- `revision` (what runs): Kustomization `status.lastAppliedRevision`; HelmRelease
  `status.history[0].chartVersion`; sources `status.artifact.revision`.
- `desired_revision` (what was tried): `status.lastAttemptedRevision`; sources have no separate
  attempt, so it equals the artifact revision.
- `sync`: revisions only. UNKNOWN when neither is known; OUT_OF_SYNC when the attempted revision
  differs from the applied one (Git moved and the new revision is not applied yet); SYNCED
  otherwise. Sources are SYNCED when they hold an artifact and Ready is True.
- `health`: a Kustomization's `Healthy` condition when present (True healthy, False degraded,
  Unknown progressing); otherwise from Ready: True healthy, Unknown or a Reconciling=True
  condition progressing, False degraded when the reason says the workload is unhealthy
  (HealthCheckFailed; for a HelmRelease also a failed release, failed tests or Stalled; for a
  source any failure, the source being the thing itself), else
  unknown (a build or fetch failure says nothing about what runs).
- `health_message`: a Kustomization's `Healthy=False` condition message (the failing health
  checks), when it says more than the Ready message.
- `destination_namespace`: `spec.targetNamespace`, else the object's own namespace (where a
  HelmRelease installs, and where a Kustomization puts objects that name no namespace).
- `repo_url`: a GitRepository's `spec.url`; `source_ref`: a Kustomization's
  `spec.sourceRef`, a HelmRelease's `spec.chartRef` or `spec.chart.spec.sourceRef`, as
  `Kind/namespace/name` (namespace defaults to the object's), so the caller can find the
  repository of its revision and routes can match the source's name.
- `annotations`: those worth keeping (`watchers.annotations`), for routes to match.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from sys import intern
from typing import Any, TypedDict

from core.model import (
    MAX_HISTORY,
    AppState,
    Condition,
    Health,
    HistoryEntry,
    SyncStatus,
    Tool,
)
from watchers.annotations import interned, kept_annotations
from watchers.rejected import Rejected

__all__ = [
    "APP_KINDS",
    "KINDS",
    "SOURCE_KINDS",
    "normalize_object",
    "parse_time",
    "split_group_keys",
]

APP_KINDS: frozenset[str] = frozenset({"Kustomization", "HelmRelease"})
SOURCE_KINDS: frozenset[str] = frozenset(
    {"GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket"}
)
KINDS: frozenset[str] = APP_KINDS | SOURCE_KINDS

MAX_CONDITIONS = 16
"""Flux objects carry a handful of conditions; more than this is not a Flux object."""

_UNHEALTHY_HELM_REASONS = frozenset(
    {"InstallFailed", "UpgradeFailed", "TestFailed", "RollbackFailed", "UninstallFailed"}
)


class RawCondition(TypedDict, total=False):
    type: str
    status: str
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: int


class RawHelmSnapshot(TypedDict, total=False):
    """One entry of HelmRelease `status.history` (helm.toolkit.fluxcd.io/v2 Snapshot)."""

    name: str
    namespace: str
    version: int
    status: str
    chartName: str
    chartVersion: str
    appVersion: str
    firstDeployed: str
    lastDeployed: str
    deleted: str
    digest: str
    configDigest: str
    ociDigest: str
    action: str


class RawKustomizationSnapshot(TypedDict, total=False):
    """One entry of Kustomization `status.history` (kustomize.toolkit.fluxcd.io/v1)."""

    digest: str
    firstReconciled: str
    lastReconciled: str
    lastReconciledDuration: str
    lastReconciledStatus: str
    totalReconciliations: int
    metadata: dict[str, str]


class RawArtifact(TypedDict, total=False):
    revision: str
    digest: str
    lastUpdateTime: str
    path: str
    url: str
    size: int


class RawFluxStatus(TypedDict, total=False):
    conditions: list[RawCondition]
    observedGeneration: int
    lastHandledReconcileAt: str
    lastAppliedRevision: str
    lastAttemptedRevision: str
    history: list[Any]
    artifact: RawArtifact
    observedChartName: str
    failures: int


class RawFluxObject(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: dict[str, Any]
    status: RawFluxStatus


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp to an aware datetime (naive means UTC); anything else -> None."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def split_group_keys(raw: Any) -> dict[str, str]:
    """String entries of a metadata map, each under its own key and, for a group-prefixed key
    (`kustomize.toolkit.fluxcd.io/revision`), also under the stripped key (`revision`).

    A key already present without prefix keeps its own value.
    """
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(key, str) and isinstance(value, str):
            out[key] = value
    for key, value in list(out.items()):
        prefix, sep, short = key.rpartition("/")
        if sep and prefix and short and short not in out:
            out[short] = value
    return out


def _map(obj: Any, key: str) -> Mapping[str, Any]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _str(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return intern(str(value)) if isinstance(value, str) else ""


def _list(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, list) else []


def _conditions(status: Mapping[str, Any]) -> tuple[Condition, ...]:
    out: list[Condition] = []
    for raw in _list(status, "conditions"):
        type_ = _str(raw, "type")
        if not type_:
            continue
        out.append(
            Condition(
                type=type_,
                status=_str(raw, "status"),
                reason=_str(raw, "reason"),
                message=_str(raw, "message"),
            )
        )
        if len(out) >= MAX_CONDITIONS:
            break
    return tuple(out)


def _labels(metadata: Mapping[str, Any]) -> dict[str, str]:
    return interned(
        {
            k: v
            for k, v in _map(metadata, "labels").items()
            if isinstance(k, str) and isinstance(v, str)
        }
    )


def _find(conditions: tuple[Condition, ...], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def _helm_history(status: Mapping[str, Any]) -> tuple[HistoryEntry, ...]:
    """HelmRelease snapshots; the controller keeps them newest first."""
    out: list[HistoryEntry] = []
    for raw in _list(status, "history"):
        if not isinstance(raw, Mapping):
            continue
        version = raw.get("version")
        chart_version = _str(raw, "chartVersion")
        out.append(
            HistoryEntry(
                revision=chart_version,
                deployed_at=parse_time(raw.get("lastDeployed")),
                id=intern(str(version))
                if isinstance(version, int) and not isinstance(version, bool)
                else "",
                chart_version=chart_version,
                status=_str(raw, "status"),
            )
        )
        if len(out) >= MAX_HISTORY:
            break
    return tuple(out)


def _kustomization_history(status: Mapping[str, Any]) -> tuple[HistoryEntry, ...]:
    """Kustomization snapshots, newest reconcile first."""
    entries: list[tuple[datetime | None, HistoryEntry]] = []
    for raw in _list(status, "history"):
        if not isinstance(raw, Mapping):
            continue
        last = parse_time(raw.get("lastReconciled"))
        entry = HistoryEntry(
            revision=_str(_map(raw, "metadata"), "revision"),
            deployed_at=parse_time(raw.get("firstReconciled")),
            id=_str(raw, "digest"),
            status=_str(raw, "lastReconciledStatus"),
        )
        entries.append((last, entry))
    floor = datetime.min.replace(tzinfo=UTC)
    entries.sort(key=lambda pair: pair[0] or floor, reverse=True)
    return tuple(entry for _, entry in entries[:MAX_HISTORY])


def _health(kind: str, conditions: tuple[Condition, ...], ready: Condition | None) -> Health:
    healthy = _find(conditions, "Healthy")
    if healthy is not None:
        return {"True": Health.HEALTHY, "False": Health.DEGRADED}.get(
            healthy.status, Health.PROGRESSING
        )
    stalled = _find(conditions, "Stalled")
    if kind == "HelmRelease" and stalled is not None and stalled.status == "True":
        return Health.DEGRADED
    if ready is None:
        return Health.UNKNOWN
    if ready.status == "True":
        return Health.HEALTHY
    if ready.status != "False":
        return Health.PROGRESSING
    if ready.reason == "HealthCheckFailed" or kind in SOURCE_KINDS:
        return Health.DEGRADED
    if kind == "HelmRelease" and ready.reason in _UNHEALTHY_HELM_REASONS:
        return Health.DEGRADED
    if kind == "HelmRelease":
        test = _find(conditions, "TestSuccess")
        if test is not None and test.status == "False":
            return Health.DEGRADED
    return Health.UNKNOWN


def _sync(revision: str, desired: str) -> SyncStatus:
    if not revision and not desired:
        return SyncStatus.UNKNOWN
    if desired and desired != revision:
        return SyncStatus.OUT_OF_SYNC
    return SyncStatus.SYNCED


def _chart(spec: Mapping[str, Any], history: list[Any]) -> str:
    chart = _str(_map(_map(spec, "chart"), "spec"), "chart")
    if chart:
        return chart
    ref = _map(spec, "chartRef")
    if _str(ref, "name"):
        return "/".join(p for p in (_str(ref, "kind"), _str(ref, "name")) if p)
    return _str(history[0], "chartName") if history else ""


def normalize_object(obj: Mapping[str, Any], cluster: str, now: datetime) -> AppState | Rejected:
    """A Flux object (any of `KINDS`) to its AppState at `now` (pure; never raises)."""
    if not isinstance(obj, Mapping):
        return Rejected(f"Flux object is {type(obj).__name__}, not a JSON object")
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        return Rejected(f"not a Flux kind: {kind!r}")
    metadata = _map(obj, "metadata")
    name = _str(metadata, "name")
    if not name:
        return Rejected(f"{kind} without metadata.name")
    spec = _map(obj, "spec")
    status = _map(obj, "status")
    conditions = _conditions(status)
    ready = _find(conditions, "Ready")
    ready_flag = None if ready is None else {"True": True, "False": False}.get(ready.status)

    chart = chart_version = app_version = ""
    history: tuple[HistoryEntry, ...] = ()
    if kind == "Kustomization":
        revision = _str(status, "lastAppliedRevision")
        desired = _str(status, "lastAttemptedRevision")
        history = _kustomization_history(status)
        sync = _sync(revision, desired)
    elif kind == "HelmRelease":
        raw_history = [h for h in _list(status, "history") if isinstance(h, Mapping)]
        history = _helm_history(status)
        latest = raw_history[0] if raw_history else {}
        revision = _str(latest, "chartVersion")
        desired = _str(status, "lastAttemptedRevision")
        chart = _chart(spec, raw_history)
        chart_version = revision
        app_version = _str(latest, "appVersion")
        sync = _sync(revision, desired)
    else:
        revision = _str(_map(status, "artifact"), "revision")
        desired = revision
        if kind == "HelmChart":
            chart = _str(status, "observedChartName") or _str(spec, "chart")
            chart_version = revision
        sync = SyncStatus.SYNCED if revision and ready_flag is True else SyncStatus.UNKNOWN

    namespace = _str(metadata, "namespace")
    healthy = _find(conditions, "Healthy")
    health_message = ""
    if (
        healthy is not None
        and healthy.status == "False"
        and (ready is None or healthy.message not in ready.message)
    ):
        health_message = healthy.message
    return AppState(
        tool=Tool.FLUX,
        cluster=cluster,
        namespace=namespace,
        kind=kind,
        name=name,
        observed_at=now,
        sync=sync,
        health=_health(kind, conditions, ready),
        ready=ready_flag,
        ready_reason=ready.reason if ready is not None else "",
        revision=revision,
        desired_revision=desired,
        chart=chart,
        chart_version=chart_version,
        app_version=app_version,
        suspended=spec.get("suspend") is True,
        reconcile_handled=_str(status, "lastHandledReconcileAt"),
        history=history,
        message=ready.message if ready is not None else "",
        conditions=conditions,
        labels=_labels(metadata),
        annotations=kept_annotations(metadata.get("annotations")),
        destination_namespace=_str(spec, "targetNamespace") or namespace,
        health_message=health_message,
        repo_url=_str(spec, "url") if kind == "GitRepository" else "",
        source_ref=_source_ref(kind, spec, namespace),
    )


def _source_ref(kind: str, spec: Mapping[str, Any], namespace: str) -> str:
    if kind == "Kustomization":
        ref = _map(spec, "sourceRef")
    elif kind == "HelmRelease":
        ref = _map(spec, "chartRef") or _map(_map(_map(spec, "chart"), "spec"), "sourceRef")
    else:
        return ""
    kind, name = _str(ref, "kind"), _str(ref, "name")
    if not kind or not name:
        return ""
    return f"{kind}/{_str(ref, 'namespace') or namespace}/{name}"
