"""Flux detection: one table row per transition or report, built from the upstream shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.detect import detect, detect_hint
from core.detect_flux import from_hint, parse_change_set, parse_rollback, transitions
from core.model import AppState, EventKind, Hint, ResourceRef, Severity
from tests.builders_flux import (
    EVENT_CHANGESET,
    EVENT_HELM_DRIFT,
    EVENT_HELM_ROLLBACK,
    REV1,
    REV2,
    flux_event,
    helm_snapshot,
    helmrelease,
    kustomization,
    load_fixture,
    notification,
    source,
)
from watchers.flux import normalize_object
from watchers.flux_events import normalize_event
from watchers.flux_webhook import normalize_notification

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
K = EventKind


def st(obj: dict[str, Any]) -> AppState:
    s = normalize_object(obj, "prod", NOW - timedelta(minutes=1))
    assert isinstance(s, AppState), s
    return s


def ev_hint(obj: dict[str, Any]) -> Hint:
    h = normalize_event(obj, "prod", NOW)
    assert isinstance(h, Hint), h
    return h


def wh_hint(body: dict[str, Any]) -> Hint:
    h = normalize_notification(body, "prod", NOW)
    assert isinstance(h, Hint), h
    return h


def kinds(prev: dict[str, Any], cur: dict[str, Any]) -> list[EventKind]:
    return [e.kind for e in transitions(st(prev), st(cur), NOW)]


ROLLBACK_MSG = (
    "Helm rollback to previous release podinfo/podinfo.v2 with chart podinfo@6.6.0 succeeded"
)
V2 = helm_snapshot(2, "6.6.0", "superseded")
V3_FAILED = helm_snapshot(3, "6.6.1", "failed")
V3_OK = helm_snapshot(3, "6.6.1", "deployed")
V4_ROLLBACK = helm_snapshot(4, "6.6.0", "deployed")

CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[EventKind]]] = [
    # Kustomization
    ("no change", kustomization(), kustomization(), []),
    (
        "new attempted revision",
        kustomization(),
        kustomization(attempted=REV2, ready="Unknown", reason="Progressing"),
        [K.DEPLOY_STARTED, K.OUT_OF_SYNC],
    ),
    (
        "new applied revision",
        kustomization(attempted=REV2, ready="Unknown", reason="Progressing"),
        kustomization(applied=REV2),
        [K.DEPLOY_SUCCEEDED],
    ),
    ("straight to applied", kustomization(), kustomization(applied=REV2), [K.DEPLOY_SUCCEEDED]),
    (
        "build failure of a new revision",
        kustomization(attempted=REV2, ready="Unknown", reason="Progressing"),
        kustomization(attempted=REV2, ready="False", reason="BuildFailed"),
        [K.DEPLOY_FAILED],
    ),
    (
        "same failure again",
        kustomization(ready="False", reason="ArtifactFailed"),
        kustomization(ready="False", reason="ArtifactFailed", message="other text"),
        [],
    ),
    (
        "new failure reason",
        kustomization(attempted=REV2, ready="False", reason="BuildFailed"),
        kustomization(attempted=REV2, ready="False", reason="ReconciliationFailed"),
        [K.DEPLOY_FAILED],
    ),
    (
        "same failure at a new revision",
        kustomization(attempted=REV1, ready="False", reason="ArtifactFailed"),
        kustomization(attempted=REV2, ready="False", reason="ArtifactFailed"),
        [K.DEPLOY_FAILED],
    ),
    (
        "failure recovers at the same revision",
        kustomization(ready="False", reason="ArtifactFailed"),
        kustomization(),
        [K.DEPLOY_SUCCEEDED],
    ),
    (
        "failure fixed by a new revision",
        kustomization(attempted=REV2, ready="False", reason="BuildFailed"),
        kustomization(applied=REV2),
        [K.DEPLOY_SUCCEEDED],
    ),
    (
        "health check of a new revision fails",
        kustomization(attempted=REV2, ready="Unknown", reason="Progressing"),
        kustomization(attempted=REV2, ready="False", reason="HealthCheckFailed", healthy="False"),
        [K.DEPLOY_FAILED],
    ),
    (
        "applied revision turns unhealthy",
        kustomization(healthy="True"),
        kustomization(ready="False", reason="HealthCheckFailed", healthy="False"),
        [K.HEALTH_DEGRADED],
    ),
    (
        "health recovers",
        kustomization(ready="False", reason="HealthCheckFailed"),
        kustomization(),
        [K.HEALTH_RECOVERED],
    ),
    (
        "retry cycle through Unknown keeps the failure",
        kustomization(ready="Unknown", reason="Progressing", last_status="HealthCheckFailed"),
        kustomization(ready="False", reason="HealthCheckFailed", last_status="HealthCheckFailed"),
        [],
    ),
    (
        "recovery seen through Unknown",
        kustomization(ready="Unknown", reason="Progressing", last_status="HealthCheckFailed"),
        kustomization(last_status="ReconciliationSucceeded"),
        [K.HEALTH_RECOVERED],
    ),
    (
        "routine reconcile through Unknown",
        kustomization(ready="Unknown", reason="Progressing", last_status="ReconciliationSucceeded"),
        kustomization(last_status="ReconciliationSucceeded"),
        [],
    ),
    (
        "failure after a routine Unknown",
        kustomization(ready="Unknown", reason="Progressing", last_status="ReconciliationSucceeded"),
        kustomization(
            ready="False", reason="ReconciliationFailed", last_status="ReconciliationFailed"
        ),
        [K.DEPLOY_FAILED],
    ),
    (
        "health check canceled is not a failure",
        kustomization(),
        kustomization(ready="False", reason="HealthCheckCanceled"),
        [],
    ),
    (
        "pending deploy stays pending",
        kustomization(attempted=REV2, ready="Unknown", reason="Progressing"),
        kustomization(attempted=REV2, ready="Unknown", reason="Progressing"),
        [],
    ),
    ("suspended", kustomization(), kustomization(suspend=True), [K.SUSPENDED]),
    ("resumed", kustomization(suspend=True), kustomization(), [K.RESUMED]),
    # HelmRelease
    (
        "helm upgrade",
        helmrelease(history=[V2]),
        helmrelease(history=[V3_OK, V2]),
        [K.DEPLOY_SUCCEEDED],
    ),
    (
        "helm upgrade seen after Unknown",
        helmrelease(history=[V2], attempted="6.6.1", ready="Unknown", reason="Progressing"),
        helmrelease(history=[V3_OK, V2]),
        [K.DEPLOY_SUCCEEDED],
    ),
    (
        "helm upgrade starts",
        helmrelease(history=[V2]),
        helmrelease(history=[V2], attempted="6.6.1", ready="Unknown", reason="Progressing"),
        [K.DEPLOY_STARTED, K.OUT_OF_SYNC],
    ),
    (
        "helm upgrade fails",
        helmrelease(history=[V2], attempted="6.6.1", ready="Unknown", reason="Progressing"),
        helmrelease(
            history=[V3_FAILED, V2],
            ready="False",
            reason="UpgradeFailed",
            released=("False", "UpgradeFailed"),
        ),
        [K.DEPLOY_FAILED],
    ),
    (
        "helm rollback",
        helmrelease(history=[V3_FAILED, V2], ready="False", reason="UpgradeFailed"),
        helmrelease(
            history=[V4_ROLLBACK, V3_FAILED, V2],
            ready="False",
            reason="UpgradeFailed",
            attempted="6.6.1",
            remediated=("True", "RollbackSucceeded", ROLLBACK_MSG),
        ),
        [K.ROLLBACK_SUCCEEDED],
    ),
    (
        "helm rollback leaves Ready=True and the attempted chart pending",
        helmrelease(history=[V3_FAILED, V2], ready="False", reason="UpgradeFailed"),
        helmrelease(
            history=[V4_ROLLBACK, V3_FAILED, V2],
            ready="True",
            reason="RollbackSucceeded",
            message=ROLLBACK_MSG,
            attempted="6.6.1",
            remediated=("True", "RollbackSucceeded", ROLLBACK_MSG),
        ),
        [K.ROLLBACK_SUCCEEDED],
    ),
    (
        "helm rollback fails",
        helmrelease(history=[V3_FAILED, V2], ready="False", reason="UpgradeFailed"),
        helmrelease(
            history=[V3_FAILED, V2],
            ready="False",
            reason="RollbackFailed",
            remediated=(
                "False",
                "RollbackFailed",
                ROLLBACK_MSG.replace("succeeded", "failed: timed out"),
            ),
        ),
        [K.ROLLBACK_FAILED],
    ),
    (
        "helm drift correction passes through Unknown",
        helmrelease(
            history=[V3_OK, V2],
            ready="Unknown",
            reason="Progressing",
            released=("True", "UpgradeSucceeded"),
        ),
        helmrelease(history=[V3_OK, V2], released=("True", "UpgradeSucceeded")),
        [],
    ),
    (
        "DependencyNotReady",
        helmrelease(),
        helmrelease(ready="False", reason="DependencyNotReady"),
        [K.DEPLOY_FAILED],
    ),
    # sources
    (
        "source fails",
        source(),
        source(ready="False", reason="GitOperationFailed"),
        [K.SOURCE_FAILED],
    ),
    (
        "source still failing",
        source(ready="False", reason="GitOperationFailed"),
        source(ready="False", reason="GitOperationFailed"),
        [],
    ),
    (
        "source recovers",
        source(ready="False", reason="GitOperationFailed"),
        source(),
        [K.SOURCE_RECOVERED],
    ),
    ("new artifact is routine", source(), source(revision=REV2), []),
    (
        "helm repository suspended",
        source("HelmRepository"),
        source("HelmRepository", suspend=True),
        [K.SUSPENDED],
    ),
]


@pytest.mark.parametrize(
    ("prev", "cur", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_transitions(prev: dict[str, Any], cur: dict[str, Any], expected: list[EventKind]) -> None:
    assert kinds(prev, cur) == expected


def test_deploy_succeeded_fields() -> None:
    prev, cur = st(kustomization()), st(kustomization(applied=REV2, labels={"env": "prod"}))
    (event,) = transitions(prev, cur, NOW)
    assert (event.revision, event.previous_revision) == (REV2, REV1)
    assert event.message == f"Applied revision: {REV2}"
    assert event.labels == {"env": "prod"}
    assert event.occurred_at == NOW
    assert event.id == transitions(prev, cur, NOW)[0].id


def test_helm_upgrade_carries_chart_versions() -> None:
    (event,) = transitions(st(helmrelease(history=[V2])), st(helmrelease(history=[V3_OK, V2])), NOW)
    assert (event.chart_version, event.previous_chart_version) == ("6.6.1", "6.6.0")
    assert event.message.startswith("Helm upgrade succeeded")


def test_deploy_failed_fields_and_severity() -> None:
    prev = st(kustomization(attempted=REV2, ready="Unknown", reason="Progressing"))
    cur = st(
        kustomization(
            attempted=REV2,
            ready="False",
            reason="BuildFailed",
            message="kustomize build failed: accumulating resources",
        )
    )
    (event,) = transitions(prev, cur, NOW)
    assert (event.revision, event.previous_revision) == (REV2, REV1)
    assert event.severity is Severity.CRITICAL
    assert event.message == "kustomize build failed: accumulating resources"
    (dep,) = transitions(
        st(helmrelease()), st(helmrelease(ready="False", reason="DependencyNotReady")), NOW
    )
    assert dep.severity is Severity.WARNING


def test_a_failing_health_check_says_which_checks_fail() -> None:
    checks = "timeout waiting for: [Deployment/shop/checkout status: 'InProgress']"
    failing = kustomization(
        ready="False",
        reason="HealthCheckFailed",
        message="health check failed after 5m0s",
        healthy="False",
        healthy_message=checks,
    )
    (event,) = transitions(st(kustomization()), st(failing), NOW)
    assert event.kind is EventKind.HEALTH_DEGRADED
    assert event.message == f"health check failed after 5m0s\n{checks}"


def test_rollback_fields_from_the_controller_message() -> None:
    prev = st(helmrelease(history=[V3_FAILED, V2], ready="False", reason="UpgradeFailed"))
    cur = st(
        helmrelease(
            history=[V4_ROLLBACK, V3_FAILED, V2],
            ready="False",
            reason="UpgradeFailed",
            attempted="6.6.1",
            remediated=("True", "RollbackSucceeded", ROLLBACK_MSG),
        )
    )
    (event,) = transitions(prev, cur, NOW)
    assert (event.chart_version, event.previous_chart_version) == ("6.6.0", "6.6.1")
    assert event.message == ROLLBACK_MSG
    # The controller's Event about the same rollback has the same id.
    bare = detect_hint(ev_hint(load_fixture(EVENT_HELM_ROLLBACK)), None, NOW)
    assert [e.kind for e in bare] == [K.ROLLBACK_SUCCEEDED]
    assert bare[0].key == event.key
    assert bare[0].id == event.id
    assert bare[0].chart_version == "6.6.0"


def test_dispatcher_baseline_and_delete() -> None:
    cur = st(kustomization())
    assert detect(None, cur, NOW) == []
    assert [e.kind for e in detect(st(kustomization()), st(kustomization(applied=REV2)), NOW)] == [
        K.DEPLOY_SUCCEEDED
    ]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Deployment/default/podinfo configured\nService/default/podinfo configured",
            (
                ResourceRef("Deployment", "default", "podinfo"),
                ResourceRef("Service", "default", "podinfo"),
            ),
        ),
        ("Namespace/apps created", (ResourceRef("Namespace", "", "apps"),)),
        ("Reconciliation finished in 1.2s, next run in 10m0s", None),
        ("Health check passed in 2s", None),
        ("", None),
    ],
)
def test_parse_change_set(message: str, expected: Any) -> None:
    assert parse_change_set(message) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (ROLLBACK_MSG, ("podinfo/podinfo.v2", "podinfo", "6.6.0")),
        (
            "Helm rollback to previous release data/redis.v7 with chart redis@18.1.2 failed: boom",
            ("data/redis.v7", "redis", "18.1.2"),
        ),
        ("something else", None),
    ],
)
def test_parse_rollback(message: str, expected: Any) -> None:
    assert parse_rollback(message) == expected


# ---------------------------------------------------------------------------------------------
# reports

WATCHED_APPS = kustomization()


def changeset_at(revision: str) -> Hint:
    obj = load_fixture(EVENT_CHANGESET)
    obj["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/revision"] = revision
    return ev_hint(obj)


HINT_CASES: list[tuple[str, Hint, dict[str, Any] | None, list[EventKind]]] = [
    (
        "change set at the applied revision is drift",
        changeset_at(REV1),
        WATCHED_APPS,
        [K.DRIFT_DETECTED],
    ),
    ("change set at a new revision is the deploy", changeset_at(REV2), WATCHED_APPS, []),
    ("change set with no known state says nothing", changeset_at(REV1), None, []),
    ("clean reconcile resolves drift", ev_hint(flux_event()), WATCHED_APPS, [K.DRIFT_RESOLVED]),
    (
        "clean reconcile while not ready",
        ev_hint(flux_event()),
        kustomization(ready="Unknown", reason="Progressing"),
        [],
    ),
    (
        "reconcile finished by notification only",
        wh_hint(
            notification(
                name="apps",
                namespace="flux-system",
                severity="info",
                reason="ReconciliationSucceeded",
                message="Reconciliation finished in 1.2s, next run in 10m0s",
            )
        ),
        None,
        [],
    ),
    (
        "stored artifact is routine",
        ev_hint(
            flux_event(
                "GitRepository",
                "flux-system",
                reason="NewArtifact",
                message="stored artifact for commit 'Merge pull request #42'",
            )
        ),
        None,
        [],
    ),
    ("helm drift", ev_hint(load_fixture(EVENT_HELM_DRIFT)), None, [K.DRIFT_DETECTED]),
    (
        "helm drift corrected",
        ev_hint(
            flux_event(
                "HelmRelease",
                "redis",
                "data",
                reason="DriftCorrected",
                message="Cluster state of release data/redis.v7 has been corrected:\n"
                "StatefulSet/data/redis-master configured",
                revision="18.1.2",
            )
        ),
        helmrelease("redis", "data"),
        [K.DRIFT_RESOLVED],
    ),
    (
        "helm rollback event, object not watched",
        ev_hint(load_fixture(EVENT_HELM_ROLLBACK)),
        None,
        [K.ROLLBACK_SUCCEEDED],
    ),
    (
        "helm rollback event, object watched",
        ev_hint(load_fixture(EVENT_HELM_ROLLBACK)),
        helmrelease(),
        [],
    ),
    ("failure by notification only", wh_hint(notification()), None, [K.DEPLOY_FAILED]),
    (
        "failure by notification, object watched",
        wh_hint(notification(name="apps", namespace="flux-system")),
        WATCHED_APPS,
        [],
    ),
    (
        "source failure by notification only",
        wh_hint(
            notification(
                "GitRepository",
                "flux-system",
                reason="GitOperationFailed",
                message="failed to checkout and determine revision",
            )
        ),
        None,
        [K.SOURCE_FAILED],
    ),
    (
        "helm upgrade by notification only",
        wh_hint(
            notification(
                "HelmRelease",
                "podinfo",
                "podinfo",
                severity="info",
                reason="UpgradeSucceeded",
                revision="6.6.1",
                message="Helm upgrade succeeded for release podinfo/podinfo.v3 with "
                "chart podinfo@6.6.1",
            )
        ),
        None,
        [K.DEPLOY_SUCCEEDED],
    ),
    (
        "dependency not ready is info",
        wh_hint(notification(severity="info", reason="DependencyNotReady")),
        None,
        [],
    ),
]


@pytest.mark.parametrize(
    ("hint", "state", "expected"), [c[1:] for c in HINT_CASES], ids=[c[0] for c in HINT_CASES]
)
def test_from_hint(hint: Hint, state: dict[str, Any] | None, expected: list[EventKind]) -> None:
    assert [e.kind for e in from_hint(hint, st(state) if state else None, NOW)] == expected


def test_kustomization_drift_lists_the_changed_objects() -> None:
    (event,) = from_hint(changeset_at(REV1), st(WATCHED_APPS), NOW)
    assert event.resources == (
        ResourceRef("Deployment", "default", "podinfo"),
        ResourceRef("Service", "default", "podinfo"),
    )
    assert event.resource_count == 2
    assert event.revision == REV1
    assert event.message.startswith("Deployment/default/podinfo configured")
    assert event.occurred_at == datetime(2026, 11, 20, 9, 40, tzinfo=UTC)
    assert event.severity is Severity.WARNING


def test_helm_drift_lists_the_drifted_objects() -> None:
    (event,) = from_hint(ev_hint(load_fixture(EVENT_HELM_DRIFT)), None, NOW)
    assert event.resources == (ResourceRef("StatefulSet", "data", "redis-master"),)
    assert (event.namespace, event.name, event.object_kind) == ("data", "redis", "HelmRelease")
    assert event.revision == "18.1.2"


def test_notification_only_failure_event() -> None:
    (event,) = detect_hint(wh_hint(notification()), None, NOW)
    assert (event.namespace, event.name, event.object_kind) == ("apps", "webapp", "Kustomization")
    assert event.revision == REV2
    assert event.message.startswith("service/apps/webapp validation error")
    assert event.severity is Severity.CRITICAL
    # The same notification delivered twice is the same event.
    assert detect_hint(wh_hint(notification()), None, NOW)[0].id == event.id


def test_helm_upgrade_notification_carries_the_chart_version() -> None:
    body = notification(
        "HelmRelease",
        "podinfo",
        "podinfo",
        severity="info",
        reason="UpgradeSucceeded",
        revision=None,
        message="Helm upgrade succeeded for release podinfo/podinfo.v3 with "
        "chart podinfo@6.6.1+0cc9a8446c95",
    )
    (event,) = from_hint(wh_hint(body), None, NOW)
    assert event.chart_version == event.revision == "6.6.1+0cc9a8446c95"
