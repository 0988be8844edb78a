"""The fields of an Argo CD Application that `watchers.argocd` reads, as msgspec Structs.

Shapes from the CRD (fixtures/crds/argoproj.io_applications.yaml); a field here that the
normalizer does not read costs decoding time and widens the relevant view, a field the
normalizer reads that is missing here would silently read as absent:
tests/watchers/test_decode.py holds the two together.
"""

from __future__ import annotations

from typing import Any

import msgspec

from watchers.argocd import parse_time
from watchers.decode.base import ObjectView, View

__all__ = ["Application"]


class Source(View):
    repoURL: Any = None
    chart: Any = None
    path: Any = None
    targetRevision: Any = None


class Automated(View):
    enabled: Any = None
    selfHeal: Any = None


class SyncPolicy(View):
    automated: Automated | None = None


class Destination(View):
    server: Any = None
    name: Any = None
    namespace: Any = None


class Spec(View):
    project: Any = None
    source: Source | None = None
    sources: list[Source] | None = None
    destination: Destination | None = None
    syncPolicy: SyncPolicy | None = None


class InitiatedBy(View):
    username: Any = None
    automated: Any = None


class History(View):
    id: Any = None
    revision: Any = None
    revisions: Any = None
    deployedAt: Any = None
    initiatedBy: InitiatedBy | None = None


class SyncOperation(View):
    revision: Any = None
    revisions: Any = None
    autoHealAttemptsCount: Any = None


class Operation(View):
    sync: SyncOperation | None = None
    initiatedBy: InitiatedBy | None = None


class SyncResult(View):
    revision: Any = None
    revisions: Any = None


class OperationState(View):
    phase: Any = None
    message: Any = None
    startedAt: Any = None
    finishedAt: Any = None
    operation: Operation | None = None
    syncResult: SyncResult | None = None


class ResourceHealth(View):
    status: Any = None
    message: Any = None


class Resource(View):
    kind: Any = None
    namespace: Any = None
    name: Any = None
    status: Any = None
    health: ResourceHealth | None = None


class Condition(View):
    type: Any = None
    message: Any = None


class SyncStatus(View):
    status: Any = None
    revision: Any = None
    revisions: Any = None


class Health(View):
    status: Any = None
    message: Any = None


class Summary(View):
    images: Any = None


class Status(View):
    sync: SyncStatus | None = None
    health: Health | None = None
    history: list[History] | None = None
    operationState: OperationState | None = None
    resources: list[Resource] | None = None
    conditions: list[Condition] | None = None
    summary: Summary | None = None
    reconciledAt: Any = None


class Application(ObjectView, tag="Application"):
    spec: Spec | None = None
    status: Status | None = None

    def relevant(self) -> Any:
        """`status.reconciledAt` moves at every refresh (every three minutes by default);
        what it means is only whether the sync status predates the last operation's end
        (`core.detect_argocd._sync_status_stale`), so that is what is kept of it."""
        status = self.status
        if status is not None and status.reconciledAt is not None:
            status = msgspec.structs.replace(status, reconciledAt=_stale(status))
        return (self.metadata_view(), self.spec, status)


def _stale(status: Status) -> bool | None:
    """True when the sync status was compared before the last operation finished (None when
    either time is unknown), as `core.detect_argocd._sync_status_stale` decides it."""
    op = status.operationState
    finished = parse_time(op.finishedAt) if op is not None else None
    if finished is None:
        return None
    reconciled = parse_time(status.reconciledAt)
    return None if reconciled is None else reconciled < finished
