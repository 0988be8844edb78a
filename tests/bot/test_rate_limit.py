"""Token buckets and Retry-After pauses, on virtual time."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.delivery.rate_limit import Rate, RateLimiter, TokenBucket
from tests.fakes.slack_api import VirtualClock


def limiter(clock: VirtualClock, per_key: Rate, workspace: Rate | None = None) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep, per_key=per_key, workspace=workspace)


async def test_burst_then_one_per_interval() -> None:
    clock = VirtualClock()
    lim = limiter(clock, Rate(1.0, 3))
    sent_at = []
    for _ in range(6):
        await lim.acquire("C1")
        sent_at.append(clock())
    assert sent_at == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]


async def test_keys_are_independent_but_share_the_workspace_bucket() -> None:
    clock = VirtualClock()
    lim = limiter(clock, Rate(1.0, 1), workspace=Rate(1.0, 2))
    await lim.acquire("C1")
    await lim.acquire("C2")
    assert lim.wait_time("C3") == pytest.approx(1.0)  # workspace empty, C3's bucket full
    assert lim.wait_time("C1") == pytest.approx(1.0)


async def test_pause_holds_one_key_then_lets_a_single_message_through() -> None:
    clock = VirtualClock()
    lim = limiter(clock, Rate(1.0, 3))
    lim.pause("C1", 5.0)
    assert lim.wait_time("C1") == 5.0
    assert lim.wait_time("C2") == 0.0
    await lim.acquire("C1")
    assert clock() == 5.0
    # No burst right after a pause: the bucket did not fill up while Slack said wait.
    assert lim.wait_time("C1") == pytest.approx(1.0)


async def test_pause_all_holds_every_key() -> None:
    clock = VirtualClock()
    lim = limiter(clock, Rate(1.0, 3), workspace=Rate(10.0, 10))
    lim.pause_all(2.0)
    assert lim.wait_time("C1") == 2.0
    assert lim.wait_time("C9") == 2.0
    sent_at: list[float] = []

    async def send(key: str) -> None:
        await lim.acquire(key)
        sent_at.append(clock())

    await asyncio.gather(send("C1"), send("C9"))
    # The workspace bucket, too, restarts from one token: the second waits its 1/10 s.
    assert sent_at == [2.0, pytest.approx(2.1)]


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        Rate(0.0, 1)
    with pytest.raises(ValueError, match="burst"):
        Rate(1.0, 0)


@given(
    per_second=st.floats(min_value=0.1, max_value=50),
    burst=st.integers(min_value=1, max_value=10),
    gaps=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=40),
)
def test_bucket_never_allows_more_than_burst_plus_rate_times_elapsed(
    per_second: float, burst: int, gaps: list[float]
) -> None:
    now = 0.0
    bucket = TokenBucket(Rate(per_second, burst), now)
    taken = 0
    for gap in gaps:
        now += gap
        if bucket.wait_time(now) == 0:
            bucket.take(now)
            taken += 1
        assert taken <= burst + per_second * now + 1e-9
