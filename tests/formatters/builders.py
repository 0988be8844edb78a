"""Realistic app states and events for renderer tests, shaped after the upstream fixtures.

Names, revisions and messages follow ../shared/fixtures: the guestbook Application and its
rollback Event, the velero-test Application's resources, the podinfo HelmRelease history and the
apps Kustomization change set.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core.model import AppState, EventKind, GitOpsEvent, ResourceRef, Tool, make_event

NOW = datetime(2026, 11, 20, 9, 40, tzinfo=UTC)
SHA = "ea8759964626a583667a2bfd08f334ec2070040a"
OLD_SHA = "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"
FLUX_REVISION = "main@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9"
ARGOCD_URL = "https://argocd.example.com/applications/argocd/guestbook"
REPO_URL = "https://github.com/argoproj/argocd-example-apps.git"
"""Where Argo CD's guestbook example lives."""
COMMIT_URL = f"https://github.com/argoproj/argocd-example-apps/commit/{SHA}"


def argocd_state(**changes: Any) -> AppState:
    state = AppState(
        tool=Tool.ARGOCD,
        cluster="prod",
        namespace="argocd",
        kind="Application",
        name="guestbook",
        observed_at=NOW,
        revision=SHA,
        project="default",
        url=ARGOCD_URL,
        destination_namespace="test-lla",
        repo_url=REPO_URL,
        out_of_sync_resources=(
            ResourceRef("Service", "test-lla", "test-lla"),
            ResourceRef("Deployment", "test-lla", "test-lla"),
        ),
        out_of_sync_count=2,
        message="one or more objects failed to apply (dry run)",
    )
    return replace(state, **changes)


def flux_state(**changes: Any) -> AppState:
    state = AppState(
        tool=Tool.FLUX,
        cluster="prod",
        namespace="flux-system",
        kind="Kustomization",
        name="apps",
        observed_at=NOW,
        revision=FLUX_REVISION,
        message=(
            "kustomization path not found: stat /tmp/kustomization-1464362706/invalid: "
            "no such file or directory"
        ),
    )
    return replace(state, **changes)


def helmrelease_state(**changes: Any) -> AppState:
    state = AppState(
        tool=Tool.FLUX,
        cluster="staging",
        namespace="podinfo",
        kind="HelmRelease",
        name="podinfo",
        observed_at=NOW,
        revision="6.6.1+0cc9a8446c95",
        chart="podinfo",
        chart_version="6.6.1+0cc9a8446c95",
    )
    return replace(state, **changes)


def event(
    kind: EventKind, state: AppState | None = None, at: datetime = NOW, **kwargs: Any
) -> GitOpsEvent:
    return make_event(kind, state or argocd_state(), at, **kwargs)


def recovery(
    kind: EventKind, state: AppState | None = None, after: timedelta = timedelta(minutes=14)
) -> GitOpsEvent:
    """A recovery `after` the problem began at NOW, with `since` filled as policy does."""
    return replace(event(kind, state, NOW + after), since=NOW)
