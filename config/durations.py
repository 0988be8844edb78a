"""Durations as people write them in the config file (`30s`, `5m`, `4h`, `1h30m`, `0`).

A bare number other than 0 is refused: `grace: 60` could mean seconds or minutes, and guessing
wrong silences alerts for an hour. `format_duration` writes the same notation back, so
`driftbot routes explain` shows the settings in the words of the file.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS: dict[str, timedelta] = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
_PART = re.compile(r"(\d+)(ms|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:ms|d|h|m|s))+")

EXAMPLES = "30s, 5m, 4h, 1h30m or 0"


class DurationError(ValueError):
    """A duration the config file cannot mean; the message says how to write one."""


def parse_duration(value: object) -> timedelta:
    """`"1h30m"` -> `timedelta(hours=1, minutes=30)`; raises DurationError with a readable text.

    Units: d, h, m, s, ms, largest first, each at most once. `0` (number or text) is zero.
    A timedelta passes through unchanged.
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise DurationError(f"a duration cannot be negative (write it like {EXAMPLES})")
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DurationError(
            f"expected a duration like {EXAMPLES}, got {type(value).__name__} {value!r}"
        )
    text = str(value).strip()
    if text in ("0", "0s"):
        return timedelta(0)
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        raise DurationError(
            f"duration {text!r} has no unit: write {text}s, {text}m or {text}h (like {EXAMPLES})"
        )
    if not _WHOLE.fullmatch(text):
        raise DurationError(f"invalid duration {text!r} (write it like {EXAMPLES})")
    seen: list[str] = []
    total = timedelta(0)
    for number, unit in _PART.findall(text):
        if unit in seen:
            raise DurationError(f"invalid duration {text!r}: unit {unit!r} appears twice")
        if seen and _order(unit) <= _order(seen[-1]):
            raise DurationError(
                f"invalid duration {text!r}: write the larger units first (like 1h30m)"
            )
        seen.append(unit)
        total += int(number) * _UNITS[unit]
    return total


def _order(unit: str) -> int:
    return ("d", "h", "m", "s", "ms").index(unit)


def format_duration(value: timedelta) -> str:
    """`timedelta(hours=1, minutes=30)` -> `"1h30m"`; zero -> `"0"`. Inverse of parse_duration."""
    if value <= timedelta(0):
        return "0"
    ms = value // timedelta(milliseconds=1)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = _UNITS[unit] // timedelta(milliseconds=1)
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0"
