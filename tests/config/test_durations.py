"""Durations in the config file: the notation people write, and refusals that say why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("4h", timedelta(hours=4)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("250ms", timedelta(milliseconds=250)),
        ("0", timedelta(0)),
        (0, timedelta(0)),
        ("0s", timedelta(0)),
        (" 90s ", timedelta(seconds=90)),
        (timedelta(minutes=2), timedelta(minutes=2)),
    ],
)
def test_parses(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("60", "has no unit: write 60s, 60m or 60h"),
        (60, "has no unit"),
        ("1.5h", "invalid duration '1.5h'"),
        ("5 min", "invalid duration '5 min'"),
        ("4h4h", "unit 'h' appears twice"),
        ("30m1h", "larger units first"),
        ("", "invalid duration ''"),
        ("-5m", "invalid duration '-5m'"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([1], "expected a duration"),
        (timedelta(seconds=-1), "cannot be negative"),
    ],
)
def test_refuses_with_a_reason(value: object, fragment: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(value)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0"),
        (timedelta(seconds=60), "1m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(milliseconds=1500), "1s500ms"),
    ],
)
def test_formats(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_format_then_parse_is_identity(ms: int) -> None:
    value = timedelta(milliseconds=ms)
    assert parse_duration(format_duration(value)) == value


@given(st.text(max_size=20))
def test_any_text_parses_or_raises_duration_error(text: str) -> None:
    try:
        result = parse_duration(text)
    except DurationError as exc:
        assert str(exc)
    else:
        assert result >= timedelta(0)
