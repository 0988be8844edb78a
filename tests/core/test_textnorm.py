"""Message normalization for text dedup: what differs only in times, ids and numbers is equal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.textnorm import normalize_message


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sync failed after 3.2s", "sync failed after 250ms"),
        ("at 2026-11-20T09:00:01Z: timeout", "at 2026-11-21T10:11:12.5+02:00: timeout"),
        ("request id abc-123 failed", "request id zz-9 failed"),
        (
            "trace 8f14e45f-ceea-467f-a8f8-3a6b2c3d4e5f lost",
            "trace 00000000-1111-2222-3333-444444444444 lost",
        ),
        ("revision ea87599646 not found", "revision 7d2e4f6a8b not found"),
        ("attempt 3 of 5", "attempt 4 of 5"),
        ("Two   spaces", "two spaces"),
    ],
)
def test_equal_after_normalizing(a: str, b: str) -> None:
    assert normalize_message(a) == normalize_message(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("image pull failed", "health check failed"),
        ("deployment checkout invalid", "deployment payments invalid"),
        ("dead beef", "cafe babe"),
    ],
)
def test_different_messages_stay_different(a: str, b: str) -> None:
    assert normalize_message(a) != normalize_message(b)


@given(st.text())
def test_any_text_normalizes_and_is_stable(text: str) -> None:
    once = normalize_message(text)
    assert normalize_message(once) == once
