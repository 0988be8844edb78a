"""Patterns and schedules are checked up front: a rule that can never fire is refused."""

from __future__ import annotations

import pytest

from config.cron import CronError, check_cron, cron_fields
from config.globs import GlobError, any_match, check_glob, glob_match


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("prod", "prod", True),
        ("prod", "prod-eu", False),
        ("prod*", "prod-eu", True),
        ("team-?", "team-a", True),
        ("team-?", "team-ab", False),
        ("[!s]*", "prod", True),
        ("[!s]*", "staging", False),
        ("[[]x]", "[x]", True),
        ("Prod", "prod", False),
        ("*", "", True),
    ],
)
def test_glob_match(pattern: str, value: str, expected: bool) -> None:
    assert glob_match(check_glob(pattern), value) is expected


def test_any_match() -> None:
    assert any_match(("prod", "prod-*"), "prod-eu")
    assert not any_match(("prod", "prod-*"), "staging")


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("", "empty pattern"),
        ("team-[ab", "'[' at position 6 is never closed"),
        ("a[", "never closed"),
        ("[z-a]", "matches nothing"),
    ],
)
def test_bad_globs(pattern: str, fragment: str) -> None:
    with pytest.raises(GlobError) as caught:
        check_glob(pattern)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "expression",
    ["0 9 * * mon-fri", "*/15 * * * *", "0 9 1,15 * *", "30 8 * jan-mar 1-5", "0  9 * * 7"],
)
def test_good_cron(expression: str) -> None:
    assert check_cron(expression) == " ".join(expression.split())


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("0 9 * *", "needs 5 fields"),
        ("60 9 * * *", "minute 60 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range"),
        ("0 9 * * mon-fry", "day of week 'fry'"),
        ("0 9 * * fri-mon", "runs backwards"),
        ("*/0 * * * *", "step cannot be 0"),
        ("0 9 * * %", "bad day of week '%'"),
    ],
)
def test_bad_cron(expression: str, fragment: str) -> None:
    with pytest.raises(CronError) as caught:
        check_cron(expression)
    assert fragment in str(caught.value)


def test_cron_fields_by_name() -> None:
    assert cron_fields("0 9 * * mon-fri") == {
        "minute": "0",
        "hour": "9",
        "day": "*",
        "month": "*",
        "day_of_week": "mon-fri",
    }
