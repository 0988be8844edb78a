"""A drift storm over five Slack channels: how soon does every channel have its one message?

Run: python3 tasks.py bench bench/storm_channels.py [--apps 1000] [--over 5] [--group-wait 30]

The fake Kubernetes API server and the fake Slack Web API (the tests' fakes; Slack's limits
enforced with 429 and Retry-After: one message a second per channel with a burst of 3, 20 a
second for the workspace) run in this process; the service runs in a child process
(bench/_service_proc.py: `open_service`, as `driftbot run` does) with five Slack receivers,
one per namespace (team-0 … team-4), the default grouping (cluster and kind), grace 0 and
`--group-wait` seconds (the default policy's 30 s: longer than the storm, even when a busy machine
stretches it, so each channel's group holds all of it).

`--apps` Argo CD Applications of production size are listed first; then every one of them is
made OutOfSync, evenly spread over `--over` seconds. Printed: the time from the first change
until every channel has a message naming all its apps (the group headline's count), with
the part of it that is group_wait; messages posted and edited per channel; 429s.

Baseline, in the same run: the time a fresh fake Slack needs to accept the same messages
(same channels, texts and blocks) posted directly with slack_sdk's AsyncWebClient, retrying
429s after Retry-After as slack_sdk's own rate-limit handler does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk.http_retry.builtin_async_handlers import (  # noqa: E402
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from bench._kube_fake import fast_copies  # noqa: E402
from bench._service_proc import ServiceProcess  # noqa: E402
from bench.common import _grow  # noqa: E402
from tests.builders_argocd import argocd_app  # noqa: E402
from tests.fakes.kube_api import FakeKubeAPI  # noqa: E402
from tests.fakes.slack_api import VALID_TOKEN, Call, FakeSlackApi  # noqa: E402

TEAMS = 5
COUNT = re.compile(r"(\d+) apps")


def channel_of(team: int) -> str:
    return f"C0TEAM{team}"


def service_config(kubeconfig: Path, slack_url: str, group_wait: float) -> dict[str, Any]:
    return {
        "clusters": [{"name": "bench", "kubeconfig": str(kubeconfig)}],
        "receivers": [
            {"name": f"team-{t}", "slack": {"channel": channel_of(t)}} for t in range(TEAMS)
        ],
        "routes": [
            {"match": {"namespace": f"team-{t}"}, "receivers": [f"team-{t}"]} for t in range(TEAMS)
        ],
        "policy": {"grace": "0s", "group_wait": f"{group_wait:g}s"},
        "slack": {"api_url": slack_url},
    }


def states(team: int) -> tuple[str, str]:
    """(synced, out of sync) Applications of `team`'s namespace, named PLACEHOLDER."""
    ns = f"team-{team}"
    synced = _grow(argocd_app("PLACEHOLDER"))
    drifted = _grow(
        argocd_app("PLACEHOLDER", sync="OutOfSync", out_of_sync=[("Deployment", ns, "PLACEHOLDER")])
    )
    for obj in (synced, drifted):
        obj["metadata"]["namespace"] = ns
    return json.dumps(synced), json.dumps(drifted)


def counted(call: Call) -> int:
    """How many apps the message of an accepted post or edit names in its headline."""
    match = COUNT.search(str(call.params.get("text", "")))
    return int(match.group(1)) if match else 1


async def direct(posts: list[Call]) -> tuple[float, int]:
    """Post the same messages straight to a fresh fake with slack_sdk: seconds, 429s."""
    async with FakeSlackApi() as slack:
        client = AsyncWebClient(
            token=VALID_TOKEN,
            base_url=slack.url,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=100)],
        )
        by_channel: dict[str, list[Call]] = {}
        for call in posts:
            by_channel.setdefault(str(call.params["channel"]), []).append(call)

        async def send(calls: list[Call]) -> None:
            for call in calls:
                params = {k: call.params[k] for k in ("channel", "text") if k in call.params}
                blocks = call.params.get("blocks")
                if isinstance(blocks, str):
                    blocks = json.loads(blocks)
                await client.chat_postMessage(**params, blocks=blocks)

        started = time.monotonic()
        await asyncio.gather(*(send(calls) for calls in by_channel.values()))
        seconds = time.monotonic() - started
        return seconds, slack.rate_limited


