"""A fleet on fake Kubernetes API servers: the servers with the CRDs driftbot watches, objects
that step through a few states (built from the tests' builders), and every change recorded as
the watch line `driftbot replay` reads.

One world for the service tests (tests/bot/service_world.py adds the service and the server
over it) and for the soak (bench/_soak.py drives it from outside a `driftbot run` process), so
both make the same objects and record the same lines.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from bot.app.service import Service
from bot.pipeline.sources import WATCHED, is_gitops_event
from core.model import FLUX_SOURCE_KINDS
from tests.builders_argocd import DIFF_CACHE, LIVE_CHILD, argocd_app
from tests.builders_flux import REV2, flux_event, helmrelease, kustomization, source
from tests.fakes.kube_api import FakeKubeAPI
from watchers.replay import dump_line

Build = Callable[[str, int], dict[str, Any]]
"""An object's state at a step, from its name: steps cycle through a few states."""

def argocd_states(name: str, step: int, base: str | None = None) -> dict[str, Any]:
    """Synced and healthy, then OutOfSync, then Degraded. Most apps are built on the small
    app-of-apps child fixture, every fifth on the large one with a full status (the fake
    server deep-copies every object several times)."""
    if base is None:
        base = DIFF_CACHE if name.endswith(("0", "5")) else LIVE_CHILD
    variant = step % 3
    if variant == 1:
        return argocd_app(
            name, base=base, sync="OutOfSync", out_of_sync=[("Deployment", "default", name)]
        )
    if variant == 2:
        return argocd_app(name, base=base, health="Degraded")
    return argocd_app(name, base=base)


def argocd_full_states(name: str, step: int) -> dict[str, Any]:
    """`argocd_states` on the large fixture whatever the name."""
    return argocd_states(name, step, DIFF_CACHE)


def kustomization_states(name: str, step: int) -> dict[str, Any]:
    """Ready, then failing to build, then applied at a new revision."""
    variant = step % 3
    if variant == 1:
        return kustomization(name, ready="False", reason="BuildFailed", message="kustomize build")
    if variant == 2:
        return kustomization(name, applied=REV2)
    return kustomization(name)


def helmrelease_states(name: str, step: int) -> dict[str, Any]:
    """Ready, then failing to upgrade."""
    if step % 2:
        return helmrelease(name, ready="False", reason="UpgradeFailed", message="upgrade failed")
    return helmrelease(name)


def source_states(kind: str) -> Build:
    """A Flux source of `kind`: ready, then failing, then at a new revision."""

    def build(name: str, step: int) -> dict[str, Any]:
        variant = step % 3
        if variant == 1:
            return source(kind, name, ready="False", reason="GitOperationFailed", message="x")
        if variant == 2:
            return source(kind, name, revision=REV2)
        return source(kind, name)

    return build


@functools.cache
def _built(build: Build, name: str, step: int) -> dict[str, Any]:
    """Objects cycle through a few states: build each once (the fake copies what it stores)."""
    return build(name, step)


@dataclass
class Obj:
    cluster: str
    kind: str
    name: str
    build: Build
    step: int = 0
    deleted: bool = False
    last: dict[str, Any] = field(default_factory=dict)


def population(
    cluster: str,
    argo: int,
    kustomizations: int,
    releases: int,
    sources: int,
    *,
    prefix: str = "",
    source_kinds: tuple[str, ...] = FLUX_SOURCE_KINDS,
    argocd: Build = argocd_states,
) -> list[Obj]:
    """So many objects of each kind on `cluster`, named `{prefix}app-000`, `{prefix}ks-000`,
    `{prefix}hr-000` and, for each source kind, `{prefix}{kind}-00`; the Applications step
    through `argocd`."""
    objs = [Obj(cluster, "Application", f"{prefix}app-{i:03d}", argocd) for i in range(argo)]
    objs += [
        Obj(cluster, "Kustomization", f"{prefix}ks-{i:03d}", kustomization_states)
        for i in range(kustomizations)
    ]
    objs += [
        Obj(cluster, "HelmRelease", f"{prefix}hr-{i:03d}", helmrelease_states)
        for i in range(releases)
    ]
    for kind in source_kinds:
        build = source_states(kind)
        objs += [
            Obj(cluster, kind, f"{prefix}{kind.lower()}-{i:02d}", build) for i in range(sources)
        ]
    return objs


