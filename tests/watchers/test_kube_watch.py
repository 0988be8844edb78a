"""The list -> watch -> relist loop, driven through the real kubernetes_asyncio client.

Every test runs the real client against tests/fakes/kube_api.py over HTTP on 127.0.0.1. Sleeps
are injected: backoff and re-check delays are recorded and pass at once, so no test waits for
real except the inactivity test, whose timeout is a few tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import load_kube_config, load_kube_config_from_dict

from tests.fakes.kube_api import FakeKubeAPI
from tests.upstream import load_fixture
from watchers.backoff import Backoff
from watchers.kube_watch import KubeApiError, ResourceSpec, ResourceWatcher, _error_from

APPS = ResourceSpec("argoproj.io", "v1alpha1", "applications")
HELMRELEASES = ResourceSpec("helm.toolkit.fluxcd.io", "v2", "helmreleases")
EVENTS = ResourceSpec("", "v1", "events", namespace="argocd")


def fixture(relpath: str) -> dict[str, Any]:
    loaded = load_fixture(relpath)
    assert isinstance(loaded, dict)
    return loaded


def app(name: str, namespace: str = "argocd", **labels: str) -> dict[str, Any]:
    """The upstream live-child Application under another name."""
    obj = fixture("argocd/live-child-application.yaml")
    obj["metadata"]["name"] = name
    obj["metadata"]["namespace"] = namespace
    if labels:
        obj["metadata"]["labels"] = labels
    return obj


def helmrelease(name: str) -> dict[str, Any]:
    obj = fixture("flux/helmrelease-history-example.yaml")
    obj["metadata"] = {"name": name, "namespace": "podinfo"}
    return obj


class Recorder:
    """The caller's side: what on_list and on_event received, with a way to wait for it."""

    def __init__(self) -> None:
        self.lists: list[tuple[list[dict[str, Any]], str]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail_next_event = False
        self._changed = asyncio.Event()

    async def on_list(self, objects: list[dict[str, Any]], resource_version: str) -> None:
        self.lists.append((objects, resource_version))
        self._poke()

    async def on_event(self, event_type: str, obj: dict[str, Any]) -> None:
        if self.fail_next_event:
            self.fail_next_event = False
            raise RuntimeError("store is down")
        self.events.append((event_type, obj))
        self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    def listed_names(self, index: int = -1) -> list[str]:
        return sorted(obj["metadata"]["name"] for obj in self.lists[index][0])

    def event_log(self) -> list[tuple[str, str]]:
        return [(kind, obj["metadata"]["name"]) for kind, obj in self.events]


class RecordingSleep:
    """An injected sleep: remembers each delay and only yields to the loop (or really sleeps)."""

    def __init__(self, *, real: bool = False) -> None:
        self.delays: list[float] = []
        self.entered = asyncio.Event()
        self._real = real

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.entered.set()
        await asyncio.sleep(delay if self._real else 0)


class Harness:
    def __init__(self, api: FakeKubeAPI, client: ApiClient) -> None:
        self.api = api
        self.client = client
        self.watchers: list[ResourceWatcher] = []

    def start(
        self, resource: ResourceSpec = APPS, **options: Any
    ) -> tuple[ResourceWatcher, Recorder, RecordingSleep]:
        recorder, sleep = Recorder(), RecordingSleep()
        options.setdefault("sleep", sleep)
        options.setdefault("backoff", Backoff(initial=1.0, cap=8.0, rng=lambda: 1.0))
        options.setdefault("min_watch_seconds", 0.0)
        options.setdefault("absent_recheck", 30.0)
        watcher = ResourceWatcher(
            options.pop("client", self.client),
            resource,
            on_list=recorder.on_list,
            on_event=recorder.on_event,
            cluster="test",
            **options,
        )
        self.watchers.append(watcher)
        watcher.start()
        return watcher, recorder, sleep

    async def watching(self, count: int = 1) -> None:
        """Wait until `count` watch requests have started streaming on the server."""
        await self.api.wait_for(
            lambda: self.api.active_watches >= 1 and self.api.watches_served >= count
        )


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeAPI]:
    async with FakeKubeAPI() as server:
        server.install_crd("argoproj.io", "applications", kind="Application")
        yield server


