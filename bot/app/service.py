"""The running service's composition root: store, pipeline, receivers, one Kubernetes client
and one set of watchers per cluster, the Argo CD API streams, and the clock that lets grace
windows run out.

Every cluster has its own ApiClient and its own watcher tasks, so a cluster that is
unreachable or answers 500s only delays its own watches. Every input reaches the pipeline
through one `PipelineGate` (bot/pipeline/gate.py), which runs one call at a time: the watches
and streams, the Flux webhook, the clock, the store's flush, chat mutes and acks, the jobs and
a config reload.

`open_service` is the lifecycle: it opens everything, starts the tasks, and on exit stops the
watches, closes the pipeline (saving the policy state), flushes and closes the store.

With leader election (bot/app/leader.py) a replica opens the service only once it leads: the state
is then read fresh from the shared store and every source lists again, so what changed while
no one watched is announced once. A replica that loses the Lease calls `Service.abandon()`:
watches, clock and outbox workers stop at once and the outbox is left to the new leader; the
state it holds is still written when the service closes, well within the margin between the
renew deadline and the lease duration (docs/operations.md, high availability).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from kubernetes_asyncio.client import ApiClient

from bot.app.heap import freeze_when_listed
from bot.app.replay import CliError, build_receivers
from bot.delivery.receivers import Receiver
from bot.jobs.reload import ConfigReloader
from bot.jobs.scheduler import Scheduler, pipeline_hooks
from bot.pipeline.gate import PipelineGate
from bot.pipeline.projects import watched_feeds
from bot.pipeline.runner import Pipeline
from bot.pipeline.sources import (
    ClientFactory,
    Clock,
    EventFeed,
    Source,
    Watched,
    api_client_for,
    utc_now,
)
from bot.store.store import store_location
from bot.store.write_behind import WriteBehindStore
from config.schema import ArgoCDApiConfig, Config
from core.model import AppKey, Tool
from watchers.argocd_api import ArgoCDApiWatcher
from watchers.commit_info import CommitDescriber
from watchers.decode.lines import decoder_for
from watchers.kube_watch import ResourceWatcher

if TYPE_CHECKING:
    from bot.app.leader import LeaderElector

__all__ = [
    "PipelineGate",
    "Service",
    "ServiceError",
    "WatchedResource",
    "WriteBehindStore",
    "lead",
    "open_service",
]

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class ServiceError(Exception):
    """The service cannot start (a cluster's kubeconfig cannot be loaded, a secret is
    missing); the message is one sentence for the CLI to print."""


@dataclass(frozen=True)
class WatchedResource:
    """One watcher of the service: its cluster, what it watches, the loop and its feed."""

    cluster: str
    watched: Watched
    watcher: ResourceWatcher
    feed: object

    @property
    def name(self) -> str:
        return f"{self.cluster}/{self.watched.name}"

    @property
    def ready(self) -> bool:
        """Listed at least once, or known to be absent (its CRD is not installed)."""
        return self.watcher.synced.is_set() or self.watcher.absent


class Service:
    """The watchers of every cluster and the pipeline's clock; `start()` then `stop()`."""

    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        clients: Mapping[str, ApiClient],
        *,
        clock: Clock = utc_now,
        watcher_options: Mapping[str, Any] | None = None,
        extra_sources: list[Source] | None = None,
        tick_interval: float = 1.0,
        flush_interval: float = 1.0,
        sleep: Sleep = asyncio.sleep,
        freeze_heap: bool = False,
    ) -> None:
        self.config = config
        self._freeze_heap = freeze_heap  # bot.app.heap
        self.pipeline = pipeline
        self.gate = PipelineGate(pipeline)
        self.clock = clock
        self._sleep = sleep
        self._tick_interval = tick_interval
        self._flush_interval = flush_interval
        self._tasks: list[asyncio.Task[None]] = []
        self.resources: list[WatchedResource] = []
        for cluster in config.clusters:
            client = clients[cluster.name]
            for watched, feed in watched_feeds(self.gate, self.pipeline, cluster.name, clock):
                watcher = ResourceWatcher(
                    client,
                    watched.spec,
                    on_list=feed.on_list,
                    on_event=feed.on_event,
                    prepare=feed.prepare,
                    decoder=decoder_for(watched.spec.group, watched.spec.plural),
                    cluster=cluster.name,
                    **dict(watcher_options or {}),
                )
                self.resources.append(WatchedResource(cluster.name, watched, watcher, feed))
        self.extra_sources: list[Source] = list(extra_sources or [])
        """Sources beside the Kubernetes watches: the Argo CD API streams."""
        self.abandoned = False
        """Set by `abandon()`: this process lost the Lease and no longer delivers."""
        self.reloader: ConfigReloader | None = None
        """The config file's hot reload, when the service runs from a file: the HTTP side adds
        its checks and listeners to it."""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        for resource in self.resources:
            resource.watcher.start()
        for source in self.extra_sources:
            source.start()
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._tick(), name="pipeline-clock"),
                asyncio.create_task(self._flush(), name="store-flush"),
            ]
            if self._freeze_heap:
                freeze = freeze_when_listed(self.not_ready, self._sleep)
                self._tasks.append(asyncio.create_task(freeze, name="heap-freeze"))

    async def stop(self) -> None:
        """Stop every task and wait for them; the pipeline and store stay open."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        stops = [r.watcher.stop() for r in self.resources]
        stops += [s.stop() for s in self.extra_sources]
        await asyncio.gather(*stops)

    async def abandon(self) -> None:
        """This process lost the Lease: stop watching, deciding and delivering now. What is
        unsent stays in the outbox for the new leader (the store hands out no more of it);
        the pending state is still written when the service closes."""
        self.abandoned = True
        store = self.pipeline.store
        if isinstance(store, WriteBehindStore):
            store.fence()
        await self.stop()
        for receiver in self.pipeline.receivers.values():
            await receiver.abandon()

    async def _tick(self) -> None:
        """Let time pass in the pipeline, so problems whose grace ran out are announced."""
        while True:
            await self._sleep(self._tick_interval)
            try:
                await self.gate.advance(self.clock())
            except Exception:
                logger.exception("advancing the pipeline clock failed; trying again")

    async def _flush(self) -> None:
        """Write the store's pending app and policy states every flush interval."""
        store = self.pipeline.store
        if not isinstance(store, WriteBehindStore):
            return
        while True:
            await self._sleep(self._flush_interval)
            try:
                await self.gate.flush_store()
            except Exception:
                logger.exception("writing the state store failed; keeping the writes and retrying")

    # -- state, for /readyz and /metrics -------------------------------------------------------

    def not_ready(self) -> list[str]:
        """Sources that have not listed yet (a watched CRD that is not installed counts as
        ready: there is nothing to list)."""
        waiting = [r.name for r in self.resources if not r.ready]
        waiting += [s.task_name for s in self.extra_sources if not s.synced.is_set()]
        return waiting

    @property
    def ignored_events(self) -> dict[str, int]:
        """Per cluster, Kubernetes Events about objects that are neither Argo CD's nor Flux's."""
        counts: dict[str, int] = {}
        for resource in self.resources:
            if isinstance(resource.feed, EventFeed):
                counts[resource.cluster] = counts.get(resource.cluster, 0) + resource.feed.ignored
        return counts


