"""The Slack receiver through the real slack_sdk client against the fake Slack Web API.

Notifications go through the outbox and the worker to the fake; time is virtual (one
VirtualClock for the fake, the rate limiter, the backoff and the outbox's timestamps).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app.replay import CliError, SlackOptions, build_receivers, replay_stream
from bot.delivery.receivers import Notification
from bot.delivery.slack_receiver import METADATA_EVENT_TYPE, SlackReceiver, plan_slack, read_payload
from bot.jobs.digest import deliver_digest
from bot.store.store import Store
from config.schema import Config, ServerConfig
from core.model import AppKey, EventKind, GitOpsEvent, Tool, bare_state, make_event
from formatters.digest import ClusterDigest, Digest
from formatters.group import EventGroup
from formatters.slack import ICON_GOOD, message_size
from tests import scenarios
from tests.bot.test_replay_cli import EXPECTED_DEMO
from tests.fakes.slack_api import (
    MAX_MESSAGE_BLOCKS,
    VALID_TOKEN,
    FakeSlackApi,
    VirtualClock,
    validate_blocks,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ENV = {"SLACK_BOT_TOKEN": VALID_TOKEN}


class HistoryFakeSlack(FakeSlackApi):
    """The fake Slack, plus message metadata kept on posts (and through edits that do not replace
    it) and conversations.history /
    conversations.replies answered from the channel's messages (as Slack does with
    include_all_metadata and the channels:history scope)."""

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method in ("conversations.history", "conversations.replies") and token in self.tokens:
            channel = str(params.get("channel"))
            messages = self.messages(channel)
            if method == "conversations.replies":
                parent = str(params.get("ts"))
                messages = [
                    m for m in messages if m["ts"] == parent or m.get("thread_ts") == parent
                ]
            else:
                messages = [m for m in messages if "thread_ts" not in m]
            limit = int(params.get("limit") or 100)
            newest_first = sorted(messages, key=lambda m: m["ts"], reverse=True)[:limit]
            return 200, {"ok": True, "messages": newest_first, "has_more": False}, {}
        before = None
        if method == "chat.update":
            before = self._messages.get(str(params.get("channel")), {}).get(str(params.get("ts")))
        status, body, headers = super()._answer(method, params, token)
        metadata = params.get("metadata") or (before or {}).get("metadata")
        if method in ("chat.postMessage", "chat.update") and body.get("ok") and metadata:
            self._messages[body["channel"]][body["ts"]]["metadata"] = metadata
        return status, body, headers


def datetime_clock(clock: VirtualClock) -> Any:
    return lambda: T0 + timedelta(seconds=clock())


def slack_options(clock: VirtualClock, close_timeout: float | None = 30.0) -> SlackOptions:
    return SlackOptions(
        clock=datetime_clock(clock),
        monotonic=clock,
        sleep=clock.sleep,
        close_timeout=close_timeout,
    )


def slack_config(url: str, channels: dict[str, str]) -> Config:
    """One Slack receiver per name -> channel; events of cluster `name` go to receiver `name`."""
    return Config.model_validate(
        {
            "receivers": [{"name": n, "slack": {"channel": c}} for n, c in channels.items()],
            "routes": [{"match": {"cluster": n}, "receivers": [n]} for n in channels],
            "slack": {"api_url": url},
        }
    )


def event(
    name: str,
    kind: EventKind = EventKind.DEPLOY_FAILED,
    *,
    cluster: str = "prod",
    minutes: float = 0,
    **fields: Any,
) -> GitOpsEvent:
    at = T0 + timedelta(minutes=minutes)
    state = bare_state(AppKey(Tool.ARGOCD, cluster, "shop", "Application", name), at)
    return make_event(kind, state, at, **fields)


def recovery_of(problem: GitOpsEvent, kind: EventKind, minutes: float) -> GitOpsEvent:
    found = event(problem.name, kind, cluster=problem.cluster, minutes=minutes)
    return dataclasses.replace(found, resolves=problem.id, since=problem.occurred_at)


@dataclasses.dataclass(frozen=True)
class _GroupNote:
    """A grouped notification, shaped as Notification is with `group` and `updates`."""

    event: GitOpsEvent
    receivers: tuple[str, ...]
    group: EventGroup
    updates: str = ""
    mention: tuple[str, ...] = ()
    original: GitOpsEvent | None = None


def group_note(group: EventGroup, receivers: tuple[str, ...], updates: str = "") -> Any:
    names = {f.name for f in dataclasses.fields(Notification)}
    if {"group", "updates"} <= names:
        return Notification(  # type: ignore[call-arg]
            group.events[0], receivers, group=group, updates=updates
        )
    return _GroupNote(group.events[0], receivers, group, updates)


def top_level(slack: FakeSlackApi, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if "thread_ts" not in m]


def notification_ids(slack: FakeSlackApi, channel: str) -> list[str]:
    return [
        m["metadata"]["event_payload"]["notification"]
        for m in slack.messages(channel)
        if "metadata" in m
    ]


def assert_within_limits(slack: FakeSlackApi) -> None:
    for call in slack.calls_to("chat.postMessage") + slack.calls_to("chat.update"):
        if call.ok:
            blocks = call.params.get("blocks")
            assert validate_blocks(blocks, MAX_MESSAGE_BLOCKS) == []
            assert message_size({"text": call.params["text"], "blocks": blocks}) <= 13_000


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=1000.0)


@pytest.fixture
async def slack(clock: VirtualClock) -> AsyncIterator[HistoryFakeSlack]:
    async with HistoryFakeSlack(clock=clock, missing_channels=("C0GONE",)) as fake:
        yield fake


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "state.sqlite") as opened:
        yield opened


def receiver_for(
    slack: FakeSlackApi, store: Store, clock: VirtualClock, channel: str = "C0PROD"
) -> SlackReceiver:
    config = slack_config(slack.url, {"prod": channel})
    built = build_receivers(config, None, store=store, environ=ENV, slack=slack_options(clock))
    receiver = built["prod"]
    assert isinstance(receiver, SlackReceiver)
    return receiver


# --- planning (pure) -----------------------------------------------------------------------


def test_plan_posts_a_new_event_updates_and_replies_for_a_recovery_and_updates_a_group() -> None:
    problem = event("checkout", EventKind.DRIFT_DETECTED)
    fixed = recovery_of(problem, EventKind.DRIFT_RESOLVED, 14)
    group = EventGroup.of([event("a"), event("b")])

    (post,) = plan_slack(Notification(problem, ("prod",)))
    update, reply = plan_slack(Notification(fixed, ("prod",), original=problem))
    (group_post,) = plan_slack(group_note(group, ("prod",)))
    (grown,) = plan_slack(group_note(group, ("prod",), updates=group.id))

    assert (post["op"], post["notification"], post["thread_of"]) == ("post", problem.id, problem.id)
    assert (update["op"], update["target"]) == ("update", problem.id)
    assert update["message"]["text"].startswith(
        "Resolved · checkout on prod matches Git again (after 14 min)"
    )
    assert (reply["op"], reply["notification"], reply["thread_of"]) == (
        "post",
        fixed.id,
        problem.id,
    )
    (bare,) = plan_slack(Notification(fixed, ("prod",)))
    assert (bare["op"], bare["thread_of"]) == ("post", problem.id)
    assert (group_post["op"], group_post["notification"]) == ("post", group.id)
    assert (grown["op"], grown["target"]) == ("update", group.id)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
PAYLOAD_KEYS = st.sampled_from(["op", "notification", "message", "thread_of", "target", "text"])


@given(
    st.one_of(
        JSON,
        st.dictionaries(PAYLOAD_KEYS, JSON | st.sampled_from(["post", "update"]), max_size=6),
    )
)
def test_any_stored_payload_is_read_or_refused_never_raises(payload: Any) -> None:
    planned = read_payload(payload)
    if planned is not None:
        assert planned.op in ("post", "update")
        assert isinstance(planned.message, dict) and isinstance(planned.ref, str)


def test_every_planned_payload_reads_back() -> None:
    problem = event("checkout", EventKind.DRIFT_DETECTED)
    fixed = recovery_of(problem, EventKind.DRIFT_RESOLVED, 3)
    notes = [
        Notification(problem, ("prod",), ("@here",)),
        Notification(fixed, ("prod",), original=problem),
        Notification(fixed, ("prod",)),
        group_note(EventGroup.of([problem]), ("prod",), updates=problem.id),
    ]
    for note in notes:
        for payload in plan_slack(note):
            assert read_payload(payload) is not None


# --- delivery ------------------------------------------------------------------------------


async def test_what_an_earlier_run_left_queued_goes_out_when_receivers_are_built(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock
) -> None:
    note = Notification(event("checkout"), ("prod",))
    await store.outbox_add_many("prod", plan_slack(note), T0)
    receiver = receiver_for(slack, store, clock)
    assert await receiver.drain(10)
    assert notification_ids(slack, "C0PROD") == [note.event.id]
    await receiver.close()


async def test_with_a_public_url_alerts_and_digests_link_to_the_status_page(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock
) -> None:
    config = slack_config(slack.url, {"prod": "C0PROD"}).model_copy(
        update={"server": ServerConfig(public_url="https://driftbot.example.com")}
    )
    built = build_receivers(config, None, store=store, environ=ENV, slack=slack_options(clock))
    receiver = built["prod"]
    assert isinstance(receiver, SlackReceiver)
    problem = event("checkout", EventKind.DRIFT_DETECTED)
    await receiver.deliver(Notification(problem, ("prod",)))
    digest = Digest("Morning", T0 - timedelta(days=1), T0, clusters=(ClusterDigest("prod"),))
    digest = dataclasses.replace(
        digest,
        clusters=(ClusterDigest("prod", deploys=(event("cart", EventKind.DEPLOY_SUCCEEDED),)),),
    )
    [outcome] = await deliver_digest(digest, ["prod"], built, T0)
    assert outcome.outcome == "ok"
    await receiver.close()

    alert, sent_digest = top_level(slack, "C0PROD")
    buttons = [e for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {"url": "https://driftbot.example.com/status/prod/shop/checkout"}.items() <= (
        next(b for b in buttons if b["action_id"] == "driftbot_open_page").items()
    )
    assert "<https://driftbot.example.com/status/prod|prod>" in str(sent_digest["blocks"])


async def test_a_recovery_edits_the_original_in_place_and_replies_in_its_thread(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(slack, store, clock)
    problem = event("checkout", EventKind.DRIFT_DETECTED)
    fixed = recovery_of(problem, EventKind.DRIFT_RESOLVED, 14)

    await receiver.deliver(Notification(problem, ("prod",)))
    await receiver.deliver(Notification(fixed, ("prod",), original=problem))
    await receiver.close()

    (original,) = top_level(slack, "C0PROD")
    assert original["text"].startswith(
        "Resolved · checkout on prod matches Git again (after 14 min)"
    )
    assert ICON_GOOD in original["blocks"][0]["text"]["text"]
    assert "edited" in original
    replies = [m for m in slack.messages("C0PROD") if m.get("thread_ts") == original["ts"]]
    assert len(replies) == 1 and "checkout" in replies[0]["text"]
    assert len(slack.calls_to("chat.update")) == 1
    landed = await store.sent_message(problem.id, "prod")
    assert landed is not None and landed.ts == original["ts"]
    assert await store.outbox_queue("prod") == []


async def test_the_receivers_of_a_workspace_share_one_kept_alive_connection(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock
) -> None:
    config = slack_config(slack.url, {"prod": "C0PROD", "staging": "C0STAGE"})
    built = build_receivers(config, None, store=store, environ=ENV, slack=slack_options(clock))
    prod, staging = built["prod"], built["staging"]
    assert isinstance(prod, SlackReceiver) and isinstance(staging, SlackReceiver)
    problem = event("checkout", EventKind.DRIFT_DETECTED)
    await prod.deliver(Notification(problem, ("prod",)))
    await staging.deliver(Notification(event("web", EventKind.DEPLOY_FAILED), ("staging",)))
    await prod.deliver(
        Notification(recovery_of(problem, EventKind.DRIFT_RESOLVED, 3), ("prod",), original=problem)
    )
    await prod.drain()
    await staging.drain()
    posts = slack.calls_to("chat.postMessage") + slack.calls_to("chat.update")
    assert len(posts) == 4
    assert len({call.peer for call in slack.calls}) == 1  # one connection, kept alive
    await prod.close()
    assert not prod.sender._session.closed  # type: ignore[union-attr]  # staging still uses it
    await staging.close()
    assert prod.sender._session is None


async def test_threads_and_updates_survive_a_restart(
    slack: HistoryFakeSlack, tmp_path: Path, clock: VirtualClock
) -> None:
    problem = event("checkout", EventKind.HEALTH_DEGRADED)
    fixed = recovery_of(problem, EventKind.HEALTH_RECOVERED, 30)
    async with await Store.open(tmp_path / "s.sqlite") as first:
        receiver = receiver_for(slack, first, clock)
        await receiver.deliver(Notification(problem, ("prod",)))
        await receiver.close()
    async with await Store.open(tmp_path / "s.sqlite") as second:
        receiver = receiver_for(slack, second, clock)
        await receiver.deliver(Notification(problem, ("prod",)))  # a reminder
        await receiver.deliver(Notification(fixed, ("prod",), original=problem))
        await receiver.close()

    (original,) = top_level(slack, "C0PROD")
    assert original["text"].startswith(
        "Resolved · checkout on prod is healthy again (after 30 min)"
    )
    thread = [m for m in slack.messages("C0PROD") if m.get("thread_ts") == original["ts"]]
    assert len(thread) == 2  # the reminder and the recovery, both in the thread


async def test_a_group_that_grew_is_updated_in_place(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(slack, store, clock)
    first = [event(f"app-{i}", EventKind.DRIFT_DETECTED) for i in range(3)]
    grown = [*first, *(event(f"app-{i}", EventKind.DRIFT_DETECTED) for i in range(3, 7))]
    group = EventGroup.of(first)
    bigger = EventGroup.of(grown, id=group.id)

    await receiver.deliver(group_note(group, ("prod",)))
    await receiver.deliver(group_note(bigger, ("prod",), updates=group.id))
    await receiver.close()

    (message,) = slack.messages("C0PROD")
    assert "7" in message["text"] and "edited" in message
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_mentions_in_a_commit_message_reach_slack_harmless(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(slack, store, clock)
    hostile = event(
        "checkout",
        EventKind.DEPLOY_FAILED,
        message="sync failed: <!channel> ping <@U123> & <https://evil.example|click>",
    )
    hostile = dataclasses.replace(hostile, commit_subject="fix: <!channel> wake up <@U123>")

    await receiver.deliver(Notification(hostile, ("prod",)))
    await receiver.close()

    (call,) = [c for c in slack.calls_to("chat.postMessage") if c.ok]
    sent = repr(call.params["blocks"]) + call.params["text"]
    assert "<!channel>" not in sent and "<@U123>" not in sent and "<https://evil" not in sent
    assert "&lt;!channel&gt;" in sent and "&lt;@U123&gt;" in sent
    assert "&amp;" in sent
    (stored,) = slack.messages("C0PROD")
    assert "<!channel>" not in repr(stored["blocks"]) + stored["text"]


async def test_a_fatal_error_is_marked_failed_counted_and_logged_once(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = receiver_for(slack, store, clock, channel="C0GONE")
    for i in range(3):
        await receiver.deliver(Notification(event(f"app-{i}"), ("prod",)))
    await receiver.close()

    failed = await store.outbox_failed("prod")
    assert [f.last_error for f in failed] == ["channel_not_found"] * 3
    assert receiver.worker.stats.failed == 3
    assert receiver.worker.stats.failed_by_error["channel_not_found"] == 3
    assert await store.outbox_queue("prod") == []
    logged = [r for r in caplog.records if "channel_not_found" in r.getMessage()]
    assert len(logged) == 1 and "prod" in logged[0].getMessage()


async def test_a_message_within_every_limit_for_a_huge_event(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(slack, store, clock)
    await receiver.deliver(Notification(event("x" * 300, message="y" * 50_000), ("prod",)))
    await receiver.close()
    assert len(slack.messages("C0PROD")) == 1
    assert_within_limits(slack)


async def test_without_a_token_slack_receivers_are_a_clear_error(
    slack: HistoryFakeSlack, store: Store
) -> None:
    config = slack_config(slack.url, {"prod": "C0PROD"})
    with pytest.raises(CliError, match="SLACK_BOT_TOKEN"):
        build_receivers(config, None, store=store, environ={})


async def test_without_a_store_slack_receivers_are_skipped_with_a_warning(
    slack: HistoryFakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    config = slack_config(slack.url, {"prod": "C0PROD"})
    assert build_receivers(config, None, environ=ENV) == {}
    assert "cannot be delivered" in caplog.text


# --- replay to Slack, end to end ------------------------------------------------------------


async def test_replay_with_a_config_delivers_to_its_slack_receivers(
    slack: HistoryFakeSlack, clock: VirtualClock, tmp_path: Path
) -> None:
    config = Config.model_validate(
        {
            "receivers": [{"name": "test-channel", "slack": {"channel": "C0TEST"}}],
            "routes": [{"receivers": ["test-channel"]}],
            "slack": {"api_url": slack.url},
        }
    )

    summary = await replay_stream(
        scenarios.demo_lines(),
        "demo.jsonl",
        config,
        tmp_path / "state.sqlite",
        None,
        environ=ENV,
        slack=slack_options(clock),
    )

    assert summary.sent == len(EXPECTED_DEMO)
    recoveries = [row for row in EXPECTED_DEMO if row[2]]
    # The rollback of payments while it is unhealthy is told in the unhealthy alert's thread.
    threaded = [("rollback_succeeded", "payments", "")]
    posts = top_level(slack, "C0TEST")
    replies = [m for m in slack.messages("C0TEST") if "thread_ts" in m]
    assert len(posts) == len(EXPECTED_DEMO) - len(recoveries) - len(threaded)
    assert len(replies) == len(recoveries) + len(threaded)
    [unhealthy] = [m for m in posts if "payments on prod" in m["text"] and "health" in m["text"]]
    rollback = [r for r in replies if "rolled back" in r["text"] and "payments" in r["text"]]
    assert [r["thread_ts"] for r in rollback] == [unhealthy["ts"]]
    assert len([c for c in slack.calls_to("chat.update") if c.ok]) == len(recoveries)
    checkout = [m for m in posts if "checkout" in m["text"]]
    assert len(checkout) == 1 and checkout[0]["text"].startswith("Resolved")
    assert any(r["thread_ts"] == checkout[0]["ts"] for r in replies)
    assert len(set(notification_ids(slack, "C0TEST"))) == len(EXPECTED_DEMO)
    assert_within_limits(slack)

    again = await replay_stream(
        scenarios.demo_lines(),
        "demo.jsonl",
        config,
        tmp_path / "state.sqlite",
        None,
        environ=ENV,
        slack=slack_options(clock),
    )
    assert again.sent == 0
    assert len(slack.messages("C0TEST")) == len(EXPECTED_DEMO)


async def test_a_storm_over_three_channels_arrives_whole_and_in_order(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock
) -> None:
    slack.channel_rate = (1.0, 1)  # stricter than the sender's pacing: 429s will come
    channels = {"alpha": "C0A", "beta": "C0B", "gamma": "C0C"}
    config = slack_config(slack.url, channels)
    receivers = build_receivers(config, None, store=store, environ=ENV, slack=slack_options(clock))
    names = list(channels)
    sent: dict[str, list[str]] = {n: [] for n in names}
    for i in range(60):
        name = names[i % 3]
        note = Notification(event(f"app-{i}", cluster=name, minutes=i), (name,))
        sent[name].append(note.event.id)
        await receivers[name].deliver(note)
    await asyncio.gather(*(r.close() for r in receivers.values()))

    assert slack.rate_limited > 0
    for name, channel in channels.items():
        assert notification_ids(slack, channel) == sent[name]
    for channel in channels.values():
        calls = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == channel]
        for limited, following in itertools.pairwise(calls):
            if limited.status == 429:
                assert following.at >= limited.at + (limited.retry_after or 0)
    assert_within_limits(slack)
    for name in names:
        assert await store.outbox_queue(name) == []


async def test_metadata_names_the_outbox_item(
    slack: HistoryFakeSlack, store: Store, clock: VirtualClock
) -> None:
    receiver = receiver_for(slack, store, clock)
    problem = event("checkout")
    await receiver.deliver(Notification(problem, ("prod",)))
    await receiver.close()
    (message,) = slack.messages("C0PROD")
    assert message["metadata"]["event_type"] == METADATA_EVENT_TYPE
    assert message["metadata"]["event_payload"]["receiver"] == "prod"
    assert message["metadata"]["event_payload"]["notification"] == problem.id
