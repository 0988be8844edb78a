"""A storm of events to three Slack channels: is anything lost, and how close to the limit?

500 events (grouping off: one message each) are delivered to three Slack receivers, through the
outbox, the workers and the rate-limited sender, to the fake Slack Web API over HTTP. Slack's
per-channel limit is made stricter than driftbot's own pacing, so 429s do happen and must be
waited out. Time is virtual (one clock for the fake and driftbot).

Prints: messages accepted, lost and duplicated, 429s and whether each was honoured, whether every
message was within Block Kit's limits, and the ratio of the storm's (virtual) duration to the
shortest the fake's rate limits allow. Run: python3 tasks.py bench bench/slack_storm.py
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app.replay import SlackOptions, build_receivers
from bot.delivery.receivers import Notification
from bot.store.store import Store
from config.schema import Config
from core.model import AppKey, EventKind, Tool, bare_state, make_event
from formatters.slack import message_size
from tests.fakes.slack_api import (
    MAX_MESSAGE_BLOCKS,
    VALID_TOKEN,
    FakeSlackApi,
    VirtualClock,
    validate_blocks,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CHANNELS = {"alpha": "C0ALPHA", "beta": "C0BETA", "gamma": "C0GAMMA"}
KINDS = (EventKind.DRIFT_DETECTED, EventKind.DEPLOY_FAILED, EventKind.HEALTH_DEGRADED)


def storm(count: int) -> list[Notification]:
    """`count` distinct problems, round-robin over the receivers, a second apart."""
    names = list(CHANNELS)
    notes = []
    for i in range(count):
        name = names[i % len(names)]
        at = T0 + timedelta(seconds=i)
        key = AppKey(Tool.ARGOCD, name, f"team-{i % 7}", "Application", f"app-{i:04d}")
        event = make_event(
            KINDS[i % len(KINDS)],
            bare_state(key, at),
            at,
            revision=f"{i:07x}",
            message=f"storm message {i}: ComparisonError <!channel> & friends",
        )
        notes.append(Notification(event, (name,)))
    return notes


def shortest(per_channel: Counter[str], slack: FakeSlackApi) -> float:
    """The least time the fake's limits allow for these messages (each bucket starts full)."""
    rate, burst = slack.channel_rate
    ws_rate, ws_burst = slack.workspace_rate
    channel_bound = max(max(0, n - burst) / rate for n in per_channel.values())
    workspace_bound = max(0, sum(per_channel.values()) - ws_burst) / ws_rate
    return max(channel_bound, workspace_bound)


def retry_after_honoured(slack: FakeSlackApi) -> bool:
    for channel in CHANNELS.values():
        calls = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == channel]
        for limited, following in itertools.pairwise(calls):
            if limited.status == 429 and following.at < limited.at + (limited.retry_after or 0):
                return False
    return True


def within_limits(slack: FakeSlackApi) -> bool:
    for call in slack.calls_to("chat.postMessage"):
        blocks = call.params.get("blocks")
        if validate_blocks(blocks, MAX_MESSAGE_BLOCKS):
            return False
        if message_size({"text": call.params.get("text", ""), "blocks": blocks}) > 13_000:
            return False
        if call.status == 200 and not call.ok:
            return False
    return True


async def run(count: int, channel_burst: int) -> int:
    clock = VirtualClock(start=1000.0)
    options = SlackOptions(
        clock=lambda: T0 + timedelta(seconds=clock()),
        monotonic=clock,
        sleep=clock.sleep,
        close_timeout=None,
    )
    notes = storm(count)
    async with FakeSlackApi(clock=clock, channel_rate=(1.0, channel_burst)) as slack:
        config = Config.model_validate(
            {
                "receivers": [{"name": n, "slack": {"channel": c}} for n, c in CHANNELS.items()],
                "routes": [{"match": {"cluster": n}, "receivers": [n]} for n in CHANNELS],
                "slack": {"api_url": slack.url},
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            async with await Store.open(Path(tmp) / "state.sqlite") as store:
                receivers = build_receivers(
                    config,
                    None,
                    store=store,
                    environ={"SLACK_BOT_TOKEN": VALID_TOKEN},
                    slack=options,
                )
                started_real = time.perf_counter()
                started = clock()
                for note in notes:
                    await receivers[note.receivers[0]].deliver(note)
                await asyncio.gather(*(r.close() for r in receivers.values()))
                real = time.perf_counter() - started_real
                pending = sum([len(await store.outbox_queue(n)) for n in CHANNELS])

        accepted = [c for c in slack.calls_to("chat.postMessage") if c.ok]
        texts = Counter(c.params["text"] for c in accepted)
        wanted = Counter(n.event.id for n in notes)
        sent_ids = Counter(c.params["metadata"]["event_payload"]["notification"] for c in accepted)
        lost = sum((wanted - sent_ids).values())
        duplicated = sum((sent_ids - wanted).values())
        per_channel = Counter(c.params["channel"] for c in accepted)
        took = max(c.at for c in accepted) - started
        best = shortest(per_channel, slack)
        ratio = took / best if best else float("nan")
        honoured = retry_after_honoured(slack)
        limits = within_limits(slack)

    print(f"events: {count} over {len(CHANNELS)} channels (grouping off)")
    print(f"accepted by Slack: {len(accepted)}  distinct texts: {len(texts)}")
    print(f"lost: {lost}  duplicated: {duplicated}  left in the outbox: {pending}")
    print(f"HTTP 429s: {slack.rate_limited}  every Retry-After honoured: {honoured}")
    print(f"every message within Block Kit limits: {limits}")
    print(f"virtual time: {took:.1f} s  shortest the limits allow: {best:.1f} s")
    print(f"ratio (virtual time / shortest allowed): {ratio:.3f}")
    print(f"real time: {real:.1f} s")
    ok = lost == 0 and duplicated == 0 and pending == 0 and honoured and limits and ratio <= 1.2
    print("OK" if ok else "FAILED: see above")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument(
        "--channel-burst",
        type=int,
        default=1,
        help="the fake's per-channel burst (driftbot paces for 3: lower provokes 429s)",
    )
    args = parser.parse_args()
    return asyncio.run(run(args.events, args.channel_burst))


if __name__ == "__main__":
    sys.exit(main())
