"""Leader election on a coordination.k8s.io/v1 Lease: the real kubernetes_asyncio client against
the fake API server, on virtual time shared by every candidate (no test waits for real time).

The decision table first (what to write given the Lease read and the time), then the protocol:
who creates, who waits, when a standby takes over from a leader that died, what a release
and a renewal failure do, and the fake's own answers (404, 409 AlreadyExists, 409 Conflict,
400 on a MicroTime of the wrong form). Last, the settings the chart sets by environment.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes_asyncio.client import ApiClient, CoordinationV1Api
from kubernetes_asyncio.client.rest import ApiException

from bot.app.leader import (
    LeaderElector,
    LeaseRecord,
    LeaseTiming,
    decide,
    format_micro_time,
    lease_client,
    lease_namespace,
)
from bot.app.service import lead
from config.loader import ConfigError
from config.schema import ClusterConfig, Config
from config.settings import LeaderElectionSettings, load_settings
from tests.fakes.kube_api import FakeKubeAPI

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TIMING = LeaseTiming()
MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
NS, NAME = "driftbot", "driftbot"


# --- virtual time ----------------------------------------------------------------------------


ELECTOR_LOOPS = {"LeaderElector.acquire", "LeaderElector._renew"}
"""The candidate's loops that sleep between tries (its waits on events are not work)."""


