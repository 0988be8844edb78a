"""What every chat sender shares about retrying: the backoff, reading Retry-After, the counts.

Slack and Teams answer 429 with a Retry-After header and fail transiently with 5xx or broken
connections; both senders wait and retry by the same rules, and report the same counters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