@pytest.fixture
async def h(api: FakeKubeAPI) -> AsyncIterator[Harness]:
    async with ApiClient(api.configuration()) as client:
        harness = Harness(api, client)
        yield harness
        for watcher in harness.watchers:
            await watcher.stop()


# -- list and watch -----------------------------------------------------------------------------


async def test_initial_list_is_handed_over_with_its_resource_version(h: Harness) -> None:
    h.api.put(app("checkout"))
    h.api.put(app("payments"))
    watcher, rec, _ = h.start()
    await h.watching()

    assert rec.listed_names(0) == ["checkout", "payments"]
    assert rec.lists[0][1] == h.api.resource_version
    assert all(obj["kind"] == "Application" for obj in rec.lists[0][0])
    assert watcher.synced.is_set()
    watch = h.api.watch_requests()[0]
    assert watch.query["resourceVersion"] == h.api.resource_version
    assert watch.query["allowWatchBookmarks"] == "true"


async def test_core_list_items_get_the_kind_and_api_version_the_server_leaves_out(
    h: Harness,
) -> None:
    h.api.put(fixture("argocd/event-sync-status-updated.json"))
    h.api.put(fixture("argocd/event-automated-sync.json"))
    _, rec, _ = h.start(EVENTS)
    await h.watching()

    assert len(rec.lists[0][0]) == 2
    assert {(o["apiVersion"], o["kind"]) for o in rec.lists[0][0]} == {("v1", "Event")}
    assert h.api.list_requests()[0].path == "/api/v1/namespaces/argocd/events"

    h.api.put(fixture("argocd/event-rollback-initiated.json"))
    await rec.wait_for(lambda: len(rec.events) == 1)
    assert rec.events[0][1]["reason"] == "OperationStarted"


async def test_watch_events_arrive_in_the_servers_order(h: Harness) -> None:
    h.api.put(app("checkout"))
    watcher, rec, _ = h.start()
    await h.watching()

    for revision in range(5):
        changed = app("checkout")
        changed["spec"]["source"]["targetRevision"] = f"1.{revision}.0"
        h.api.put(changed)
    h.api.put(app("payments"))
    h.api.delete(app("checkout"))
    await rec.wait_for(lambda: len(rec.events) == 7)

    assert rec.event_log() == [("MODIFIED", "checkout")] * 5 + [
        ("ADDED", "payments"),
        ("DELETED", "checkout"),
    ]
    targets = [obj["spec"]["source"]["targetRevision"] for _, obj in rec.events[:5]]
    assert targets == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
    versions = [int(obj["metadata"]["resourceVersion"]) for _, obj in rec.events]
    assert versions == sorted(versions)
    assert watcher.resource_version == h.api.resource_version
    assert watcher.counters.events == 7


async def test_label_selector_applies_to_list_and_watch(h: Harness) -> None:
    h.api.put(app("checkout", team="payments"))
    h.api.put(app("search", team="discovery"))
    _, rec, _ = h.start(
        ResourceSpec("argoproj.io", "v1alpha1", "applications", label_selector="team=payments")
    )
    await h.watching()
    h.api.put(app("search", team="discovery"))
    h.api.put(app("refunds", team="payments"))
    await rec.wait_for(lambda: len(rec.events) == 1)

    assert rec.listed_names(0) == ["checkout"]
    assert rec.event_log() == [("ADDED", "refunds")]
    assert h.api.watch_requests()[0].query["labelSelector"] == "team=payments"


async def test_a_paged_list_is_handed_over_whole(h: Harness) -> None:
    for name in ("a", "b", "c", "d", "e"):
        h.api.put(app(name))
    _, rec, _ = h.start(page_size=2)
    await h.watching()

    assert len(rec.lists) == 1
    assert rec.listed_names(0) == ["a", "b", "c", "d", "e"]
    assert len(h.api.list_requests()) == 3
    assert "continue" in h.api.list_requests()[1].query


