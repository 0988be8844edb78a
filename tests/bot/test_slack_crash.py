"""Killing delivery in the middle of a storm and starting again: every message exactly once.

Deterministic crashes first, ten trials with seeded random points: the service is stopped dead
at that very moment (every outbox worker and the task queueing notifications cancelled where
they stand, the store connection dropped, nothing closed cleanly) either right after the fake
Slack accepted a message and before the worker could mark it sent (the worst window), or
between two notifications being queued. A new store and new receivers on the same file then
finish the job. The fake counts what it accepted per notification; the store, read after the
crash, says which messages were in flight (accepted, not marked sent): one per worker at most,
since other workers may have had a post on its way when the crash came.

Then the honest version: `driftbot replay` to three Slack channels in a real process, killed
with SIGKILL by the fake the moment it accepts a message mid-delivery, and run again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pytest

from bot.app.replay import build_receivers
from bot.delivery.receivers import Notification, Receiver
from bot.delivery.slack_receiver import SlackReceiver
from bot.store.store import Store
from tests.bot.test_replay_cli import EXPECTED_DEMO
from tests.bot.test_slack_receiver import (
    ENV,
    HistoryFakeSlack,
    event,
    notification_ids,
    slack_config,
    slack_options,
)
from tests.fakes.slack_api import VALID_TOKEN, FakeSlackApi, VirtualClock
from tests.scenarios import demo_lines

ROOT = Path(__file__).resolve().parents[2]

CHANNELS = {"alpha": "C0A", "beta": "C0B", "gamma": "C0C"}
NOTES = 30
TRIALS = 10


class CrashingSlack(HistoryFakeSlack):
    """Calls `crash` right after accepting its `crash_after`-th message.

    With `refuse_after_crash`, it accepts no other message until `crash_after` is cleared: a
    post that reaches the fake while a killed process is still dying is refused, as the kill
    would have kept it from leaving.
    """

    crash_after: int | None = None
    crash: Callable[[], None] = staticmethod(lambda: None)
    accepted: int = 0
    refuse_after_crash: bool = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        crashed = self.crash_after is not None and self.accepted >= self.crash_after
        if method == "chat.postMessage" and crashed and self.refuse_after_crash:
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        answer = super()._answer(method, params, token)
        if method == "chat.postMessage" and answer[1].get("ok"):
            self.accepted += 1
            if self.accepted == self.crash_after:
                self.crash()
        return answer


class NoHistorySlack(CrashingSlack):
    """A workspace where the bot cannot read channel history (no channels:history scope)."""

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method.startswith("conversations."):
            return 200, {"ok": False, "error": "missing_scope"}, {}
        return super()._answer(method, params, token)


def storm() -> list[Notification]:
    names = list(CHANNELS)
    return [
        Notification(event(f"app-{i}", cluster=names[i % 3], minutes=i), (names[i % 3],))
        for i in range(NOTES)
    ]


def kill_workers() -> list[asyncio.Task[Any]]:
    tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("outbox:")]
    for task in tasks:
        task.cancel()
    return tasks


@dataclass(frozen=True)
class Killed:
    """What the store and the fake say once the killed process is gone."""

    queued: int
    """How many of the notes (a prefix) had reached the outbox."""
    accepted: list[str]
    """The notifications Slack accepted, in order, before the restart."""
    in_flight: set[str]
    """Accepted by Slack but not marked sent: the restart cannot know they arrived."""
    attempted: set[str]
    """Marked attempted and not sent: the rows the restart will look for."""


def _outbox_rows(path: Path) -> list[tuple[str, bool, bool]]:
    """(notification, sent, attempted) of every outbox row, read as the next process would."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT payload, sent_at, attempted_at FROM outbox ORDER BY id")
        found = [(json.loads(p)["notification"], s is not None, a is not None) for p, s, a in rows]
    conn.close()
    return found


