"""The fields of the Flux kinds that `watchers.flux` reads, as msgspec Structs.

Shapes from the CRDs (kustomize.toolkit.fluxcd.io/v1, helm.toolkit.fluxcd.io/v2,
source.toolkit.fluxcd.io/v1). HelmRelease `spec.chart` is an object and HelmChart `spec.chart`
a string, so each kind has its own Struct. tests/watchers/test_decode.py checks that the
normalizer reads nothing these do not declare.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from watchers.decode.base import ObjectView, View
from watchers.flux import parse_time

__all__ = [
    "Bucket",
    "GitRepository",
    "HelmChart",
    "HelmRelease",
    "HelmRepository",
    "Kustomization",
    "OCIRepository",
]


class Condition(View):
    type: Any = None
    status: Any = None
    reason: Any = None
    message: Any = None


class SourceRef(View):
    kind: Any = None
    name: Any = None
    namespace: Any = None


class SuspendSpec(View):
    suspend: Any = None
    targetNamespace: Any = None


class KustomizationSpec(SuspendSpec):
    sourceRef: SourceRef | None = None


class GitRepositorySpec(SuspendSpec):
    url: Any = None


# -- Kustomization ------------------------------------------------------------------------------


class KustomizationSnapshot(View):
    digest: Any = None
    firstReconciled: Any = None
    lastReconciled: Any = None
    lastReconciledStatus: Any = None
    metadata: dict[str, Any] | None = None


class KustomizationStatus(View):
    conditions: list[Condition] | None = None
    lastHandledReconcileAt: Any = None
    lastAppliedRevision: Any = None
    lastAttemptedRevision: Any = None
    history: list[KustomizationSnapshot] | None = None


class Kustomization(ObjectView, tag="Kustomization"):
    spec: KustomizationSpec | None = None
    status: KustomizationStatus | None = None

    def relevant(self) -> Any:
        """`lastReconciled` of the history's snapshots moves at every reconcile; the
        normalizer uses it only to order them, so the order is what is kept of it."""
        status = self.status
        if status is not None and status.history:
            status = msgspec.structs.replace(status, history=_ordered(status.history))
        return (self.metadata_view(), self.spec, status)


_FLOOR = datetime.min.replace(tzinfo=UTC)


def _ordered(history: list[KustomizationSnapshot]) -> list[KustomizationSnapshot]:
    """The snapshots newest first, as `watchers.flux._kustomization_history` orders them,
    without their lastReconciled."""
    ordered = sorted(history, key=lambda s: parse_time(s.lastReconciled) or _FLOOR, reverse=True)
    return [msgspec.structs.replace(s, lastReconciled=None) for s in ordered]


# -- HelmRelease --------------------------------------------------------------------------------


class ChartTemplateSpec(View):
    chart: Any = None
    sourceRef: SourceRef | None = None


class ChartTemplate(View):
    spec: ChartTemplateSpec | None = None


class HelmReleaseSpec(SuspendSpec):
    chart: ChartTemplate | None = None
    chartRef: SourceRef | None = None


class HelmSnapshot(View):
    version: Any = None
    status: Any = None
    chartName: Any = None
    chartVersion: Any = None
    appVersion: Any = None
    lastDeployed: Any = None


class HelmReleaseStatus(View):
    conditions: list[Condition] | None = None
    lastHandledReconcileAt: Any = None
    lastAttemptedRevision: Any = None
    history: list[HelmSnapshot] | None = None


class HelmRelease(ObjectView, tag="HelmRelease"):
    spec: HelmReleaseSpec | None = None
    status: HelmReleaseStatus | None = None


# -- sources ------------------------------------------------------------------------------------


class Artifact(View):
    revision: Any = None


class SourceStatus(View):
    conditions: list[Condition] | None = None
    lastHandledReconcileAt: Any = None
    artifact: Artifact | None = None


class GitRepository(ObjectView, tag="GitRepository"):
    spec: GitRepositorySpec | None = None
    status: SourceStatus | None = None


class OCIRepository(ObjectView, tag="OCIRepository"):
    spec: SuspendSpec | None = None
    status: SourceStatus | None = None


class HelmRepository(ObjectView, tag="HelmRepository"):
    spec: SuspendSpec | None = None
    status: SourceStatus | None = None


class Bucket(ObjectView, tag="Bucket"):
    spec: SuspendSpec | None = None
    status: SourceStatus | None = None


class HelmChartSpec(SuspendSpec):
    chart: Any = None


class HelmChartStatus(View):
    conditions: list[Condition] | None = None
    lastHandledReconcileAt: Any = None
    artifact: Artifact | None = None
    observedChartName: Any = None


class HelmChart(ObjectView, tag="HelmChart"):
    spec: HelmChartSpec | None = None
    status: HelmChartStatus | None = None
