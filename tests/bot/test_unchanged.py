"""The "nothing relevant changed" fast path, end to end: the service against the fake API
server, through the real kubernetes_asyncio client, the typed decoders and the pipeline.

Argo CD's refresh rewrites `status.reconciledAt` of every app; Flux's reconcile moves its
snapshots' `lastReconciled`. Such updates must stop before the pipeline (no events, no store
write), and a real change after any number of them must still be told, as must a change made
while nobody watched (the relist's diff).
"""

from __future__ import annotations

import copy
import io
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app.service import Service
from bot.store.store import Store
from config.schema import Config
from core.model import AppKey, Tool
from tests.bot.service_world import VirtualClock, announced, make_config, until, watching_service
from tests.builders_argocd import argocd_app
from tests.builders_flux import T0, kustomization
from tests.fakes.kube_api import FakeKubeAPI
from tests.world import fakes, kubeconfigs
from watchers.decode.unchanged import HeldViews


def _views(service: Service, plural: str) -> HeldViews:
    resource = next(r for r in service.resources if r.watched.spec.plural == plural)
    views: HeldViews = resource.feed.views  # type: ignore[attr-defined]
    return views


def _stamp(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Prod:
    """The cluster "prod" on a fake API server, the virtual clock, what the console printed,
    and the last resourceVersion of each resource put there; `service()` watches it."""

    api: FakeKubeAPI
    config: Config
    state: Path
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(T0))
    out: io.StringIO = field(default_factory=io.StringIO)
    last: dict[str, int] = field(default_factory=dict)

    def service(self) -> AbstractAsyncContextManager[Service]:
        return watching_service(self.config, self.state, self.clock, self.out)

    def put(self, obj: dict[str, Any]) -> None:
        self._note(self.api.put(obj))

    def delete(self, obj: dict[str, Any]) -> None:
        self._note(self.api.delete(obj))

    def _note(self, stored: dict[str, Any]) -> None:
        plural = self.api._resource_of(stored, None)[1]
        self.last[plural] = int(stored["metadata"]["resourceVersion"])

    async def caught_up(self, service: Service) -> None:
        """Every watch has handled everything put so far."""

        def done() -> bool:
            for resource in service.resources:
                wanted = self.last.get(resource.watched.spec.plural)
                have = resource.watcher.resource_version
                if wanted is not None and (have is None or int(have) < wanted):
                    return False
            return True

        await until(done)


@pytest.fixture
async def prod(tmp_path: Path) -> AsyncIterator[_Prod]:
    async with fakes("prod") as apis:
        config = make_config(kubeconfigs(apis, tmp_path))
        yield _Prod(apis["prod"], config, tmp_path / "s.sqlite")


async def test_refreshes_stop_before_the_pipeline_and_a_change_after_them_is_told(
    prod: _Prod,
) -> None:
    clock, out = prod.clock, prod.out
    key = AppKey(Tool.ARGOCD, "prod", "argo-cd", "Application", "checkout")
    app = argocd_app("checkout")
    ks = kustomization("apps")
    prod.put(app)
    prod.put(ks)
    async with prod.service() as service:
        listed_at = service.pipeline.states[key].observed_at
        stats = dict(service.pipeline.stats)
        decided = dict(service.pipeline.decided)
        for minute in range(1, 41):
            clock.advance()
            refreshed = copy.deepcopy(app)
            refreshed["status"]["reconciledAt"] = _stamp(100 + minute)
            refreshed["metadata"]["managedFields"] = [{"time": _stamp(100 + minute)}]
            prod.put(refreshed)
            reconciled = copy.deepcopy(ks)
            for snapshot in reconciled["status"].get("history", []):
                snapshot["lastReconciled"] = _stamp(100 + minute)
                snapshot["totalReconciliations"] = minute
            # an interval reconcile leaves lastHandledReconcileAt alone: only a requested
            # one (the reconcile.fluxcd.io/requestedAt annotation) moves it
            prod.put(reconciled)
        await prod.caught_up(service)
        assert _views(service, "applications").skipped == 40
        assert _views(service, "kustomizations").skipped == 40
        assert service.pipeline.states[key].observed_at == listed_at
        assert dict(service.pipeline.stats) == stats
        assert dict(service.pipeline.decided) == decided
        assert out.getvalue() == ""

        clock.advance()
        prod.put(argocd_app("checkout", sync="OutOfSync", out_of_sync=[("Deployment", "x", "y")]))
        await prod.caught_up(service)
        await until(lambda: "drift_detected" in out.getvalue())
    assert [k for k, *_ in announced(out.getvalue())] == ["drift_detected"]
    store = await Store.open(prod.state)
    try:
        held = (await store.all_states())[key]
    finally:
        await store.close()
    assert held.observed_at == clock.now  # the change was written; the refreshes were not


async def test_a_refresh_that_makes_a_stale_sync_status_current_is_a_change(
    prod: _Prod,
) -> None:
    """OutOfSync compared before the last sync finished says nothing; the next refresh
    (reconciledAt past the operation's end) makes it drift, though only reconciledAt moved."""
    clock, out = prod.clock, prod.out
    stale: dict[str, Any] = argocd_app(
        "checkout",
        sync="OutOfSync",
        out_of_sync=[("Deployment", "x", "y")],
        reconciled_at="2024-03-05T07:00:00Z",
    )
    prod.put(argocd_app("checkout"))
    async with prod.service() as service:
        clock.advance()
        prod.put(stale)
        clock.advance()
        prod.put(stale)  # the same again: nothing relevant moved
        await prod.caught_up(service)
        assert out.getvalue() == ""
        assert _views(service, "applications").skipped == 1
        clock.advance()
        current = copy.deepcopy(stale)
        current["status"]["reconciledAt"] = "2024-03-05T08:00:00Z"
        prod.put(current)
        await until(lambda: "drift_detected" in out.getvalue())


async def test_a_change_while_nobody_watched_after_many_refreshes_is_told_once(
    prod: _Prod,
) -> None:
    clock, out = prod.clock, prod.out
    app = argocd_app("checkout")
    other = argocd_app("payments")
    prod.put(app)
    prod.put(other)
    async with prod.service() as service:
        apps = next(r for r in service.resources if r.watched.spec.plural == "applications")
        for minute in range(1, 11):
            clock.advance()
            refreshed = copy.deepcopy(app)
            refreshed["status"]["reconciledAt"] = _stamp(100 + minute)
            prod.put(refreshed)
        await prod.caught_up(service)
        assert _views(service, "applications").skipped == 10
        prod.api.expire_history()
        clock.advance()
        prod.put(argocd_app("checkout", sync="OutOfSync", out_of_sync=[("Deployment", "x", "y")]))
        prod.delete(other)
        await until(lambda: apps.watcher.counters.relists == 1)
        await prod.caught_up(service)
        # After the relist, what is held is what was listed: a refresh of it stops early.
        clock.advance()
        again = argocd_app("checkout", sync="OutOfSync", out_of_sync=[("Deployment", "x", "y")])
        again["status"]["reconciledAt"] = _stamp(500)
        prod.put(again)
        await prod.caught_up(service)
        assert _views(service, "applications").skipped == 11
        assert len(_views(service, "applications")) == 1
    assert sorted(k for k, *_ in announced(out.getvalue())) == ["deleted", "drift_detected"]
