"""Has anything the status page shows changed? A version that moves when it has.

The pipeline replaces an app's state (frozen) whenever it observes the app, and replaces its
policy state whenever an alert opens, closes, is muted or acknowledged. So comparing, by
identity, what it holds now with what it held at the last look tells a change in one pass
over the apps, without a hook in the pipeline: cheap enough to do twice a second per reader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.pipeline.runner import Pipeline


class ChangeWatch:
    """`version()`: a number that grows whenever the pipeline's apps or alerts changed."""

    def __init__(self, pipeline: Callable[[], Pipeline | None]) -> None:
        self._pipeline = pipeline
        self._seen: tuple[Any, ...] = ()
        self._states: list[Any] = []
        self._version = 0

    def version(self) -> str:
        pipeline = self._pipeline()
        if pipeline is None:
            marks: tuple[Any, ...] = (None,)
            states: list[Any] = []
        else:
            marks = (pipeline, pipeline.policy_state, pipeline.config)
            states = list(pipeline.states.values())
        if not _same(list(marks), list(self._seen)) or not _same(states, self._states):
            self._seen, self._states = marks, states
            self._version += 1
        return str(self._version)


def _same(now: list[Any], before: list[Any]) -> bool:
    return len(now) == len(before) and all(a is b for a, b in zip(now, before, strict=True))
