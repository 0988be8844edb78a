"""What became of one input to the pipeline: observed, stale, a hint, or rejected with a reason.

The feeds, replay and the Flux webhook act on it (a rejected input is logged and skipped, or
answered 400); its text, as logs and HTTP answers show it, is `observed`, `stale`, `hint` or
`rejected: <reason>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    OBSERVED = "observed"
    """An app state recorded (and its events decided), or an AppProject's annotations kept."""
    STALE = "stale"
    """Older than the state held, or the very state held again: nothing done."""
    HINT = "hint"
    """A Kubernetes Event or a Flux notification: its events decided, no state recorded."""
    REJECTED = "rejected"
    """Not something driftbot reads (the reason says why): skipped."""


@dataclass(frozen=True, slots=True)
class Taken:
    """One input's outcome, and for a rejected one the reason."""

    outcome: Outcome
    reason: str = ""

    @property
    def rejected(self) -> bool:
        return self.outcome is Outcome.REJECTED

    def __str__(self) -> str:
        return f"{self.outcome.value}: {self.reason}" if self.reason else self.outcome.value


OBSERVED = Taken(Outcome.OBSERVED)
STALE = Taken(Outcome.STALE)
HINT = Taken(Outcome.HINT)


def rejected(reason: str) -> Taken:
    return Taken(Outcome.REJECTED, reason)
