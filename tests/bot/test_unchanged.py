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
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app.service import Service, open_service
from bot.store.store import Store
from core.model import AppKey, Tool
from tests.bot.test_service import (
    WATCHER_OPTIONS,
    VirtualClock,
    announced,
    fakes,
    kubeconfigs,
    make_config,
    until,
)
from tests.builders_argocd import argocd_app
from tests.builders_flux import T0, kustomization
from tests.fakes.kube_api import FakeKubeAPI
from watchers.decode.unchanged import HeldViews


def _views(service: Service, plural: str) -> HeldViews:
    resource = next(r for r in service.resources if r.watched.spec.plural == plural)
    views: HeldViews = resource.feed.views  # type: ignore[attr-defined]
    return views


def _stamp(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Cluster:
    """The fake API server, and the last resourceVersion of each resource put there."""

    def __init__(self, api: FakeKubeAPI) -> None:
        self.api = api
        self.last: dict[str, int] = {}

    def put(self, obj: dict[str, Any]) -> None:
        stored = self.api.put(obj)
        plural = self.api._resource_of(stored, None)[1]
        self.last[plural] = int(stored["metadata"]["resourceVersion"])

    def delete(self, obj: dict[str, Any]) -> None:
        stored = self.api.delete(obj)
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


async def test_refreshes_stop_before_the_pipeline_and_a_change_after_them_is_told(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(T0)
    key = AppKey(Tool.ARGOCD, "prod", "argo-cd", "Application", "checkout")
    out = io.StringIO()
    async with fakes("prod") as apis:
        api = _Cluster(apis["prod"])
        app = argocd_app("checkout")
        ks = kustomization("apps")
        api.put(app)
        api.put(ks)
        config = make_config(kubeconfigs(apis, tmp_path))
        async with open_service(
            config,
            tmp_path / "s.sqlite",
            clock=clock,
            stream=out,
            watcher_options=WATCHER_OPTIONS,
            tick_interval=3600,
        ) as service:
            await until(lambda: not service.not_ready())
            listed_at = service.pipeline.states[key].observed_at
            stats = dict(service.pipeline.stats)
            decided = dict(service.pipeline.decided)
            for minute in range(1, 41):
                clock.advance()
                refreshed = copy.deepcopy(app)
                refreshed["status"]["reconciledAt"] = _stamp(100 + minute)
                refreshed["metadata"]["managedFields"] = [{"time": _stamp(100 + minute)}]
                api.put(refreshed)
                reconciled = copy.deepcopy(ks)
                for snapshot in reconciled["status"].get("history", []):
                    snapshot["lastReconciled"] = _stamp(100 + minute)
                    snapshot["totalReconciliations"] = minute
                # an interval reconcile leaves lastHandledReconcileAt alone: only a requested
                # one (the reconcile.fluxcd.io/requestedAt annotation) moves it
                api.put(reconciled)
            await api.caught_up(service)
            assert _views(service, "applications").skipped == 40
            assert _views(service, "kustomizations").skipped == 40
            assert service.pipeline.states[key].observed_at == listed_at
            assert dict(service.pipeline.stats) == stats
            assert dict(service.pipeline.decided) == decided
            assert out.getvalue() == ""

            clock.advance()
            api.put(
                argocd_app("checkout", sync="OutOfSync", out_of_sync=[("Deployment", "x", "y")])
            )
            await api.caught_up(service)
            await until(lambda: "drift_detected" in out.getvalue())
    assert [k for k, *_ in announced(out.getvalue())] == ["drift_detected"]
    store = await Store.open(tmp_path / "s.sqlite")
    try:
        held = (await store.all_states())[key]
    finally:
        await store.close()
    assert held.observed_at == clock.now  # the change was written; the refreshes were not


async def test_a_refresh_that_makes_a_stale_sync_status_current_is_a_change(
    tmp_path: Path,
) -> None:
    """OutOfSync compared before the last sync finished says nothing; the next refresh
    (reconciledAt past the operation's end) makes it drift, though only reconciledAt moved."""
    clock = VirtualClock(T0)
    out = io.StringIO()
    stale: dict[str, Any] = argocd_app(
        "checkout",
        sync="OutOfSync",
        out_of_sync=[("Deployment", "x", "y")],
        reconciled_at="2024-03-05T07:00:00Z",
    )
    async with fakes("prod") as apis:
        api = _Cluster(apis["prod"])
        api.put(argocd_app("checkout"))
        config = make_config(kubeconfigs(apis, tmp_path))
        async with open_service(
            config,
            tmp_path / "s.sqlite",
            clock=clock,
            stream=out,
            watcher_options=WATCHER_OPTIONS,
            tick_interval=3600,
        ) as service:
            await until(lambda: not service.not_ready())
            clock.advance()
            api.put(stale)
            clock.advance()
            api.put(stale)  # the same again: nothing relevant moved
            await api.caught_up(service)
            assert out.getvalue() == ""
            assert _views(service, "applications").skipped == 1
            clock.advance()
            current = copy.deepcopy(stale)
            current["status"]["reconciledAt"] = "2024-03-05T08:00:00Z"
            api.put(current)
            await until(lambda: "drift_detected" in out.getvalue())


async def test_a_change_while_nobody_watched_after_many_refreshes_is_told_once(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(T0)
    out = io.StringIO()
    async with fakes("prod") as apis:
        api = _Cluster(apis["prod"])
        app = argocd_app("checkout")
        other = argocd_app("payments")
        api.put(app)
        api.put(other)
        config = make_config(kubeconfigs(apis, tmp_path))
        async with open_service(
            config,
            tmp_path / "s.sqlite",
            clock=clock,
            stream=out,
            watcher_options=WATCHER_OPTIONS,
            tick_interval=3600,
        ) as service:
            await until(lambda: not service.not_ready())
            apps = next(r for r in service.resources if r.watched.spec.plural == "applications")
            for minute in range(1, 11):
                clock.advance()
                refreshed = copy.deepcopy(app)
                refreshed["status"]["reconciledAt"] = _stamp(100 + minute)
                api.put(refreshed)
            await api.caught_up(service)
            assert _views(service, "applications").skipped == 10
            api.api.expire_history()
            clock.advance()
            api.put(
                argocd_app("checkout", sync="OutOfSync", out_of_sync=[("Deployment", "x", "y")])
            )
            api.delete(other)
            await until(lambda: apps.watcher.counters.relists == 1)
            await api.caught_up(service)
            # After the relist, what is held is what was listed: a refresh of it stops early.
            clock.advance()
            again = argocd_app("checkout", sync="OutOfSync", out_of_sync=[("Deployment", "x", "y")])
            again["status"]["reconciledAt"] = _stamp(500)
            api.put(again)
            await api.caught_up(service)
            assert _views(service, "applications").skipped == 11
            assert len(_views(service, "applications")) == 1
    assert sorted(k for k, *_ in announced(out.getvalue())) == ["deleted", "drift_detected"]