async def run(apps: int, over: float, group_wait: float) -> None:
    fast_copies()
    templates = [states(t) for t in range(TEAMS)]
    names = [(f"app-{i:05d}", i % TEAMS) for i in range(apps)]
    per_team = Counter(team for _, team in names)
    async with FakeKubeAPI() as api, FakeSlackApi() as slack:
        api.install_crd("argoproj.io", "applications", kind="Application")
        for name, team in names:
            api.put(json.loads(templates[team][0].replace("PLACEHOLDER", name)))
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = api.write_kubeconfig(Path(tmp) / "kubeconfig")
            service = ServiceProcess(
                service_config(kubeconfig, slack.url, group_wait),
                Path(tmp),
                {"SLACK_BOT_TOKEN": VALID_TOKEN},
            )
            await service.start()
            await asyncio.sleep(1.0)
            drifted = [
                json.loads(templates[team][1].replace("PLACEHOLDER", name)) for name, team in names
            ]
            started = time.monotonic()
            drift_versions: set[tuple[str, str]] = set()
            for k, obj in enumerate(drifted):
                wait = started + k * over / apps - time.monotonic()
                # Yield even when behind: the fake's watch streams are written by this loop.
                await asyncio.sleep(max(0.0, wait))
                stored = api.put(obj)
                drift_versions.add(
                    (stored["metadata"]["name"], stored["metadata"]["resourceVersion"])
                )
            storm_seconds = time.monotonic() - started

            complete: dict[str, float] = {}
            deadline = time.monotonic() + group_wait + 120
            while time.monotonic() < deadline and len(complete) < TEAMS:
                for call in slack.calls:
                    channel = str(call.params.get("channel"))
                    if (
                        call.ok
                        and call.method in ("chat.postMessage", "chat.update")
                        and channel not in complete
                        and counted(call) >= per_team[int(channel[-1])]
                    ):
                        complete[channel] = call.at
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # anything sent after the group: counted below
            arrivals = await service.stop()

    posts = [c for c in slack.calls_to("chat.postMessage") if c.ok]
    updates = [c for c in slack.calls_to("chat.update") if c.ok]
    baseline, baseline_429 = await direct(posts)
    print(
        f"apps: {apps} made OutOfSync over {storm_seconds:.1f} s, {TEAMS} channels "
        f"(grace 0, group_wait {group_wait:g} s, grouped by cluster and kind)"
    )
    print(f"cores: {os.cpu_count()}, load average (1 min): {os.getloadavg()[0]:.2f}")
    for team in range(TEAMS):
        channel = channel_of(team)
        done = complete.get(channel)
        when = f"{done - started:6.2f} s" if done is not None else "never"
        first = next((c for c in posts if c.params["channel"] == channel), None)
        named = counted(first) if first is not None else 0
        print(
            f"  {channel}: {per_team[team]} apps; first message names {named}; "
            f"complete message after {when}; "
            f"posted {sum(1 for c in posts if c.params['channel'] == channel)}, "
            f"edited {sum(1 for c in updates if c.params.get('channel') == channel)}"
        )
    if len(complete) == TEAMS:
        total = max(complete.values()) - started
        print(
            f"every channel complete after {total:.2f} s "
            f"({total - group_wait:.2f} s beyond group_wait)"
        )
    else:
        print(f"channels never complete: {TEAMS - len(complete)}")
    reached = [at - started for key, at in arrivals.items() if key in drift_versions]
    if reached:
        print(
            f"watch path: the changes reached the service's pipeline from {min(reached):.2f} s "
            f"to {max(reached):.2f} s ({len(reached)} of {apps})"
        )
    print(f"HTTP 429s: {slack.rate_limited}; service counters: {json.dumps(service.stats)}")
    print(
        f"baseline: the fake accepts the same {len(posts)} messages posted directly with "
        f"slack_sdk in {baseline:.3f} s ({baseline_429} 429s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--over", type=float, default=5.0, help="seconds the storm lasts")
    parser.add_argument("--group-wait", type=float, default=30.0)
    options = parser.parse_args()
    asyncio.run(run(options.apps, options.over, options.group_wait))
