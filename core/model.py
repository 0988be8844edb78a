"""The domain model every stage speaks: what an app looks like now, and what happened to it.

`AppState` is the compact, tool-neutral picture of one Argo CD Application or Flux object in one
cluster; `Hint` is what a Kubernetes Event or a Flux notification says about such an object;
`GitOpsEvent` is one thing worth telling people. All are frozen: stages return new values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

MAX_RESOURCES = 50
"""Bound on the out-of-sync resources an AppState or event keeps (the rest is counted)."""

MAX_HISTORY = 5
"""How many deployment history entries an AppState keeps."""

FLUX_SOURCE_KINDS = ("GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket")
"""The Flux sources driftbot watches: they feed the apps, and a failing one stops deploys."""
FLUX_KINDS = ("Kustomization", "HelmRelease", *FLUX_SOURCE_KINDS)
"""Every Flux kind driftbot watches (and reads in notification-controller's webhook)."""


class Tool(StrEnum):
    ARGOCD = "argocd"
    FLUX = "flux"


class SyncStatus(StrEnum):
    SYNCED = "synced"
    OUT_OF_SYNC = "out_of_sync"
    UNKNOWN = "unknown"


class Health(StrEnum):
    HEALTHY = "healthy"
    PROGRESSING = "progressing"
    DEGRADED = "degraded"
    SUSPENDED = "suspended"
    MISSING = "missing"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class EventKind(StrEnum):
    """Stable names: they appear in config files, JSON output and metrics."""

    DRIFT_DETECTED = "drift_detected"
    DRIFT_RESOLVED = "drift_resolved"
    DEPLOY_STARTED = "deploy_started"
    DEPLOY_SUCCEEDED = "deploy_succeeded"
    DEPLOY_FAILED = "deploy_failed"
    HEALTH_DEGRADED = "health_degraded"
    HEALTH_RECOVERED = "health_recovered"
    ROLLBACK_SUCCEEDED = "rollback_succeeded"
    ROLLBACK_FAILED = "rollback_failed"
    OUT_OF_SYNC = "out_of_sync"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    SOURCE_FAILED = "source_failed"
    SOURCE_RECOVERED = "source_recovered"
    DELETED = "deleted"
    FLAPPING = "flapping"
    """An app whose problem keeps opening and closing: reported once instead of every flip."""


DEFAULT_SEVERITY: dict[EventKind, Severity] = {
    EventKind.DRIFT_DETECTED: Severity.WARNING,
    EventKind.DRIFT_RESOLVED: Severity.INFO,
    EventKind.DEPLOY_STARTED: Severity.INFO,
    EventKind.DEPLOY_SUCCEEDED: Severity.INFO,
    EventKind.DEPLOY_FAILED: Severity.CRITICAL,
    EventKind.HEALTH_DEGRADED: Severity.CRITICAL,
    EventKind.HEALTH_RECOVERED: Severity.INFO,
    EventKind.ROLLBACK_SUCCEEDED: Severity.WARNING,
    EventKind.ROLLBACK_FAILED: Severity.CRITICAL,
    EventKind.OUT_OF_SYNC: Severity.INFO,
    EventKind.SUSPENDED: Severity.WARNING,
    EventKind.RESUMED: Severity.INFO,
    EventKind.SOURCE_FAILED: Severity.WARNING,
    EventKind.SOURCE_RECOVERED: Severity.INFO,
    EventKind.DELETED: Severity.WARNING,
    EventKind.FLAPPING: Severity.WARNING,
}

RESOLVED_BY: dict[EventKind, tuple[EventKind, ...]] = {
    EventKind.DRIFT_DETECTED: (EventKind.DRIFT_RESOLVED,),
    EventKind.DEPLOY_FAILED: (EventKind.DEPLOY_SUCCEEDED, EventKind.ROLLBACK_SUCCEEDED),
    EventKind.HEALTH_DEGRADED: (EventKind.HEALTH_RECOVERED,),
    EventKind.ROLLBACK_FAILED: (EventKind.DEPLOY_SUCCEEDED, EventKind.ROLLBACK_SUCCEEDED),
    EventKind.OUT_OF_SYNC: (EventKind.DEPLOY_SUCCEEDED, EventKind.DRIFT_RESOLVED),
    EventKind.SUSPENDED: (EventKind.RESUMED,),
    EventKind.SOURCE_FAILED: (EventKind.SOURCE_RECOVERED,),
}
"""Problem kinds (open alerts) and the kinds that close them."""

PROBLEM_KINDS: frozenset[EventKind] = frozenset(RESOLVED_BY)
RECOVERY_KINDS: frozenset[EventKind] = frozenset(k for ks in RESOLVED_BY.values() for k in ks)


class AppKey(NamedTuple):
    """Identity of one watched object: one AppState per key."""

    tool: Tool
    cluster: str
    namespace: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.tool}:{self.cluster}/{self.namespace}/{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class ResourceRef:
    kind: str
    namespace: str
    name: str
    health: str = ""
    """For an unhealthy resource: its health status as the tool says it (Degraded, Missing …)."""
    message: str = ""
    """For an unhealthy resource: the tool's health message about it."""

    def __str__(self) -> str:
        return "/".join(p for p in (self.kind, self.namespace, self.name) if p)


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Operation:
    """The last sync operation (Argo CD operationState) or reconcile attempt."""

    phase: str = ""
    """Argo CD: Running, Succeeded, Failed, Error, Terminating."""
    revision: str = ""
    """The revision the operation synced (or is syncing) to."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    initiated_by: str = ""
    automated: bool = False
    auto_heal_attempts: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    revision: str
    deployed_at: datetime | None = None
    initiated_by: str = ""
    id: str = ""
    """Argo CD history id, Helm release version."""
    chart_version: str = ""
    status: str = ""
    """Flux HelmRelease snapshot status: deployed, superseded, failed …"""


@dataclass(frozen=True, slots=True)
class AppState:
    """One app as last seen. Compact by construction: never holds the raw object."""

    tool: Tool
    cluster: str
    namespace: str
    kind: str
    name: str
    observed_at: datetime
    sync: SyncStatus = SyncStatus.UNKNOWN
    health: Health = Health.UNKNOWN
    ready: bool | None = None
    """Flux Ready condition; None where the kind has none (Argo CD)."""
    ready_reason: str = ""
    """Flux Ready condition reason (BuildFailed, HealthCheckFailed, Succeeded …)."""
    revision: str = ""
    """Live / applied revision."""
    desired_revision: str = ""
    """Target / attempted revision."""
    chart: str = ""
    chart_version: str = ""
    app_version: str = ""
    images: tuple[str, ...] = ()
    suspended: bool = False
    auto_sync: bool = False
    self_heal: bool = False
    operation: Operation | None = None
    history: tuple[HistoryEntry, ...] = ()
    """Newest first, at most MAX_HISTORY."""
    out_of_sync_resources: tuple[ResourceRef, ...] = ()
    out_of_sync_count: int = 0
    """Total out-of-sync resources, also those beyond the bound."""
    message: str = ""
    conditions: tuple[Condition, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    project: str = ""
    url: str = ""
    deleted: bool = False
    reconciled_at: datetime | None = None
    """When the tool last compared the live state with the latest source (Argo CD
    status.reconciledAt): a sync status older than the last operation's end is stale."""
    destination_cluster: str = ""
    """Where the workload runs when that is not `cluster` itself: an Argo CD Application's
    spec.destination name (or server URL) for a remote cluster; empty for in-cluster."""
    destination_namespace: str = ""
    """The namespace the workload runs in: Argo CD spec.destination.namespace; Flux
    spec.targetNamespace, else the object's own namespace."""
    health_message: str = ""
    """Why the app is unhealthy, in the tool's words (Argo CD status.health.message)."""
    unhealthy_resources: tuple[ResourceRef, ...] = ()
    """Resources whose health is Degraded or Missing, with their health messages (bounded)."""
    unhealthy_count: int = 0
    """Total unhealthy resources, also those beyond the bound."""
    repo_url: str = ""
    """The Git repository the app deploys from (Argo CD source repoURL, Flux GitRepository
    spec.url), for links to commits; empty when unknown or not Git."""
    source_ref: str = ""
    """Flux: the source the object reads (`GitRepository/flux-system/podinfo`): a
    Kustomization's sourceRef, a HelmRelease's chart sourceRef or chartRef."""
    annotations: dict[str, str] = field(default_factory=dict)
    """The object's annotations that routes may match on (bounded; kubectl's
    last-applied-configuration and long values are left out)."""
    reconcile_handled: str = ""
    """Flux status.lastHandledReconcileAt: the last reconcile.fluxcd.io/requestedAt value the
    controller acted on, so a requested reconcile can be followed to its result."""

    @property
    def key(self) -> AppKey:
        return AppKey(self.tool, self.cluster, self.namespace, self.kind, self.name)

    def condition(self, type_: str) -> Condition | None:
        for cond in self.conditions:
            if cond.type == type_:
                return cond
        return None


@dataclass(frozen=True, slots=True)
class Hint:
    """What a Kubernetes Event or a Flux notification says about one object.

    Hints carry facts the object's status does not (who initiated a rollback, a Kustomization's
    change set, a HelmRelease's drift); detection turns some of them into events.
    """

    tool: Tool
    cluster: str
    namespace: str
    object_kind: str
    name: str
    reason: str
    message: str
    occurred_at: datetime
    warning: bool = False
    """Kubernetes Event type Warning, or Flux severity error."""
    revision: str = ""
    actor: str = ""
    source: str = ""
    """Emitting component: argocd-server, kustomize-controller, notification webhook …"""
    uid: str = ""
    """Identity of the report itself (Event uid/name and count), for dedup."""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> AppKey:
        return AppKey(self.tool, self.cluster, self.namespace, self.object_kind, self.name)


@dataclass(frozen=True, slots=True)
class GitOpsEvent:
    """One thing worth telling people. Field names are the JSON output contract."""

    id: str
    kind: EventKind
    severity: Severity
    tool: Tool
    cluster: str
    namespace: str
    object_kind: str
    name: str
    occurred_at: datetime
    revision: str = ""
    previous_revision: str = ""
    chart_version: str = ""
    previous_chart_version: str = ""
    actor: str = ""
    """Who initiated: a user, or "automated"."""
    message: str = ""
    resources: tuple[ResourceRef, ...] = ()
    resource_count: int = 0
    url: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    project: str = ""
    resolves: str = ""
    """For a recovery: the id of the problem event it closes (filled by policy)."""
    since: datetime | None = None
    """For a recovery: when the problem began (filled by policy)."""
    commit_author: str = ""
    """Author of the commit deployed or rolled back to, when the source says (enrichment)."""
    commit_subject: str = ""
    """First line of that commit's message, when the source says (enrichment)."""
    destination_cluster: str = ""
    """Where the workload runs when that is not `cluster` (see AppState)."""
    destination_namespace: str = ""
    """The namespace the workload runs in (see AppState); `namespace` is the object's own."""
    repo_url: str = ""
    """The Git repository of `revision`, for a link to the commit (see AppState)."""
    source_ref: str = ""
    """Flux: the source the object reads, `Kind/namespace/name` (see AppState)."""
    annotations: dict[str, str] = field(default_factory=dict)
    """The object's annotations, as routes match them (see AppState)."""

    @property
    def key(self) -> AppKey:
        return AppKey(self.tool, self.cluster, self.namespace, self.object_kind, self.name)


def event_id(*parts: object) -> str:
    """A short stable hash of the given parts: same inputs, same id, across runs and hosts."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def make_event(
    kind: EventKind,
    state: AppState,
    now: datetime,
    *,
    severity: Severity | None = None,
    revision: str | None = None,
    previous_revision: str = "",
    chart_version: str | None = None,
    previous_chart_version: str = "",
    actor: str = "",
    message: str | None = None,
    resources: tuple[ResourceRef, ...] | None = None,
    resource_count: int | None = None,
) -> GitOpsEvent:
    """Build an event about `state` with a stable id; unset fields come from the state.

    The id covers what makes the event distinct (kind, object, revisions, time), so the same
    change seen twice (a replay, a relist, an Event and a status) yields the same id.
    """
    rev = state.revision if revision is None else revision
    chart = state.chart_version if chart_version is None else chart_version
    res = state.out_of_sync_resources if resources is None else resources
    count = (state.out_of_sync_count or len(res)) if resource_count is None else resource_count
    return GitOpsEvent(
        id=event_id(kind, *state.key, rev, previous_revision, chart, now.isoformat()),
        kind=kind,
        severity=severity or DEFAULT_SEVERITY[kind],
        tool=state.tool,
        cluster=state.cluster,
        namespace=state.namespace,
        object_kind=state.kind,
        name=state.name,
        occurred_at=now,
        revision=rev,
        previous_revision=previous_revision,
        chart_version=chart,
        previous_chart_version=previous_chart_version,
        actor=actor,
        message=state.message if message is None else message,
        resources=res,
        resource_count=max(count, len(res)),
        url=state.url,
        labels=state.labels,
        project=state.project,
        destination_cluster=state.destination_cluster,
        destination_namespace=state.destination_namespace,
        repo_url=state.repo_url,
        source_ref=state.source_ref,
        annotations=state.annotations,
    )


def bare_state(key: AppKey, now: datetime) -> AppState:
    """A state that knows only an object's identity: for hints about objects not yet seen."""
    return AppState(
        tool=key.tool,
        cluster=key.cluster,
        namespace=key.namespace,
        kind=key.kind,
        name=key.name,
        observed_at=now,
    )
