"""Hot reload: a valid new config file takes effect without a restart, a broken one is refused
with every error logged at its line, and the config in force stays; both are audited."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app.replay import build_receivers, replay_lines
from bot.app.service import open_service
from bot.jobs.reload import ConfigReloader, fingerprint
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.loader import check_config_file
from config.schema import Config
from tests import scenarios

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

RECEIVERS = """
receivers:
  - {name: a, console: {format: jsonl}}
  - {name: b, console: {format: jsonl}}
"""
TO_A = RECEIVERS + "routes:\n  - receivers: [a]\n  - {receivers: [b], continue: true}\n"
TO_B = RECEIVERS + "routes:\n  - receivers: [b]\n  - {receivers: [a], continue: true}\n"
BROKEN = RECEIVERS + (
    "routes:\n  - match: {kinds: [drfit_detected]}\n    receivers: [a]\n  - receivers: [opsgenie]\n"
)


@dataclass
class Harness:
    path: Path
    store: Store
    pipeline: Pipeline
    reloader: ConfigReloader
    out: io.StringIO

    def receivers_told(self) -> list[list[str]]:
        return [note["receivers"] for note in self.told()]

    def told(self) -> list[dict[str, Any]]:
        lines = self.out.getvalue().splitlines()
        self.out.seek(0)
        self.out.truncate()
        return [json.loads(line) for line in lines]

    async def replay(self, lines: list[bytes]) -> None:
        await replay_lines(lines, "demo", self.pipeline)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    path = tmp_path / "driftbot.yaml"
    path.write_text(TO_A)
    out = io.StringIO()
    store = await Store.open(tmp_path / "state.sqlite")
    config = check_config_file(path).config

    def build(config: Config) -> dict[str, object]:
        return dict(build_receivers(config, None, out, store=store))

    pipeline = Pipeline(store, config, build_receivers(config, None, out, store=store))
    await pipeline.load()
    reloader = ConfigReloader(path, pipeline, build, clock=lambda: NOW)  # type: ignore[arg-type]
    yield Harness(path, store, pipeline, reloader, out)
    await reloader.stop()
    await pipeline.close()
    await store.close()


def _rewrite(path: Path, text: str) -> None:
    """Write `text`, and move the mtime on so the change is seen even on coarse clocks."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


async def test_a_new_route_is_used_after_the_file_changes(harness: Harness) -> None:
    lines = scenarios.demo_lines()
    await harness.replay(lines[:9])
    first = harness.told()
    assert first[0]["receivers"] == ["a"]

    _rewrite(harness.path, TO_B)
    result = await harness.reloader.reload()
    assert result is not None and result.applied
    await harness.replay(lines[9:14])
    told = harness.told()
    # The alerts announced before the reload went to a: their recoveries still go there (to
    # update the alert's message), everything else goes to b.
    before = {note["id"] for note in first}
    to_a = [note for note in told if note.get("updates") in before]
    assert [note["kind"] for note in to_a] == ["drift_resolved"]
    assert all(note["receivers"] == ["a"] for note in to_a)
    rest = [note for note in told if note not in to_a]
    assert rest and all(note["receivers"] == ["b"] for note in rest)
    [entry] = [e for e in await harness.store.audit_log() if e.action == "config_reload"]
    assert entry.actor == "config"
    assert entry.at == NOW
    assert entry.detail["routes"] == 2


async def test_an_unchanged_file_is_not_reloaded(harness: Harness) -> None:
    assert await harness.reloader.reload() is None
    assert harness.reloader.reloads == 0


