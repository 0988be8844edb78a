"""Checks five-field cron expressions (`0 9 * * mon-fri`) for digest schedules.

Standard cron meaning: minute, hour, day of month, month, day of week, where day of week 0 and 7
are Sunday. The scheduler that runs digests must translate day-of-week numbers accordingly
(APScheduler 3 counts from Monday = 0): `cron_fields` returns the five fields for that purpose.
"""

from __future__ import annotations

import re

_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    (
        "month",
        1,
        12,
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_ITEM = re.compile(r"(?P<range>\*|(?P<a>\w+)(?:-(?P<b>\w+))?)(?:/(?P<step>\d+))?")


class CronError(ValueError):
    """A schedule the digest scheduler could not run."""


def _value(token: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    lowered = token.lower()
    if lowered in names:
        index = names.index(lowered)
        return index + 1 if name == "month" else index
    if not token.isdigit():
        raise CronError(
            f"{name} {token!r} is not a number"
            + (f" or one of {', '.join(names)}" if names else "")
        )
    number = int(token)
    if not low <= number <= high:
        raise CronError(f"{name} {number} is out of range {low}-{high}")
    return number


def check_cron(expression: str) -> str:
    """Return the expression with single spaces, or raise CronError saying which field is bad."""
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(
            f"cron schedule {expression!r} needs 5 fields (minute hour day-of-month month "
            f"day-of-week, like '0 9 * * mon-fri'), found {len(fields)}"
        )
    for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in text.split(","):
            found = _ITEM.fullmatch(item)
            if found is None:
                raise CronError(f"cron schedule {expression!r}: bad {name} {item!r}")
            if found["step"] is not None and int(found["step"]) == 0:
                raise CronError(f"cron schedule {expression!r}: {name} step cannot be 0")
            if found["a"] is not None:
                try:
                    start = _value(found["a"], name, low, high, names)
                    end = (
                        start if found["b"] is None else _value(found["b"], name, low, high, names)
                    )
                except CronError as exc:
                    raise CronError(f"cron schedule {expression!r}: {exc}") from None
                if end < start:
                    raise CronError(
                        f"cron schedule {expression!r}: {name} range {item!r} runs backwards"
                    )
    return " ".join(fields)


def cron_fields(expression: str) -> dict[str, str]:
    """The five fields by name (minute, hour, day, month, day_of_week), after check_cron."""
    minute, hour, day, month, day_of_week = check_cron(expression).split()
    return {
        "minute": minute,
        "hour": hour,
        "day": day,
        "month": month,
        "day_of_week": day_of_week,
    }
