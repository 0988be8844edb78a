"""The Argo CD Event normalizer reads who did what from real Event shapes, and survives any JSON."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import Hint, Tool
from tests.builders_argocd import (
    ARGOCD_EVENTS,
    EVENT_AUTOMATED_SYNC,
    EVENT_HEALTH_STATUS,
    EVENT_ROLLBACK,
    EVENT_SYNC_STATUS,
    REV_A,
    T0,
    load_fixture,
)
from watchers.argocd_events import normalize_event
from watchers.rejected import Rejected

FIXTURE_TIME = datetime(2026, 11, 20, 9, 40, tzinfo=UTC)


def hint_of(obj: Any) -> Hint:
    hint = normalize_event(obj, "prod", T0)
    assert isinstance(hint, Hint), hint
    return hint


def test_rollback_initiated_by_a_user() -> None:
    hint = hint_of(load_fixture(EVENT_ROLLBACK))
    assert (hint.tool, hint.cluster, hint.object_kind) == (Tool.ARGOCD, "prod", "Application")
    assert (hint.namespace, hint.name) == ("argocd", "guestbook")
    assert (hint.reason, hint.actor) == ("OperationStarted", "alice@example.com")
    assert hint.message == "alice@example.com initiated rollback to 1"
    assert hint.metadata["rollback_id"] == "1"
    assert hint.metadata["dest-namespace"] == "guestbook"
    assert (hint.source, hint.warning, hint.revision) == ("argocd-server", False, "")
    assert hint.occurred_at == FIXTURE_TIME
    assert hint.uid == "guestbook.1879b6f2a1c3d4e5:1"


def test_automated_sync_carries_revision() -> None:
    hint = hint_of(load_fixture(EVENT_AUTOMATED_SYNC))
    assert (hint.actor, hint.revision) == ("automated", REV_A)
    assert hint.source == "argocd-application-controller"


@pytest.mark.parametrize("fixture", [EVENT_SYNC_STATUS, EVENT_HEALTH_STATUS])
def test_status_updates_have_no_actor(fixture: str) -> None:
    hint = hint_of(load_fixture(fixture))
    assert (hint.reason, hint.actor, hint.revision) == ("ResourceUpdated", "", "")
    assert hint.message.startswith("Updated ")


def test_actor_from_message_without_annotation() -> None:
    event = load_fixture(EVENT_ROLLBACK)
    del event["metadata"]["annotations"]["user"]
    event["message"] = "bob initiated rollback to 12"
    hint = hint_of(event)
    assert (hint.actor, hint.metadata["rollback_id"]) == ("bob", "12")


def test_user_annotation_wins_over_message() -> None:
    event = load_fixture(EVENT_ROLLBACK)
    event["message"] = "someone initiated rollback to 1"
    assert hint_of(event).actor == "alice@example.com"


@pytest.mark.parametrize(
    ("message", "revision"),
    [
        (f"admin initiated sync to HEAD ({REV_A})", REV_A),
        (f"admin initiated partial sync to {REV_A}", REV_A),
        ("admin initiated sync to 0.45.27", "0.45.27"),
    ],
)
def test_user_sync_revision(message: str, revision: str) -> None:
    event = load_fixture(EVENT_ROLLBACK)
    event["message"] = message
    hint = hint_of(event)
    assert (hint.actor, hint.revision) == ("alice@example.com", revision)
    assert "rollback_id" not in hint.metadata


def test_warning_type() -> None:
    event = load_fixture(EVENT_SYNC_STATUS)
    event["type"] = "Warning"
    assert hint_of(event).warning is True


def test_uid_and_count_identify_the_report() -> None:
    event = load_fixture(EVENT_SYNC_STATUS)
    event["metadata"]["uid"] = "0b5e6c1e-1111-2222-3333-444455556666"
    event["count"] = 3
    assert hint_of(event).uid == "0b5e6c1e-1111-2222-3333-444455556666:3"
    del event["count"]
    assert hint_of(event).uid.endswith(":1")


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (
            {"lastTimestamp": "2026-11-20T10:00:00Z", "firstTimestamp": "2026-11-20T09:00:00Z"},
            datetime(2026, 11, 20, 10, tzinfo=UTC),
        ),
        (
            {"eventTime": "2026-11-20T10:05:00.123456Z"},
            datetime(2026, 11, 20, 10, 5, 0, 123456, tzinfo=UTC),
        ),
        ({"firstTimestamp": "2026-11-20T09:00:00Z"}, datetime(2026, 11, 20, 9, tzinfo=UTC)),
        ({"lastTimestamp": None, "eventTime": "garbage"}, T0),
        ({}, T0),
    ],
)
def test_occurred_at(times: dict[str, Any], expected: datetime) -> None:
    event = load_fixture(EVENT_SYNC_STATUS)
    for key in ("firstTimestamp", "lastTimestamp"):
        del event[key]
    event.update(times)
    assert hint_of(event).occurred_at == expected


def test_events_k8s_io_shape() -> None:
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "guestbook.1", "namespace": "argocd"},
        "regarding": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "name": "gb"},
        "reason": "OperationStarted",
        "note": f"Initiated automated sync to '{REV_A}'",
        "type": "Normal",
        "reportingController": "argocd-application-controller",
        "eventTime": "2026-11-20T09:40:00.000000Z",
        "series": {"count": 4, "lastObservedTime": "2026-11-20T09:45:00.000000Z"},
    }
    hint = hint_of(event)
    assert (hint.name, hint.namespace, hint.revision) == ("gb", "argocd", REV_A)
    assert hint.source == "argocd-application-controller"
    assert hint.occurred_at == datetime(2026, 11, 20, 9, 45, tzinfo=UTC)
    assert hint.uid == "guestbook.1:4"


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ([], "not a JSON object"),
        ({"kind": "Event", "involvedObject": {"kind": "Application"}}, "involved object"),
        ({"kind": "Event", "involvedObject": "guestbook"}, "involved object"),
    ],
)
def test_rejected_with_a_reason(obj: Any, reason: str) -> None:
    result = normalize_event(obj, "prod", T0)
    assert isinstance(result, Rejected)
    assert reason in result.reason


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = [
    "metadata",
    "involvedObject",
    "regarding",
    "reason",
    "message",
    "note",
    "type",
    "source",
    "count",
    "series",
    "lastTimestamp",
    "eventTime",
    "firstTimestamp",
]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), JSON, max_size=6))
def test_any_json_object(obj: dict[str, Any]) -> None:
    assert isinstance(normalize_event(obj, "prod", T0), Hint | Rejected)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ARGOCD_EVENTS),
    st.dictionaries(st.sampled_from(_KEYS), JSON | st.text(max_size=60), min_size=1),
)
def test_fixture_with_any_field_replaced(fixture: str, edits: dict[str, Any]) -> None:
    event = copy.deepcopy(load_fixture(fixture))
    event.update(edits)
    result = normalize_event(event, "prod", T0)
    assert isinstance(result, Hint | Rejected)
    if isinstance(result, Hint):
        assert result.occurred_at.tzinfo is not None
