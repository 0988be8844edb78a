"""Flux objects to AppState: field mapping from the real CRD shapes, and no crash on any input."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import MAX_HISTORY, AppState, Health, SyncStatus, Tool
from tests.builders_flux import (
    HELM_HISTORY,
    REV1,
    REV2,
    helm_snapshot,
    helmrelease,
    kustomization,
    load_fixture,
    source,
)
from watchers.flux import KINDS, normalize_object, parse_time, split_group_keys
from watchers.normalize import normalize_object as normalize_any
from watchers.rejected import Rejected

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def state(obj: dict[str, Any]) -> AppState:
    result = normalize_object(obj, "prod", NOW)
    assert isinstance(result, AppState), result
    return result


def test_kinds_are_the_flux_kinds() -> None:
    assert {
        "Kustomization",
        "HelmRelease",
        "GitRepository",
        "OCIRepository",
        "HelmRepository",
        "HelmChart",
        "Bucket",
    } == KINDS


def test_kustomization_failed_as_in_the_describe_fixture() -> None:
    obj = kustomization(
        ready="False",
        reason="ArtifactFailed",
        message="kustomization path not found: stat /tmp/kustomization-1464362706/invalid",
        labels={"team": "web"},
    )
    s = state(obj)
    assert (s.tool, s.cluster, s.namespace, s.kind, s.name) == (
        Tool.FLUX,
        "prod",
        "flux-system",
        "Kustomization",
        "apps",
    )
    assert s.ready is False
    assert s.ready_reason == "ArtifactFailed"
    assert s.message.startswith("kustomization path not found")
    assert s.revision == s.desired_revision == REV1
    assert s.health is Health.UNKNOWN
    assert s.labels == {"team": "web"}
    assert s.observed_at == NOW
    assert s.condition("Ready") is not None


@pytest.mark.parametrize(
    ("kwargs", "sync", "health", "ready"),
    [
        ({}, SyncStatus.SYNCED, Health.HEALTHY, True),
        (
            {"attempted": REV2, "ready": "Unknown", "reason": "Progressing"},
            SyncStatus.OUT_OF_SYNC,
            Health.PROGRESSING,
            None,
        ),
        (
            {"ready": "False", "reason": "HealthCheckFailed"},
            SyncStatus.SYNCED,
            Health.DEGRADED,
            False,
        ),
        (
            {"ready": "False", "reason": "BuildFailed", "attempted": REV2},
            SyncStatus.OUT_OF_SYNC,
            Health.UNKNOWN,
            False,
        ),
        (
            {"healthy": "False", "ready": "False", "reason": "HealthCheckFailed"},
            SyncStatus.SYNCED,
            Health.DEGRADED,
            False,
        ),
        ({"healthy": "True"}, SyncStatus.SYNCED, Health.HEALTHY, True),
        ({"applied": "", "attempted": "", "ready": None}, SyncStatus.UNKNOWN, Health.UNKNOWN, None),
    ],
)
def test_kustomization_sync_and_health(
    kwargs: dict[str, Any], sync: SyncStatus, health: Health, ready: bool | None
) -> None:
    s = state(kustomization(**kwargs))
    assert (s.sync, s.health, s.ready) == (sync, health, ready)


def test_kustomization_suspend_and_history() -> None:
    s = state(kustomization(suspend=True, last_status="HealthCheckFailed"))
    assert s.suspended is True
    assert len(s.history) == 1
    assert s.history[0].revision == REV1
    assert s.history[0].status == "HealthCheckFailed"
    assert s.history[0].deployed_at == datetime(2026, 11, 20, 8, 40, tzinfo=UTC)


def test_helmrelease_from_the_history_example() -> None:
    example = load_fixture(HELM_HISTORY)
    obj = helmrelease(history=example["status"]["history"])
    s = state(obj)
    assert s.chart == "podinfo"
    assert s.chart_version == s.revision == "6.6.1+0cc9a8446c95"
    assert s.app_version == "6.6.1"
    assert s.desired_revision == "6.6.1+0cc9a8446c95"
    assert [h.id for h in s.history] == ["2", "1"]
    assert [h.status for h in s.history] == ["deployed", "superseded"]
    assert s.history[1].chart_version == "6.6.0+cdd538a0167e"
    assert s.history[0].deployed_at == datetime(2024, 5, 7, 4, 54, 55, tzinfo=UTC)
    assert (s.sync, s.health) == (SyncStatus.SYNCED, Health.HEALTHY)


def test_helmrelease_history_is_bounded_and_chart_ref_is_used() -> None:
    snaps = [helm_snapshot(v, f"6.{v}.0") for v in range(10, 0, -1)]
    obj = helmrelease(history=snaps)
    del obj["spec"]["chart"]
    obj["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "podinfo"}
    s = state(obj)
    assert len(s.history) == MAX_HISTORY
    assert s.history[0].id == "10"
    assert s.chart == "OCIRepository/podinfo"


@pytest.mark.parametrize(
    ("kwargs", "health"),
    [
        ({"ready": "False", "reason": "UpgradeFailed"}, Health.DEGRADED),
        ({"ready": "False", "reason": "ArtifactFailed"}, Health.UNKNOWN),
        ({"ready": "Unknown", "reason": "Progressing"}, Health.PROGRESSING),
        (
            {"conditions": [{"type": "Stalled", "status": "True", "reason": "RetriesExceeded"}]},
            Health.DEGRADED,
        ),
    ],
)
def test_helmrelease_health(kwargs: dict[str, Any], health: Health) -> None:
    assert state(helmrelease(**kwargs)).health is health


def test_helmrelease_pending_upgrade_is_out_of_sync() -> None:
    s = state(helmrelease(attempted="6.7.0", ready="Unknown", reason="Progressing"))
    assert s.sync is SyncStatus.OUT_OF_SYNC
    assert s.desired_revision == "6.7.0"


@pytest.mark.parametrize(
    "kind", ["GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket"]
)
def test_sources(kind: str) -> None:
    s = state(source(kind))
    assert s.revision == s.desired_revision == REV1
    assert (s.ready, s.sync, s.health) == (True, SyncStatus.SYNCED, Health.HEALTHY)
    failed = state(source(kind, ready="False", reason="GitOperationFailed", revision=""))
    assert (failed.ready, failed.ready_reason, failed.revision) == (
        False,
        "GitOperationFailed",
        "",
    )
    assert failed.health is Health.DEGRADED
    if kind == "HelmChart":
        assert (s.chart, s.chart_version) == ("podinfo", REV1)


def test_the_dispatcher_routes_flux_kinds_here() -> None:
    assert isinstance(normalize_any(kustomization(), "prod", NOW), AppState)
    assert isinstance(normalize_any(helmrelease(), "prod", NOW), AppState)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ([], "not a JSON object"),
        ({"kind": "Deployment"}, "not a Flux kind"),
        ({"kind": "Kustomization", "metadata": {}}, "without metadata.name"),
        ({"kind": "Kustomization", "metadata": {"name": 3}}, "without metadata.name"),
    ],
)
def test_rejects_what_is_not_a_flux_object(obj: Any, reason: str) -> None:
    result = normalize_object(obj, "prod", NOW)
    assert isinstance(result, Rejected)
    assert reason in result.reason


def test_wrong_types_are_treated_as_absent() -> None:
    obj = kustomization()
    obj["status"]["conditions"] = [{"type": "Ready", "status": True}, "x", {"status": "True"}]
    obj["status"]["lastAppliedRevision"] = 7
    obj["spec"]["suspend"] = "yes"
    obj["metadata"]["labels"] = {"a": 1, "b": "c"}
    s = state(obj)
    assert s.ready is None
    assert s.revision == ""
    assert s.suspended is False
    assert s.labels == {"b": "c"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-07T04:54:55Z", datetime(2024, 5, 7, 4, 54, 55, tzinfo=UTC)),
        ("2024-05-07T04:54:55.123456+00:00", datetime(2024, 5, 7, 4, 54, 55, 123456, tzinfo=UTC)),
        ("2024-05-07T04:54:55", datetime(2024, 5, 7, 4, 54, 55, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (12, None),
        ("9999-99-99T00:00:00Z", None),
    ],
)
def test_parse_time(text: Any, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_split_group_keys_keeps_both_spellings() -> None:
    got = split_group_keys(
        {"kustomize.toolkit.fluxcd.io/revision": "r1", "token": "t", "n": 1, "summary": "s"}
    )
    assert got == {
        "kustomize.toolkit.fluxcd.io/revision": "r1",
        "revision": "r1",
        "token": "t",
        "summary": "s",
    }
    assert split_group_keys({"revision": "mine", "a.io/revision": "theirs"})["revision"] == "mine"
    assert split_group_keys(None) == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_is_normalized_or_rejected(value: Any) -> None:
    assert isinstance(normalize_object(value, "prod", NOW), AppState | Rejected)


_BASES = [
    kustomization(last_status="ReconciliationSucceeded"),
    helmrelease(remediated=("True", "RollbackSucceeded", "x")),
    source("HelmChart"),
]
_FIELDS = [
    "metadata",
    "spec",
    "status",
    "conditions",
    "history",
    "artifact",
    "name",
    "labels",
    "chart",
    "lastAppliedRevision",
    "chartVersion",
    "version",
    "lastDeployed",
    "type",
    "status",
    "suspend",
    "metadata",
]


def _mutate(obj: Any, path: list[int], value: Any) -> Any:
    """Replace one subtree of `obj` (chosen by `path`) with `value`."""
    if not path or not isinstance(obj, dict | list) or not obj:
        return value
    if isinstance(obj, dict):
        key = sorted(obj)[path[0] % len(obj)]
        obj[key] = _mutate(obj[key], path[1:], value)
    else:
        i = path[0] % len(obj)
        obj[i] = _mutate(obj[i], path[1:], value)
    return obj


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(range(len(_BASES))),
    st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6),
    json_values,
)
def test_crd_shaped_objects_with_a_bad_subtree_never_raise(
    base: int, path: list[int], value: Any
) -> None:
    obj = _mutate(copy.deepcopy(_BASES[base]), path, value)
    assert isinstance(normalize_object(obj, "prod", NOW), AppState | Rejected)


# --- where it runs, which repository, why it is unhealthy -----------------------------------


@pytest.mark.parametrize(
    ("obj", "destination"),
    [
        (kustomization("apps", "flux-system"), "flux-system"),
        (kustomization("apps", "flux-system", target_namespace="shop"), "shop"),
        (helmrelease("podinfo", "podinfo"), "podinfo"),
    ],
)
def test_destination_namespace(obj: dict[str, Any], destination: str) -> None:
    assert state(obj).destination_namespace == destination
    assert state(obj).destination_cluster == ""


def test_git_repository_url_and_kustomization_source_ref() -> None:
    repo = state(source("GitRepository", url="ssh://git@github.com/stefanprodan/podinfo"))
    assert repo.repo_url == "ssh://git@github.com/stefanprodan/podinfo"
    assert state(source("HelmRepository", url="https://charts.example.com")).repo_url == ""
    apps = state(kustomization("apps", "flux-system"))
    assert apps.source_ref == "GitRepository/flux-system/flux-system"
    assert apps.repo_url == ""  # known only from the GitRepository: the caller joins them
    raw = kustomization("apps", "team-a")
    raw["spec"]["sourceRef"] = {"kind": "GitRepository", "name": "shop", "namespace": "flux-system"}
    assert state(raw).source_ref == "GitRepository/flux-system/shop"
    del raw["spec"]["sourceRef"]
    assert state(raw).source_ref == ""


def test_failing_health_checks_are_kept_when_ready_does_not_name_them() -> None:
    checks = "timeout waiting for: [Deployment/shop/checkout status: 'InProgress']"
    raw = kustomization(
        ready="False",
        reason="HealthCheckFailed",
        message="health check failed after 5m0s",
        healthy="False",
        healthy_message=checks,
    )
    assert state(raw).health_message == checks
    same = kustomization(
        ready="False",
        reason="HealthCheckFailed",
        message=f"health check failed after 5m0s: {checks}",
        healthy="False",
        healthy_message=checks,
    )
    assert state(same).health_message == ""  # the Ready message already says it