async def run_until_killed(
    slack: CrashingSlack,
    clock: VirtualClock,
    path: Path,
    notes: list[Notification],
    *,
    kill_after_accepted: int | None,
    kill_after_queued: int | None,
) -> Killed:
    """Deliver `notes` until the crash, which stops every task of the "process" (the outbox
    workers and the one queueing the notes) where it stands, at that very moment: nothing of
    it runs after the crash, so nothing is accepted after it but what was already on its way."""
    store = await Store.open(path)
    receivers = build_receivers(
        slack_config(slack.url, CHANNELS),
        None,
        store=store,
        environ=ENV,
        slack=slack_options(clock),
    )
    killed = asyncio.Event()
    stopped: list[asyncio.Task[Any]] = []

    def crash() -> None:
        if not killed.is_set():
            killed.set()
            feeder.cancel()
            stopped.extend(kill_workers())

    async def feed() -> None:
        for queued, note in enumerate(notes):
            if queued == kill_after_queued:
                crash()
                return
            await receivers[note.receivers[0]].deliver(note)
            await asyncio.sleep(0)

    feeder = asyncio.create_task(feed())
    slack.crash_after = kill_after_accepted
    slack.crash = crash
    await asyncio.wait_for(killed.wait(), 30)
    await asyncio.wait([feeder, *stopped])
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("outbox:")]
    await store.close()  # the process is gone: nothing is drained or closed cleanly
    for receiver in receivers.values():  # and its connections with it
        assert isinstance(receiver, SlackReceiver)
        await receiver.sender.release()

    rows = _outbox_rows(path)
    in_store = {n for n, _, _ in rows}
    queued = sum(1 for note in notes if note.event.id in in_store)
    assert in_store == {note.event.id for note in notes[:queued]}  # queued in order
    accepted = [
        c.params["metadata"]["event_payload"]["notification"]
        for c in slack.calls_to("chat.postMessage")
        if c.ok
    ]
    sent = {n for n, was_sent, _ in rows if was_sent}
    attempted = {n for n, was_sent, was_attempted in rows if was_attempted and not was_sent}
    return Killed(queued, accepted, set(accepted) - sent, attempted)


async def restart_and_finish(
    slack: FakeSlackApi, clock: VirtualClock, path: Path, rest: list[Notification]
) -> dict[str, Receiver]:
    async with await Store.open(path) as store:
        receivers = build_receivers(
            slack_config(slack.url, CHANNELS),
            None,
            store=store,
            environ=ENV,
            slack=slack_options(clock),
        )
        for receiver in receivers.values():
            assert isinstance(receiver, SlackReceiver)
            receiver.start()
        for note in rest:
            await receivers[note.receivers[0]].deliver(note)
        await asyncio.gather(*(r.close() for r in receivers.values()))
        for name in CHANNELS:
            assert await store.outbox_queue(name) == []
    return receivers


@pytest.mark.parametrize("trial", range(TRIALS))
async def test_a_crash_mid_storm_then_a_restart_delivers_every_message_exactly_once(
    trial: int, tmp_path: Path
) -> None:
    rand = random.Random(trial)
    clock = VirtualClock(start=1000.0)
    notes = storm()
    path = tmp_path / "state.sqlite"
    after_accept = trial % 2 == 0
    crash_at = rand.randrange(1, NOTES)
    async with CrashingSlack(clock=clock) as slack:
        killed = await run_until_killed(
            slack,
            clock,
            path,
            notes,
            kill_after_accepted=crash_at if after_accept else None,
            kill_after_queued=None if after_accept else crash_at,
        )
        receivers = await restart_and_finish(slack, clock, path, notes[killed.queued :])

        ok_posts = [c for c in slack.calls_to("chat.postMessage") if c.ok]
        assert len(ok_posts) == NOTES
        for name, channel in CHANNELS.items():
            expected = [n.event.id for n in notes if n.receivers[0] == name]
            assert notification_ids(slack, channel) == expected
        counted = Counter(c.params["metadata"]["event_payload"]["notification"] for c in ok_posts)
        assert set(counted.values()) == {1}
        assert 0 < len(killed.accepted) < NOTES
        workers = [r.worker for r in receivers.values() if isinstance(r, SlackReceiver)]
        # Every message in flight at the crash was found in its channel, not sent again; the
        # other rows marked attempted had not reached Slack and were sent.
        assert killed.in_flight <= killed.attempted
        assert sum(w.stats.recovered for w in workers) == len(killed.in_flight)
        assert sum(w.stats.resent for w in workers) == len(killed.attempted - killed.in_flight)
        if after_accept:
            assert killed.accepted[crash_at - 1] in killed.in_flight


