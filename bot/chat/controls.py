"""Mutes and acknowledgements from chat, applied to the running pipeline's policy state.

The decisions are core.commands' (pure); this adapter hands each to the pipeline's gate, so a
chat action never interleaves with an observation and the new policy state is saved at once.
"""

from __future__ import annotations

from datetime import datetime

from bot.pipeline.gate import PipelineGate
from core import commands
from core.model import AppKey
from formatters.chat import MuteInfo


class PolicyControls:
    """The `Controls` of the chat commands, backed by the policy state behind `gate`."""

    def __init__(self, gate: PipelineGate) -> None:
        self.gate = gate

    def mutes(self, now: datetime) -> list[MuteInfo]:
        return [
            MuteInfo(m.target, m.until, m.who, m.reason)
            for m in commands.active_mutes(self.gate.pipeline.policy_state, now)
        ]

    async def mute(
        self, target: str, until: datetime, reason: str, who: str, now: datetime
    ) -> MuteInfo:
        await self.gate.change_policy(
            lambda state: (commands.mute(state, target, until, reason, who, now), None)
        )
        return MuteInfo(target, until, who, reason)

    async def unmute(self, target: str, who: str, now: datetime) -> bool:
        found = await self.gate.change_policy(lambda state: commands.unmute(state, target, now))
        return found is not None

    async def ack(self, key: AppKey, who: str, now: datetime) -> int:
        """Acknowledge the open alerts of exactly this app, on every route."""
        acked = await self.gate.change_policy(lambda state: commands.ack_app(state, key, who, now))
        return len(acked)
