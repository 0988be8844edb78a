"""Following an action to its result, as the watch sees it: every app state the pipeline
records is offered to `seen`, and `tick` reports what timed out. The decision is
core.actions.outcome's; this keeps the list and hands each result to `report` once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.actions import Outcome, Pending, Started, outcome
from core.model import AppState

logger = logging.getLogger(__name__)

Report = Callable[[Pending, Outcome], Coroutine[Any, Any, None]]


@dataclass
class _Followed:
    pending: Pending
    started: Started


class Follower:
    def __init__(self, report: Report, follow_for: timedelta) -> None:
        self.report = report
        self.follow_for = follow_for
        self._followed: list[_Followed] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def follow(self, pending: Pending, started: Started, state: AppState | None = None) -> None:
        self._followed.append(_Followed(pending, started))
        if state is not None:
            self.seen(state, started.at)

    @property
    def following(self) -> int:
        return len(self._followed)

    def seen(self, state: AppState, now: datetime) -> None:
        """An app as the watch just recorded it."""
        for item in list(self._followed):
            if item.pending.plan.request.key != state.key:
                continue
            found = outcome(item.pending.plan.request, item.started, state, now, self.follow_for)
            if found is not None:
                self._done(item, found)

    async def on_state(self, state: AppState, now: datetime) -> None:
        """The pipeline's listener form of `seen`."""
        self.seen(state, now)

    def tick(self, now: datetime) -> None:
        """Report the actions whose result did not come within `follow_for`."""
        for item in list(self._followed):
            if now - item.started.at > self.follow_for:
                self._done(item, Outcome("timed_out"))

    def _done(self, item: _Followed, found: Outcome) -> None:
        self._followed.remove(item)
        self._spawn(self.report(item.pending, found))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded(work), name="action-result")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("reporting an action's result failed")

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
