"""Client-side pacing for Slack: token buckets per key plus one for the whole workspace.

Slack allows about one message per second per channel (with a small burst) and caps a
workspace as a whole; going over costs an HTTP 429 and a wait. Pacing ourselves keeps the
429s rare, and when one arrives anyway its `Retry-After` pauses the key (or every key) so the
next attempt does not hit the same wall. The clock and the sleep are injected so tests run on
virtual time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """`per_second` tokens flow into a bucket that holds at most `burst` of them."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0:
            raise ValueError(f"rate must be positive, got {self.per_second}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst}")


SLACK_CHANNEL_RATE = Rate(per_second=1.0, burst=3)
"""chat.postMessage: about one message per second per channel, short bursts tolerated."""

SLACK_WORKSPACE_RATE = Rate(per_second=5.0, burst=10)
"""A conservative cap for everything one bot posts to one workspace."""

RESOLUTION = 1e-9
"""Waits this short (seconds) count as none. A refill computed in floating point can leave a
bucket a few ulps short of a whole token; the wait for that residue is smaller than the
clock's own resolution at its current value, so sleeping it would not move the clock and the
same wait would be asked for again, for ever."""


class TokenBucket:
    """One bucket; time only moves forward, a clock going back is ignored."""

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self._tokens = float(rate.burst)
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(
                float(self.rate.burst),
                self._tokens + (now - self._updated) * self.rate.per_second,
            )
            self._updated = now

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 if one is there now, or all but RESOLUTION)."""
        self._refill(now)
        # Paused (now < _updated): the bucket starts filling again only at `_updated`.
        wait = max(0.0, self._updated - now) + max(0.0, 1.0 - self._tokens) / self.rate.per_second
        return wait if wait > RESOLUTION else 0.0

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1.0

    def pause_until(self, until: float) -> None:
        """Hold the bucket empty until `until`, then let one token through at once.

        Without this a bucket refilled during the wait would send a full burst the moment the
        pause ends, straight into the limit that caused it.
        """
        if until > self._updated:
            self._tokens = 1.0
            self._updated = until


class RateLimiter:
    """`await limiter.acquire(key)` returns once both the key's and the workspace's bucket allow.

    Keys are channel ids for chat.postMessage; other methods with their own limit use a key of
    their own (e.g. "chat.update"). `pause(key, seconds)` and `pause_all(seconds)` apply a
    Retry-After.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        per_key: Rate = SLACK_CHANNEL_RATE,
        workspace: Rate | None = SLACK_WORKSPACE_RATE,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._per_key = per_key
        self._buckets: dict[str, TokenBucket] = {}
        self._workspace = TokenBucket(workspace, clock()) if workspace else None
        self._paused_all_until = float("-inf")
        self.waited = 0.0
        """Total seconds spent waiting in `acquire`, for metrics."""

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._per_key, self._clock())
        return bucket

    def wait_time(self, key: str) -> float:
        """Seconds `acquire(key)` would wait if called now."""
        now = self._clock()
        wait = max(self._bucket(key).wait_time(now), self._paused_all_until - now)
        if self._workspace is not None:
            wait = max(wait, self._workspace.wait_time(now))
        return wait if wait > RESOLUTION else 0.0

    async def acquire(self, key: str) -> float:
        """Wait for a token for `key`, take it, and return the seconds waited."""
        started = self._clock()
        while (wait := self.wait_time(key)) > 0:
            await self._sleep(wait)
        now = self._clock()
        self._bucket(key).take(now)
        if self._workspace is not None:
            self._workspace.take(now)
        waited = max(0.0, now - started)
        self.waited += waited
        return waited

    def pause(self, key: str, seconds: float) -> None:
        """No token for `key` before `seconds` from now (a per-channel Retry-After)."""
        self._bucket(key).pause_until(self._clock() + max(0.0, seconds))

    def pause_all(self, seconds: float) -> None:
        """No token for any key before `seconds` from now (a workspace-wide Retry-After)."""
        until = self._clock() + max(0.0, seconds)
        self._paused_all_until = max(self._paused_all_until, until)
        if self._workspace is not None:
            self._workspace.pause_until(until)