async def test_without_history_access_an_in_flight_message_is_sent_again_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """At least once: each message in flight at the crash (the one Slack had just accepted,
    and any other worker's that was already on its way) appears twice, every other once."""
    clock = VirtualClock(start=1000.0)
    notes = storm()
    path = tmp_path / "state.sqlite"
    async with NoHistorySlack(clock=clock) as slack:
        killed = await run_until_killed(
            slack, clock, path, notes, kill_after_accepted=7, kill_after_queued=None
        )
        with caplog.at_level(logging.WARNING):
            await restart_and_finish(slack, clock, path, notes[killed.queued :])

    ok_posts = [c for c in slack.calls_to("chat.postMessage") if c.ok]
    counted = Counter(c.params["metadata"]["event_payload"]["notification"] for c in ok_posts)
    assert set(counted) == {n.event.id for n in notes}
    assert killed.accepted[6] in killed.in_flight  # the crash came before its answer
    assert killed.in_flight <= killed.attempted
    assert len(killed.in_flight) <= len(CHANNELS)  # one message on its way per worker at most
    assert {n for n, times in counted.items() if times > 1} == killed.in_flight
    assert max(counted.values()) == 2
    warnings = [r.getMessage() for r in caplog.records if "may appear twice" in r.getMessage()]
    assert warnings and all("missing_scope" in w for w in warnings)
    assert len({w.split(":")[0] for w in warnings}) == len(warnings)  # once per receiver


# --- the honest version: a real process, killed with SIGKILL ------------------------------------

KILL_CONFIG = """
receivers:
  - {name: alpha, slack: {channel: C0A}}
  - {name: beta, slack: {channel: C0B}}
  - {name: gamma, slack: {channel: C0C}}
routes:
  - match: {kinds: [deploy_started, deploy_succeeded, rollback_succeeded]}
    receivers: [gamma]
    continue: true
  - match: {cluster: prod}
    receivers: [alpha]
  - receivers: [beta]
slack: {api_url: "%s"}
"""


async def _replay_process(tmp_path: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.app.cli",
        "replay",
        str(tmp_path / "demo.jsonl"),
        "--config",
        str(tmp_path / "driftbot.yaml"),
        "--state",
        str(tmp_path / "state.sqlite"),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_replay_killed_with_sigkill_mid_delivery_then_rerun_delivers_each_once(
    tmp_path: Path,
) -> None:
    """The fake Slack runs here on real time (Slack's own pacing: a few seconds in all)."""
    (tmp_path / "demo.jsonl").write_bytes(b"".join(line + b"\n" for line in demo_lines()))
    env = {**os.environ, "SLACK_BOT_TOKEN": VALID_TOKEN, "PYTHONPATH": str(ROOT)}
    # 21 posts in all; the first ~10 go out at once (Slack's bursts). Killing later than that
    # kills the delivery, not the replay itself, which has long queued everything by then.
    kill_at = random.Random(0).randrange(12, 18)
    async with CrashingSlack() as slack:
        (tmp_path / "driftbot.yaml").write_text(KILL_CONFIG % slack.url)
        first = await _replay_process(tmp_path, env)
        slack.crash_after = kill_at
        slack.refuse_after_crash = True
        slack.crash = lambda: first.kill()  # SIGKILL, before the answer leaves the fake
        await asyncio.wait_for(first.wait(), 40)
        assert first.returncode == -signal.SIGKILL
        assert slack.accepted == kill_at

        with sqlite3.connect(tmp_path / "state.sqlite") as conn:
            (left,) = conn.execute(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"
            ).fetchone()
        conn.close()
        assert left > 0

        slack.crash_after = None
        second = await _replay_process(tmp_path, env)
        _, err = await asyncio.wait_for(second.communicate(), 40)
        assert second.returncode == 0, err.decode()

    ok_posts = [c for c in slack.calls_to("chat.postMessage") if c.ok]
    counted = Counter(
        (c.params["channel"], c.params["metadata"]["event_payload"]["notification"])
        for c in ok_posts
    )
    assert set(counted.values()) == {1}, counted
    assert slack.calls_to("conversations.history")  # the message in flight was looked for
    by_cluster = {n for (channel, n) in counted if channel in ("C0A", "C0B")}
    assert len(by_cluster) == len(EXPECTED_DEMO)
    assert any(channel == "C0C" for channel, _ in counted)