async def test_prepare_turns_each_page_as_it_arrives_and_leaves_out_what_it_drops(
    h: Harness,
) -> None:
    for name in ("a", "b", "c", "d", "e"):
        h.api.put(app(name))
    pages_seen: list[int] = []

    def prepare(obj: dict[str, Any]) -> str | None:
        pages_seen.append(len(h.api.list_requests()))
        name = obj["metadata"]["name"]
        return None if name == "c" else name.upper()

    _, rec, _ = h.start(page_size=2, prepare=prepare)
    await h.watching()

    assert rec.lists[0][0] == ["A", "B", "D", "E"]
    assert pages_seen == [1, 1, 2, 2, 3]


async def test_an_object_larger_than_a_stream_buffer_arrives_intact(h: Harness) -> None:
    _, rec, _ = h.start()
    await h.watching()
    big = app("monorepo")
    big["metadata"]["annotations"]["example.com/notes"] = "x" * 400_000
    h.api.put(big)
    await rec.wait_for(lambda: len(rec.events) == 1)

    assert rec.events[0][1]["metadata"]["annotations"]["example.com/notes"] == "x" * 400_000


# -- 410, drops, errors -------------------------------------------------------------------------


async def test_expired_mid_watch_relists_and_the_gap_shows_in_the_list(h: Harness) -> None:
    h.api.put(app("checkout"))
    watcher, rec, sleep = h.start()
    await h.watching()

    # These changes are queued for the watch, then lost with its history: only a relist sees them.
    h.api.put(app("payments"))
    h.api.delete(app("checkout"))
    h.api.expire_history()
    await rec.wait_for(lambda: len(rec.lists) == 2)

    assert rec.events == []
    assert rec.listed_names(1) == ["payments"]
    assert rec.lists[1][1] == h.api.resource_version
    assert watcher.counters.relists == 1
    assert watcher.counters.expired == 1
    assert sleep.delays == []

    await h.watching(2)
    h.api.put(app("refunds"))
    await rec.wait_for(lambda: len(rec.events) == 1)
    assert rec.event_log() == [("ADDED", "refunds")]


async def test_a_410_status_on_the_watch_request_relists(h: Harness) -> None:
    h.api.put(app("checkout"))
    h.api.fail_next(410, on="watch", message="too old resource version: 1")
    watcher, rec, sleep = h.start()
    await rec.wait_for(lambda: len(rec.lists) == 2)

    assert rec.listed_names(1) == ["checkout"]
    assert watcher.counters.expired == 1
    assert watcher.counters.errors == 0
    assert sleep.delays == []


async def test_repeated_expiry_backs_off_instead_of_spinning(h: Harness) -> None:
    watcher, rec, sleep = h.start()
    await h.watching()
    h.api.expire_history()
    await rec.wait_for(lambda: len(rec.lists) == 2)
    await h.watching(2)
    h.api.expire_history()
    await rec.wait_for(lambda: len(rec.lists) == 3)

    assert watcher.counters.expired == 2
    assert sleep.delays == [1.0]


async def test_a_restarted_server_with_new_resource_versions_is_relisted(h: Harness) -> None:
    h.api.put(app("checkout"))
    watcher, rec, _ = h.start()
    await h.watching()
    h.api.restart()
    h.api.put(app("payments"))
    await rec.wait_for(lambda: len(rec.lists) == 2)

    assert rec.listed_names(1) == ["checkout", "payments"]
    assert watcher.counters.expired == 1
    assert watcher.counters.relists == 1


