"""notification-controller generic webhook bodies to Hints; any JSON in, no exception out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import Hint, Tool
from tests.builders_flux import REV2, WEBHOOK, load_fixture, notification
from watchers.flux_webhook import normalize_notification
from watchers.normalize import normalize_flux_notification
from watchers.rejected import Rejected

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def hint(body: Any) -> Hint:
    result = normalize_notification(body, "prod", NOW)
    assert isinstance(result, Hint), result
    return result


def test_the_upstream_example() -> None:
    h = hint(load_fixture(WEBHOOK))
    assert (h.tool, h.cluster, h.namespace, h.object_kind, h.name) == (
        Tool.FLUX,
        "prod",
        "apps",
        "Kustomization",
        "webapp",
    )
    assert (h.reason, h.warning) == ("ValidationFailed", True)
    assert h.message.startswith("service/apps/webapp validation error")
    assert h.revision == "main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"
    assert h.metadata["revision"] == h.metadata["kustomize.toolkit.fluxcd.io/revision"]
    assert h.source == "kustomize-controller"
    assert h.occurred_at == datetime(2022, 10, 28, 7, 26, 19, tzinfo=UTC)


@pytest.mark.parametrize("prefixed", [True, False])
def test_both_metadata_spellings_give_the_revision(prefixed: bool) -> None:
    h = hint(notification(prefixed=prefixed))
    assert h.revision == REV2
    assert h.metadata["revision"] == REV2


def test_info_is_not_a_warning_and_a_missing_timestamp_is_now() -> None:
    body = notification(severity="info", reason="ReconciliationSucceeded")
    del body["timestamp"]
    h = hint(body)
    assert h.warning is False
    assert h.occurred_at == NOW


def test_a_retried_delivery_has_the_same_uid() -> None:
    assert hint(notification()).uid == hint(notification()).uid
    assert hint(notification()).uid != hint(notification(minutes=5)).uid


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("text", "not a JSON object"),
        ([1, 2], "not a JSON object"),
        (None, "not a JSON object"),
        ({}, "without involvedObject"),
        ({"involvedObject": {"kind": "Kustomization"}}, "without kind and name"),
        (
            {"involvedObject": {"kind": "Kustomization", "name": "a"}, "severity": "fatal"},
            "severity",
        ),
    ],
)
def test_rejections_say_why(body: Any, reason: str) -> None:
    result = normalize_flux_notification(body, "prod", NOW)
    assert isinstance(result, Rejected)
    assert reason in result.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = [
    "involvedObject",
    "severity",
    "reason",
    "message",
    "metadata",
    "timestamp",
    "reportingController",
    "kind",
    "name",
    "namespace",
    "uid",
]


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_is_a_hint_or_rejected(value: Any) -> None:
    assert isinstance(normalize_notification(value, "prod", NOW), Hint | Rejected)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), json_values, max_size=6))
def test_body_shaped_garbage_never_raises(edit: dict[str, Any]) -> None:
    body = notification()
    body.update(edit)
    if isinstance(body.get("involvedObject"), dict):
        body["involvedObject"].update(edit)
    assert isinstance(normalize_notification(body, "prod", NOW), Hint | Rejected)


def test_lone_surrogates_from_json_escapes_do_not_raise() -> None:
    body = json.loads(
        '{"involvedObject": {"kind": "Kustomization", "name": "a"},'
        ' "message": "bad \\ud800 text", "reason": "\\udfff"}'
    )
    h = hint(body)
    assert h.message == "bad \ud800 text"
    assert len(h.uid) == 16
