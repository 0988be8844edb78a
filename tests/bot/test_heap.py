"""`driftbot run` freezes its heap once every source has listed, not before."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot.app.heap import freeze_when_listed


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_the_heap_is_frozen_only_once_nothing_is_waiting(unfrozen: None) -> None:
    waiting = [["bench/applications", "bench/kustomizations"], ["bench/kustomizations"], []]
    seen: list[list[str]] = []
    frozen_while_waiting: list[int] = []

    def not_ready() -> list[str]:
        seen.append(waiting[0])
        return waiting[0]

    async def sleep(seconds: float) -> None:
        assert seconds == 2.0
        frozen_while_waiting.append(gc.get_freeze_count())
        waiting.pop(0)

    await freeze_when_listed(not_ready, sleep, interval=2.0)

    assert seen == [["bench/applications", "bench/kustomizations"], ["bench/kustomizations"], []]
    assert frozen_while_waiting == [0, 0]
    assert gc.get_freeze_count() > 0