async def test_a_dropped_connection_resumes_from_the_last_resource_version(h: Harness) -> None:
    h.api.put(app("checkout"))
    watcher, rec, sleep = h.start()
    await h.watching()
    h.api.put(app("payments"))
    await rec.wait_for(lambda: len(rec.events) == 1)
    seen = watcher.resource_version

    h.api.drop_watches()
    h.api.put(app("refunds"))
    await rec.wait_for(lambda: len(rec.events) == 2)

    assert rec.event_log() == [("ADDED", "payments"), ("ADDED", "refunds")]
    assert h.api.watch_requests()[-1].query["resourceVersion"] == seen
    assert h.api.lists_served == 1
    assert watcher.counters.relists == 0
    assert watcher.counters.reconnects == 1
    assert watcher.counters.errors == 1
    assert sleep.delays == [1.0]


async def test_a_cleanly_ended_watch_reconnects_at_once(h: Harness) -> None:
    watcher, rec, sleep = h.start()
    await h.watching()
    h.api.put(app("checkout"))
    await rec.wait_for(lambda: len(rec.events) == 1)
    h.api.end_watches()
    await h.watching(2)

    assert h.api.watch_requests()[-1].query["resourceVersion"] == watcher.resource_version
    assert watcher.counters.errors == 0
    assert h.api.lists_served == 1
    assert sleep.delays == []


async def test_a_watch_that_ends_at_once_and_empty_is_backed_off(h: Harness) -> None:
    watcher, _, sleep = h.start(min_watch_seconds=5.0, clock=lambda: 100.0)
    await h.watching()
    h.api.end_watches()
    await h.watching(2)

    assert watcher.counters.errors == 1
    assert sleep.delays == [1.0]


async def test_server_errors_back_off_exponentially_and_success_resets(h: Harness) -> None:
    h.api.put(app("checkout"))
    h.api.fail_next(500, count=3, on="list")
    watcher, rec, sleep = h.start()
    await h.watching()
    assert sleep.delays == [1.0, 2.0, 4.0]
    assert rec.listed_names(0) == ["checkout"]

    h.api.fail_next(503, count=1, on="watch")
    h.api.drop_watches()
    await h.watching(2)
    h.api.put(app("payments"))
    await rec.wait_for(lambda: len(rec.events) == 1)

    assert sleep.delays == [1.0, 2.0, 4.0, 1.0, 2.0]
    assert watcher.counters.errors == 5
    assert h.api.lists_served == 1
    assert [r.status for r in h.api.watch_requests()] == [200, 503, 200]


async def test_backoff_delays_are_jittered_below_the_ceiling(h: Harness) -> None:
    h.api.fail_next(500, count=4, on="list")
    _, _, sleep = h.start(backoff=Backoff(initial=1.0, cap=8.0, rng=lambda: 0.25))
    await h.watching()

    assert sleep.delays == [0.25, 0.5, 1.0, 2.0]


