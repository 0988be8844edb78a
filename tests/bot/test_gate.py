"""The pipeline's gate: while one input is under way (here a drift whose delivery is held up),
every other kind of input waits for it: another observation, the clock, the store's flush, a
chat mute and ack, the expiry of mutes and a config reload. And each input lets time pass
first, to its own time."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app.replay import build_receivers
from bot.chat.controls import PolicyControls
from bot.delivery.receivers import Notification
from bot.jobs.scheduler import pipeline_hooks
from bot.pipeline.gate import PipelineGate
from bot.pipeline.outcome import Outcome
from bot.pipeline.runner import Pipeline
from bot.store.write_behind import WriteBehindStore
from config.schema import Config
from core.model import AppKey, Tool
from tests.builders_argocd import argocd_app
from tests.builders_flux import T0

CONFIG = Config.model_validate(
    {
        "receivers": [{"name": "held", "console": {}}],
        "routes": [{"receivers": ["held"]}],
        "policy": {"grace": "0s", "group_wait": "0s"},
    }
)
DRIFTED = argocd_app("checkout", sync="OutOfSync", out_of_sync=[("Deployment", "shop", "co")])


class HeldUp:
    """A receiver whose deliveries wait until `release` is set."""

    name = "held"

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.delivered: list[str] = []

    async def deliver(self, note: Notification) -> None:
        self.entered.set()
        await self.release.wait()
        self.delivered.append(note.event.kind.value)

    async def close(self) -> None:
        return None


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[PipelineGate, HeldUp]]:
    store = await WriteBehindStore.open(tmp_path / "s.sqlite")
    receiver = HeldUp()
    pipeline = Pipeline(store, CONFIG, {"held": receiver})
    await pipeline.load()
    gate = PipelineGate(pipeline)
    await gate.observe(argocd_app("checkout"), "prod", "ADDED", T0)
    yield gate, receiver
    receiver.release.set()
    await pipeline.close()
    await store.close()


async def _waits_for_the_drift(
    gate: PipelineGate, receiver: HeldUp, other: Callable[[], Awaitable[object]]
) -> None:
    drift = asyncio.create_task(
        gate.observe(DRIFTED, "prod", "MODIFIED", T0 + timedelta(seconds=1))
    )
    await receiver.entered.wait()
    waiting = asyncio.create_task(other())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done(), "an input got in while another was under way"
    receiver.release.set()
    taken = await drift
    assert taken.outcome is Outcome.OBSERVED
    await waiting
    assert receiver.delivered == ["drift_detected"]


async def test_a_chat_mute_and_ack_wait_for_the_input_under_way(
    world: tuple[PipelineGate, HeldUp],
) -> None:
    gate, receiver = world
    controls = PolicyControls(gate)
    key = AppKey(Tool.ARGOCD, "prod", "argo-cd", "Application", "checkout")

    async def mute_and_ack() -> None:
        await controls.mute("checkout", T0 + timedelta(hours=1), "deploy", "U1", T0)
        assert await controls.ack(key, "U1", T0) == 1, "the drift was open by then"

    await _waits_for_the_drift(gate, receiver, mute_and_ack)
    assert [m.target for m in controls.mutes(T0)] == ["checkout"]


async def test_the_clock_the_flush_and_the_mute_expiry_wait_too(
    world: tuple[PipelineGate, HeldUp],
) -> None:
    gate, receiver = world
    hooks = pipeline_hooks(gate)

    async def jobs() -> None:
        await hooks.advance(T0 + timedelta(seconds=2))
        await gate.flush_store()
        assert await hooks.expire_mutes(T0 + timedelta(days=2)) == 0

    await _waits_for_the_drift(gate, receiver, jobs)


async def test_a_reload_waits_too_and_swaps_between_inputs(
    world: tuple[PipelineGate, HeldUp],
) -> None:
    gate, receiver = world
    seen: list[int] = []

    async def swap() -> int:
        seen.append(len(receiver.delivered))
        return len(seen)

    async def reload() -> None:
        assert await gate.reconfigure(swap) == 1

    await _waits_for_the_drift(gate, receiver, reload)
    assert seen == [1], "the swap ran after the drift was delivered"


async def test_an_input_lets_time_pass_to_its_own_time_first(tmp_path: Path) -> None:
    """A held drift whose grace ran out before the next input is announced by that input's
    own step of time, before the input is looked at; nobody needs to advance the clock first."""
    config = Config.model_validate(
        {"receivers": [{"name": "out", "console": {}}], "routes": [{"receivers": ["out"]}]}
    )
    out = io.StringIO()
    store = await WriteBehindStore.open(tmp_path / "s.sqlite")
    pipeline = Pipeline(store, config, build_receivers(config, None, out))
    await pipeline.load()
    gate = PipelineGate(pipeline)
    await gate.observe(argocd_app("checkout"), "prod", "ADDED", T0)
    await gate.observe(DRIFTED, "prod", "MODIFIED", T0 + timedelta(seconds=1))
    assert out.getvalue() == "", "held in its grace (60 s)"
    other = argocd_app("payments")
    taken = await gate.observe(other, "prod", "ADDED", T0 + timedelta(minutes=5))
    assert taken.outcome is Outcome.OBSERVED
    assert pipeline.stats["sent"] == 1 and "checkout" in out.getvalue()
    await pipeline.close()
    await store.close()
