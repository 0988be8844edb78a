"""Leader election on a coordination.k8s.io/v1 Lease, so that of several replicas only one
watches, decides and delivers, and another takes over when it dies.

The protocol is client-go's (k8s.io/client-go/tools/leaderelection) on the Lease object:

- a candidate takes the Lease when it is absent, released (no holderIdentity) or expired
  (`renewTime + leaseDurationSeconds < now`); taking it from another holder counts one more
  `leaseTransitions` and sets `acquireTime`;
- the leader renews (`renewTime = now`) every retry period; every write carries the
  resourceVersion last read, so of two candidates racing for one Lease the second gets
  409 Conflict (or 409 AlreadyExists on create) and stays a candidate;
- the leader stops leading when it has not renewed for the renew deadline, or at once when it
  finds another holder in the Lease; the renew deadline is shorter than the lease duration, so
  it has stopped before a standby may take over;
- on a clean shutdown the leader releases the Lease (holderIdentity cleared), and a standby
  takes over at its next try instead of waiting out the lease duration.

`renewTime` and `acquireTime` are metav1.MicroTime, which the API server parses with exactly
six fractional digits (`2006-01-02T15:04:05.000000Z`); `format_micro_time` writes that form.
`decide` is the pure part (given the Lease read and the time, what to write); `LeaderElector`
does the reading and writing, on an injected clock and sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import ApiClient, CoordinationV1Api
from kubernetes_asyncio.client.rest import ApiException

from bot.pipeline.sources import ClientFactory, api_client_for, utc_now
from config.schema import ClusterConfig, Config
from config.settings import LeaderElectionSettings

__all__ = [
    "LeaderElector",
    "LeaseRecord",
    "LeaseTiming",
    "decide",
    "format_micro_time",
    "lease_client",
    "lease_namespace",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    """client-go's defaults: lease 15 s, renew deadline 10 s, retry every 2 s (seconds)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("lease_duration > renew_deadline > retry_period > 0 is required")

    @classmethod
    def from_settings(cls, settings: LeaderElectionSettings) -> LeaseTiming:
        return cls(
            settings.lease_duration.total_seconds(),
            settings.renew_deadline.total_seconds(),
            settings.retry_period.total_seconds(),
        )


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The spec of a Lease and the resourceVersion it was read at ("" for one not created)."""

    holder: str = ""
    lease_duration: int = 0
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0
    resource_version: str = ""

    def expired(self, now: datetime) -> bool:
        """Free to take: released, never renewed, or not renewed for its lease duration."""
        if not self.holder or self.renew_time is None:
            return True
        return self.renew_time + timedelta(seconds=self.lease_duration) < now


def decide(
    current: LeaseRecord | None, identity: str, now: datetime, timing: LeaseTiming
) -> LeaseRecord | None:
    """The record to write to take or keep the Lease, or None when another holder has it and
    it has not expired (decides only; `current` None: there is no Lease yet)."""
    duration = math.ceil(timing.lease_duration)
    if current is None:
        return LeaseRecord(identity, duration, now, now, 0)
    if current.holder == identity:
        return replace(current, lease_duration=duration, renew_time=now)
    if not current.expired(now):
        return None
    return replace(
        current,
        holder=identity,
        lease_duration=duration,
        acquire_time=now,
        renew_time=now,
        transitions=current.transitions + 1,
    )


def format_micro_time(value: datetime) -> str:
    """metav1.MicroTime's wire form: UTC, six fractional digits, `Z`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _spec(record: LeaseRecord) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "holderIdentity": record.holder or None,
        "leaseDurationSeconds": record.lease_duration,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = format_micro_time(record.acquire_time)
    if record.renew_time is not None:
        spec["renewTime"] = format_micro_time(record.renew_time)
    return spec


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _record_of(lease: Any) -> LeaseRecord:
    spec = lease.spec
    metadata = lease.metadata
    if spec is None:
        return LeaseRecord(resource_version=metadata.resource_version or "")
    return LeaseRecord(
        holder=spec.holder_identity or "",
        lease_duration=spec.lease_duration_seconds or 0,
        acquire_time=_aware(spec.acquire_time),
        renew_time=_aware(spec.renew_time),
        transitions=spec.lease_transitions or 0,
        resource_version=metadata.resource_version or "",
    )


