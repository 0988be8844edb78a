"""The one door into the running pipeline: every input passes it, one at a time.

Watches, relists, Flux webhooks, the clock, the store's flush, chat mutes and acks, expiring
mutes and a config reload all change what the pipeline holds; the gate runs them one after
another, so a relist's diff is never interleaved with another source's observation and a
reload never lands in the middle of one. Nothing outside takes its lock: each kind of input is
one of its methods. (The AppProject feed, bot/pipeline/projects.py, sets a project's routing
annotations in one step without an await, so it cannot land inside an input either.)

An input that sent a notification has the store's pending writes flushed before the gate opens
again: the notification is in the outbox already, and the policy state that says it was sent
must not wait for the next flush interval, or a process killed in between (a leader failing
over) would have its successor announce it a second time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from bot.pipeline.outcome import Taken
from bot.pipeline.runner import Pipeline
from bot.store.write_behind import WriteBehindStore
from core.model import AppKey
from core.policy import PolicyState

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PipelineGate:
    """The pipeline's inputs, one call at a time (see the module docstring). Each input lets
    time pass once, to its own `now`, before it is looked at (the pipeline's inputs do that
    themselves), so timers due by then fire first."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._lock = asyncio.Lock()

    # -- inputs from the sources -------------------------------------------------------------

    async def observe(self, obj: Any, cluster: str, watch_type: str, now: datetime) -> Taken:
        async with self._lock:
            sent = self._sent()
            taken = await self.pipeline.observe(obj, cluster, watch_type, now)
            await self._flush_if_sent(sent)
            return taken

    async def relist(
        self, cluster: str, objects: list[Any], now: datetime, covers: Callable[[AppKey], bool]
    ) -> None:
        async with self._lock:
            sent = self._sent()
            await self.pipeline.relist(cluster, objects, now, covers)
            await self._flush_if_sent(sent)

    async def notify(self, body: Any, cluster: str, now: datetime) -> Taken:
        async with self._lock:
            sent = self._sent()
            taken = await self.pipeline.notify(body, cluster, now)
            await self._flush_if_sent(sent)
            return taken

    async def advance(self, now: datetime) -> None:
        """The clock: let time pass, so problems whose grace ran out are announced."""
        async with self._lock:
            sent = self._sent()
            await self.pipeline.advance(now)
            await self._flush_if_sent(sent)

    # -- inputs from the service's own jobs and from chat ------------------------------------

    async def flush_store(self) -> None:
        """Write the store's pending app and policy states (a write-behind store's interval
        flush), between two inputs. Raises what the store raises."""
        store = self.pipeline.store
        if isinstance(store, WriteBehindStore):
            async with self._lock:
                await store.flush()

    async def change_policy(self, change: Callable[[PolicyState], tuple[PolicyState, T]]) -> T:
        """Apply `change` (pure: the policy state -> a new one and a result) to the policy
        state, save the new state if it is a new one, and return the result: a mute, an
        unmute, an ack or the expiry of mutes."""
        async with self._lock:
            before = self.pipeline.policy_state
            state, result = change(before)
            if state is not before:
                self.pipeline.policy_state = state
                await self.pipeline.store.save_policy(state)
            return result

    async def reconfigure(self, swap: Callable[[], Awaitable[T]]) -> T:
        """Run `swap`, a config reload that replaces the pipeline's config and receivers, as
        one input: no observation is under way while it runs."""
        async with self._lock:
            return await swap()

    # -- the flush after a send --------------------------------------------------------------

    def _sent(self) -> int:
        stats = self.pipeline.stats
        return stats["sent"] + stats["reminded"]

    async def _flush_if_sent(self, before: int) -> None:
        store = self.pipeline.store
        if self._sent() != before and isinstance(store, WriteBehindStore):
            try:
                await store.flush()
            except Exception:
                logger.exception("writing the state store failed; the next flush retries")
