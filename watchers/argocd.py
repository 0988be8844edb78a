"""Argo CD Application -> AppState: the one place that knows the Application CRD's status shape.

Reads only what detection, commands and messages need (sync, health, revisions, the last
operation, history, out-of-sync resources, images, Helm chart) and never keeps the raw object.
Pure and total: any JSON value comes back as an AppState or a `Rejected`, never an exception.

Where the CRD leaves room, the choices are:
- `revision` is the live revision: the newest `status.history` entry (Argo CD appends one per
  successful sync), else the `syncResult.revision` of a Succeeded operation.
- `desired_revision` is what Git says now: `status.sync.revision`, or the first of
  `status.sync.revisions` for a multi-source app (the same source order as history).
- `operation.revision` is the resolved `syncResult.revision`, else the requested
  `operation.sync.revision`; `auto_heal_attempts` is `operation.sync.autoHealAttemptsCount`.
- `chart_version` is the deployed chart version when the (first) Helm source's deployed revision
  is known, else its `targetRevision` (which may be a range such as `0.45.*`).
- Argo CD conditions have no status: each one present is kept with status "True".
- `reconciled_at` is `status.reconciledAt`: the sync status is only as fresh as that.
- `url` is left empty (the deep link needs the cluster's Argo CD URL, known to the caller).
- `destination_namespace` is spec.destination.namespace; `destination_cluster` is
  spec.destination.name, else its server URL unless that is the in-cluster API
  (`https://kubernetes.default.svc`): empty means the cluster the Application lives in.
- `health_message` is status.health.message; `unhealthy_resources` are the status.resources[]
  whose health is Degraded or Missing, with their health message. Since Argo CD 3.0 the
  controller no longer writes per-resource health there by default (it keeps it in its cache),
  so both may be empty: then an alert can only say the app is unhealthy.
- `repo_url` is the repoURL of the first Git source (a source without `chart`): the repository
  whose commits `revision` names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from sys import intern
from typing import Any, TypedDict, cast

from core.detect_argocd import AUTOMATED
from core.model import (
    MAX_HISTORY,
    MAX_RESOURCES,
    AppState,
    Condition,
    Health,
    HistoryEntry,
    Operation,
    ResourceRef,
    SyncStatus,
    Tool,
)
from watchers.annotations import interned, kept_annotations
from watchers.rejected import Rejected

__all__ = ["AUTOMATED", "normalize_application", "parse_time"]

# Raw shapes, as in the CRD (fixtures/crds/argoproj.io_applications.yaml). Every field is
# optional: values are checked where they are read, because the input is untrusted.


class RawMetadata(TypedDict, total=False):
    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]


class RawSource(TypedDict, total=False):
    repoURL: str
    chart: str
    path: str
    targetRevision: str


class RawDestination(TypedDict, total=False):
    server: str
    name: str
    namespace: str


class RawAutomated(TypedDict, total=False):
    enabled: bool
    prune: bool
    selfHeal: bool


class RawSyncPolicy(TypedDict, total=False):
    automated: RawAutomated


class RawSpec(TypedDict, total=False):
    project: str
    source: RawSource
    sources: list[RawSource]
    syncPolicy: RawSyncPolicy
    destination: RawDestination


class RawInitiatedBy(TypedDict, total=False):
    username: str
    automated: bool


class RawHistory(TypedDict, total=False):
    id: int
    revision: str
    revisions: list[str]
    deployedAt: str
    deployStartedAt: str
    initiatedBy: RawInitiatedBy


class RawSyncOperation(TypedDict, total=False):
    revision: str
    revisions: list[str]
    autoHealAttemptsCount: int


class RawOperation(TypedDict, total=False):
    sync: RawSyncOperation
    initiatedBy: RawInitiatedBy


class RawSyncResult(TypedDict, total=False):
    revision: str
    revisions: list[str]


class RawOperationState(TypedDict, total=False):
    phase: str
    message: str
    startedAt: str
    finishedAt: str
    retryCount: int
    operation: RawOperation
    syncResult: RawSyncResult


class RawHealth(TypedDict, total=False):
    status: str
    message: str


class RawResourceStatus(TypedDict, total=False):
    group: str
    kind: str
    namespace: str
    name: str
    status: str
    health: RawHealth


class RawCondition(TypedDict, total=False):
    type: str
    message: str
    lastTransitionTime: str


class RawSyncStatus(TypedDict, total=False):
    status: str
    revision: str
    revisions: list[str]


class RawSummary(TypedDict, total=False):
    images: list[str]


class RawStatus(TypedDict, total=False):
    sync: RawSyncStatus
    health: RawHealth
    history: list[RawHistory]
    operationState: RawOperationState
    resources: list[RawResourceStatus]
    conditions: list[RawCondition]
    summary: RawSummary
    reconciledAt: str


class RawApplication(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: RawMetadata
    spec: RawSpec
    status: RawStatus


_SYNC = {"Synced": SyncStatus.SYNCED, "OutOfSync": SyncStatus.OUT_OF_SYNC}
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
"""spec.destination.server of an Application that deploys into its own cluster."""

_BAD_HEALTH = frozenset({"Degraded", "Missing"})

_HEALTH = {
    "Healthy": Health.HEALTHY,
    "Progressing": Health.PROGRESSING,
    "Degraded": Health.DEGRADED,
    "Suspended": Health.SUSPENDED,
    "Missing": Health.MISSING,
}


def normalize_application(
    obj: Mapping[str, Any], cluster: str, now: datetime
) -> AppState | Rejected:
    """An Argo CD Application (raw JSON) as seen at `now` in `cluster` -> AppState (pure)."""
    if not isinstance(obj, Mapping):
        return Rejected(f"Application is {type(obj).__name__}, not a JSON object")
    kind = obj.get("kind")
    if kind is not None and kind != "Application":
        return Rejected(f"expected kind Application, got {kind!r}")
    app = cast(RawApplication, obj)
    meta: RawMetadata = _map(app.get("metadata"))
    name = _str(meta.get("name"))
    if not name:
        return Rejected("Application has no metadata.name")
    spec: RawSpec = _map(app.get("spec"))
    status: RawStatus = _map(app.get("status"))
    sync: RawSyncStatus = _map(status.get("sync"))
    health: RawHealth = _map(status.get("health"))
    op_state: RawOperationState = _map(status.get("operationState"))

    chart, chart_target, chart_index = _chart_source(spec)
    history = _history(status, chart_index)
    operation = _operation(op_state) if op_state else None
    revision = history[0].revision if history else ""
    if not revision and operation is not None and operation.phase == "Succeeded":
        revision = operation.revision
    conditions = _conditions(status)
    resources, oos_count, unhealthy, unhealthy_count = _resource_refs(status)
    automated = _automated(spec)
    destination: RawDestination = _map(spec.get("destination"))

    return AppState(
        tool=Tool.ARGOCD,
        cluster=cluster,
        namespace=_str(meta.get("namespace")),
        kind="Application",
        name=name,
        observed_at=now,
        sync=_SYNC.get(_str(sync.get("status")), SyncStatus.UNKNOWN),
        health=_HEALTH.get(_str(health.get("status")), Health.UNKNOWN),
        revision=revision,
        desired_revision=_first_revision(sync),
        chart=chart,
        chart_version=(history[0].chart_version if history else "") or chart_target,
        images=tuple(_strs(_map(status.get("summary")).get("images"))),
        auto_sync=automated is not None,
        self_heal=automated is not None and automated.get("selfHeal") is True,
        operation=operation,
        history=history,
        out_of_sync_resources=resources,
        out_of_sync_count=oos_count,
        message=(operation.message if operation else "")
        or "; ".join(c.message for c in conditions if c.message),
        conditions=conditions,
        labels=_labels(meta.get("labels")),
        annotations=kept_annotations(meta.get("annotations")),
        project=_str(spec.get("project")),
        reconciled_at=parse_time(status.get("reconciledAt")),
        destination_cluster=_destination_cluster(destination),
        destination_namespace=_str(destination.get("namespace")),
        health_message=_str(health.get("message")),
        unhealthy_resources=unhealthy,
        unhealthy_count=unhealthy_count,
        repo_url=_git_repo_url(spec),
    )


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp -> aware datetime (naive taken as UTC); anything else -> None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _automated(spec: RawSpec) -> RawAutomated | None:
    """spec.syncPolicy.automated when auto-sync is on (present and not `enabled: false`)."""
    automated = _map(_map(spec.get("syncPolicy")).get("automated"), none=True)
    if automated is None or automated.get("enabled") is False:
        return None
    return cast(RawAutomated, automated)


def _chart_source(spec: RawSpec) -> tuple[str, str, int]:
    """(chart, targetRevision, source index) of the first Helm chart source, or ("", "", -1)."""
    single = _map(spec.get("source"), none=True)
    sources = [single] if single is not None else [_map(s) for s in _list(spec.get("sources"))]
    for index, source in enumerate(sources):
        chart = _str(source.get("chart"))
        if chart:
            return chart, _str(source.get("targetRevision")), index
    return "", "", -1


def _destination_cluster(destination: RawDestination) -> str:
    name = _str(destination.get("name"))
    if name and name != "in-cluster":
        return name
    server = _str(destination.get("server")).rstrip("/")
    return "" if server in ("", IN_CLUSTER_SERVER) else server


def _git_repo_url(spec: RawSpec) -> str:
    """repoURL of the first source that is not a Helm chart (charts have no commits)."""
    single = _map(spec.get("source"), none=True)
    sources = [single] if single is not None else [_map(s) for s in _list(spec.get("sources"))]
    for source in sources:
        if not _str(source.get("chart")):
            return _str(source.get("repoURL"))
    return ""


def _history(status: RawStatus, chart_index: int) -> tuple[HistoryEntry, ...]:
    """Newest first (Argo CD appends), at most MAX_HISTORY entries."""
    entries: list[HistoryEntry] = []
    for raw in reversed(_list(status.get("history"))):
        item: RawHistory = _map(raw)
        if not item:
            continue
        revisions = _strs(item.get("revisions")) or [_str(item.get("revision"))]
        chart_version = ""
        if 0 <= chart_index < len(revisions):
            chart_version = revisions[chart_index]
        hist_id = _int(item.get("id"))
        entries.append(
            HistoryEntry(
                revision=revisions[0],
                deployed_at=parse_time(item.get("deployedAt")),
                initiated_by=_initiator(item.get("initiatedBy")),
                id="" if hist_id is None else intern(str(hist_id)),
                chart_version=chart_version,
            )
        )
        if len(entries) == MAX_HISTORY:
            break
    return tuple(entries)


def _operation(op_state: RawOperationState) -> Operation:
    operation: RawOperation = _map(op_state.get("operation"))
    sync_op: RawSyncOperation = _map(operation.get("sync"))
    result: RawSyncResult = _map(op_state.get("syncResult"))
    initiated: RawInitiatedBy = _map(operation.get("initiatedBy"))
    return Operation(
        phase=_str(op_state.get("phase")),
        revision=_first_revision(result) or _first_revision(sync_op),
        started_at=parse_time(op_state.get("startedAt")),
        finished_at=parse_time(op_state.get("finishedAt")),
        initiated_by=_str(initiated.get("username")),
        automated=initiated.get("automated") is True,
        auto_heal_attempts=max(_int(sync_op.get("autoHealAttemptsCount")) or 0, 0),
        message=_str(op_state.get("message")),
    )


def _initiator(value: object) -> str:
    initiated = _map(value)
    if initiated.get("automated") is True:
        return AUTOMATED
    return _str(initiated.get("username"))


def _first_revision(raw: Mapping[str, Any]) -> str:
    return _str(raw.get("revision")) or next(iter(_strs(raw.get("revisions"))), "")


def _resource_refs(
    status: RawStatus,
) -> tuple[tuple[ResourceRef, ...], int, tuple[ResourceRef, ...], int]:
    """status.resources out of sync, and those whose health is Degraded or Missing (worst
    first: Degraded before Missing), at most MAX_RESOURCES of each, with how many there are
    of each in all. One pass: an Application of production size lists hundreds."""
    drifted: list[ResourceRef] = []
    unhealthy: list[ResourceRef] = []
    drift_count = bad_count = 0
    for raw in _list(status.get("resources")):
        res: RawResourceStatus = _map(raw)
        out_of_sync = res.get("status") == "OutOfSync"
        health: RawHealth = _map(res.get("health"))
        state = _str(health.get("status"))
        bad = state in _BAD_HEALTH
        if not (out_of_sync or bad):
            continue
        kind, namespace, name = (
            _str(res.get("kind")),
            _str(res.get("namespace")),
            _str(res.get("name")),
        )
        if out_of_sync:
            drift_count += 1
            if len(drifted) < MAX_RESOURCES:
                drifted.append(ResourceRef(kind=kind, namespace=namespace, name=name))
        if bad:
            bad_count += 1
            if len(unhealthy) < MAX_RESOURCES:
                message = _str(health.get("message"))
                unhealthy.append(ResourceRef(kind, namespace, name, state, message))
    unhealthy.sort(key=lambda ref: ref.health != "Degraded")
    return tuple(drifted), drift_count, tuple(unhealthy), bad_count


def _conditions(status: RawStatus) -> tuple[Condition, ...]:
    conditions: list[Condition] = []
    for raw in _list(status.get("conditions")):
        cond: RawCondition = _map(raw)
        type_ = _str(cond.get("type"))
        if type_:
            conditions.append(
                Condition(type=type_, status="True", message=_str(cond.get("message")))
            )
    return tuple(conditions)


def _labels(value: object) -> dict[str, str]:
    return interned(
        {k: v for k, v in _map(value).items() if isinstance(k, str) and isinstance(v, str)}
    )


def _map(value: object, *, none: bool = False) -> Any:
    """`value` if it is a JSON object, else {} (or None when `none`)."""
    if type(value) is dict or isinstance(value, Mapping):
        return value
    return None if none else {}


def _list(value: object) -> Sequence[object]:
    return value if isinstance(value, list) else ()


def _str(value: object) -> str:
    return intern(str(value)) if isinstance(value, str) else ""


def _strs(value: object) -> list[str]:
    return [intern(str(v)) for v in _list(value) if isinstance(v, str) and v]


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None