class Change(NamedTuple):
    """One change made to a fake, as a watch would tell it and as a replay line."""

    at: datetime
    cluster: str
    watch_type: str
    obj: dict[str, Any]
    line: bytes


@dataclass
class World:
    """The fakes, the clock, and the recording of every change made to them (`lines`, the
    replay lines of the changes a watch of driftbot's would pass on; kept unless `keep_lines`
    is off, for a driver that writes them out as they come)."""

    apis: dict[str, FakeKubeAPI]
    clock: Callable[[], datetime]
    lines: list[bytes] = field(default_factory=list)
    last_rv: dict[tuple[str, str], int] = field(default_factory=dict)
    changes: int = 0
    event_serial: int = 0
    keep_lines: bool = True

    def _record(self, cluster: str, watch_type: str, obj: dict[str, Any], plural: str) -> Change:
        self.last_rv[(cluster, plural)] = int(obj["metadata"]["resourceVersion"])
        self.changes += 1
        at = self.clock()
        line = dump_line(at, cluster, watch_type, obj)
        if self.keep_lines and (plural != "events" or is_gitops_event(obj)):
            self.lines.append(line)
        return Change(at, cluster, watch_type, obj, line)

    def put(self, obj: Obj) -> Change:
        """Put `obj` in its current step on its cluster's fake (ADDED the first time)."""
        raw = _built(obj.build, obj.name, obj.step % 6)
        api = self.apis[obj.cluster]
        existed = bool(obj.last)
        stored = api.put(raw)
        obj.last = stored
        plural = api._resource_of(stored, None)[1]
        return self._record(obj.cluster, "MODIFIED" if existed else "ADDED", stored, plural)

    def change(self, obj: Obj) -> Change:
        obj.step += 1
        return self.put(obj)

    def delete(self, obj: Obj) -> Change:
        api = self.apis[obj.cluster]
        stored = api.delete(obj.last)
        obj.deleted = True
        return self._record(obj.cluster, "DELETED", stored, api._resource_of(stored, None)[1])

    def event(self, cluster: str, about: Obj, reason: str, message: str) -> Change:
        self.event_serial += 1
        raw = flux_event(
            about.kind,
            about.name,
            about.last["metadata"]["namespace"],
            reason=reason,
            message=message,
            warning=True,
            minutes=self.event_serial,
        )
        stored = self.apis[cluster].put(raw)
        return self._record(cluster, "ADDED", stored, "events")

    def noise(self, cluster: str) -> Change:
        """An Event about a Pod: not the bot's business."""
        self.event_serial += 1
        stored = self.apis[cluster].put(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"pod-{self.event_serial}", "namespace": "default"},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-0"},
                "reason": "BackOff",
                "message": "Back-off restarting failed container",
                "type": "Warning",
            }
        )
        return self._record(cluster, "ADDED", stored, "events")

    def caught_up(self, service: Service) -> bool:
        """Every watcher has handed over everything up to the last change of its resource."""
        for resource in service.resources:
            wanted = self.last_rv.get((resource.cluster, resource.watched.spec.plural))
            have = resource.watcher.resource_version
            if wanted is not None and (have is None or int(have) < wanted):
                return False
        return True


def install_crds(api: FakeKubeAPI) -> None:
    """Every CRD driftbot watches, served by `api`."""
    for watched in WATCHED:
        if watched.spec.group:
            api.install_crd(watched.spec.group, watched.spec.plural, kind=min(watched.kinds))


def watching_all(api: FakeKubeAPI) -> bool:
    return api.active_watches == len(WATCHED)


@asynccontextmanager
async def fakes(*names: str) -> AsyncIterator[dict[str, FakeKubeAPI]]:
    """A fake API server per cluster name, with the CRDs installed."""
    async with AsyncExitStack() as stack:
        apis = {name: await stack.enter_async_context(FakeKubeAPI()) for name in names}
        for api in apis.values():
            install_crds(api)
        yield apis


def kubeconfigs(apis: dict[str, FakeKubeAPI], folder: Path) -> dict[str, Path]:
    """A kubeconfig file per fake, in `folder`, by cluster name."""
    return {name: api.write_kubeconfig(folder / f"{name}.kubeconfig") for name, api in apis.items()}