class LeaderElector:
    """One candidate for one Lease: `acquire()` returns once this process leads; then it
    renews in the background until `release()` or until it loses the Lease (`lost` is set)."""

    def __init__(
        self,
        client: ApiClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        timing: LeaseTiming | None = None,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.api = CoordinationV1Api(client)
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.timing = timing or LeaseTiming()
        self._clock = clock
        self._sleep = sleep
        self._observed: LeaseRecord | None = None
        self._renewing: asyncio.Task[None] | None = None
        self.leading = asyncio.Event()
        """Set while this process holds the Lease."""
        self.lost = asyncio.Event()
        """Set when leadership ended without `release()`: renewals failed for the renew
        deadline, or another holder took the Lease. Cleared by the next `acquire()`."""
        self.terms = 0
        """How many times this process has acquired the Lease."""

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    @property
    def holder(self) -> str:
        """The holder as last read or written ("" when none, or not read yet)."""
        return self._observed.holder if self._observed is not None else ""

    # -- the protocol ------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Try every retry period until this process holds the Lease; then start renewing."""
        if self.is_leader:
            return
        self.lost.clear()
        while True:
            try:
                if await self.try_acquire_or_renew():
                    break
            except Exception as exc:
                logger.warning("leader election: cannot reach Lease %s: %s", self._where, _why(exc))
            await self._sleep(self.timing.retry_period)
        self.terms += 1
        self.leading.set()
        logger.info(
            "leader election: %s leads (Lease %s, transition %d)",
            self.identity,
            self._where,
            self._observed.transitions if self._observed else 0,
        )
        self._renewing = asyncio.create_task(self._renew(), name=f"lease-renew:{self.name}")

    async def wait_lost(self) -> None:
        await self.lost.wait()

    async def release(self) -> None:
        """Stop renewing and, if this process still holds the Lease, clear its holder so a
        standby takes over at its next try. A failure is logged: the Lease then expires."""
        await self._stop_renewing()
        if not self.is_leader:
            return
        self.leading.clear()
        try:
            for _ in range(3):
                # Read first: a renewal cut short by the stop may have changed the Lease.
                current = await self._read()
                if current is None or current.holder != self.identity:
                    return
                released = replace(current, holder="", lease_duration=1, renew_time=self._clock())
                try:
                    await self._write(released)
                except ApiException as exc:
                    if exc.status == 409:
                        continue
                    raise
                logger.info("leader election: %s released Lease %s", self.identity, self._where)
                return
            raise RuntimeError("the Lease kept changing")
        except Exception as exc:
            logger.warning(
                "leader election: releasing Lease %s failed (%s); it expires in %d s",
                self._where,
                _why(exc),
                math.ceil(self.timing.lease_duration),
            )

    async def try_acquire_or_renew(self) -> bool:
        """One read and at most one write: True when this process holds the Lease after it.
        A write that loses a race (409) is False; other API errors raise."""
        now = self._clock()
        current = await self._read()
        wanted = decide(current, self.identity, now, self.timing)
        if wanted is None:
            return False
        try:
            if current is None:
                await self._create(wanted)
            else:
                await self._write(wanted)
        except ApiException as exc:
            if exc.status == 409:
                logger.debug("leader election: Lease %s changed under us (409)", self._where)
                self._observed = None
                return False
            raise
        return True

    # -- internals --------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def _renew(self) -> None:
        last_renewed = self._clock()
        while True:
            await self._sleep(self.timing.retry_period)
            try:
                renewed = await self.try_acquire_or_renew()
            except Exception as exc:
                logger.warning(
                    "leader election: renewing Lease %s failed: %s", self._where, _why(exc)
                )
                renewed = False
            if renewed:
                last_renewed = self._clock()
                continue
            if self._observed is not None and self._observed.holder not in ("", self.identity):
                self._lose(f"Lease {self._where} is held by {self._observed.holder}")
                return
            behind = (self._clock() - last_renewed).total_seconds()
            if behind >= self.timing.renew_deadline:
                self._lose(f"Lease {self._where} not renewed for {behind:.1f} s")
                return

    def _lose(self, why: str) -> None:
        logger.error("leader election: %s stops leading: %s", self.identity, why)
        self.leading.clear()
        self.lost.set()
        self._renewing = None

    async def _stop_renewing(self) -> None:
        task, self._renewing = self._renewing, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read(self) -> LeaseRecord | None:
        try:
            lease = await self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self._request_timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                self._observed = None
                return None
            raise
        self._observed = _record_of(lease)
        return self._observed

    async def _create(self, record: LeaseRecord) -> None:
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": _spec(record),
        }
        created = await self.api.create_namespaced_lease(
            self.namespace, body, _request_timeout=self._request_timeout
        )
        self._observed = _record_of(created)

    async def _write(self, record: LeaseRecord) -> None:
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": record.resource_version,
            },
            "spec": _spec(record),
        }
        replaced = await self.api.replace_namespaced_lease(
            self.name, self.namespace, body, _request_timeout=self._request_timeout
        )
        self._observed = _record_of(replaced)

    @property
    def _request_timeout(self) -> float:
        """A request that hangs must not outlast the renew deadline (real seconds)."""
        return max(1.0, self.timing.renew_deadline / 2)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}".strip()
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def in_pod(environ: Mapping[str, str] = os.environ) -> bool:
    """Running in a Kubernetes pod (the API server's address is in the environment)."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST"))


def lease_namespace(
    settings: LeaderElectionSettings,
    environ: Mapping[str, str] = os.environ,
    service_account_namespace: Path = SERVICE_ACCOUNT_NAMESPACE,
) -> str:
    """The configured namespace; else the pod's (its service account's); else `default`."""
    if settings.namespace:
        return settings.namespace
    if in_pod(environ):
        with contextlib.suppress(OSError):
            found = service_account_namespace.read_text().strip()
            if found:
                return found
    return "default"


async def lease_client(
    config: Config,
    environ: Mapping[str, str] = os.environ,
    factory: ClientFactory = api_client_for,
) -> ApiClient:
    """The client of the cluster that holds the Lease: the pod's own (in-cluster service
    account) when running in a pod, else the first cluster of the config. ValueError when
    there is neither."""
    if in_pod(environ):
        cluster = ClusterConfig(name="lease", in_cluster=True)
    elif config.clusters:
        cluster = config.clusters[0]
    else:
        raise ValueError(
            "leader election needs a cluster for its Lease: run in a pod, or name a cluster "
            "in the config file"
        )
    return await factory(cluster)
