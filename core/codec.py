"""JSON-able dicts for the domain model and the policy state, and back, without loss.

The store keeps AppStates and the policy state as JSON; `event_to_dict` is also the JSON event
output contract: field names exactly those of GitOpsEvent, enums as their string values, times
in RFC 3339 (`Z` for UTC), `resources` as a list of {"kind", "namespace", "name", "health",
"message"} (the last two set for the unhealthy resources a health alert names).

Decoding is driven by the dataclasses' own type hints, so a field added to the model is carried
without touching this module. A missing field takes its default (data written by an older
version); an unknown key is ignored (data written by a newer version, or `receivers` in an output
line); a value of the wrong type raises CodecError naming the field.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import orjson

from core.flap import Flap, FlapKey
from core.grouping import Group
from core.model import AppKey, AppState, EventKind, GitOpsEvent, Tool
from core.mutes import Mute
from core.policy import AlertKey, Held, OpenAlert, PolicyState, RecentIds, TextSeen

JSONValue = Any
"""A value made only of dict (str keys), list, str, int, bool and None."""

T = TypeVar("T")
_Decoder = Callable[[object, str], Any]


class CodecError(ValueError):
    """A dict that does not describe the expected value; the message names the field."""


def format_time(value: datetime) -> str:
    """RFC 3339 text of `value`, with `Z` for UTC (a naive time is written without offset)."""
    if value.utcoffset() == timedelta(0):
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat()


def parse_time(text: object, where: str = "time") -> datetime:
    """The datetime of an RFC 3339 text as `format_time` writes it (CodecError otherwise)."""
    if not isinstance(text, str):
        raise CodecError(f"{where}: expected an RFC 3339 time, got {_show(text)}")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CodecError(f"{where}: expected an RFC 3339 time, got {_show(text)}") from None


_SCALARS = frozenset({type(None), bool, int, float, str})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
"""Per dataclass, its field names: looking them up per value dominated encoding."""


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def to_jsonable(value: object) -> JSONValue:
    """Any model value (dataclass, enum, datetime, tuple, dict, scalar) as a JSON-able value."""
    cls = type(value)
    if cls in _SCALARS:
        return value
    if cls in _FIELD_NAMES:
        return {name: to_jsonable(getattr(value, name)) for name in _FIELD_NAMES[cls]}
    if cls is tuple or cls is list:
        return [to_jsonable(v) for v in value]  # type: ignore[attr-defined]
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return format_time(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: to_jsonable(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _encode_other(value: object) -> JSONValue:
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_DUMPS_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def dumps(value: object) -> str:
    """JSON text of any model value: the same text as `orjson.dumps(to_jsonable(value))`,
    written by orjson in one pass (dataclasses, enums, times and tuples natively), which is
    what makes saving thousands of app states cheap."""
    return orjson.dumps(value, default=_encode_other, option=_DUMPS_OPTIONS).decode()


def from_jsonable(cls: type[T], data: object) -> T:
    """The `cls` dataclass instance that `to_jsonable` wrote as `data` (CodecError if not)."""
    result: T = _dataclass_decoder(cls)(data, cls.__name__)
    return result


def app_state_to_dict(state: AppState) -> dict[str, JSONValue]:
    result: dict[str, JSONValue] = to_jsonable(state)
    return result


def app_state_from_dict(data: object) -> AppState:
    return from_jsonable(AppState, data)


def event_to_dict(event: GitOpsEvent) -> dict[str, JSONValue]:
    """The JSON output contract of one event (also how the store keeps it)."""
    result: dict[str, JSONValue] = to_jsonable(event)
    return result


def event_from_dict(data: object) -> GitOpsEvent:
    return from_jsonable(GitOpsEvent, data)


def app_key_to_list(key: AppKey) -> list[str]:
    """An AppKey as a JSON array: unambiguous whatever characters the names hold."""
    return [str(key.tool), key.cluster, key.namespace, key.kind, key.name]


def app_key_from_list(data: object) -> AppKey:
    if not (isinstance(data, list) and len(data) == 5 and all(isinstance(p, str) for p in data)):
        raise CodecError(f"app key: expected a list of 5 strings, got {_show(data)}")
    tool = _enum_decoder(Tool)(data[0], "app key tool")
    return AppKey(tool, data[1], data[2], data[3], data[4])


def alert_key_to_list(key: AlertKey) -> list[JSONValue]:
    """[route, app key, kind]."""
    return [key[0], app_key_to_list(key[1]), str(key[2])]


def alert_key_from_list(data: object) -> AlertKey:
    if not (isinstance(data, list) and len(data) == 3 and isinstance(data[0], str)):
        raise CodecError(f"alert key: expected [route, app key, kind], got {_show(data)}")
    kind = _enum_decoder(EventKind)(data[2], "alert key kind")
    return (data[0], app_key_from_list(data[1]), kind)


def flap_key_to_list(key: FlapKey) -> list[JSONValue]:
    """[route, app key]."""
    return [key[0], app_key_to_list(key[1])]


def flap_key_from_list(data: object) -> FlapKey:
    if not (isinstance(data, list) and len(data) == 2 and isinstance(data[0], str)):
        raise CodecError(f"flap key: expected [route, app key], got {_show(data)}")
    return (data[0], app_key_from_list(data[1]))


def policy_state_to_dict(state: PolicyState) -> dict[str, JSONValue]:
    """The whole policy state; the store keeps the same parts as rows."""
    return {
        "held": [to_jsonable(h) for h in state.held.values()],
        "open": [to_jsonable(a) for a in state.open.values()],
        "recent": recent_ids_to_list(state.recent),
        "groups": [to_jsonable(g) for g in state.groups.values()],
        "flaps": [[flap_key_to_list(k), to_jsonable(f)] for k, f in state.flaps.items()],
        "mutes": [to_jsonable(m) for m in state.mutes.values()],
        "texts": [[alert_key_to_list(k), to_jsonable(t)] for k, t in state.texts.items()],
    }


def policy_state_from_dict(data: object) -> PolicyState:
    if not isinstance(data, dict):
        raise CodecError(f"PolicyState: expected an object, got {_show(data)}")
    held = [from_jsonable(Held, h) for h in _list(data.get("held", []), "PolicyState.held")]
    opened = [from_jsonable(OpenAlert, a) for a in _list(data.get("open", []), "PolicyState.open")]
    groups = [from_jsonable(Group, g) for g in _list(data.get("groups", []), "PolicyState.groups")]
    mutes = [from_jsonable(Mute, m) for m in _list(data.get("mutes", []), "PolicyState.mutes")]
    flaps = [
        (flap_key_from_list(k), from_jsonable(Flap, f))
        for k, f in _pairs(data.get("flaps", []), "PolicyState.flaps")
    ]
    texts = [
        (alert_key_from_list(k), from_jsonable(TextSeen, t))
        for k, t in _pairs(data.get("texts", []), "PolicyState.texts")
    ]
    return PolicyState.of(
        held,
        opened,
        recent_ids_from_list(data.get("recent", [])),
        groups=groups,
        flaps=flaps,
        mutes=mutes,
        texts=texts,
    )


def _pairs(data: object, where: str) -> list[tuple[object, object]]:
    pairs: list[tuple[object, object]] = []
    for i, item in enumerate(_list(data, where)):
        if not (isinstance(item, list) and len(item) == 2):
            raise CodecError(f"{where}[{i}]: expected [key, value], got {_show(item)}")
        pairs.append((item[0], item[1]))
    return pairs


def recent_ids_to_list(recent: RecentIds) -> list[list[str]]:
    """[[id, event time], ...], oldest first."""
    return [[event_id, format_time(at)] for event_id, at in recent.items()]


def recent_ids_from_list(data: object) -> RecentIds:
    pairs: list[tuple[str, datetime]] = []
    for i, item in enumerate(_list(data, "PolicyState.recent")):
        where = f"PolicyState.recent[{i}]"
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise CodecError(f"{where}: expected [id, time], got {_show(item)}")
        pairs.append((item[0], parse_time(item[1], where)))
    return RecentIds.of(pairs)


def _list(data: object, where: str) -> list[object]:
    if not isinstance(data, list):
        raise CodecError(f"{where}: expected a list, got {_show(data)}")
    return data


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_DATACLASS_DECODERS: dict[type[Any], _Decoder] = {}


def _dataclass_decoder(cls: type[Any]) -> _Decoder:
    if cls not in _DATACLASS_DECODERS:
        _DATACLASS_DECODERS[cls] = _build_dataclass_decoder(cls)
    return _DATACLASS_DECODERS[cls]


def _build_dataclass_decoder(cls: type[Any]) -> _Decoder:
    hints = get_type_hints(cls)
    fields = [
        (
            f.name,
            _decoder(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    ]

    def decode(data: object, where: str) -> Any:
        if not isinstance(data, dict):
            raise CodecError(f"{where}: expected an object, got {_show(data)}")
        kwargs: dict[str, Any] = {}
        for name, field_decoder, required in fields:
            if name in data:
                kwargs[name] = field_decoder(data[name], f"{where}.{name}")
            elif required:
                raise CodecError(f"{where}.{name}: missing")
        return cls(**kwargs)

    return decode


def _decoder(tp: Any) -> _Decoder:
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {tp}")
        return _optional(_decoder(inner[0]))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple_of(_decoder(args[0]))
    if origin is dict and args[0] is str:
        return _dict_of(_decoder(args[1]))
    if tp is datetime:
        return parse_time
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _enum_decoder(tp)
    if tp in (str, int, bool, float):
        return _scalar(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    raise TypeError(f"unsupported field type {tp}")


def _optional(inner: _Decoder) -> _Decoder:
    def decode(data: object, where: str) -> Any:
        return None if data is None else inner(data, where)

    return decode


def _tuple_of(item: _Decoder) -> _Decoder:
    def decode(data: object, where: str) -> Any:
        return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(_list(data, where)))

    return decode


def _dict_of(value: _Decoder) -> _Decoder:
    def decode(data: object, where: str) -> Any:
        if not isinstance(data, dict):
            raise CodecError(f"{where}: expected an object, got {_show(data)}")
        return {str(k): value(v, f"{where}.{k}") for k, v in data.items()}

    return decode


def _enum_decoder(cls: type[Enum]) -> _Decoder:
    def decode(data: object, where: str) -> Any:
        try:
            return cls(data)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in cls)
            raise CodecError(f"{where}: expected one of {allowed}, got {_show(data)}") from None

    return decode


def _scalar(tp: type[Any]) -> _Decoder:
    def decode(data: object, where: str) -> Any:
        ok = isinstance(data, tp) and not (tp is not bool and isinstance(data, bool))
        if tp is float and isinstance(data, int) and not isinstance(data, bool):
            return float(data)
        if not ok:
            raise CodecError(f"{where}: expected {tp.__name__}, got {_show(data)}")
        return data

    return decode