async def test_a_malformed_line_is_reported_and_the_watch_resumes(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    watcher, rec, sleep = h.start()
    await h.watching()
    h.api.send_raw(b"<html>proxy error</html>\n")
    await h.watching(2)
    h.api.put(app("checkout"))
    await rec.wait_for(lambda: len(rec.events) == 1)

    assert watcher.counters.errors == 1
    assert h.api.lists_served == 1
    assert sleep.delays == [1.0]
    assert any("not JSON" in r.getMessage() and "[test]" in r.getMessage() for r in caplog.records)


async def test_an_error_event_other_than_410_resumes_after_backoff(h: Harness) -> None:
    watcher, _, sleep = h.start()
    await h.watching()
    h.api.send_raw(
        b'{"type":"ERROR","object":{"kind":"Status","code":500,"reason":"InternalError",'
        b'"message":"etcd leader changed"}}\n'
    )
    await h.watching(2)

    assert watcher.counters.errors == 1
    assert watcher.counters.expired == 0
    assert h.api.lists_served == 1
    assert sleep.delays == [1.0]


# -- inactivity, bookmarks ----------------------------------------------------------------------


async def test_a_silent_watch_times_out_and_reconnects(h: Harness) -> None:
    h.api.put(app("checkout"))
    h.api.hang_next(on="watch")
    h.api.hang_next(on="watch", after_headers=True)
    watcher, rec, sleep = h.start(inactivity_timeout=0.05)
    await h.api.wait_for(lambda: len(h.api.watch_requests()) >= 3 and h.api.active_watches == 1)
    h.api.put(app("payments"))
    await rec.wait_for(lambda: len(rec.events) == 1)

    assert watcher.counters.inactivity_timeouts >= 2
    assert watcher.counters.errors == 0
    assert h.api.lists_served == 1
    assert sleep.delays == []
    versions = {r.query["resourceVersion"] for r in h.api.watch_requests()[:3]}
    assert versions == {rec.lists[0][1]}


async def test_bookmarks_advance_the_resource_version(h: Harness) -> None:
    h.api.put(app("checkout"))
    watcher, rec, _ = h.start(ResourceSpec("argoproj.io", "v1alpha1", "applications", "argocd"))
    await h.watching()
    listed = watcher.resource_version
    for name in ("a", "b", "c"):
        h.api.put(app(name, namespace="elsewhere"))
    # History before now is gone: only a watcher that kept the bookmark can resume without 410.
    h.api.compact(int(h.api.resource_version))
    h.api.bookmark()
    h.api.end_watches()
    await h.watching(2)

    assert watcher.counters.bookmarks == 1
    assert watcher.resource_version == h.api.resource_version != listed
    assert h.api.watch_requests()[-1].query["resourceVersion"] == h.api.resource_version
    assert h.api.lists_served == 1
    assert watcher.counters.expired == 0
    assert rec.events == []


# -- absent CRDs --------------------------------------------------------------------------------


async def test_a_missing_crd_is_logged_once_and_picked_up_when_installed(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchers.kube_watch")
    watcher, rec, sleep = h.start(HELMRELEASES)
    await h.api.wait_for(lambda: len(h.api.list_requests()) >= 4)

    assert watcher.absent
    assert rec.lists == []
    assert set(sleep.delays) == {30.0}
    missing = [r for r in caplog.records if "not served" in r.getMessage()]
    assert len(missing) == 1
    assert "helmreleases.helm.toolkit.fluxcd.io/v2" in missing[0].getMessage()
    assert missing[0].levelno == logging.WARNING

    h.api.install_crd("helm.toolkit.fluxcd.io", "helmreleases", kind="HelmRelease")
    h.api.put(helmrelease("podinfo"))
    await rec.wait_for(lambda: len(rec.lists) == 1)

    assert rec.listed_names() == ["podinfo"]
    assert not watcher.absent
    await h.watching()
    h.api.put(helmrelease("podinfo"))
    await rec.wait_for(lambda: len(rec.events) == 1)
    assert rec.event_log() == [("MODIFIED", "podinfo")]


async def test_a_crd_removed_while_watching_is_checked_again(h: Harness) -> None:
    h.api.put(helmrelease("podinfo"))
    watcher, rec, sleep = h.start(HELMRELEASES)
    await h.watching()
    h.api.uninstall_crd("helm.toolkit.fluxcd.io", "helmreleases")
    await h.api.wait_for(lambda: [r.status for r in h.api.list_requests()][-2:] == [404, 404])

    assert watcher.absent
    assert rec.event_log() == [("DELETED", "podinfo")]
    assert 30.0 in sleep.delays


# -- callbacks, auth, shutdown ------------------------------------------------------------------


async def test_a_failing_callback_is_logged_with_context_and_relisted(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    watcher, rec, sleep = h.start()
    await h.watching()
    rec.fail_next_event = True
    h.api.put(app("checkout"))
    await rec.wait_for(lambda: len(rec.lists) == 2)

    assert rec.listed_names(1) == ["checkout"]
    assert watcher.counters.errors == 1
    assert sleep.delays == [1.0]
    failure = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "[test] applications.argoproj.io/v1alpha1" in failure.getMessage()
    assert failure.exc_info is not None
    assert getattr(failure, "cluster", None) == "test"

    await h.watching(2)
    h.api.put(app("payments"))
    await rec.wait_for(lambda: len(rec.events) == 1)
    assert rec.event_log() == [("ADDED", "payments")]


@pytest.mark.parametrize("source", ["file", "dict"])
async def test_a_kubeconfig_with_a_token_reaches_the_server(source: str, tmp_path: Path) -> None:
    async with FakeKubeAPI(token="s3cret") as api:
        api.put(app("checkout"))
        configuration = Configuration()
        if source == "file":
            path = api.write_kubeconfig(tmp_path / "kubeconfig")
            await load_kube_config(str(path), client_configuration=configuration)
        else:
            await load_kube_config_from_dict(api.kubeconfig(), client_configuration=configuration)
        async with ApiClient(configuration) as client:
            h = Harness(api, client)
            watcher, rec, _ = h.start()
            try:
                await rec.wait_for(lambda: len(rec.lists) == 1)
            finally:
                await watcher.stop()

    assert rec.listed_names() == ["checkout"]


async def test_a_rejected_token_is_logged_as_an_error_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeKubeAPI(token="s3cret") as api:
        wrong = Configuration(host=api.url)
        wrong.api_key = {"BearerToken": "wrong"}
        wrong.api_key_prefix = {"BearerToken": "Bearer"}
        async with ApiClient(wrong) as client:
            watcher = ResourceWatcher(
                client,
                APPS,
                on_list=Recorder().on_list,
                on_event=Recorder().on_event,
                cluster="test",
                sleep=RecordingSleep(),
                backoff=Backoff(initial=1.0, cap=2.0, rng=lambda: 1.0),
            )
            watcher.start()
            try:
                await api.wait_for(lambda: len(api.requests) >= 3)
            finally:
                await watcher.stop()

    assert [r.status for r in api.requests][:2] == [401, 401]
    assert any(r.levelno == logging.ERROR and "401" in r.getMessage() for r in caplog.records)


async def test_stop_ends_the_named_task_and_its_connection(h: Harness) -> None:
    watcher, _, _ = h.start()
    await h.watching()
    task = watcher.start()
    assert task.get_name() == "kube-watch:test:applications.argoproj.io/v1alpha1"

    await watcher.stop()

    assert task.cancelled()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("kube-watch:")]
    h.api.put(app("checkout"))
    await h.api.wait_for(lambda: h.api.active_watches == 0)


async def test_stop_interrupts_a_long_backoff(h: Harness) -> None:
    h.api.fail_next(500, count=1, on="list")
    sleep = RecordingSleep(real=True)
    watcher, _, _ = h.start(sleep=sleep, backoff=Backoff(initial=3600.0, cap=3600.0))
    await asyncio.wait_for(sleep.entered.wait(), 5)

    async with asyncio.timeout(2):
        await watcher.stop()

    assert h.api.lists_served == 0
    assert watcher.counters.errors == 1


# -- pure helpers on untrusted input ------------------------------------------------------------


@given(status=st.sampled_from([400, 404, 410, 500, 503]), body=st.binary(max_size=200))
def test_any_error_body_becomes_a_classified_error(status: int, body: bytes) -> None:
    error = _error_from(status, body)

    assert isinstance(error, KubeApiError)
    assert error.status == status
    assert type(error).__name__ == {404: "_Absent", 410: "_Expired"}.get(status, "KubeApiError")


def test_a_status_body_gives_reason_and_message() -> None:
    body = b'{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"}'

    error = _error_from(410, body)

    assert (error.reason, error.message) == ("Expired", "too old resource version")


@pytest.mark.parametrize(
    ("spec", "path", "params"),
    [
        (APPS, "/apis/{group}/{version}/{plural}", {"group": "argoproj.io"}),
        (EVENTS, "/api/{version}/namespaces/{namespace}/{plural}", {"namespace": "argocd"}),
        (ResourceSpec("", "v1", "events"), "/api/{version}/{plural}", {}),
    ],
)
def test_resource_paths(spec: ResourceSpec, path: str, params: dict[str, str]) -> None:
    template, values = spec.path()

    assert template == path
    assert params.items() <= values.items()
