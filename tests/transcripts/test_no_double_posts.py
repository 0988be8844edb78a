"""A notification reaches a channel once, whatever the story and whatever the routes.

Generated stories (a few Argo CD apps moving between synced, drifted, unhealthy, failed and
deployed states at generated times) go through the pipeline with generated route sets
(overlapping matches, `continue`, several routes naming one receiver, mentions, graces and
group waits of their own). Each receiver records what its real plan (`plan_slack`,
`plan_teams`) would send: no notification id may be posted twice to one Slack channel, no card
twice to one Teams webhook, and news about one app must be told in the order it happened.

One more run goes through real processes: `driftbot replay` of the demo to the fake Slack and
the fake Teams webhook, killed with SIGKILL in the middle of a card and run again on the same
state: still every notification once in the channel, every card once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app.replay import replay_lines
from bot.delivery.receivers import Notification
from bot.delivery.slack_receiver import plan_slack
from bot.delivery.teams_receiver import plan_teams
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.schema import Config
from core.model import PROBLEM_KINDS, AppKey
from tests import builders_argocd as argo
from tests import scenarios
from tests.bot.test_slack_receiver import HistoryFakeSlack
from tests.fakes.slack_api import VALID_TOKEN
from tests.fakes.teams_webhook import FakeTeamsWebhook
from tests.scenarios import Stream, _argo, _argo_time, _history, _op

ROOT = Path(__file__).resolve().parents[2]
APPS = ("cart", "search", "users")
RECEIVERS = {"chan": "slack", "side": "slack", "cards": "teams"}

# --- generated stories --------------------------------------------------------------------------

HIST = _history((1, argo.REV_OLD, -120, ""), (2, argo.REV_A, -60, ""))
DEPLOYED_A = _op("Succeeded", argo.REV_A, -61, -60)


def _app_in(name: str, state: str, minutes: float) -> dict[str, Any]:
    """One Application in one of a few states a day brings, reconciled at `minutes`."""
    at = _argo_time(minutes)
    common: dict[str, Any] = {"auto_sync": False, "reconciled_at": at}
    if state == "synced":
        return _argo(name, history=HIST, operation=DEPLOYED_A, **common)
    if state == "drifted":
        out = [("Deployment", "shop", name)]
        return _argo(
            name, sync="OutOfSync", history=HIST, operation=DEPLOYED_A, out_of_sync=out, **common
        )
    if state == "unhealthy":
        return _argo(name, history=HIST, operation=DEPLOYED_A, health="Degraded", **common)
    if state == "deploying":
        running = _op("Running", argo.REV_B, minutes, user="carol@example.com")
        return _argo(
            name, sync="OutOfSync", desired=argo.REV_B, history=HIST, operation=running, **common
        )
    if state == "failed":
        failed = _op(
            "Failed",
            argo.REV_B,
            minutes - 0.1,
            minutes,
            user="carol@example.com",
            message="one or more objects failed to apply",
        )
        return _argo(
            name, sync="OutOfSync", desired=argo.REV_B, history=HIST, operation=failed, **common
        )
    assert state == "deployed"
    done = _op("Succeeded", argo.REV_B, minutes - 0.1, minutes, user="carol@example.com")
    deployed = [*HIST, *_history((3, argo.REV_B, minutes, "carol@example.com"))]
    return _argo(name, desired=argo.REV_B, history=deployed, operation=done, **common)


STATES = ("synced", "drifted", "unhealthy", "deploying", "failed", "deployed")


@st.composite
def stories(draw: st.DrawFn) -> list[bytes]:
    s = Stream()
    for name in APPS:
        s.add(0, "prod", _app_in(name, "synced", 0), "ADDED")
    minutes = 0.0
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(APPS), st.sampled_from(STATES), st.sampled_from((0.1, 0.5, 2, 7))
            ),
            min_size=1,
            max_size=14,
        )
    )
    for name, state, gap in steps:
        minutes += gap
        s.add(minutes, "prod", _app_in(name, state, minutes))
    return s.render()


@st.composite
def route_sets(draw: st.DrawFn) -> dict[str, Any]:
    names = list(RECEIVERS)
    matches = st.sampled_from(
        [
            None,
            {"min_severity": "critical"},
            {"min_severity": "warning"},
            {"kinds": ["drift_detected", "drift_resolved"]},
            {"kinds": ["deploy_failed", "deploy_succeeded", "health_degraded"]},
            {"name": "cart"},
        ]
    )
    durations = st.sampled_from(["0s", "30s", "60s", "3m"])
    route = st.fixed_dictionaries(
        {
            "match": matches,
            "receivers": st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True),
            "continue": st.booleans(),
        },
        optional={
            "mention": st.sampled_from([["S0ONCALL"], ["@here"], ["U0ALICE", "S0ONCALL"]]),
            "grace": durations,
            "group_wait": durations,
            "group_by": st.sampled_from([["cluster"], ["cluster", "kind"], ["name"]]),
        },
    )
    routes = draw(st.lists(route, min_size=1, max_size=4))
    for r in routes:
        if r["match"] is None:
            del r["match"]
    return {
        "receivers": [
            {"name": "chan", "slack": {"channel": "C0CHAN"}},
            {"name": "side", "slack": {"channel": "C0SIDE"}},
            {"name": "cards", "console": {"format": "jsonl"}},
        ],
        "routes": routes,
    }


class PlanRecorder:
    """A receiver that records what the real Slack or Teams plan of each notification posts."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.posts: list[str] = []
        self.told: list[Notification] = []

    async def deliver(self, note: Notification) -> None:
        planned = plan_slack(note) if self.kind == "slack" else plan_teams(note)
        self.posts.extend(p["notification"] for p in planned if p["op"] == "post")
        self.told.append(note)

    async def close(self) -> None:
        return None


