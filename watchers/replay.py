"""The replay source: recorded streams in JSON Lines, one watch event or notification a line.

Line format (the external contract):
  {"at": "<RFC 3339>", "cluster": "<name>", "type": "ADDED|MODIFIED|DELETED", "object": {...}}
  {"at": "<RFC 3339>", "cluster": "<name>", "flux_event": {<generic webhook body>}}
Each line's `at` is the clock of the pipeline while it is processed. Parsing never raises: a bad
line comes back as `ReplayError` with its line number, and the reader goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

WATCH_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED"})


@dataclass(frozen=True, slots=True)
class ReplayLine:
    lineno: int
    at: datetime
    cluster: str
    type: str
    """ADDED, MODIFIED or DELETED for objects; "NOTIFICATION" for a flux_event line."""
    payload: Any


@dataclass(frozen=True, slots=True)
class ReplayError:
    lineno: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.lineno}: {self.reason}"


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 (with Z or an offset) to an aware datetime; None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_line(lineno: int, raw: str | bytes) -> ReplayLine | ReplayError | None:
    """One line to a ReplayLine, a ReplayError, or None for a blank or comment line."""
    text = raw.strip() if isinstance(raw, str) else raw.strip().decode("utf-8", "replace")
    if not text or text.startswith("#"):
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return ReplayError(lineno, f"not valid JSON ({exc})")
    if not isinstance(data, dict):
        return ReplayError(lineno, f"expected a JSON object, got {type(data).__name__}")
    at = parse_time(data.get("at"))
    if at is None:
        return ReplayError(lineno, f"'at' must be an RFC 3339 time, got {data.get('at')!r}")
    cluster = data.get("cluster", "default")
    if not isinstance(cluster, str) or not cluster:
        return ReplayError(lineno, f"'cluster' must be a non-empty string, got {cluster!r}")
    if "flux_event" in data:
        return ReplayLine(lineno, at, cluster, "NOTIFICATION", data["flux_event"])
    if "object" not in data:
        return ReplayError(lineno, "line has neither 'object' nor 'flux_event'")
    kind = data.get("type", "MODIFIED")
    if not isinstance(kind, str) or kind not in WATCH_TYPES:
        return ReplayError(lineno, f"'type' must be ADDED, MODIFIED or DELETED, got {kind!r}")
    return ReplayLine(lineno, at, cluster, kind, data["object"])


def read_replay(lines: Iterable[str | bytes]) -> Iterator[ReplayLine | ReplayError]:
    """Parse a recorded stream line by line (1-based line numbers), skipping blank lines."""
    for lineno, raw in enumerate(lines, start=1):
        parsed = parse_line(lineno, raw)
        if parsed is not None:
            yield parsed


def dump_line(at: datetime, cluster: str, watch_type: str, obj: Any) -> bytes:
    """One recorded line, as `read_replay` reads it (for recorders and scenario builders)."""
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if watch_type == "NOTIFICATION":
        return orjson.dumps({"at": stamp, "cluster": cluster, "flux_event": obj})
    return orjson.dumps({"at": stamp, "cluster": cluster, "type": watch_type, "object": obj})
