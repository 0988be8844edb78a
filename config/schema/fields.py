"""The values a config file holds and how each is read: event kinds and severities by name,
glob patterns, URLs, environment variable names, names, time zones, times of day, Flux UI link
templates; each refused with a sentence that says what was expected (and what was probably
meant). `Strict` is the base of every section: a misspelt key is an error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import time, timedelta
from string import Formatter
from typing import Annotated, Literal, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from config.durations import parse_duration
from config.globs import check_glob, glob_match
from core.model import FLUX_KINDS as FLUX_KINDS
from core.model import EventKind, Severity, Tool

Loc = tuple[str | int, ...]
"""Where in the file a value sits: keys and list indexes, as pydantic reports them."""


def did_you_mean(word: str, choices: list[str]) -> str:
    """ "did you mean 'x'? " when a choice is close to `word`, else ""."""
    near = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {near[0]!r}? " if near else ""


def parse_event_kind(value: object) -> EventKind:
    """`"drift_detected"` -> EventKind.DRIFT_DETECTED; a readable ValueError for anything else."""
    if isinstance(value, EventKind):
        return value
    names = [k.value for k in EventKind]
    if isinstance(value, str) and value in names:
        return EventKind(value)
    return _refuse("event kind", value, names)


def parse_severity(value: object) -> Severity:
    if isinstance(value, Severity):
        return value
    names = [s.value for s in Severity]
    if isinstance(value, str) and value in names:
        return Severity(value)
    return _refuse("severity", value, names)


def _refuse(what: str, value: object, names: list[str]) -> NoReturn:
    hint = did_you_mean(value, names) if isinstance(value, str) else ""
    raise ValueError(f"unknown {what} {value!r} ({hint}expected one of: {', '.join(names)})")


def _glob(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a pattern (text), got {value!r}")
    return check_glob(value)


def _globs(value: object) -> tuple[str, ...]:
    """One pattern or a list of patterns; any of them may match."""
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError("empty list of patterns (leave the key out to match anything)")
    return tuple(_glob(item) for item in items)


def _tools(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in patterns:
        if not any(glob_match(pattern, tool.value) for tool in Tool):
            raise ValueError(
                f"tool pattern {pattern!r} matches no tool "
                f"(tools: {', '.join(t.value for t in Tool)})"
            )
    return patterns


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+\S*", value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


def _command(value: str) -> str:
    if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
        raise ValueError(
            f"a slash command is '/' and up to 31 lowercase letters, digits, '-' or '_' "
            f"(like /gitops), got {value!r}"
        )
    return value


def _env_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected the name of an environment variable, got {value!r}")
    if value.strip() == "":
        raise ValueError("is empty: name the environment variable that holds the secret")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"{value!r} is not an environment variable name (letters, digits, _)")
    return value


def _name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ValueError(
            f"name {value!r} must start with a letter or digit and use only letters, digits, "
            "'_', '.' and '-'"
        )
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like UTC or Europe/Berlin)"
        ) from None
    return value


def _clock(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        hours, minutes = (int(p) for p in value.split(":"))
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise ValueError(f"expected a time of day like '22:00' or '7:30', got {value!r}")


FLUX_UI_FIELDS = ("cluster", "namespace", "name", "kind", "kind_lower", "kind_plural")


def _flux_ui_template(value: str) -> str:
    _url(value)
    try:
        fields = [f for _, f, _, _ in Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise ValueError(f"broken braces in {value!r} ({exc})") from None
    known = ", ".join("{" + f + "}" for f in FLUX_UI_FIELDS)
    for field in fields:
        if field not in FLUX_UI_FIELDS:
            hint = did_you_mean(field, list(FLUX_UI_FIELDS))
            raise ValueError(f"unknown placeholder {{{field}}} in {value!r} ({hint}known: {known})")
    return value


def _flux_ui(value: object) -> tuple[tuple[str, str], ...]:
    """One template (for every kind) or a mapping kind -> template, as (kind, template) pairs;
    the kind "*" stands for every kind."""
    if isinstance(value, str):
        return (("*", _flux_ui_template(value)),)
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple) and all(
        isinstance(p, list | tuple) and len(p) == 2 for p in value
    ):
        pairs = [(p[0], p[1]) for p in value]
    else:
        raise ValueError(
            f"expected a URL template or a mapping from Flux kind to template, got {value!r}"
        )
    out: list[tuple[str, str]] = []
    for kind, template in pairs:
        if not (isinstance(kind, str) and (kind in FLUX_KINDS or kind == "*")):
            hint = did_you_mean(kind, list(FLUX_KINDS)) if isinstance(kind, str) else ""
            raise ValueError(f"unknown Flux kind {kind!r} ({hint}kinds: {', '.join(FLUX_KINDS)})")
        if not isinstance(template, str):
            raise ValueError(f"the template for {kind} must be text, got {template!r}")
        out.append((kind, _flux_ui_template(template)))
    return tuple(out)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Glob = Annotated[str, BeforeValidator(_glob)]
Globs = Annotated[tuple[str, ...], BeforeValidator(_globs)]
Kind = Annotated[EventKind, BeforeValidator(parse_event_kind)]
Level = Annotated[Severity, BeforeValidator(parse_severity)]
EnvName = Annotated[str, BeforeValidator(_env_name)]
Name = Annotated[str, Field(min_length=1), AfterValidator(_name)]
Text = Annotated[str, Field(min_length=1)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
ClockTime = Annotated[time, BeforeValidator(_clock)]
FluxUi = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_flux_ui)]
Url = Annotated[str, AfterValidator(_url)]
SlashCommand = Annotated[str, AfterValidator(_command)]
Tools = Annotated[Globs, AfterValidator(_tools)]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
