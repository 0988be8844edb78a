"""The Application normalizer reads the real CRD shape and survives any JSON it is given."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import (
    MAX_HISTORY,
    MAX_RESOURCES,
    AppState,
    Condition,
    Health,
    ResourceRef,
    SyncStatus,
    Tool,
)
from tests.builders_argocd import (
    DIFF_CACHE,
    LIVE_CHILD,
    REV_A,
    REV_B,
    T0,
    app_state,
    argocd_app,
    at,
    history_entry,
    load_fixture,
    operation_state,
)
from watchers.argocd import normalize_application, parse_time
from watchers.rejected import Rejected


def test_diff_cache_fixture() -> None:
    state = app_state(load_fixture(DIFF_CACHE), T0, cluster="alpha")
    assert (state.tool, state.cluster, state.kind) == (Tool.ARGOCD, "alpha", "Application")
    assert (state.namespace, state.name, state.project) == ("argo-cd", "velero-test", "sre")
    assert (state.sync, state.health) == (SyncStatus.SYNCED, Health.HEALTHY)
    assert state.revision == REV_A
    assert state.desired_revision == "rev1"
    assert state.images == ("nginx:latest",)
    assert state.labels["cluster_name"] == "gke-alpha-01-europe-west1"
    assert state.observed_at == T0
    assert state.reconciled_at == datetime(2024, 3, 5, 7, 33, 4, tzinfo=UTC)
    assert (state.auto_sync, state.self_heal) == (False, False)
    assert (state.chart, state.chart_version) == ("", "")
    assert state.out_of_sync_resources == ()
    assert state.message == "successfully synced (all tasks run)"
    op = state.operation
    assert op is not None
    assert (op.phase, op.revision, op.initiated_by, op.automated) == (
        "Succeeded",
        REV_A,
        "foo@example.com",
        False,
    )
    assert op.started_at == datetime(2024, 3, 5, 7, 33, 3, tzinfo=UTC)
    assert op.finished_at == datetime(2024, 3, 5, 7, 33, 4, tzinfo=UTC)
    assert [h.id for h in state.history] == ["23", "22", "21", "20", "19"]
    assert len(state.history) == MAX_HISTORY
    assert state.history[0].deployed_at == datetime(2024, 3, 5, 7, 33, 4, tzinfo=UTC)


def test_live_child_fixture_helm_and_automated() -> None:
    state = app_state(load_fixture(LIVE_CHILD))
    assert (state.namespace, state.name, state.project) == ("argocd", "argo-workflows", "default")
    assert (state.chart, state.chart_version) == ("argo-workflows", "0.45.27")
    assert (state.auto_sync, state.self_heal) == (True, False)
    assert (state.sync, state.health) == (SyncStatus.UNKNOWN, Health.UNKNOWN)
    assert (state.revision, state.desired_revision, state.operation) == ("", "", None)


def test_state_keeps_nothing_raw() -> None:
    state = app_state(load_fixture(DIFF_CACHE))
    kept = ("labels", "annotations")  # the bounded metadata routes match on
    assert all(not isinstance(getattr(state, f), dict) or f in kept for f in state.__slots__)


@pytest.mark.parametrize(
    ("automated", "auto_sync", "self_heal"),
    [
        ({"prune": True}, True, False),
        ({"selfHeal": True}, True, True),
        ({}, True, False),
        ({"enabled": True, "selfHeal": True}, True, True),
        ({"enabled": False, "selfHeal": True}, False, False),
        (None, False, False),
        ("yes", False, False),
    ],
)
def test_auto_sync_and_self_heal(automated: Any, auto_sync: bool, self_heal: bool) -> None:
    raw = load_fixture(LIVE_CHILD)
    raw["spec"]["syncPolicy"] = {"automated": automated} if automated is not None else {}
    state = app_state(raw)
    assert (state.auto_sync, state.self_heal) == (auto_sync, self_heal)


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        ("Healthy", Health.HEALTHY),
        ("Progressing", Health.PROGRESSING),
        ("Degraded", Health.DEGRADED),
        ("Suspended", Health.SUSPENDED),
        ("Missing", Health.MISSING),
        ("Unknown", Health.UNKNOWN),
        ("healthy", Health.UNKNOWN),
    ],
)
def test_health(health: str, expected: Health) -> None:
    assert app_state(argocd_app(health=health)).health is expected


@pytest.mark.parametrize(
    ("sync", "expected"),
    [
        ("Synced", SyncStatus.SYNCED),
        ("OutOfSync", SyncStatus.OUT_OF_SYNC),
        ("Unknown", SyncStatus.UNKNOWN),
        ("", SyncStatus.UNKNOWN),
    ],
)
def test_sync(sync: str, expected: SyncStatus) -> None:
    assert app_state(argocd_app(sync=sync)).sync is expected


def test_history_newest_first_with_initiator() -> None:
    history = [
        history_entry(1, REV_A, at(0), username="bob@example.com"),
        history_entry(2, REV_B, at(5), automated=True),
    ]
    state = app_state(argocd_app(history=history))
    assert [(h.id, h.revision, h.initiated_by) for h in state.history] == [
        ("2", REV_B, "automated"),
        ("1", REV_A, "bob@example.com"),
    ]
    assert state.revision == REV_B


def test_deployed_revision_from_a_succeeded_result_without_history() -> None:
    ok = operation_state("Succeeded", REV_B, started_at=at(0), finished_at=at(1))
    failed = operation_state("Failed", REV_B, started_at=at(0), finished_at=at(1))
    assert app_state(argocd_app(history=[], operation=ok)).revision == REV_B
    assert app_state(argocd_app(history=[], operation=failed)).revision == ""


def test_operation_revision_requested_when_no_result_yet() -> None:
    running = operation_state("Running", REV_B, started_at=at(0), with_result=False)
    op = app_state(argocd_app(operation=running)).operation
    assert op is not None
    assert (op.phase, op.revision, op.finished_at) == ("Running", REV_B, None)


def test_auto_heal_attempts_from_operation_sync() -> None:
    op_state = operation_state(
        "Running", REV_A, started_at=at(0), automated=True, auto_heal_attempts=3
    )
    op = app_state(argocd_app(operation=op_state)).operation
    assert op is not None
    assert (op.auto_heal_attempts, op.automated, op.initiated_by) == (3, True, "")


def test_out_of_sync_resources_bounded_and_counted() -> None:
    extra = [("ConfigMap", "test-lla", f"cm-{i}") for i in range(MAX_RESOURCES + 10)]
    state = app_state(
        argocd_app(sync="OutOfSync", out_of_sync=[("Service", "test-lla", "test-lla"), *extra])
    )
    assert len(state.out_of_sync_resources) == MAX_RESOURCES
    assert state.out_of_sync_count == MAX_RESOURCES + 11
    assert state.out_of_sync_resources[0] == ResourceRef("Service", "test-lla", "test-lla")
    assert ResourceRef("Deployment", "test-lla", "test-lla") not in state.out_of_sync_resources


def test_conditions_and_message_fallback() -> None:
    raw = argocd_app(
        operation=None,
        conditions=[("ComparisonError", "repository not found"), ("SyncError", "")],
    )
    state = app_state(raw)
    assert state.conditions == (
        Condition("ComparisonError", "True", message="repository not found"),
        Condition("SyncError", "True"),
    )
    assert state.message == "repository not found"
    assert state.condition("ComparisonError") is not None


def test_multi_source_helm_chart_version_and_revisions() -> None:
    raw = load_fixture(LIVE_CHILD)
    helm = raw["spec"].pop("source")
    raw["spec"]["sources"] = [
        {"repoURL": "https://github.com/example/values.git", "targetRevision": "main", "ref": "v"},
        {**helm, "targetRevision": "0.45.*"},
    ]
    raw["status"] = {
        "sync": {"status": "Synced", "revisions": [REV_A, "0.45.27"]},
        "history": [
            history_entry(1, "", at(0), revisions=[REV_A, "0.45.26"]),
            history_entry(2, "", at(5), revisions=[REV_A, "0.45.27"]),
        ],
    }
    state = app_state(raw)
    assert (state.desired_revision, state.revision) == (REV_A, REV_A)
    assert (state.chart, state.chart_version) == ("argo-workflows", "0.45.27")
    assert [h.chart_version for h in state.history] == ["0.45.27", "0.45.26"]


def test_single_source_helm_chart_version_is_the_deployed_one() -> None:
    raw = load_fixture(LIVE_CHILD)
    raw["spec"]["source"]["targetRevision"] = "0.45.*"
    raw["status"] = {"history": [history_entry(1, "0.45.27", at(0))]}
    assert app_state(raw).chart_version == "0.45.27"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-05T07:33:03Z", datetime(2024, 3, 5, 7, 33, 3, tzinfo=UTC)),
        ("2024-03-05T08:33:03+01:00", datetime(2024, 3, 5, 7, 33, 3, tzinfo=UTC)),
        ("2024-03-05T07:33:03", datetime(2024, 3, 5, 7, 33, 3, tzinfo=UTC)),
        ("2024-13-45T99:00:00Z", None),
        ("yesterday", None),
        ("", None),
        (1709623983, None),
        (None, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    parsed = parse_time(value)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


def test_garbage_timestamps_become_none() -> None:
    raw = argocd_app(
        history=[history_entry(1, REV_A, "not a time")],
        operation=operation_state("Succeeded", REV_A, started_at="soon", finished_at="later"),
    )
    state = app_state(raw)
    assert state.history[0].deployed_at is None
    assert state.operation is not None
    assert (state.operation.started_at, state.operation.finished_at) == (None, None)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ([], "not a JSON object"),
        ("Application", "not a JSON object"),
        ({"kind": "Application", "metadata": {}}, "metadata.name"),
        ({"kind": "Application", "metadata": {"name": 7}}, "metadata.name"),
        ({"kind": "ApplicationSet", "metadata": {"name": "x"}}, "ApplicationSet"),
    ],
)
def test_rejected_with_a_reason(obj: Any, reason: str) -> None:
    result = normalize_application(obj, "prod", T0)
    assert isinstance(result, Rejected)
    assert reason in result.reason


def test_wrong_types_in_status_are_ignored() -> None:
    raw = load_fixture(DIFF_CACHE)
    raw["status"]["history"] = "lots"
    raw["status"]["resources"] = [None, 3, {"status": "OutOfSync", "kind": 5}]
    raw["status"]["summary"] = {"images": ["ok:1", 2, None]}
    raw["status"]["operationState"]["operation"]["sync"]["autoHealAttemptsCount"] = "x"
    raw["metadata"]["labels"] = {"a": "b", "n": 1}
    state = app_state(raw)
    assert state.history == ()
    assert state.out_of_sync_resources == (ResourceRef("", "", ""),)
    assert state.images == ("ok:1",)
    assert state.labels == {"a": "b"}
    assert state.operation is not None and state.operation.auto_heal_attempts == 0


# Properties: any JSON in, AppState or Rejected out, never an exception.

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

_PATHS = [
    ("metadata",),
    ("metadata", "name"),
    ("metadata", "labels"),
    ("spec",),
    ("spec", "source"),
    ("spec", "syncPolicy"),
    ("status",),
    ("status", "sync"),
    ("status", "health"),
    ("status", "history"),
    ("status", "operationState"),
    ("status", "operationState", "operation"),
    ("status", "operationState", "syncResult"),
    ("status", "resources"),
    ("status", "summary"),
    ("status", "conditions"),
]
_BASE = load_fixture(DIFF_CACHE)


def _check(result: AppState | Rejected) -> None:
    assert isinstance(result, AppState | Rejected)
    if isinstance(result, AppState):
        assert len(result.history) <= MAX_HISTORY
        assert len(result.out_of_sync_resources) <= MAX_RESOURCES
        assert result.out_of_sync_count >= len(result.out_of_sync_resources)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), JSON, max_size=6))
def test_any_json_object(obj: dict[str, Any]) -> None:
    _check(normalize_application(obj, "prod", T0))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PATHS), JSON), min_size=1, max_size=4))
def test_fixture_with_any_part_replaced(edits: list[tuple[tuple[str, ...], Any]]) -> None:
    raw = copy.deepcopy(_BASE)
    for path, value in edits:
        node = raw
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    _check(normalize_application(raw, "prod", T0))


# --- where it runs, why it is unhealthy, which repository -----------------------------------


@pytest.mark.parametrize(
    ("destination", "cluster", "namespace"),
    [
        ({"server": "https://kubernetes.default.svc", "namespace": "shop"}, "", "shop"),
        ({"name": "in-cluster", "namespace": "shop"}, "", "shop"),
        (
            {"name": "gke-alpha-01-europe-west1", "namespace": "test-lla"},
            "gke-alpha-01-europe-west1",
            "test-lla",
        ),
        ({"server": "https://10.0.0.7:6443/", "namespace": "web"}, "https://10.0.0.7:6443", "web"),
        ({}, "", ""),
    ],
)
def test_destination(destination: dict[str, str], cluster: str, namespace: str) -> None:
    state = app_state(argocd_app(destination=destination))
    assert (state.destination_cluster, state.destination_namespace) == (cluster, namespace)
    assert state.namespace == "argo-cd"  # the Application's own namespace is unchanged


def test_diff_cache_fixture_destination_and_repo() -> None:
    state = app_state(load_fixture(DIFF_CACHE))
    assert state.destination_cluster == "gke-alpha-01-europe-west1"
    assert state.destination_namespace == "test-lla"
    assert state.repo_url == "https://github.com/foo/manifests-velero.git"


def test_repo_url_is_the_git_source_not_the_chart() -> None:
    raw = load_fixture(LIVE_CHILD)
    assert app_state(raw).repo_url == ""  # a Helm chart repository has no commits
    helm = raw["spec"].pop("source")
    raw["spec"]["sources"] = [helm, {"repoURL": "git@github.com:example/values.git", "ref": "v"}]
    assert app_state(raw).repo_url == "git@github.com:example/values.git"


def test_health_message_and_unhealthy_resources() -> None:
    raw = argocd_app(
        health="Degraded",
        health_message="",
        unhealthy=[
            ("Pod", "test-lla", "web-0", "Missing", ""),
            (
                "Deployment",
                "test-lla",
                "test-lla",
                "Degraded",
                'Deployment "test-lla" exceeded its progress deadline',
            ),
            ("Service", "test-lla", "test-lla", "Healthy", ""),
        ],
    )
    state = app_state(raw)
    assert state.health is Health.DEGRADED
    assert state.health_message == ""
    assert state.unhealthy_count == 2
    assert state.unhealthy_resources == (
        ResourceRef(
            "Deployment",
            "test-lla",
            "test-lla",
            "Degraded",
            'Deployment "test-lla" exceeded its progress deadline',
        ),
        ResourceRef("Pod", "test-lla", "web-0", "Missing", ""),
    )
    assert app_state(argocd_app(health_message="1 of 3 pods crashing")).health_message == (
        "1 of 3 pods crashing"
    )


def test_unhealthy_resources_bounded_and_counted() -> None:
    many = [
        ("Pod", "ns", f"p{i}", "Degraded", "CrashLoopBackOff") for i in range(MAX_RESOURCES + 5)
    ]
    state = app_state(argocd_app(health="Degraded", unhealthy=many))
    assert len(state.unhealthy_resources) == MAX_RESOURCES
    assert state.unhealthy_count == MAX_RESOURCES + 5
