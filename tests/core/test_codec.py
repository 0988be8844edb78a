"""The codec round-trips model values and the policy state, and writes the JSON output contract."""

from __future__ import annotations

import dataclasses
import json
import types
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any, Union, get_args, get_origin, get_type_hints

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.codec import (
    CodecError,
    app_key_from_list,
    app_key_to_list,
    app_state_from_dict,
    app_state_to_dict,
    dumps,
    event_from_dict,
    event_to_dict,
    format_time,
    parse_time,
    policy_state_from_dict,
    policy_state_to_dict,
    to_jsonable,
)
from core.model import (
    AppKey,
    AppState,
    EventKind,
    GitOpsEvent,
    ResourceRef,
    Severity,
    SyncStatus,
    Tool,
)
from core.policy import Held, OpenAlert, PolicyState, RecentIds

T0 = datetime(2026, 11, 27, 10, 42, tzinfo=UTC)

aware_times = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
    ),
)


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy for any field type of the model, read from its type hints."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return st.none() | strategy_for(inner[0])
    if origin is tuple:
        return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), strategy_for(args[1]), max_size=3)
    if tp is datetime:
        return aware_times
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(list(tp))
    if tp is str:
        return st.text(max_size=12)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(min_value=-(2**53), max_value=2**53)
    if dataclasses.is_dataclass(tp):
        return dataclass_strategy(tp)
    raise TypeError(tp)


def dataclass_strategy(cls: Any, **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    hints = get_type_hints(cls)
    fields = {
        f.name: overrides.get(f.name, strategy_for(hints[f.name])) for f in dataclasses.fields(cls)
    }
    return st.builds(cls, **fields)


app_states: st.SearchStrategy[AppState] = dataclass_strategy(AppState)
events: st.SearchStrategy[GitOpsEvent] = dataclass_strategy(GitOpsEvent)


def through_json(data: object) -> Any:
    """What a reader of the JSON text gets: the dict must survive both JSON libraries."""
    assert json.loads(json.dumps(data)) == data
    return orjson.loads(orjson.dumps(data))


@given(app_states)
def test_app_state_round_trip(state: AppState) -> None:
    assert app_state_from_dict(through_json(app_state_to_dict(state))) == state


@given(events)
def test_event_round_trip(event: GitOpsEvent) -> None:
    assert event_from_dict(through_json(event_to_dict(event))) == event


@given(st.one_of(app_states, events, dataclass_strategy(Held), dataclass_strategy(OpenAlert)))
def test_dumps_writes_the_text_of_to_jsonable(value: object) -> None:
    assert dumps(value) == orjson.dumps(to_jsonable(value)).decode()


def test_dumps_encodes_mappings_and_refuses_the_unknown() -> None:
    audit = {"events": (T0, EventKind.DRIFT_DETECTED), "n": 1}
    assert dumps(audit) == '{"events":["2026-11-27T10:42:00Z","drift_detected"],"n":1}'
    with pytest.raises(TypeError, match="object"):
        dumps({"x": object()})


@given(
    st.lists(events, max_size=4),
    st.lists(st.tuples(events, aware_times), max_size=4),
    st.lists(st.tuples(st.text(min_size=1, max_size=8), aware_times), max_size=300),
)
def test_policy_state_round_trip(
    held: list[GitOpsEvent],
    opened: list[tuple[GitOpsEvent, datetime]],
    recent: list[tuple[str, datetime]],
) -> None:
    state = PolicyState.of(
        held=[Held(e, e.occurred_at + timedelta(seconds=60)) for e in held],
        open=[OpenAlert(e, at) for e, at in opened],
        recent=RecentIds.of(recent),
    )
    back = policy_state_from_dict(through_json(policy_state_to_dict(state)))
    assert back == state
    assert list(back.recent.items()) == list(state.recent.items())


def test_event_output_contract() -> None:
    event = GitOpsEvent(
        id="a1b2",
        kind=EventKind.DRIFT_DETECTED,
        severity=Severity.WARNING,
        tool=Tool.ARGOCD,
        cluster="prod",
        namespace="argocd",
        object_kind="Application",
        name="checkout",
        occurred_at=T0,
        revision="1a2b3c",
        resources=(ResourceRef("Deployment", "shop", "checkout"),),
        resource_count=1,
        labels={"team": "payments"},
    )
    out = event_to_dict(event)
    assert list(out) == [f.name for f in dataclasses.fields(GitOpsEvent)]
    assert out["kind"] == "drift_detected"
    assert out["severity"] == "warning"
    assert out["tool"] == "argocd"
    assert out["occurred_at"] == "2026-11-27T10:42:00Z"
    assert out["resources"] == [
        {"kind": "Deployment", "namespace": "shop", "name": "checkout", "health": "", "message": ""}
    ]
    assert out["labels"] == {"team": "payments"}
    assert out["since"] is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 11, 27, 10, 42, 5, tzinfo=UTC), "2026-11-27T10:42:05Z"),
        (datetime(2026, 11, 27, 10, 42, 5, 120000, tzinfo=UTC), "2026-11-27T10:42:05.120000Z"),
        (
            datetime(2026, 11, 27, 12, 42, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-27T12:42:00+02:00",
        ),
    ],
)
def test_times_are_rfc3339(value: datetime, text: str) -> None:
    assert format_time(value) == text
    assert parse_time(text) == value


