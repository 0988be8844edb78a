"""Exponential backoff with full jitter: ceilings, the cap, reset, and bounds for any draw."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchers.backoff import Backoff


@pytest.mark.parametrize(
    ("initial", "cap", "factor", "ceilings"),
    [
        (1.0, 8.0, 2.0, [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]),
        (0.5, 30.0, 2.0, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]),
        (1.0, 100.0, 3.0, [1.0, 3.0, 9.0, 27.0, 81.0, 100.0]),
        (2.0, 2.0, 2.0, [2.0, 2.0, 2.0]),
        (1.0, 10.0, 1.0, [1.0, 1.0, 1.0]),
    ],
)
def test_the_ceiling_grows_by_the_factor_up_to_the_cap(
    initial: float, cap: float, factor: float, ceilings: list[float]
) -> None:
    backoff = Backoff(initial=initial, cap=cap, factor=factor, rng=lambda: 1.0)

    assert [backoff.next_delay() for _ in ceilings] == ceilings


def test_each_delay_is_a_draw_below_the_ceiling() -> None:
    draws = iter([0.5, 0.0, 0.25])
    backoff = Backoff(initial=4.0, cap=100.0, rng=lambda: next(draws))

    assert [backoff.next_delay() for _ in range(3)] == [2.0, 0.0, 4.0]


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(initial=1.0, cap=60.0, rng=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay()

    backoff.reset()

    assert backoff.next_delay() == 1.0


def test_thousands_of_failures_stay_at_the_cap() -> None:
    backoff = Backoff(initial=1.0, cap=30.0, rng=lambda: 1.0)
    for _ in range(5000):
        backoff.next_delay()

    assert backoff.next_delay() == 30.0


@pytest.mark.parametrize(
    ("initial", "cap", "factor"),
    [(0.0, 1.0, 2.0), (-1.0, 1.0, 2.0), (2.0, 1.0, 2.0), (1.0, 2.0, 0.5)],
)
def test_nonsense_settings_are_refused(initial: float, cap: float, factor: float) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(initial=initial, cap=cap, factor=factor)


@given(
    initial=st.floats(0.001, 10.0),
    extra=st.floats(0.0, 1000.0),
    factor=st.floats(1.0, 10.0),
    draws=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=80),
)
def test_every_delay_is_between_zero_and_the_cap(
    initial: float, extra: float, factor: float, draws: list[float]
) -> None:
    cap = initial + extra
    values = iter(draws)
    backoff = Backoff(initial=initial, cap=cap, factor=factor, rng=lambda: next(values))

    delays = [backoff.next_delay() for _ in draws]

    assert all(0.0 <= delay <= cap for delay in delays)
