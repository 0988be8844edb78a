"""How much room a message gives its long parts, tried largest first until the message fits its
platform's limit: one shape for Slack's Block Kit (formatters/slack.py) and Teams' Adaptive
Cards (formatters/teams.py), each with its own budgets and its own measure of "fits". Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

Built = TypeVar("Built")


@dataclass(frozen=True, slots=True)
class Budget:
    fact: int
    """A fact's value, in escaped characters."""
    resources: int
    """The resources (or group members) listed: characters in Slack, items in Teams."""
    message: int
    """The controller's message, in escaped characters (0: left out)."""


def fit(
    budgets: Sequence[Budget],
    build: Callable[[Budget], Built],
    fits: Callable[[Built], bool],
    fallback: Callable[[Built], Built],
) -> Built:
    """The message built with the first of `budgets` that `fits`; when none does, `fallback`
    of the last one built (the headline alone, for inputs so hostile that nothing else fits)."""
    built: Built | None = None
    for budget in budgets:
        built = build(budget)
        if fits(built):
            return built
    assert built is not None, "no budgets"
    return fallback(built)
