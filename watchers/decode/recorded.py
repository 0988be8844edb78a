"""Recorded lines (`driftbot replay`) decoded from bytes into the typed views, keyed by `kind`.

A recorded stream mixes every kind in one file, so a line is decoded into the union of the
views, tagged by the object's `kind` (msgspec picks the Struct from it), with the line's `at`,
`cluster` and `type` beside it. Only a line whose every part is as `watchers.replay.parse_line`
would take it is kept from this decoding: anything else (not JSON, a comment, a kind without a
view such as an AppProject, a `flux_event`, an `at` that is not a time, a field of a type its view
does not take) is handed to `parse_line`, the full orjson parse, which reports or accepts it as
it always has. So typed decoding changes how a line is parsed, never what becomes of it; the
few made-up inputs where the two differ are listed in `watchers.decode` (an object holding only
fields driftbot does not read, numbers past what orjson takes in parts driftbot does not read).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Union

import msgspec
from msgspec import UNSET, UnsetType

from watchers.decode.base import ObjectView
from watchers.decode.lines import OBJECT_VIEWS
from watchers.replay import WATCH_TYPES, ReplayError, ReplayLine, parse_line, parse_time

__all__ = ["read_recorded", "recorded_line"]

_AnyView: Any = Union[tuple(OBJECT_VIEWS)]  # noqa: UP007  (every view, tagged by kind)


class _Recorded(msgspec.Struct, gc=False):
    """One recorded line; UNSET where the line does not have the key."""

    at: Any = UNSET
    cluster: Any = UNSET
    type: Any = UNSET
    object: _AnyView | UnsetType | None = UNSET
    flux_event: msgspec.Raw | UnsetType = UNSET


_decode = msgspec.json.Decoder(_Recorded).decode


def recorded_line(lineno: int, raw: bytes) -> ReplayLine | ReplayError | None:
    """One line as `parse_line` makes it, its object a typed view where the line allows."""
    try:
        line = _decode(raw)
    except (msgspec.DecodeError, RecursionError):  # msgspec nests by recursion, orjson to 1,024
        return parse_line(lineno, raw)
    obj = line.object
    if not isinstance(obj, ObjectView) or line.flux_event is not UNSET:
        return parse_line(lineno, raw)
    at = parse_time(line.at)
    cluster = "default" if line.cluster is UNSET else line.cluster
    watch_type = "MODIFIED" if line.type is UNSET else line.type
    if (
        at is None
        or type(cluster) is not str
        or not cluster
        or type(watch_type) is not str
        or watch_type not in WATCH_TYPES
    ):
        return parse_line(lineno, raw)
    return ReplayLine(lineno, at, cluster, watch_type, obj)


def read_recorded(lines: Iterable[str | bytes]) -> Iterator[ReplayLine | ReplayError]:
    """`watchers.replay.read_replay`, with objects decoded into their views (1-based line
    numbers, blank and comment lines skipped)."""
    for lineno, raw in enumerate(lines, start=1):
        parsed = recorded_line(lineno, raw) if isinstance(raw, bytes) else parse_line(lineno, raw)
        if parsed is not None:
            yield parsed
