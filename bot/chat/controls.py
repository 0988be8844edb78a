"""Mutes and acknowledgements from chat, applied to the running pipeline's policy state.

The decisions are core.commands' (pure); this adapter takes the pipeline's lock so a chat
action never interleaves with an observation, and saves the new policy state at once.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from bot.pipeline.runner import Pipeline
from core import commands
from core.model import AppKey
from core.policy import PolicyState
from formatters.chat import MuteInfo


class PolicyControls:
    """The `Controls` of the chat commands, backed by the pipeline's policy state."""

    def __init__(self, pipeline: Pipeline, lock: asyncio.Lock | None = None) -> None:
        self.pipeline = pipeline
        self.lock = lock or asyncio.Lock()

    def mutes(self, now: datetime) -> list[MuteInfo]:
        return [
            MuteInfo(m.target, m.until, m.who, m.reason)
            for m in commands.active_mutes(self.pipeline.policy_state, now)
        ]

    async def mute(
        self, target: str, until: datetime, reason: str, who: str, now: datetime
    ) -> MuteInfo:
        async with self.lock:
            state = commands.mute(self.pipeline.policy_state, target, until, reason, who, now)
            await self._save(state)
        return MuteInfo(target, until, who, reason)

    async def unmute(self, target: str, who: str, now: datetime) -> bool:
        async with self.lock:
            state, found = commands.unmute(self.pipeline.policy_state, target, now)
            await self._save(state)
        return found is not None

    async def ack(self, key: AppKey, who: str, now: datetime) -> int:
        """Acknowledge the open alerts of exactly this app, on every route."""
        async with self.lock:
            state, acked = commands.ack_app(self.pipeline.policy_state, key, who, now)
            await self._save(state)
        return len(acked)

    async def _save(self, state: PolicyState) -> None:
        self.pipeline.policy_state = state
        await self.pipeline.store.save_policy(state)