async def _run(lines: list[bytes], config: Config, state: Path) -> dict[str, PlanRecorder]:
    recorders = {name: PlanRecorder(name, kind) for name, kind in RECEIVERS.items()}
    store = await Store.open(state)
    try:
        pipeline = Pipeline(store, config, recorders)
        await pipeline.load()
        await replay_lines(lines, "story", pipeline)
        await pipeline.close()
    finally:
        await store.close()
    return recorders


def _news_order(told: list[Notification]) -> Iterator[tuple[AppKey, datetime, datetime]]:
    """(app, earlier news, later news) for news about one app told out of order."""
    last: dict[AppKey, datetime] = {}
    for note in told:
        if note.group is not None or note.reminds or note.event.kind in PROBLEM_KINDS:
            continue
        key, at = note.event.key, note.event.occurred_at
        if key in last and at < last[key]:
            yield key, last[key], at
        last[key] = max(at, last.get(key, at))


@pytest.mark.timeout(600)
@settings(
    max_examples=int(os.environ.get("DRIFTBOT_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(stories(), route_sets())
def test_no_notification_reaches_a_channel_twice(
    lines: list[bytes], routes: dict[str, Any]
) -> None:
    config = Config.model_validate(routes)
    with tempfile.TemporaryDirectory() as tmp:
        recorders = asyncio.run(_run(lines, config, Path(tmp) / "state.sqlite"))
        again = asyncio.run(_run(lines, config, Path(tmp) / "state.sqlite"))
    for name, recorder in recorders.items():
        twice = [i for i, n in Counter(recorder.posts).items() if n > 1]
        assert not twice, f"{name} ({recorder.kind}) got {twice} more than once"
        out_of_order = list(_news_order(recorder.told))
        assert not out_of_order, f"{name}: news told out of order: {out_of_order}"
    assert all(not r.posts for r in again.values()), "a second replay on the same state posts"


def test_a_flap_that_settles_on_a_problem_is_told_in_the_first_replay_not_the_second() -> None:
    """Found by the property above: a flapping app that settles drifted at the end of a stream
    had its drift held again by the settling, left held, and announced by the next replay."""
    s = Stream()
    s.add(0, "prod", _app_in("search", "synced", 0), "ADDED")
    for minutes, state in ((0.1, "drifted"), (0.2, "unhealthy"), (0.3, "drifted")):
        s.add(minutes, "prod", _app_in("search", state, minutes))
    config = Config.model_validate(
        {
            "receivers": [{"name": "chan", "slack": {"channel": "C0CHAN"}}],
            "routes": [{"receivers": ["chan"]}],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        first = asyncio.run(_run(s.render(), config, Path(tmp) / "state.sqlite"))
        again = asyncio.run(_run(s.render(), config, Path(tmp) / "state.sqlite"))
    assert [n.event.kind.value for n in first["chan"].told] == ["flapping", "drift_detected"]
    assert again["chan"].told == []


def test_overlapping_routes_give_a_receiver_one_message_with_every_mention() -> None:
    s = Stream()
    s.add(0, "prod", _app_in("cart", "synced", 0), "ADDED")
    s.add(1, "prod", _app_in("cart", "failed", 1))
    s.add(5, "prod", _app_in("cart", "deployed", 5))
    config = Config.model_validate(
        {
            "receivers": [
                {"name": "chan", "slack": {"channel": "C0CHAN"}},
                {"name": "cards", "console": {}},
            ],
            "routes": [
                {
                    "match": {"min_severity": "critical"},
                    "receivers": ["chan"],
                    "mention": ["S0ONCALL"],
                    "continue": True,
                },
                {"receivers": ["chan", "cards"], "mention": ["U0ALICE", "S0ONCALL"]},
            ],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        told = asyncio.run(_run(s.render(), config, Path(tmp) / "state.sqlite"))
    chan = [(n.event.kind.value, n.mention, n.receivers) for n in told["chan"].told]
    assert chan == [
        ("deploy_failed", ("S0ONCALL", "U0ALICE"), ("chan",)),
        ("deploy_succeeded", ("U0ALICE", "S0ONCALL"), ("chan", "cards")),
    ]
    assert told["chan"].posts == [n.event.id for n in told["chan"].told]
    cards = [(n.event.kind.value, n.mention) for n in told["cards"].told]
    assert cards == [
        ("deploy_failed", ("U0ALICE", "S0ONCALL")),
        ("deploy_succeeded", ("U0ALICE", "S0ONCALL")),
    ]


def test_a_deploy_started_is_never_told_after_the_deploy_succeeded_of_its_sync() -> None:
    """As seen on a live cluster: with the default grouping (by kind; group_wait 30s,
    group_interval 5m), a second app's deploy_started joined the deploys-started group that had
    just been sent, so it waited out the interval, while its deploy_succeeded began a new group
    and went out after 30 s. The policy now sends the waiting group first."""
    s = Stream()
    for name in ("cart", "search"):
        s.add(0, "prod", _app_in(name, "synced", 0), "ADDED")
    s.add(1, "prod", _app_in("cart", "deploying", 1))
    s.add(2, "prod", _app_in("search", "deploying", 2))
    s.add(2.5, "prod", _app_in("search", "deployed", 2.5))
    config = Config.model_validate(
        {
            "receivers": [{"name": "chan", "slack": {"channel": "C0CHAN"}}],
            "routes": [{"receivers": ["chan"]}],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        told = asyncio.run(_run(s.render(), config, Path(tmp) / "state.sqlite"))["chan"].told
    search = [
        kind
        for note in told
        for kind in (
            [e.kind.value for e in note.group.events if e.name == "search"]
            if note.group is not None
            else [note.event.kind.value]
            if note.event.name == "search"
            else []
        )
    ]
    assert search[:2] == ["deploy_started", "deploy_succeeded"], search


# --- one run with a SIGKILL and a restart --------------------------------------------------------

KILL_AT_CARD = 5


def _replay_config(slack_url: str, path: Path) -> None:
    path.write_text(
        json.dumps(
            {
                "receivers": [
                    {"name": "chan", "slack": {"channel": "C0CHAN"}},
                    {"name": "cards", "teams": {"webhook_env": "TEAMS_CARDS"}},
                ],
                "routes": [
                    {
                        "match": {"min_severity": "critical"},
                        "receivers": ["chan", "cards"],
                        "mention": ["S0ONCALL"],
                        "continue": True,
                    },
                    {"receivers": ["chan", "cards"]},
                ],
                "slack": {"api_url": slack_url},
            }
        )
    )


async def _replay_process(
    stream: Path, config: Path, state: Path, env: dict[str, str]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.app.cli",
        "replay",
        str(stream),
        "--config",
        str(config),
        "--state",
        str(state),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.timeout(300)
async def test_a_replay_killed_in_the_middle_and_run_again_posts_everything_once(
    tmp_path: Path,
) -> None:
    stream = tmp_path / "demo.jsonl"
    stream.write_bytes(b"".join(line + b"\n" for line in scenarios.demo_lines()))
    config, state = tmp_path / "routes.json", tmp_path / "state.sqlite"
    killed: list[int] = []
    running: list[asyncio.subprocess.Process] = []

    fast = (1000.0, 1000)
    teams = FakeTeamsWebhook(rate=None)
    accept = teams._handle

    async def kill_on_a_card(request: web.Request) -> web.StreamResponse:
        """The KILL_AT_CARD-th card: the process is killed while it waits for the answer,
        and the card is not accepted (it was in flight)."""
        if not killed and len(teams.accepted) + 1 == KILL_AT_CARD:
            process = running[-1]
            process.send_signal(signal.SIGKILL)
            killed.append(process.pid)
            return web.Response(status=503)
        return await accept(request)

    teams._handle = kill_on_a_card  # type: ignore[method-assign]
    slack = HistoryFakeSlack(channel_rate=fast, workspace_rate=fast, update_rate=fast)
    async with slack, teams:
        _replay_config(slack.url, config)
        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")},
            "SLACK_BOT_TOKEN": VALID_TOKEN,
            "TEAMS_CARDS": teams.url,
        }
        running.append(await _replay_process(stream, config, state, env))
        _, first_err = await asyncio.wait_for(running[-1].communicate(), 120)
        assert killed and running[-1].returncode == -signal.SIGKILL, first_err.decode()[-2000:]
        posted_before = len(slack.posted_notifications("C0CHAN"))

        running.append(await _replay_process(stream, config, state, env))
        _, second_err = await asyncio.wait_for(running[-1].communicate(), 120)
        assert running[-1].returncode == 0, second_err.decode()[-2000:]

    posted = slack.posted_notifications("C0CHAN")
    assert posted_before < len(posted), "the restart sent what the kill left"
    assert [i for i, n in Counter(posted).items() if n > 1] == []
    cards = [json.dumps(card, sort_keys=True) for card in teams.accepted]
    assert len(cards) > KILL_AT_CARD
    assert [c[:120] for c, n in Counter(cards).items() if n > 1] == []