def argocd_api_sources(
    config: Config, gate: PipelineGate, clock: Clock, environ: Mapping[str, str] = os.environ
) -> list[ArgoCDApiWatcher]:
    """The Argo CD API server streams of the config's `argocd_api` entries, into the gate.

    Their lists account for the Argo CD Applications of their cluster, as the CRD watch's do.
    """
    sources: list[ArgoCDApiWatcher] = []
    for entry in config.argocd_api:
        sources.append(_argocd_api_source(entry, gate, clock, environ))
    return sources


def _argocd_api_source(
    entry: ArgoCDApiConfig, gate: PipelineGate, clock: Clock, environ: Mapping[str, str]
) -> ArgoCDApiWatcher:
    def covers(key: AppKey) -> bool:
        return key.tool is Tool.ARGOCD and key.kind == "Application"

    async def on_list(cluster: str, items: list[dict[str, Any]]) -> None:
        await gate.relist(cluster, items, clock(), covers)

    async def on_event(cluster: str, watch_type: str, app: dict[str, Any]) -> None:
        await gate.observe(app, cluster, watch_type, clock())

    try:
        return ArgoCDApiWatcher.from_config(
            entry, on_list=on_list, on_event=on_event, environ=environ
        )
    except ValueError as exc:
        raise ServiceError(f"argocd_api for cluster {entry.cluster!r}: {exc}") from None


async def _clients(config: Config, factory: ClientFactory) -> dict[str, ApiClient]:
    clients: dict[str, ApiClient] = {}
    try:
        for cluster in config.clusters:
            try:
                clients[cluster.name] = await factory(cluster)
            except Exception as exc:
                where = (
                    "the in-cluster service account"
                    if cluster.in_cluster
                    else f"kubeconfig {cluster.kubeconfig or '(default)'}"
                    + (f" context {cluster.context}" if cluster.context else "")
                )
                raise ServiceError(
                    f"cluster {cluster.name!r}: cannot load {where}: {exc}"
                ) from None
    except BaseException:
        for client in clients.values():
            await client.close()
        raise
    return clients


