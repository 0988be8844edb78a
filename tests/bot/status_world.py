"""A running `driftbot run` server fed by a recorded scenario, for the status page's tests.

The shipped demo scenario (a morning on prod, Argo CD, and staging, Flux) is played into fake
Kubernetes API servers line by line, the service's virtual clock set to each line's time, and
the real watches carry it into the pipeline; then, the next morning, podinfo fails to deploy
6.6.1, checkout drifts from Git and alice mutes redis from chat. The page reads what the
service made of it all.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bot.app.server import LIVE, create_app
from bot.app.service import Service
from bot.chat.commands import Asker, CommandRunner
from bot.chat.controls import PolicyControls
from tests import builders_flux as flux
from tests import scenarios
from tests.bot.service_world import WATCHER_OPTIONS, VirtualClock, make_config, until
from tests.fakes.kube_api import FakeKubeAPI
from tests.fakes.loopback import on_loopback
from tests.world import fakes, kubeconfigs

DEMO = Path(__file__).resolve().parents[2] / "bot" / "app" / "scenarios" / "demo.jsonl"
NEXT_MORNING = scenarios.START + timedelta(days=1, hours=1)
"""When the page is read: 10:00 UTC the day after the demo's morning."""
PODINFO_FAILED_AT = NEXT_MORNING - timedelta(minutes=14)
CHECKOUT_DRIFTED_AT = NEXT_MORNING - timedelta(minutes=3)


@dataclass
class StatusWorld:
    apis: dict[str, FakeKubeAPI]
    clock: VirtualClock
    service: Service
    base: str
    last_rv: dict[tuple[str, str], int] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    async def apply(self, at: datetime, cluster: str, obj: dict[str, Any], how: str = "") -> None:
        """`obj` as the cluster's API server holds it from `at`, and seen by the service."""
        self.clock.now = at
        api = self.apis[cluster]
        stored = api.delete(obj) if how == "DELETED" else api.put(obj)
        plural = api._resource_of(stored, None)[1]
        self.last_rv[(cluster, plural)] = int(stored["metadata"]["resourceVersion"])
        meta = stored["metadata"]
        self.objects[(cluster, stored["kind"], meta["name"])] = stored
        await until(self.caught_up)

    def caught_up(self) -> bool:
        for resource in self.service.resources:
            wanted = self.last_rv.get((resource.cluster, resource.watched.spec.plural))
            have = resource.watcher.resource_version
            if wanted is not None and (have is None or int(have) < wanted):
                return False
        return True

    async def settle(self, at: datetime) -> None:
        """Let time pass to `at`: what is due (grace, groups) is announced."""
        self.clock.now = at
        await self.service.gate.advance(at)

    async def chat(self, user: str, text: str) -> dict[str, Any]:
        """A command typed in Slack by `user`, as the Slack app runs it."""
        pipeline = self.service.pipeline
        runner = CommandRunner(
            pipeline.config,
            pipeline,
            pipeline.store,
            PolicyControls(self.service.gate),
            self.clock,
        )
        return await runner.run(text, Asker(user))

    async def play_demo(self) -> None:
        for raw in DEMO.read_bytes().splitlines():
            line = orjson.loads(raw)
            at = datetime.fromisoformat(line["at"].replace("Z", "+00:00"))
            await self.apply(at, line["cluster"], line["object"], line.get("type", ""))

    async def next_morning(self) -> None:
        """Podinfo fails to deploy 6.6.1; checkout drifts; alice mutes redis."""
        await self.settle(PODINFO_FAILED_AT - timedelta(minutes=30))
        await self.chat("alice", "mute redis 4h database upgrade window")
        await self.apply(PODINFO_FAILED_AT, "staging", podinfo_failed())
        checkout = orjson.loads(orjson.dumps(self.objects[("prod", "Application", "checkout")]))
        checkout["status"]["sync"]["status"] = "OutOfSync"
        checkout["status"]["reconciledAt"] = CHECKOUT_DRIFTED_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
        for resource in checkout["status"].get("resources", []):
            if resource.get("kind") == "Deployment":
                resource["status"] = "OutOfSync"
        await self.apply(CHECKOUT_DRIFTED_AT, "prod", checkout)
        await self.settle(NEXT_MORNING)


def podinfo_failed() -> dict[str, Any]:
    v1 = flux.helm_snapshot(1, "6.6.0+cdd538a0167e", minutes=-120)
    failed = flux.helm_snapshot(4, "6.6.1+0cc9a8446c95", status="failed", minutes=0)
    return flux.helmrelease(
        "podinfo",
        ready="False",
        reason="UpgradeFailed",
        attempted="6.6.1+0cc9a8446c95",
        message="Helm upgrade failed for release podinfo/podinfo with chart "
        "podinfo@6.6.1+0cc9a8446c95: context deadline exceeded",
        history=[failed, v1],
    )


def podinfo_fixed() -> dict[str, Any]:
    v1 = flux.helm_snapshot(1, "6.6.0+cdd538a0167e", minutes=-120)
    fixed = flux.helm_snapshot(5, "6.6.2+1dd538a0167e", minutes=0)
    return flux.helmrelease("podinfo", history=[fixed, v1])


@asynccontextmanager
async def status_world(
    tmp_path: Path,
    *,
    server: Mapping[str, Any] | None = None,
    rbac: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[StatusWorld]:
    """The server on a loopback port with the demo played and the next morning's news."""
    clock = VirtualClock(scenarios.START)
    async with fakes("prod", "staging") as apis:
        config = make_config(
            kubeconfigs(apis, tmp_path),
            grace="60s",
            server=dict(server or {}),
            rbac={"operators": {"users": ["alice"]}, **dict(rbac or {})},
        )
        app = create_app(
            config,
            tmp_path / "state.sqlite",
            environ=dict(environ or {}),
            clock=clock,
            stream=io.StringIO(),
            watcher_options=WATCHER_OPTIONS,
            tick_interval=3600,
        )
        async with on_loopback(app, access_log=None, handle_signals=False) as base:
            service = app[LIVE].service
            assert service is not None
            await until(lambda: not service.not_ready())
            world = StatusWorld(apis, clock, service, base)
            await world.play_demo()
            await world.next_morning()
            yield world
