"""Ten real SIGKILLs of `driftbot replay` in the middle of a storm to six Slack channels, each
followed by a restart on the same state file: every notification reaches its channel exactly
once, in order, as the fake Slack counts.

The storm is a recorded stream (one Kustomization after another failing its build on six
clusters, one channel each). The first run queues every notification while the fake holds its
answers, so that the kills fall in delivery, which is what the outbox promises to survive (a
kill inside the pipeline's own few milliseconds between writing an app's state and queueing its
notification is outside that promise: docs/reliability.md). Then the fake lets go, and each run
is killed at a seeded random point: half of them right after the fake accepted a post and
before the answer left (the worst window: Slack has the message, driftbot does not know), half
a random moment after that run's first post (anywhere: mid-request, while marking a row sent,
while looking through the channel's history). The eleventh run finishes.

The processes and the fake run on real time (the fake's limits are raised: pacing is not what
is tested here). Each run is forked from a server that has imported driftbot once
(bench/_soak_fork.py), so eleven processes cost seconds, not the imports eleven times over.

Then the window the outbox does not cover, held exactly and marked as an expected failure: a
kill after an input's notification is queued and before its app and policy state are flushed.
Last, not a crash but the longest outage the outbox is meant for: Slack down for an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import random
import signal
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bench._soak_fork import Child, ForkServer
from bench._soak_slack import SoakSlack, notification_of
from bot.app.replay import build_receivers, replay_lines
from bot.delivery.receivers import Notification
from bot.delivery.slack_receiver import SlackReceiver, plan_slack
from bot.pipeline.outcome import Outcome
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from bot.store.write_behind import WriteBehindStore
from config.schema import Config
from tests.bot.test_slack_receiver import ENV, event, notification_ids, slack_config, slack_options
from tests.builders_flux import REV2, T0, kustomization
from tests.fakes.slack_api import VALID_TOKEN, Call
from tests.fakes.slack_api import VirtualClock as SlackClock
from watchers.replay import dump_line

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = 6
PER_CLUSTER = 15
TRIALS = 10
SEED = 20261127


def channel(cluster: int) -> str:
    return f"C0CRASH{cluster}"


def storm_lines() -> list[bytes]:
    """Every Kustomization listed healthy, then each fails its build, a second apart."""
    lines = []
    names = [(c, f"apps-{i:02d}") for i in range(PER_CLUSTER) for c in range(CLUSTERS)]
    for c, name in names:
        lines.append(dump_line(T0, f"c{c}", "ADDED", kustomization(name)))
    for n, (c, name) in enumerate(names, start=1):
        failed = kustomization(name, ready="False", reason="BuildFailed", message=f"build {n}")
        lines.append(dump_line(T0 + timedelta(seconds=n), f"c{c}", "MODIFIED", failed))
    return lines


def storm_config(slack_url: str) -> dict[str, Any]:
    return {
        "receivers": [{"name": f"r{c}", "slack": {"channel": channel(c)}} for c in range(CLUSTERS)],
        "routes": [
            {"match": {"cluster": f"c{c}"}, "receivers": [f"r{c}"]} for c in range(CLUSTERS)
        ],
        "policy": {
            "grace": "0s",
            "group_wait": "0s",
            "group_interval": "0s",
            "repeat": "0s",
            "group_by": ["cluster", "name", "kind"],
            "flap": {"flips": 0},
        },
        "slack": {"api_url": slack_url},
    }


class _Capture:
    def __init__(self, name: str, into: dict[str, list[str]]) -> None:
        self.name = name
        self._into = into

    async def deliver(self, note: Notification) -> None:
        for payload in plan_slack(note):
            if payload["op"] == "post":
                self._into.setdefault(channel(int(self.name[1:])), []).append(
                    payload["notification"]
                )

    async def close(self) -> None:
        pass


async def expected_posts(lines: list[bytes], config: Config, state: Path) -> dict[str, list[str]]:
    """The notification ids each channel should get, in order: the same stream replayed in
    this process with receivers that only take note."""
    posts: dict[str, list[str]] = {}
    store = await Store.open(state)
    try:
        receivers = {f"r{c}": _Capture(f"r{c}", posts) for c in range(CLUSTERS)}
        pipeline = Pipeline(store, config, receivers)
        await pipeline.load()
        await replay_lines(lines, "storm", pipeline)
        await pipeline.close()
    finally:
        await store.close()
    return posts


def queued(state: Path) -> int:
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as conn,
    ):
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
    return 0


async def until_queued(state: Path, total: int) -> None:
    """Poll the state file (another process writes it) until `total` rows are queued."""
    async with asyncio.timeout(30):
        while queued(state) < total:  # noqa: ASYNC110 - nothing in this process to wait on
            await asyncio.sleep(0.05)


async def _replay(server: ForkServer, tmp_path: Path) -> Child:
    return await server.spawn(
        [
            "replay",
            str(tmp_path / "storm.jsonl"),
            "--config",
            str(tmp_path / "driftbot.yaml"),
            "--state",
            str(tmp_path / "state.sqlite"),
        ]
    )


async def test_ten_sigkills_mid_storm_each_restart_delivers_every_notification_exactly_once(
    tmp_path: Path,
) -> None:
    rand = random.Random(SEED)
    lines = storm_lines()
    (tmp_path / "storm.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    env = {**os.environ, "SLACK_BOT_TOKEN": VALID_TOKEN, "PYTHONPATH": str(ROOT)}
    state = tmp_path / "state.sqlite"
    killed_in_window = 0
    log = (tmp_path / "stderr.log").open("wb")
    async with (
        SoakSlack(channel_rate=(100.0, 100), workspace_rate=(100.0, 100)) as slack,
        ForkServer(env, stderr=log) as server,
    ):
        raw = storm_config(slack.url)
        (tmp_path / "driftbot.yaml").write_text(yaml.safe_dump(raw))
        expected = await expected_posts(lines, Config.model_validate(raw), tmp_path / "o.sqlite")
        total = sum(len(ids) for ids in expected.values())
        assert total == CLUSTERS * PER_CLUSTER

        slack.held = asyncio.Event()
        for trial in range(TRIALS):
            process = await _replay(server, tmp_path)
            first_post = asyncio.Event()
            in_window = trial % 2 == 0
            kill_at = len(slack.accepted_posts()) + rand.randint(1, 4)

            def accepted(
                call: Call,
                process: Any = process,
                kill_at: int = kill_at,
                in_window: bool = in_window,
                first_post: Any = first_post,
            ) -> None:
                first_post.set()
                if in_window and len(slack.accepted_posts()) + 1 >= kill_at:
                    process.kill()

            slack.on_accept = accepted
            if trial == 0:
                await until_queued(state, total)
                slack.held.set()
            if not in_window:
                async with asyncio.timeout(30):
                    await first_post.wait()
                await asyncio.sleep(rand.uniform(0.0, 0.3))
                process.kill()
            async with asyncio.timeout(30):
                await process.wait()
            assert process.returncode == -signal.SIGKILL, f"trial {trial} was not killed"
            killed_in_window += in_window
            assert len(slack.accepted_posts()) < total, f"trial {trial}: nothing left to kill"

        slack.on_accept = None
        final = await _replay(server, tmp_path)
        async with asyncio.timeout(40):
            await final.wait()
    log.close()
    assert final.returncode == 0, (tmp_path / "stderr.log").read_text()

    posts = slack.accepted_posts()
    counted = Counter((c.params["channel"], notification_of(c)) for c in posts)
    assert len(counted) == total
    assert set(counted.values()) == {1}, [k for k, n in counted.items() if n > 1]
    for name, ids in expected.items():
        assert [notification_of(c) for c in posts if c.params["channel"] == name] == ids
    assert killed_in_window == TRIALS // 2
    # The posts in flight at the in-window kills were looked for, and found, not sent again.
    assert slack.calls_to("conversations.history")


# --- the window outside the outbox ----------------------------------------------------------------


def _outbox_notifications(state: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT payload FROM outbox ORDER BY id").fetchall()
    return [json.loads(payload)["notification"] for (payload,) in rows]


def _announced(state: Path) -> list[str]:
    """The notifications the audit log says were announced, oldest first."""
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT detail FROM audit WHERE action = 'announce' ORDER BY id"
        ).fetchall()
    return [json.loads(detail)["notification"] for (detail,) in rows]


@pytest.mark.parametrize("flushed", [False, True], ids=["killed before", "killed after"])
@pytest.mark.parametrize("change", ["a failure", "a deploy"])
async def test_a_kill_around_an_inputs_flush_announces_its_change_once(
    tmp_path: Path, flushed: bool, change: str
) -> None:
    """`driftbot run`'s store as a SIGKILL leaves it just before or just after the flush that
    follows an input which sent a notification (the flush the service's gate makes), then a
    restart whose first list sees the same object: the notification and the policy state that
    says it was sent are saved together or not at all, so the change is queued exactly once;
    its audit entry goes with them (announced once in the audit log too)."""
    state = tmp_path / "state.sqlite"
    healthy = kustomization("apps")
    failed = (
        kustomization("apps", ready="False", reason="BuildFailed", message="build failed")
        if change == "a failure"
        else kustomization("apps", applied=REV2)  # news: no open alert would keep it quiet
    )
    async with SoakSlack() as slack:
        config = Config.model_validate(storm_config(slack.url))
        env = {"SLACK_BOT_TOKEN": VALID_TOKEN}

        # Each store is closed whatever happens: an aiosqlite connection left open keeps the
        # test process from ever exiting.
        store = await WriteBehindStore.open(state)
        receivers: dict[str, Any] = {}
        try:
            receivers = build_receivers(config, None, store=store, environ=env)
            pipeline = Pipeline(store, config, receivers)
            await pipeline.load()
            await pipeline.observe(healthy, "c0", "ADDED", T0)
            await store.flush()
            taken = await pipeline.observe(failed, "c0", "MODIFIED", T0 + timedelta(minutes=1))
            assert taken.outcome is Outcome.OBSERVED
            if flushed:
                assert await store.flush()
            assert len(_outbox_notifications(state)) == int(flushed)
            assert _announced(state) == _outbox_notifications(state)
        finally:
            for task in [t for t in asyncio.all_tasks() if t.get_name().startswith("outbox:")]:
                task.cancel()
            await Store.close(store)  # killed: what is still in memory is not written
            for receiver in receivers.values():  # and its connections are gone with it
                if isinstance(receiver, SlackReceiver):
                    await receiver.sender.release()

        store = await WriteBehindStore.open(state)
        try:
            pipeline = Pipeline(
                store, config, build_receivers(config, None, store=store, environ=env)
            )
            await pipeline.load()
            await pipeline.relist("c0", [failed], T0 + timedelta(minutes=2), lambda key: True)
            await pipeline.close()
        finally:
            await store.close()
    queued = _outbox_notifications(state)
    assert len(queued) == 1, f"the change was queued {len(queued)} times: {queued}"
    assert _announced(state) == queued


# --- Slack down for an hour -----------------------------------------------------------------------


@dataclass
class DownSlack(SoakSlack):
    """Answers every call with an HTTP 500 until `down_until` (on its clock); `back` is set by
    the first call after that (which waits for `held`, if set, before it is answered)."""

    down_until: float = 0.0
    tries_while_down: list[tuple[float, str]] = field(default_factory=list)
    back: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.clock() < self.down_until:
            params = await request.json() if request.content_type == "application/json" else {}
            if not params:
                params = dict(await request.post())
            self.tries_while_down.append((self.clock(), str(params.get("channel", ""))))
            return web.Response(status=500, text="<html>500</html>", content_type="text/html")
        self.back.set()
        return await super()._handle(request)


async def _until(predicate: Callable[[], Awaitable[bool] | bool]) -> None:
    """Let the workers run (their waits move the virtual clock) until `predicate` holds."""
    for _ in range(500_000):
        result = predicate()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_slack_down_for_an_hour_keeps_every_message_backs_off_and_keeps_the_order(
    tmp_path: Path,
) -> None:
    """On virtual time: 40 notifications to two channels, half before and half during an hour in
    which Slack answers only 500s. Nothing is lost or dropped for age, the tries thin out to one
    every five minutes, and once Slack answers each channel gets its messages once, in order."""
    clock = SlackClock(start=0.0)
    channels = {"alpha": "C0A", "beta": "C0B"}
    names = list(channels)
    notes = [
        Notification(event(f"app-{i}", cluster=names[i % 2], minutes=i), (names[i % 2],))
        for i in range(40)
    ]
    # The first try after the hour is held until the outbox has been looked at: a try already
    # on its way when the clock passes the hour would otherwise be answered meanwhile.
    held = asyncio.Event()
    slack = DownSlack(clock=clock, down_until=3600.0, held=held)
    async with slack, await Store.open(tmp_path / "state.sqlite") as store:
        receivers = build_receivers(
            slack_config(slack.url, channels),
            None,
            store=store,
            environ=ENV,
            slack=slack_options(clock, close_timeout=None),
        )
        for note in notes[:20]:
            await receivers[note.receivers[0]].deliver(note)
        await _until(lambda: clock() >= 1800)
        assert len(await store.outbox_pending()) == 20
        for note in notes[20:]:
            await receivers[note.receivers[0]].deliver(note)
        await _until(slack.back.is_set)
        assert clock() >= 3600
        assert slack.accepted_posts() == []
        assert len(await store.outbox_pending()) == 40, "nothing dropped"
        held.set()
        await _until(lambda: _empty(store))
        await asyncio.gather(*(r.close() for r in receivers.values()))

    tries = slack.tries_while_down
    for channel in channels.values():
        late = [t for t, c in tries if c == channel and t >= 1800]
        # At most one outbox attempt every 5 minutes (of at most 5 HTTP tries) by then.
        assert 5 <= len(late) <= 7 * 5, late
    for name, channel in channels.items():
        expected = [n.event.id for n in notes if n.receivers[0] == name]
        assert notification_ids(slack, channel) == expected
    assert max(c.at for c in slack.accepted_posts()) <= 3600 + 300 + 60


async def _empty(store: Store) -> bool:
    return not await store.outbox_pending()