def _clockwork(
    service: Service,
    config: Config,
    config_path: Path | None,
    clock: Clock,
    stream: TextIO | None,
    environ: Mapping[str, str],
    adjust: Callable[[Config], Config] | None = None,
) -> tuple[Scheduler, ConfigReloader | None]:
    """The scheduler (digests, mute expiry, re-lists; the service's own clock already ticks
    the policy) and, with a config file, its hot reload; both started."""
    pipeline = service.pipeline

    async def resync() -> None:
        for source in service.extra_sources:
            relist = getattr(source, "relist", None)
            if callable(relist):
                relist()

    hooks = pipeline_hooks(service.gate, resync=resync)
    scheduler = Scheduler(hooks, clock=clock, tick_seconds=None)
    scheduler.start(config.digests)
    if config_path is None:
        return scheduler, None

    def build(new: Config) -> Mapping[str, Receiver]:
        return build_receivers(new, None, stream, store=pipeline.store, environ=environ)

    def take(new: Config) -> None:
        service.config = new
        scheduler.set_digests(new.digests)

    reloader = ConfigReloader(
        config_path, pipeline, build, gate=service.gate, clock=clock, adjust=adjust
    )
    reloader.listeners.append(take)
    reloader.start()
    reloader.install_sighup()
    return scheduler, reloader


@contextlib.asynccontextmanager
async def open_service(
    config: Config,
    state_path: Path,
    *,
    clock: Clock = utc_now,
    stream: TextIO | None = None,
    client_factory: ClientFactory = api_client_for,
    watcher_options: Mapping[str, Any] | None = None,
    tick_interval: float = 1.0,
    flush_interval: float = 1.0,
    sleep: Sleep = asyncio.sleep,
    environ: Mapping[str, str] = os.environ,
    config_path: Path | None = None,
    adjust: Callable[[Config], Config] | None = None,
    freeze_heap: bool = False,
) -> AsyncIterator[Service]:
    """The service, started; on exit stopped, its pipeline closed and its store saved.

    `stream` is where console receivers write (stdout by default); `watcher_options` go to
    every ResourceWatcher (backoff, timeouts, sleep). With `config_path`, a change of that file
    (or SIGHUP) reloads routes, receivers, policy and digests without a restart (`adjust`, the
    environment's overrides, applied to every version read; `Service.reloader` takes the HTTP
    side's checks and listeners). Digests, mute
    expiry and the Argo CD API streams' periodic re-list run on the scheduler.
    """
    store = await WriteBehindStore.open(store_location(state_path, environ))
    try:
        try:
            receivers = build_receivers(config, None, stream, store=store, environ=environ)
        except CliError as exc:
            raise ServiceError(str(exc)) from None
        pipeline = Pipeline(store, config, receivers)
        await pipeline.load()
        try:
            clients = await _clients(config, client_factory)
            try:
                service = Service(
                    config,
                    pipeline,
                    clients,
                    clock=clock,
                    watcher_options=watcher_options,
                    tick_interval=tick_interval,
                    flush_interval=flush_interval,
                    sleep=sleep,
                    freeze_heap=freeze_heap,
                )
                api_sources = argocd_api_sources(config, service.gate, clock, environ)
                service.extra_sources += api_sources
                pipeline.commits = CommitDescriber.from_apis(
                    [source.api for source in api_sources], flux=pipeline.commits.flux
                )
                service.start()
                scheduler, reloader = _clockwork(
                    service, config, config_path, clock, stream, environ, adjust
                )
                service.reloader = reloader
                try:
                    yield service
                finally:
                    await service.stop()
                    if reloader is not None:
                        await reloader.stop()
                    await scheduler.shutdown()
            finally:
                for client in clients.values():
                    await client.close()
        finally:
            await pipeline.close()
    finally:
        await store.close()


async def lead(
    elector: LeaderElector,
    running: Callable[[], AbstractAsyncContextManager[Service]],
    stopping: asyncio.Event,
    on_change: Callable[[bool], None] = lambda leading: None,
) -> None:
    """Stand by until `elector` holds the Lease, then run the service (`running()` opens it,
    so the state is read fresh from the shared store and every source lists again) while it
    does. Leadership lost: the service is abandoned (`Service.abandon`), closed, and this
    replica stands by again. `stopping` set: the service closes, its state saved, and only
    then is the Lease released, so the standby starts from all this replica wrote. An error
    opening the service releases the Lease and is raised. `on_change` hears True on taking
    the lead and False on leaving it."""
    while not stopping.is_set():
        if not await _first(elector.acquire(), stopping):
            return
        on_change(True)
        try:
            async with running() as service:
                if await _first(elector.wait_lost(), stopping):
                    await service.abandon()
        except BaseException:
            await elector.release()
            raise
        finally:
            on_change(False)
        if not elector.lost.is_set():
            await elector.release()
            return
        logger.warning("leadership lost: the service stopped; standing by for the Lease again")


async def _first(work: Coroutine[Any, Any, None], stopping: asyncio.Event) -> bool:
    """Run `work` until it is done (True) or `stopping` is set first (False, `work` cancelled)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return False
    task.result()
    return True
