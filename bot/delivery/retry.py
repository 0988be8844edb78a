"""What every chat sender shares about retrying: the one retry loop (`RetryStage`), its
backoff, reading Retry-After, the counts.

Slack and Teams answer 429 with a Retry-After header and fail transiently with 5xx or broken
connections; both senders wait and retry by the same rules, in the same loop, and report the
same counters. A sender only says what one call answered (`Failure`, or its answer).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bot.delivery.rate_limit import RateLimiter
from bot.ops.metrics import DeliveryMetrics

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETRY_AFTER = 1.0
"""Seconds to wait after a 429 whose Retry-After is missing or unreadable."""


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (1-based): base * factor**(n-1), capped, minus up to `jitter` of it."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.5

    def delay(self, retry: int, rand: float) -> float:
        """`rand` in [0, 1) picks where in the jitter range the delay falls."""
        full = min(self.cap, self.base * self.factor ** max(0, retry - 1))
        return full * (1.0 - self.jitter * rand)


@dataclass
class DeliveryStats:
    sent: int = 0
    """Calls that succeeded."""
    retried: int = 0
    """Retries after a 5xx, a time-out or a broken connection."""
    rate_limited: int = 0
    """HTTP 429 answers waited out."""
    failed_by_error: Counter[str] = field(default_factory=Counter)
    """Calls given up, by error code (fatal ones and retryable ones out of attempts)."""


def retry_after(headers: Mapping[str, Any]) -> float:
    """Seconds from a Retry-After header (any case); DEFAULT_RETRY_AFTER if absent or bad."""
    raw = None
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value
            break
    try:
        seconds = float(raw) if raw is not None else DEFAULT_RETRY_AFTER
    except (TypeError, ValueError):
        seconds = DEFAULT_RETRY_AFTER
    return max(0.0, seconds) if seconds == seconds else DEFAULT_RETRY_AFTER


@dataclass(frozen=True)
class Failure:
    """What went wrong with one call, as a transport reads its answer."""

    error: str
    retryable: bool
    retry_after: float | None = None
    """Seconds the service asked to wait (an HTTP 429): waited out, not counted as a retry."""
    workspace: bool = False
    """The 429 is for every key of the limiter (Slack's workspace-wide limit)."""
    status: int = 0
    """The HTTP status, where the transport reports one."""


@dataclass(frozen=True)
class Attempted(Generic[T]):
    """How a call ended after its retries: `answer` when it got through, else the last
    `failure`, `fatal` when no retry could help."""

    attempts: int
    answer: T | None = None
    failure: Failure | None = None
    fatal: bool = False

    @property
    def ok(self) -> bool:
        return self.failure is None


class RetryStage:
    """The one retry loop of the chat transports: each call paced through the limiter; a 429
    paused for its Retry-After (the key's, or every key's) and sent again without using up an
    attempt, up to `max_rate_limited_waits` waits of at most `max_retry_after` seconds; other
    retryable failures retried with `backoff` up to `max_attempts`; anything else fatal."""

    def __init__(
        self,
        service: str,
        limiter: RateLimiter,
        stats: DeliveryStats,
        metrics: DeliveryMetrics,
        *,
        sleep: Callable[[float], Awaitable[None]],
        max_attempts: int,
        backoff: Backoff,
        max_rate_limited_waits: int,
        max_retry_after: float,
        rand: Callable[[], float],
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.service = service
        self.limiter = limiter
        self.stats = stats
        self.metrics = metrics
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_rate_limited_waits = max_rate_limited_waits
        self.max_retry_after = max_retry_after
        self.rand = rand

    async def run(
        self,
        key: str,
        once: Callable[[], Awaitable[T | Failure]],
        *,
        receiver: str,
        where: str,
        counted_as: str | None = None,
    ) -> Attempted[T]:
        """Call `once` until it answers, the failure is fatal or the retries are spent.
        `key` is the limiter's key; `where` names the destination in debug lines;
        `counted_as` is the receiver the metrics name (default `receiver`)."""
        attempts = waits = 0
        while True:
            await self.limiter.acquire(key)
            attempts += 1
            answer = await once()
            if not isinstance(answer, Failure):
                self.stats.sent += 1
                return Attempted(attempts, answer=answer)
            failure = answer
            if failure.retry_after is not None:
                self.stats.rate_limited += 1
                self.metrics.throttled(self.service, counted_as or receiver)
                waits += 1
                if failure.workspace:
                    self.limiter.pause_all(failure.retry_after)
                else:
                    self.limiter.pause(key, failure.retry_after)
                if (
                    waits > self.max_rate_limited_waits
                    or failure.retry_after > self.max_retry_after
                ):
                    return self._ended(failure, attempts, fatal=False)
                logger.debug(
                    "%s rate limited on %s (%s), retrying after %.1fs",
                    self.service,
                    where,
                    failure.error,
                    failure.retry_after,
                    extra={"receiver": receiver},
                )
                continue
            if not failure.retryable:
                return self._ended(failure, attempts, fatal=True)
            # Retries of 429s do not use up attempts: only these do.
            if attempts - waits >= self.max_attempts:
                return self._ended(failure, attempts, fatal=False)
            self.stats.retried += 1
            delay = self.backoff.delay(attempts - waits, self.rand())
            logger.debug(
                "%s call to %s failed (%s), retry in %.2fs",
                self.service,
                where,
                failure.error,
                delay,
                extra={"receiver": receiver},
            )
            await self.sleep(delay)

    def _ended(self, failure: Failure, attempts: int, *, fatal: bool) -> Attempted[Any]:
        self.stats.failed_by_error[failure.error] += 1
        return Attempted(attempts, failure=failure, fatal=fatal)