class VirtualTime:
    """A clock and a sleep for every candidate: time moves only when every task that sleeps
    on it, every task started with `spawn` and every task running a candidate's loop is
    asleep or done, and then straight to the earliest wake-up. A candidate named in `frozen`
    sleeps for ever at its next sleep: a process that died without a word."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._asleep: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()
        self.frozen: set[str] = set()
        self._loop = asyncio.get_running_loop()
        self._loop.set_task_factory(self._task_factory)

    def _task_factory(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **options: Any
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **options)
        if getattr(coro, "__qualname__", "") in ELECTOR_LOOPS:
            self._track(task)
        return task

    def clock(self) -> datetime:
        return self.now

    def sleeper(self, name: str) -> Callable[[float], Coroutine[Any, Any, None]]:
        """The sleep of the candidate `name` (frozen for ever once `name` is in `frozen`)."""

        async def sleep(seconds: float) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._track(task)
            if name in self.frozen:
                self._asleep.add(task)
                self._changed.set()
                await asyncio.Future()
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            when = self.now + timedelta(seconds=seconds)
            heapq.heappush(self._sleepers, (when, next(self._seq), future))
            self._asleep.add(task)
            self._changed.set()
            try:
                await future
            finally:
                self._asleep.discard(task)

        return sleep

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._track(task)
        return task

    def _track(self, task: asyncio.Task[Any]) -> None:
        if task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(lambda _: self._changed.set())

    async def _settle(self) -> None:
        """Wait (for I/O with the fake, never for time) until every task is asleep or done."""
        while True:
            for _ in range(5):
                await asyncio.sleep(0)
            busy = [t for t in self._tasks if not t.done() and t not in self._asleep]
            if not busy:
                return
            self._changed.clear()
            async with asyncio.timeout(10):
                await self._changed.wait()

    async def run_for(self, seconds: float) -> None:
        await self.run_until(self.now + timedelta(seconds=seconds))

    async def run_until(self, end: datetime, stop: Callable[[], bool] = lambda: False) -> None:
        """Let time pass up to `end`, or until `stop()` holds after a wake-up."""
        while True:
            await self._settle()
            if stop():
                return
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers or self._sleepers[0][0] > end:
                self.now = max(self.now, end)
                return
            when, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            future.set_result(None)

    async def close(self) -> None:
        self._loop.set_task_factory(None)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@asynccontextmanager
async def world() -> AsyncIterator[tuple[FakeKubeAPI, VirtualTime, Callable[[str], LeaderElector]]]:
    """The fake API server, virtual time, and a factory of candidates with their own client."""
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(FakeKubeAPI())
        time = VirtualTime(T0)
        stack.push_async_callback(time.close)

        def candidate(identity: str) -> LeaderElector:
            client = ApiClient(api.configuration())
            stack.push_async_callback(client.close)
            return LeaderElector(
                client,
                name=NAME,
                namespace=NS,
                identity=identity,
                clock=time.clock,
                sleep=time.sleeper(identity),
            )

        yield api, time, candidate


def spec(api: FakeKubeAPI) -> dict[str, Any]:
    lease = api.lease(NS, NAME)
    assert lease is not None
    result: dict[str, Any] = lease["spec"]
    return result


def micro(value: str) -> datetime:
    assert MICRO_TIME.fullmatch(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# --- the decision ------------------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


HELD_BY_B = LeaseRecord("b", 15, at(0), at(100), 3, "42")


@pytest.mark.parametrize(
    ("current", "now", "expected"),
    [
        pytest.param(None, at(0), LeaseRecord("a", 15, at(0), at(0), 0), id="absent: create"),
        pytest.param(
            LeaseRecord("a", 15, at(0), at(100), 2, "42"),
            at(102),
            LeaseRecord("a", 15, at(0), at(102), 2, "42"),
            id="own: renew, same acquireTime and transitions",
        ),
        pytest.param(HELD_BY_B, at(110), None, id="another's, fresh: wait"),
        pytest.param(HELD_BY_B, at(115), None, id="another's, at the very end: wait"),
        pytest.param(
            HELD_BY_B,
            at(115.000001),
            LeaseRecord("a", 15, at(115.000001), at(115.000001), 4, "42"),
            id="another's, expired: take over, one more transition",
        ),
        pytest.param(
            LeaseRecord("", 1, at(0), at(100), 3, "42"),
            at(100.5),
            LeaseRecord("a", 15, at(100.5), at(100.5), 4, "42"),
            id="released: take at once",
        ),
        pytest.param(
            LeaseRecord("b", 15, None, None, 0, "42"),
            at(1),
            LeaseRecord("a", 15, at(1), at(1), 1, "42"),
            id="never renewed: take",
        ),
    ],
)
def test_decide(current: LeaseRecord | None, now: datetime, expected: LeaseRecord | None) -> None:
    assert decide(current, "a", now, TIMING) == expected


def test_micro_time_has_six_fractional_digits_even_on_a_whole_second() -> None:
    assert format_micro_time(T0) == "2026-03-02T09:00:00.000000Z"
    plus_one = timezone_offset_hours(1)
    assert format_micro_time(T0.astimezone(plus_one)) == "2026-03-02T09:00:00.000000Z"
    assert format_micro_time(at(0.25)) == "2026-03-02T09:00:00.250000Z"


def timezone_offset_hours(hours: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours))


def test_timing_refuses_a_renew_deadline_not_under_the_lease_duration() -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        LeaseTiming(lease_duration=10, renew_deadline=10, retry_period=2)


# --- the protocol ------------------------------------------------------------------------------


async def test_first_candidate_creates_the_lease_in_the_api_servers_own_format() -> None:
    async with world() as (api, time, candidate):
        a = candidate("pod-a")
        time.spawn(a.acquire())
        await time.run_for(0)
        assert a.is_leader
        lease = api.lease(NS, NAME)
        assert lease is not None
        assert (lease["apiVersion"], lease["kind"]) == ("coordination.k8s.io/v1", "Lease")
        got = lease["spec"]
        assert got["holderIdentity"] == "pod-a"
        assert got["leaseDurationSeconds"] == 15
        assert got["leaseTransitions"] == 0
        assert micro(got["acquireTime"]) == micro(got["renewTime"]) == T0
        creates = [r for r in api.requests if r.verb == "create"]
        assert [r.status for r in creates] == [201]


async def test_leader_renews_every_retry_period_and_the_standby_waits() -> None:
    async with world() as (api, time, candidate):
        a, b = candidate("pod-a"), candidate("pod-b")
        time.spawn(a.acquire())
        await time.run_for(0)
        time.spawn(b.acquire())
        await time.run_for(61)
        assert a.is_leader and not b.is_leader
        assert micro(spec(api)["renewTime"]) == at(60)  # renewed at 2, 4, ... 60
        assert micro(spec(api)["acquireTime"]) == T0
        assert spec(api)["leaseTransitions"] == 0
        updates = [r for r in api.requests if r.verb == "update"]
        assert len(updates) == 30 and {r.status for r in updates} == {200}


async def test_standby_takes_over_once_a_dead_leaders_lease_expires() -> None:
    async with world() as (api, time, candidate):
        a, b = candidate("pod-a"), candidate("pod-b")
        time.spawn(a.acquire())
        await time.run_for(0)
        time.spawn(b.acquire())
        await time.run_for(10)
        time.frozen.add("pod-a")  # dies after its next renewal, releasing nothing
        await time.run_for(3)
        last_renewal = micro(spec(api)["renewTime"])
        assert last_renewal == at(12) and spec(api)["holderIdentity"] == "pod-a"
        await time.run_until(at(60), stop=lambda: b.is_leader)
        assert b.is_leader
        took_over = time.now
        assert last_renewal + timedelta(seconds=15) < took_over
        assert took_over <= last_renewal + timedelta(seconds=15 + TIMING.retry_period)
        got = spec(api)
        assert got["holderIdentity"] == "pod-b"
        assert got["leaseTransitions"] == 1
        assert micro(got["acquireTime"]) == took_over


async def test_release_clears_the_holder_and_the_standby_takes_over_at_its_next_try() -> None:
    async with world() as (api, time, candidate):
        a, b = candidate("pod-a"), candidate("pod-b")
        time.spawn(a.acquire())
        await time.run_for(0)
        time.spawn(b.acquire())
        await time.run_for(5)
        released_at = time.now
        await a.release()
        assert not a.is_leader and not a.lost.is_set()
        assert "holderIdentity" not in spec(api) or spec(api)["holderIdentity"] is None
        await time.run_until(at(60), stop=lambda: b.is_leader)
        assert b.is_leader
        assert time.now - released_at <= timedelta(seconds=TIMING.retry_period)
        assert spec(api)["leaseTransitions"] == 1


async def test_renewals_failing_for_the_renew_deadline_end_leadership() -> None:
    async with world() as (api, time, candidate):
        a = candidate("pod-a")
        time.spawn(a.acquire())
        await time.run_for(0)
        api.fail_next(500, count=4, on="get")  # 8 s without renewal: still leading
        await time.run_for(9)
        assert a.is_leader and not a.lost.is_set()
        assert micro(spec(api)["renewTime"]) == T0
        await time.run_for(2)
        assert micro(spec(api)["renewTime"]) == at(10)
        api.fail_next(503, count=100, on="get")
        renewed = micro(spec(api)["renewTime"])
        await time.run_until(at(60), stop=lambda: a.lost.is_set())
        assert a.lost.is_set() and not a.is_leader
        assert time.now - renewed == timedelta(seconds=TIMING.renew_deadline)
        assert time.now - renewed < timedelta(seconds=TIMING.lease_duration)


async def test_leader_that_finds_another_holder_stops_at_once() -> None:
    async with world() as (api, time, candidate):
        a = candidate("pod-a")
        time.spawn(a.acquire())
        await time.run_for(1)
        lease = api.lease(NS, NAME)
        assert lease is not None
        lease["spec"]["holderIdentity"] = "pod-z"
        api.put(lease, plural="leases")
        await time.run_for(TIMING.retry_period)
        assert a.lost.is_set() and not a.is_leader
        assert spec(api)["holderIdentity"] == "pod-z"  # left alone


async def test_two_candidates_racing_for_one_lease_make_one_leader() -> None:
    async with world() as (api, _time, candidate):
        a, b = candidate("pod-a"), candidate("pod-b")
        api.put(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": NAME, "namespace": NS},
                "spec": {
                    "holderIdentity": "pod-old",
                    "leaseDurationSeconds": 15,
                    "renewTime": format_micro_time(T0 - timedelta(minutes=5)),
                    "leaseTransitions": 7,
                },
            },
            plural="leases",
        )
        results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
        assert sorted(results) == [False, True]
        winner = "pod-a" if results[0] else "pod-b"
        assert spec(api)["holderIdentity"] == winner
        assert spec(api)["leaseTransitions"] == 8


async def test_acquire_keeps_trying_through_api_errors() -> None:
    async with world() as (api, time, candidate):
        a = candidate("pod-a")
        api.fail_next(403, count=3, on="get")
        time.spawn(a.acquire())
        await time.run_until(at(60), stop=lambda: a.is_leader)
        assert a.is_leader
        assert time.now == at(3 * TIMING.retry_period)


async def test_release_after_a_renewal_whose_answer_was_lost_still_clears_the_holder() -> None:
    async with world() as (api, time, candidate):
        a = candidate("pod-a")
        time.spawn(a.acquire())
        await time.run_for(1)
        lease = api.lease(NS, NAME)
        assert lease is not None
        api.put(lease, plural="leases")  # the Lease moved on: a's resourceVersion is stale
        await a.release()
        assert not spec(api).get("holderIdentity")
        assert [r.status for r in api.requests if r.verb == "update"][-1] == 200


class Lifecycle:
    """A stand-in for the service `lead` runs: records what was done to it, in order."""

    def __init__(self) -> None:
        self.done: list[str] = []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Lifecycle]:
        self.done.append("open")
        try:
            yield self
        finally:
            self.done.append("close")

    async def abandon(self) -> None:
        self.done.append("abandon")


async def test_lead_abandons_on_loss_stands_by_again_and_releases_after_closing() -> None:
    async with world() as (api, time, candidate):
        a = candidate("pod-a")
        service = Lifecycle()
        stopping = asyncio.Event()
        leading: list[bool] = []
        # Not a task of the virtual time: it waits on events, the candidate's own tasks sleep.
        task = asyncio.create_task(lead(a, cast(Any, service.running), stopping, leading.append))
        await time.run_for(1)
        assert service.done == ["open"] and leading == [True]
        lease = api.lease(NS, NAME)
        assert lease is not None
        lease["spec"]["holderIdentity"] = "pod-z"
        lease["spec"]["renewTime"] = format_micro_time(time.now)
        api.put(lease, plural="leases")
        await time.run_for(TIMING.retry_period)
        assert service.done == ["open", "abandon", "close"] and leading == [True, False]
        assert not a.is_leader and not task.done()  # standing by again
        await time.run_until(at(60), stop=lambda: a.is_leader)
        assert time.now > at(1 + 15)  # not before pod-z's lease expired
        await time.run_for(0)
        assert service.done[-1] == "open", (service.done, leading, a.lost.is_set(), spec(api))
        assert spec(api)["holderIdentity"] == "pod-a"
        stopping.set()
        await task
        assert service.done[-1] == "close" and leading[-1] is False
        assert not spec(api).get("holderIdentity")  # released, after the service closed


# --- the fake's Lease endpoints, as the real server answers ------------------------------------


async def test_fake_lease_endpoints_answer_like_the_api_server() -> None:
    async with FakeKubeAPI() as api, ApiClient(api.configuration()) as client:
        leases = CoordinationV1Api(client)
        with pytest.raises(ApiException) as absent:
            await leases.read_namespaced_lease(NAME, NS)
        assert absent.value.status == 404
        body: Any = {
            "metadata": {"name": NAME},
            "spec": {"holderIdentity": "a", "renewTime": format_micro_time(T0)},
        }
        created = await leases.create_namespaced_lease(NS, body)
        version = created.metadata.resource_version
        with pytest.raises(ApiException) as exists:
            await leases.create_namespaced_lease(NS, body)
        assert exists.value.status == 409 and '"AlreadyExists"' in str(exists.value.body)
        body["metadata"]["resourceVersion"] = version
        body["spec"]["holderIdentity"] = "b"
        replaced = await leases.replace_namespaced_lease(NAME, NS, body)
        assert replaced.spec.holder_identity == "b"
        assert int(replaced.metadata.resource_version) > int(version)
        body["spec"]["holderIdentity"] = "c"  # still the old resourceVersion
        with pytest.raises(ApiException) as stale:
            await leases.replace_namespaced_lease(NAME, NS, body)
        assert stale.value.status == 409 and '"Conflict"' in str(stale.value.body)
        body["metadata"]["resourceVersion"] = replaced.metadata.resource_version
        body["spec"]["renewTime"] = T0.isoformat()  # no fractional seconds: not a MicroTime
        with pytest.raises(ApiException) as malformed:
            await leases.replace_namespaced_lease(NAME, NS, body)
        assert malformed.value.status == 400
        assert spec(api)["holderIdentity"] == "b"


# --- where the Lease lives, and the settings ---------------------------------------------------


async def test_lease_lives_in_the_pods_cluster_in_a_pod_else_in_the_first_cluster() -> None:
    asked: list[ClusterConfig] = []

    async def factory(cluster: ClusterConfig) -> ApiClient:
        asked.append(cluster)
        return ApiClient()

    config = Config.model_validate(
        {"clusters": [{"name": "prod", "kubeconfig": "/k"}, {"name": "dev", "kubeconfig": "/d"}]}
    )
    for environ in ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, {}):
        client = await lease_client(config, environ, factory)
        await client.close()
    assert [(c.in_cluster, c.name) for c in asked] == [(True, "lease"), (False, "prod")]
    with pytest.raises(ValueError, match="needs a cluster"):
        await lease_client(Config(), {}, factory)


def test_lease_namespace_is_the_setting_else_the_pods_else_default(tmp_path: Path) -> None:
    account = tmp_path / "namespace"
    account.write_text("gitops\n")
    pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert lease_namespace(LeaderElectionSettings(namespace="ops"), pod, account) == "ops"
    assert lease_namespace(LeaderElectionSettings(), pod, account) == "gitops"
    assert lease_namespace(LeaderElectionSettings(), {}, account) == "default"


def test_settings_read_the_names_the_chart_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DRIFTBOT_LEADER_ELECTION__ENABLED": "true",
        "DRIFTBOT_LEADER_ELECTION__LEASE_NAME": "driftbot-prod",
        "DRIFTBOT_LEADER_ELECTION__NAMESPACE": "gitops",
        "DRIFTBOT_LEADER_ELECTION__IDENTITY": "driftbot-7d9f-abcde",
        "DRIFTBOT_LEADER_ELECTION__RETRY_PERIOD": "500ms",
    }.items():
        monkeypatch.setenv(name, value)
    got = load_settings().leader_election
    assert got.enabled and got.lease_name == "driftbot-prod" and got.namespace == "gitops"
    assert got.identity == "driftbot-7d9f-abcde"
    timing = LeaseTiming.from_settings(got)
    assert timing == LeaseTiming(15.0, 10.0, 0.5)


def test_settings_default_to_off_with_client_go_timings_and_the_host_name() -> None:
    import socket

    got = LeaderElectionSettings()
    assert not got.enabled and got.lease_name == "driftbot" and got.namespace is None
    assert got.identity == socket.gethostname()
    assert LeaseTiming.from_settings(got) == LeaseTiming()


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("LEASE_DURATION", "1500ms", "whole seconds"),
        ("RENEW_DEADLINE", "20s", "lease_duration > renew_deadline"),
        ("RETRY_PERIOD", "10s", "renew_deadline > retry_period"),
        ("RETRY_PERIOD", "2", "no unit"),
    ],
)
def test_settings_refuse_timings_that_cannot_work(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, error: str
) -> None:
    monkeypatch.setenv(f"DRIFTBOT_LEADER_ELECTION__{variable}", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = str(caught.value.errors)
    assert "DRIFTBOT_LEADER_ELECTION" in text and error in text