async def test_a_change_of_content_with_the_same_size_and_time_is_seen_by_its_hash(
    harness: Harness,
) -> None:
    stat = harness.path.stat()
    same_size = TO_A.replace("[a]\n  - {receivers: [b]", "[b]\n  - {receivers: [a]")
    assert len(same_size) == len(TO_A) and same_size != TO_A
    harness.path.write_text(same_size)
    os.utime(harness.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = await harness.reloader.reload()
    assert result is not None and result.applied
    assert harness.pipeline.config.routes[0].receivers == ("b",)


async def test_a_broken_file_is_refused_with_every_error_and_the_old_routes_stay(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    _rewrite(harness.path, BROKEN)
    with caplog.at_level(logging.ERROR, logger="bot.jobs.reload"):
        result = await harness.reloader.reload()
    assert result is not None and not result.applied
    logged = [r.getMessage() for r in caplog.records]
    assert f"{harness.path}:6: routes[0].match.kinds[0]: unknown event kind 'drfit_detected'" in (
        "\n".join(logged)
    )
    assert any(
        line.startswith(f"{harness.path}:8: routes[1].receivers[0]:") and "opsgenie" in line
        for line in logged
    )

    await harness.replay(scenarios.demo_lines()[:9])
    assert harness.receivers_told()[0] == ["a"]
    [entry] = [e for e in await harness.store.audit_log() if e.action == "config_rejected"]
    assert entry.actor == "config"
    assert len(entry.detail["errors"]) == 2

    # The refused version is not tried again until the file changes once more.
    assert await harness.reloader.reload() is None
    _rewrite(harness.path, TO_B)
    result = await harness.reloader.reload()
    assert result is not None and result.applied


async def test_receivers_are_kept_added_and_removed(harness: Harness) -> None:
    kept = harness.pipeline.receivers["a"]
    _rewrite(
        harness.path,
        "receivers:\n"
        "  - {name: a, console: {format: jsonl}}\n"
        "  - {name: c, console: {format: text}}\n"
        "routes:\n  - receivers: [a, c]\n",
    )
    result = await harness.reloader.reload()
    assert result is not None and result.applied
    assert result.added == ("c",) and result.removed == ("b",) and result.changed == ()
    assert harness.pipeline.receivers["a"] is kept
    assert set(harness.pipeline.receivers) == {"a", "c"}

    _rewrite(
        harness.path,
        TO_A.replace("{name: a, console: {format: jsonl}}", "{name: a, console: {format: text}}"),
    )
    result = await harness.reloader.reload()
    assert result is not None and result.changed == ("a",)
    assert harness.pipeline.receivers["a"] is not kept
    assert harness.pipeline.receivers["a"].format == "text"  # type: ignore[attr-defined]


async def test_receivers_that_cannot_be_built_refuse_the_config(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    _rewrite(
        harness.path,
        RECEIVERS + "  - {name: chat, slack: {channel: C0123456}}\n"
        "routes:\n  - receivers: [chat]\n  - {receivers: [a, b], continue: true}\n",
    )
    with caplog.at_level(logging.ERROR, logger="bot.jobs.reload"):
        result = await harness.reloader.reload()
    assert result is not None and not result.applied
    assert "SLACK_BOT_TOKEN" in result.errors[0]
    assert harness.pipeline.config.routes[0].receivers == ("a",)
    assert set(harness.pipeline.receivers) == {"a", "b"}


async def test_listeners_hear_of_a_reload_and_a_failing_one_does_not_stop_it(
    harness: Harness,
) -> None:
    heard: list[int] = []

    def broken(config: Config) -> None:
        raise RuntimeError("boom")

    async def digests(config: Config) -> None:
        heard.append(len(config.routes))

    harness.reloader.listeners += [broken, digests]
    _rewrite(harness.path, TO_B + "digests:\n  - {receivers: [a], schedule: '0 9 * * 1-5'}\n")
    result = await harness.reloader.reload()
    assert result is not None and result.applied
    assert heard == [2]


async def test_the_poll_loop_reloads_on_its_own(harness: Harness) -> None:
    polls = asyncio.Event()
    loop_turns = 0

    async def sleep(seconds: float) -> None:
        nonlocal loop_turns
        loop_turns += 1
        if loop_turns > 2:
            polls.set()
        await asyncio.sleep(0)

    harness.reloader.sleep = sleep
    _rewrite(harness.path, TO_B)
    harness.reloader.start()
    await asyncio.wait_for(polls.wait(), 5)
    assert harness.pipeline.config.routes[0].receivers == ("b",)
    assert harness.reloader.reloads == 1


async def test_sighup_reloads_even_an_unchanged_file(harness: Harness) -> None:
    if not harness.reloader.install_sighup():
        pytest.skip("signals cannot be handled here")
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(10_000):
        if harness.reloader.reloads:
            break
        await asyncio.sleep(0)
    assert harness.reloader.reloads == 1


def test_fingerprint_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert fingerprint(tmp_path / "nope.yaml") is None


async def test_the_running_service_reloads_its_config_file_on_sighup(tmp_path: Path) -> None:
    path = tmp_path / "driftbot.yaml"
    path.write_text(TO_A)
    config = check_config_file(path).config
    out = io.StringIO()
    async with open_service(
        config, tmp_path / "state.sqlite", stream=out, config_path=path, tick_interval=3600
    ) as service:
        path.write_text(TO_B + "digests:\n  - {receivers: [a], schedule: '0 9 * * 1-5'}\n")
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(10_000):
            if service.config.digests:
                break
            await asyncio.sleep(0)
        assert service.config.routes[0].receivers == ("b",)
        assert service.pipeline.config is service.config
        assert set(service.pipeline.receivers) == {"a", "b"}
        entries = await service.pipeline.store.audit_log()
        assert [e.action for e in entries] == ["config_reload"]


async def test_what_needs_a_restart_is_named_field_by_field(harness: Harness) -> None:
    _rewrite(
        harness.path,
        TO_A + "server: {port: 9090, read_timeout: 3s}\nslack: {mode: http, command: /ops}\n",
    )
    result = await harness.reloader.reload()
    assert result is not None and result.applied
    assert result.restart_needed == ("server.port", "slack.mode")
    [entry] = [e for e in await harness.store.audit_log() if e.action == "config_reload"]
    assert entry.detail["restart_needed"] == ["server.port", "slack.mode"]


async def test_a_check_that_refuses_keeps_the_config_in_force(harness: Harness) -> None:
    def no_token(config: Config) -> None:
        if config.server.flux_webhook_token_env:
            raise ValueError("server.flux_webhook_token_env names UNSET, which is not set")

    harness.reloader.checks.append(no_token)
    before = harness.pipeline.config
    _rewrite(harness.path, TO_B + "server: {flux_webhook_token_env: UNSET}\n")
    result = await harness.reloader.reload()
    assert result is not None and not result.applied
    assert result.errors == (
        f"{harness.path}: server.flux_webhook_token_env names UNSET, which is not set",
    )
    assert harness.pipeline.config is before
    assert [e.action for e in await harness.store.audit_log()] == ["config_rejected"]


async def test_the_environment_overrides_apply_to_every_version_read(harness: Harness) -> None:
    harness.reloader.adjust = lambda c: c.model_copy(
        update={"server": c.server.model_copy(update={"port": 8181})}
    )
    _rewrite(harness.path, TO_B)
    result = await harness.reloader.reload()
    assert result is not None and result.applied
    assert harness.pipeline.config.server.port == 8181