def test_event_line_with_extra_keys_reads_back() -> None:
    line = {
        "id": "x",
        "kind": "deploy_failed",
        "severity": "critical",
        "tool": "flux",
        "cluster": "c",
        "namespace": "flux-system",
        "object_kind": "Kustomization",
        "name": "apps",
        "occurred_at": "2026-11-27T10:42:00Z",
        "receivers": ["stdout"],
    }
    event = event_from_dict(line)
    assert event.kind is EventKind.DEPLOY_FAILED
    assert event.occurred_at == T0
    assert event.resources == ()


def test_missing_optional_fields_take_defaults() -> None:
    state = app_state_from_dict(
        {
            "tool": "argocd",
            "cluster": "prod",
            "namespace": "argocd",
            "kind": "Application",
            "name": "checkout",
            "observed_at": "2026-11-27T10:42:00Z",
            "sync": "out_of_sync",
        }
    )
    assert state.sync is SyncStatus.OUT_OF_SYNC
    assert state.operation is None
    assert state.labels == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sync": "weird"}, "AppState.sync: expected one of synced, out_of_sync, unknown"),
        ({"observed_at": "yesterday"}, "AppState.observed_at: expected an RFC 3339 time"),
        ({"suspended": "yes"}, "AppState.suspended: expected bool"),
        ({"out_of_sync_count": True}, "AppState.out_of_sync_count: expected int"),
        ({"images": "nginx"}, "AppState.images: expected a list"),
        ({"history": [{"deployed_at": None}]}, "AppState.history[0].revision: missing"),
        ({"operation": {"started_at": 5}}, "AppState.operation.started_at: expected an RFC"),
        ({"labels": {"a": 1}}, "AppState.labels.a: expected str"),
        ({"name": None}, "AppState.name: expected str"),
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], message: str) -> None:
    data = app_state_to_dict(AppState(Tool.FLUX, "c", "ns", "Kustomization", "apps", T0))
    with pytest.raises(CodecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        app_state_from_dict({**data, **change})


def test_missing_required_field_is_named() -> None:
    data = app_state_to_dict(AppState(Tool.FLUX, "c", "ns", "Kustomization", "apps", T0))
    del data["observed_at"]
    with pytest.raises(CodecError, match=r"AppState\.observed_at: missing"):
        app_state_from_dict(data)


def test_not_an_object() -> None:
    with pytest.raises(CodecError, match="GitOpsEvent: expected an object"):
        event_from_dict(["not", "an", "event"])


@given(st.tuples(st.sampled_from(list(Tool)), *[st.text(max_size=8)] * 4))
def test_app_key_round_trip(parts: tuple[Tool, str, str, str, str]) -> None:
    key = AppKey(*parts)
    assert app_key_from_list(through_json(app_key_to_list(key))) == key


def test_bad_app_key() -> None:
    with pytest.raises(CodecError, match="app key"):
        app_key_from_list(["argocd", "prod"])
    with pytest.raises(CodecError, match="app key tool"):
        app_key_from_list(["jenkins", "a", "b", "c", "d"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=12,
)


@pytest.mark.parametrize(
    "decode", [event_from_dict, app_state_from_dict, policy_state_from_dict, app_key_from_list]
)
@given(data=json_values | st.fixed_dictionaries({"held": json_values, "recent": json_values}))
def test_any_json_in_gives_a_value_or_codec_error(decode: Any, data: Any) -> None:
    try:
        decode(data)
    except CodecError as exc:
        assert str(exc)
