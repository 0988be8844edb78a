"""Exponential backoff with full jitter, for reconnecting to APIs that fail or drop us.

Many watchers reconnecting at the same moment (an API server restart) must not come back in
lock step: each delay is drawn uniformly from [0, ceiling], and the ceiling doubles per
consecutive failure up to a cap ("full jitter"). A success resets it. The random source is
injectable so tests can pin the delays.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays for consecutive failures; `next_delay()` after a failure, `reset()` after success."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    rng: Callable[[], float] = field(default=random.random, repr=False)
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap < self.initial or self.factor < 1:
            raise ValueError(
                f"backoff needs 0 < initial <= cap and factor >= 1, got "
                f"initial={self.initial} cap={self.cap} factor={self.factor}"
            )

    def ceiling(self) -> float:
        """The largest delay the next failure can get."""
        # min() before the power would overflow: attempts can grow without bound.
        exponent = min(self.attempts, 64)
        return float(min(self.cap, self.initial * self.factor**exponent))

    def next_delay(self) -> float:
        """The delay before the next attempt: uniform in [0, ceiling]; counts one failure."""
        delay = self.rng() * self.ceiling()
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Forget past failures: the next delay starts again from `initial`."""
        self.attempts = 0
