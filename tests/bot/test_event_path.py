"""docs/architecture.md's path of one event is the path a drift takes: a live service watches a
fake Kubernetes API, an Application drifts, and the post reaches the fake Slack; every function
the page names is called on the way, in the order the page gives."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from tests.bot.service_world import VirtualClock, make_config, until, watching_service
from tests.builders_flux import T0
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi
from tests.world import Obj, World, argocd_full_states, fakes

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
STEP = re.compile(r"^(\d+)\. `([^`]+\.py)` `([^`]+)`: \S")
CHANNEL = "C0EVENTPATH"


def steps_on_the_page() -> list[tuple[str, str]]:
    """(module path, function qualname) of each step of "The path of one event"."""
    section = DOC.read_text().split("## The path of one event", 1)[1].split("\n## ", 1)[0]
    steps = [STEP.match(line) for line in section.splitlines()]
    found = [m for m in steps if m]
    assert [int(m[1]) for m in found] == list(range(1, len(found) + 1)), "steps numbered 1.."
    return [(m[2], m[3]) for m in found]


def test_the_page_lists_at_most_twelve_modules_that_exist() -> None:
    steps = steps_on_the_page()
    assert 6 <= len(steps) <= 12
    assert len({module for module, _ in steps}) == len(steps), "one module a step"
    for module, _ in steps:
        assert (ROOT / module).is_file(), module


async def test_a_drift_travels_the_path_the_page_gives(tmp_path: Path) -> None:
    called: dict[tuple[str, str], int] = {}
    prefix = str(ROOT) + "/"

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if code.co_filename.startswith(prefix):
                key = (code.co_filename[len(prefix) :], code.co_qualname)
                called.setdefault(key, len(called))

    clock = VirtualClock(T0)
    async with fakes("prod") as apis, FakeSlackApi() as slack:
        world = World(apis, clock)
        app = Obj("prod", "Application", "checkout", argocd_full_states)
        world.put(app)
        config = make_config(
            {"prod": apis["prod"].write_kubeconfig(tmp_path / "kubeconfig")},
            receivers=[{"name": "oncall", "slack": {"channel": CHANNEL}}],
            routes=[{"receivers": ["oncall"]}],
            slack={"api_url": slack.url},
        )
        environ = {"SLACK_BOT_TOKEN": VALID_TOKEN}
        out = io.StringIO()
        async with watching_service(
            config, tmp_path / "s.sqlite", clock, out, environ=environ
        ) as service:
            sys.setprofile(profile)
            try:
                clock.advance()
                world.change(app)  # step 1 of the object: OutOfSync at the deployed revision
                await until(lambda: bool(slack.messages(CHANNEL)))
            finally:
                sys.setprofile(None)
            assert service.pipeline.stats["detected.drift_detected"] == 1

    assert "checkout" in slack.messages(CHANNEL)[0]["text"]
    steps = steps_on_the_page()
    missing = [step for step in steps if step not in called]
    assert not missing, f"named on the page but not called: {missing}"
    order = [called[step] for step in steps]
    assert order == sorted(order), "the page gives the steps in the order they happen"
