"""What the bot watches in each cluster, how it reaches a cluster, and how watch output enters
the pipeline.

Per cluster: Argo CD Applications, the seven Flux kinds, and core/v1 Events. Events are
filtered here, on the client, by the API group of `involvedObject.apiVersion` (argoproj.io or
*.toolkit.fluxcd.io): a server-side fieldSelector can only say `involvedObject.kind=X`, which
would need one Event watch per kind (eight per cluster instead of one) and still could not
tell Argo CD's `Application` or Flux's `Bucket` from other groups' kinds of the same name.
The price is reading every Event of the cluster; the ones about other objects are dropped
before the pipeline sees them, counted but never logged one by one.

A list of objects is a full picture: it goes to `Pipeline.relist`, which diffs it against
the states held (so a change or a deletion made while the watch was down is announced once).
A list of Events is not: Events are hints, not state, and one missing from a list means only
that it expired. The first Event list of a process is a baseline (history the process did not
see happen is not news); later lists (after a 410 or a reconnect) pass on only the Events
whose (uid, resourceVersion) this feed has not handed over yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import ApiClient, Configuration

from bot.ops.logs import about_object
from bot.pipeline.kube_credentials import refresh_credentials
from bot.pipeline.outcome import Outcome, Taken, rejected
from config.schema import ClusterConfig
from core.model import AppKey, AppState, Hint, Tool
from watchers.decode.lines import object_mapping
from watchers.decode.unchanged import HeldViews
from watchers.kube_watch import ResourceSpec
from watchers.normalize import Rejected, normalize_object

__all__ = [
    "WATCHED",
    "Clock",
    "EventFeed",
    "Feed",
    "ObjectFeed",
    "Observer",
    "Source",
    "Watched",
    "api_client_for",
    "is_gitops_event",
    "utc_now",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Watched:
    """One resource watched in every cluster, and which app states its lists account for."""

    spec: ResourceSpec
    tool: Tool | None
    """None for Events: they are hints about objects of both tools."""
    kinds: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return f"{self.spec.plural}.{self.spec.group}" if self.spec.group else self.spec.plural

    @property
    def is_events(self) -> bool:
        return self.tool is None

    def covers(self, key: AppKey) -> bool:
        """Whether a held app state belongs to this resource (for the relist diff)."""
        return key.tool is self.tool and key.kind in self.kinds


def _flux(group: str, version: str, plural: str, kind: str) -> Watched:
    return Watched(ResourceSpec(group, version, plural), Tool.FLUX, frozenset({kind}))


WATCHED: tuple[Watched, ...] = (
    Watched(
        ResourceSpec("argoproj.io", "v1alpha1", "applications"),
        Tool.ARGOCD,
        frozenset({"Application"}),
    ),
    _flux("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "Kustomization"),
    _flux("helm.toolkit.fluxcd.io", "v2", "helmreleases", "HelmRelease"),
    _flux("source.toolkit.fluxcd.io", "v1", "gitrepositories", "GitRepository"),
    _flux("source.toolkit.fluxcd.io", "v1", "ocirepositories", "OCIRepository"),
    _flux("source.toolkit.fluxcd.io", "v1", "helmrepositories", "HelmRepository"),
    _flux("source.toolkit.fluxcd.io", "v1", "helmcharts", "HelmChart"),
    _flux("source.toolkit.fluxcd.io", "v1", "buckets", "Bucket"),
    Watched(ResourceSpec("", "v1", "events"), None),
)
"""Every resource the bot watches, in every cluster (all namespaces)."""


def is_gitops_event(obj: Any) -> bool:
    """A core/v1 Event about an Argo CD or Flux object (by its involvedObject's API group)."""
    involved = obj.get("involvedObject") if isinstance(obj, dict) else None
    api_version = involved.get("apiVersion") if isinstance(involved, dict) else None
    if not isinstance(api_version, str):
        return False
    group = api_version.rpartition("/")[0]
    return group == "argoproj.io" or group.endswith(".toolkit.fluxcd.io")


async def api_client_for(cluster: ClusterConfig) -> ApiClient:
    """An ApiClient of its own for one cluster: the pod's service account (`in_cluster`), or
    the kubeconfig file and context named in the config (default: $KUBECONFIG/~/.kube/config
    and its current context). A kubeconfig's token file or exec plugin is read again when it
    changes or expires (bot/pipeline/kube_credentials.py)."""
    configuration = Configuration()
    if cluster.in_cluster:
        kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    else:
        loader = await kube_config.load_kube_config(
            config_file=cluster.kubeconfig,
            context=cluster.context,
            client_configuration=configuration,
            persist_config=False,
        )
        refresh_credentials(loader, configuration, cluster.kubeconfig)
    return ApiClient(configuration)


class Observer(Protocol):
    """The pipeline's inputs, as the feeds use them (Pipeline, or a gate in front of it)."""

    async def observe(self, obj: Any, cluster: str, watch_type: str, now: datetime) -> Taken: ...

    async def relist(
        self, cluster: str, objects: list[Any], now: datetime, covers: Callable[[AppKey], bool]
    ) -> None: ...


class Source(Protocol):
    """A long-running input (a ResourceWatcher, the Argo CD API stream) the service runs."""

    synced: asyncio.Event

    @property
    def task_name(self) -> str: ...

    def start(self) -> asyncio.Task[None]: ...

    async def stop(self) -> None: ...


class Feed(Protocol):
    """The callbacks of a ResourceWatcher for one resource of one cluster."""

    def prepare(self, obj: Any) -> Any: ...

    async def on_list(self, objects: list[Any], resource_version: str) -> None: ...

    async def on_event(self, watch_type: str, obj: Any) -> None: ...


def _rejected(taken: Taken, cluster: str, what: str, obj: dict[str, Any]) -> None:
    if taken.rejected:
        context = about_object(cluster, obj, resource=what)
        logger.warning(
            "[%s] %s %s/%s: %s",
            cluster,
            what,
            context["namespace"],
            context["object_name"],
            taken,
            extra=context,
        )


class ObjectFeed:
    """Argo CD or Flux objects of one resource and cluster into the pipeline."""

    def __init__(self, observer: Observer, cluster: str, watched: Watched, clock: Clock) -> None:
        self._observer = observer
        self._cluster = cluster
        self._watched = watched
        self._clock = clock
        self.views = HeldViews()
        """What the pipeline holds of each object: updates that change none of it stop here."""

    def prepare(self, obj: Any) -> AppState | Rejected:
        """A listed object, normalized as its page arrives: the list holds app states, not
        thousands of raw objects of 10 KB and more."""
        change = self.views.listing(obj)
        found = normalize_object(change.obj, self._cluster, self._clock())
        if isinstance(found, Rejected):
            _rejected(rejected(found.reason), self._cluster, self._watched.name, change.obj)
            return found
        if isinstance(found, Hint):
            return Rejected(f"a {self._watched.name} list holds an Event")
        self.views.listed(change)
        return found

    async def on_list(self, objects: list[Any], resource_version: str) -> None:
        await self._observer.relist(self._cluster, objects, self._clock(), self._watched.covers)
        self.views.relisted()

    async def on_event(self, watch_type: str, obj: Any) -> None:
        change = self.views.change(watch_type, obj)
        if change is None:
            return  # nothing the pipeline reads changed; the watcher's resourceVersion moved
        taken = await self._observer.observe(change.obj, self._cluster, watch_type, self._clock())
        self.views.settle(change, taken=taken.outcome is Outcome.OBSERVED)
        _rejected(taken, self._cluster, self._watched.name, change.obj)


def _identity(obj: dict[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return "", ""
    uid = metadata.get("uid") or f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
    return str(uid), str(metadata.get("resourceVersion") or "")


class EventFeed:
    """Argo CD and Flux Events of one cluster into the pipeline; see the module docstring."""

    def __init__(self, observer: Observer, cluster: str, clock: Clock) -> None:
        self._observer = observer
        self._cluster = cluster
        self._clock = clock
        self._seen: dict[str, str] = {}
        """uid -> resourceVersion of every GitOps Event handed over (or baselined) and alive."""
        self.baselined = False
        self.ignored = 0
        """Events about other objects, dropped here."""

    def prepare(self, obj: Any) -> dict[str, Any] | None:
        """Only GitOps Events are kept of a listed page: a cluster has many others."""
        event: dict[str, Any] = object_mapping(obj)
        if not is_gitops_event(event):
            self.ignored += 1
            return None
        return event

    async def on_list(self, objects: list[Any], resource_version: str) -> None:
        listed: dict[str, str] = {}
        fresh: list[dict[str, Any]] = []
        for obj in objects:
            if not is_gitops_event(obj):
                self.ignored += 1
                continue
            uid, version = _identity(obj)
            listed[uid] = version
            if self._seen.get(uid) != version:
                fresh.append(obj)
        baseline = not self.baselined
        self._seen = listed
        self.baselined = True
        if baseline:
            logger.debug(
                "[%s] %d Events taken as the baseline",
                self._cluster,
                len(listed),
                extra={"cluster": self._cluster},
            )
            return
        for obj in fresh:
            await self._hand_over("ADDED", obj)

    async def on_event(self, watch_type: str, obj: Any) -> None:
        obj = object_mapping(obj)
        if not is_gitops_event(obj):
            self.ignored += 1
            return
        uid, version = _identity(obj)
        if watch_type == "DELETED":
            # An Event that expired says nothing new.
            self._seen.pop(uid, None)
            return
        if self._seen.get(uid) == version:
            return
        self._seen[uid] = version
        await self._hand_over(watch_type, obj)

    async def _hand_over(self, watch_type: str, obj: dict[str, Any]) -> None:
        taken = await self._observer.observe(obj, self._cluster, watch_type, self._clock())
        _rejected(taken, self._cluster, "Event", obj)


def feed_for(observer: Observer, cluster: str, watched: Watched, clock: Clock) -> Feed:
    """The feed that turns one watched resource's lists and events into pipeline calls."""
    if watched.is_events:
        return EventFeed(observer, cluster, clock)
    return ObjectFeed(observer, cluster, watched, clock)


ClientFactory = Callable[[ClusterConfig], Awaitable[ApiClient]]
