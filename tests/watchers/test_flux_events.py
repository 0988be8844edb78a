"""Kubernetes Events from Flux controllers to Hints, from the upstream-shaped fixtures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import Hint, Tool
from tests.builders_flux import (
    EVENT_CHANGESET,
    EVENT_HELM_DRIFT,
    EVENT_HELM_ROLLBACK,
    REV1,
    flux_event,
    load_fixture,
)
from watchers.flux_events import normalize_event
from watchers.normalize import normalize_object
from watchers.rejected import Rejected

NOW = datetime(2026, 11, 21, tzinfo=UTC)
T_FIXTURE = datetime(2026, 11, 20, 9, 40, tzinfo=UTC)


def hint(obj: Any) -> Hint:
    result = normalize_event(obj, "prod", NOW)
    assert isinstance(result, Hint), result
    return result


def test_kustomization_change_set() -> None:
    h = hint(load_fixture(EVENT_CHANGESET))
    assert (h.tool, h.cluster, h.namespace, h.object_kind, h.name) == (
        Tool.FLUX,
        "prod",
        "flux-system",
        "Kustomization",
        "apps",
    )
    assert h.reason == "Progressing"
    assert h.message == "Deployment/default/podinfo configured\nService/default/podinfo configured"
    assert h.warning is False
    assert h.revision == REV1
    assert h.metadata["kustomize.toolkit.fluxcd.io/revision"] == REV1
    assert h.metadata["revision"] == REV1
    assert h.source == "kustomize-controller"
    assert h.occurred_at == T_FIXTURE
    assert h.uid == "apps.1879b6f2a1c3d500/1"


def test_helmrelease_rollback_and_drift() -> None:
    rollback = hint(load_fixture(EVENT_HELM_ROLLBACK))
    assert (rollback.reason, rollback.revision, rollback.warning) == (
        "RollbackSucceeded",
        "6.6.0",
        False,
    )
    assert rollback.metadata["app-version"] == "6.6.0"
    drift = hint(load_fixture(EVENT_HELM_DRIFT))
    assert (drift.reason, drift.warning, drift.namespace, drift.name) == (
        "DriftDetected",
        True,
        "data",
        "redis",
    )
    assert drift.source == "helm-controller"


@pytest.mark.parametrize(
    ("edit", "field", "expected"),
    [
        ({"metadata": {"name": "e", "uid": "u-1"}}, "uid", "u-1"),
        (
            {"lastTimestamp": None, "eventTime": "2026-11-20T09:41:00.000000Z"},
            "occurred_at",
            datetime(2026, 11, 20, 9, 41, tzinfo=UTC),
        ),
        ({"lastTimestamp": "garbage", "firstTimestamp": None}, "occurred_at", NOW),
        ({"source": {}, "reportingController": "helm-controller"}, "source", "helm-controller"),
        ({"type": "Warning"}, "warning", True),
        ({"metadata": {"name": "e", "annotations": {"revision": "r9"}}}, "revision", "r9"),
        ({"metadata": {"name": "e", "annotations": "bad"}}, "revision", ""),
    ],
)
def test_event_fields(edit: dict[str, Any], field: str, expected: Any) -> None:
    obj = load_fixture(EVENT_CHANGESET)
    obj.update(edit)
    assert getattr(hint(obj), field) == expected


def test_events_k8s_io_shape() -> None:
    obj = load_fixture(EVENT_CHANGESET)
    obj["apiVersion"] = "events.k8s.io/v1"
    obj["regarding"] = obj.pop("involvedObject")
    obj["note"] = obj.pop("message")
    obj["reportingController"] = obj.pop("source")["component"]
    h = normalize_object(obj, "prod", NOW)
    assert isinstance(h, Hint)
    assert h.message.startswith("Deployment/default/podinfo")
    assert h.source == "kustomize-controller"


def test_the_dispatcher_routes_flux_events_here() -> None:
    assert isinstance(normalize_object(flux_event(), "prod", NOW), Hint)
    assert isinstance(normalize_object(flux_event("HelmRelease", "podinfo"), "prod", NOW), Hint)


@pytest.mark.parametrize(
    "obj",
    [None, [], {"involvedObject": {}}, {"involvedObject": {"kind": "Kustomization"}}],
)
def test_rejects_events_about_nothing(obj: Any) -> None:
    assert isinstance(normalize_event(obj, "prod", NOW), Rejected)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = [
    "metadata",
    "involvedObject",
    "regarding",
    "reason",
    "message",
    "type",
    "source",
    "lastTimestamp",
    "eventTime",
    "count",
    "series",
    "note",
    "annotations",
    "uid",
    "kind",
    "name",
    "namespace",
]


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_is_a_hint_or_rejected(value: Any) -> None:
    assert isinstance(normalize_event(value, "prod", NOW), Hint | Rejected)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), json_values, max_size=6))
def test_event_shaped_garbage_never_raises(edit: dict[str, Any]) -> None:
    obj = load_fixture(EVENT_HELM_DRIFT)
    obj.update(edit)
    if isinstance(obj.get("involvedObject"), dict):
        obj["involvedObject"].update(edit)
    assert isinstance(normalize_event(obj, "prod", NOW), Hint | Rejected)
