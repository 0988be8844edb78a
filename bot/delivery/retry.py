"""The one retry policy of delivery, and the one retry stage that applies it to Slack and Teams.

A message can fail for a moment (a 5xx, a time-out, a dropped connection, a 429) or for long (the
chat service is down). Each is retried in one place, by one `RetryPolicy`:

- short retries live in the process, in `RetryStage`: one call paced by the limiter, a 429
  waited out for its Retry-After without using up an attempt, other retryable failures tried
  again after `RetryPolicy.backoff` up to `RetryPolicy.attempts` calls. This is one *try*.
- long retries live in the outbox: a try that did not get through leaves its item pending with
  a retry time (`next_attempt_at`) `RetryPolicy.deferral` after it (or the Retry-After the
  service asked for, when longer), so an outage costs no task, survives a restart and keeps
  the receiver's order. The outbox never retries within a try, the stage never across tries.

So a transport answers only "sent", "retry after (seconds, or none asked)" or "refused for
good"; a sender only says what one call answered (`Failure`, or its answer). One `Backoff`
shape serves both tiers.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bot.delivery.rate_limit import RateLimiter
from bot.ops.metrics import METRICS, DeliveryMetrics

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

    def delay(self, retry: int, rand: float = 0.0) -> float:
        """`rand` in [0, 1) picks where in the jitter range the delay falls."""
        full = min(self.cap, self.base * self.factor ** max(0, retry - 1))
        return float(full * (1.0 - self.jitter * rand))


@dataclass(frozen=True)
class RetryPolicy:
    """How delivery retries, both tiers (see the module docstring): within a try, `attempts`
    calls `backoff` apart and up to `rate_limited_waits` 429s of at most `max_retry_after`
    seconds waited out; between tries, the outbox waits `deferral` (5 s doubling to 5 min)."""

    attempts: int = 5
    backoff: Backoff = Backoff()
    rate_limited_waits: int = 20
    max_retry_after: float = 300.0
    deferral: Backoff = Backoff(base=5.0, factor=2.0, cap=300.0, jitter=0.0)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")

    def next_try_in(self, tries: int, asked: float | None = None) -> float:
        """Seconds until an outbox item's next try after `tries` failed ones: the deferral, or
        what the chat service asked (`asked`, its Retry-After) when that is longer."""
        return max(self.deferral.delay(tries), asked or 0.0)


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
    """The one retry loop of the chat transports, the short tier of `RetryPolicy`: each call
    paced through the limiter; a 429 paused for its Retry-After (the key's, or every key's) and
    sent again without using up an attempt, up to `policy.rate_limited_waits` waits of at most
    `policy.max_retry_after` seconds; other retryable failures retried with `policy.backoff`
    up to `policy.attempts` calls; anything else fatal. Its `stats` count every call it made."""

    def __init__(
        self,
        service: str,
        limiter: RateLimiter,
        *,
        sleep: Callable[[float], Awaitable[None]],
        policy: RetryPolicy | None = None,
        rand: Callable[[], float] = random.random,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self.service = service
        self.limiter = limiter
        self.sleep = sleep
        self.policy = policy or RetryPolicy()
        self.rand = rand
        self.metrics = metrics or METRICS
        self.stats = DeliveryStats()

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
                    waits > self.policy.rate_limited_waits
                    or failure.retry_after > self.policy.max_retry_after
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
            if attempts - waits >= self.policy.attempts:
                return self._ended(failure, attempts, fatal=False)
            self.stats.retried += 1
            delay = self.policy.backoff.delay(attempts - waits, self.rand())
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
