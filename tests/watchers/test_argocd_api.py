"""The Argo CD API list -> stream -> re-list loop, over HTTP against tests/fakes/argocd_api.py.

Time is virtual: the watcher's sleep and clock are a `VirtualTime` that only moves when a test
advances it, so backoff delays and the periodic re-list are asserted without waiting.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.schema import ArgoCDApiConfig
from core.model import AppState, Tool
from tests.builders_argocd import T0, argocd_app
from tests.fakes.argocd_api import FakeArgoCDAPI
from watchers.argocd_api import ArgoCDApi, ArgoCDApiWatcher, MissingToken, selector_matches
from watchers.backoff import Backoff
from watchers.normalize import normalize_object

TOKEN = "s3cr3t-argocd-token-do-not-log"
RELIST = 300.0
AUTH_RETRY = 60.0


class VirtualTime:
    """An injected clock and sleep: sleepers wake only when the test advances the time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.delays: list[float] = []
        self._sleepers: list[tuple[float, float, asyncio.Future[None]]] = []
        self._changed = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.now + delay, delay, future)
        self._sleepers.append(entry)
        self._poke()
        try:
            await future
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)
            self._poke()

    def sleeping(self) -> list[float]:
        """The delays of the sleeps now pending."""
        return sorted(delay for _, delay, future in self._sleepers if not future.done())

    async def wait_sleeping(self, predicate: Callable[[list[float]], bool]) -> None:
        async with asyncio.timeout(5):
            while not predicate(self.sleeping()):
                await self._changed.wait()

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for deadline, _, future in list(self._sleepers):
            if deadline <= self.now and not future.done():
                future.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def contains(items: list[float], item: float) -> bool:
    return item in items


class Recorder:
    """The caller's side: what on_list and on_event received."""

    def __init__(self) -> None:
        self.lists: list[tuple[str, list[dict[str, Any]]]] = []
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_next_event = False
        self._changed = asyncio.Event()

    async def on_list(self, cluster: str, items: list[dict[str, Any]]) -> None:
        self.lists.append((cluster, items))
        self._poke()

    async def on_event(self, cluster: str, event_type: str, app: dict[str, Any]) -> None:
        if self.fail_next_event:
            self.fail_next_event = False
            raise RuntimeError("store is down")
        self.events.append((cluster, event_type, app))
        self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not predicate():
                await self._changed.wait()

    def listed(self, index: int = -1) -> list[str]:
        return sorted(app["metadata"]["name"] for app in self.lists[index][1])

    def log(self) -> list[tuple[str, str]]:
        return [(kind, app["metadata"]["name"]) for _, kind, app in self.events]


class Harness:
    def __init__(self, server: FakeArgoCDAPI) -> None:
        self.server = server
        self.time = VirtualTime()
        self.rec = Recorder()
        self.watchers: list[ArgoCDApiWatcher] = []

    def start(self, *, token: str = TOKEN, **options: Any) -> ArgoCDApiWatcher:
        options.setdefault("backoff", Backoff(initial=1.0, cap=8.0, rng=lambda: 1.0))
        api = ArgoCDApi(self.server.url, token, cluster="prod", token_env="ARGOCD_TOKEN")
        watcher = ArgoCDApiWatcher(
            api,
            on_list=self.rec.on_list,
            on_event=options.pop("on_event", self.rec.on_event),
            sleep=self.time.sleep,
            clock=self.time.clock,
            relist_interval=RELIST,
            auth_retry=AUTH_RETRY,
            **options,
        )
        self.watchers.append(watcher)
        watcher.start()
        return watcher

    async def streaming(self, count: int = 1) -> None:
        """Wait until `count` stream requests were answered and one stream is open."""
        await self.server.wait_for(
            lambda: (
                self.server.active_streams >= 1
                and len([r for r in self.server.of("stream") if r.status == 200]) >= count
            )
        )


@pytest.fixture
async def server() -> AsyncIterator[FakeArgoCDAPI]:
    async with FakeArgoCDAPI(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def h(server: FakeArgoCDAPI) -> AsyncIterator[Harness]:
    harness = Harness(server)
    yield harness
    for watcher in harness.watchers:
        await watcher.stop()


def app(name: str, *, project: str = "sre", **labels: str) -> dict[str, Any]:
    raw = argocd_app(name)
    raw["spec"]["project"] = project
    if labels:
        raw["metadata"]["labels"] = labels
    return raw


# -- list, then stream ----------------------------------------------------------------------------


async def test_list_is_handed_over_then_stream_events_in_order(h: Harness) -> None:
    h.server.put(app("checkout"))
    h.server.put(app("payments"))
    watcher = h.start()
    await h.streaming()

    assert h.rec.listed(0) == ["checkout", "payments"]
    assert h.rec.lists[0][0] == "prod"
    stream = h.server.of("stream")[0]
    assert stream.one("resourceVersion") == h.server.resource_version
    assert stream.authorization == f"Bearer {TOKEN}"
    assert watcher.synced.is_set()

    h.server.put(app("search"))
    h.server.put(app("checkout", team="web"))
    h.server.delete(app("payments"))
    await h.rec.wait_for(lambda: len(h.rec.events) == 3)

    assert h.rec.log() == [("ADDED", "search"), ("MODIFIED", "checkout"), ("DELETED", "payments")]
    assert {cluster for cluster, _, _ in h.rec.events} == {"prod"}
    assert watcher.resource_version == h.server.resource_version
    assert watcher.counters.events == 3
    assert len(h.server.of("list")) == 1


async def test_applications_get_api_version_and_kind_so_they_normalize(h: Harness) -> None:
    h.server.put(app("checkout"))
    h.start()
    await h.streaming()
    h.server.put(app("search"))
    await h.rec.wait_for(lambda: len(h.rec.events) == 1)

    for raw in (h.rec.lists[0][1][0], h.rec.events[0][2]):
        assert (raw["apiVersion"], raw["kind"]) == ("argoproj.io/v1alpha1", "Application")
        state = normalize_object(raw, "prod", T0)
        assert isinstance(state, AppState)
        assert state.tool is Tool.ARGOCD


async def test_tasks_are_named_and_stop_closes_the_stream(h: Harness) -> None:
    watcher = h.start()
    await h.streaming()
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert {"argocd-api:prod", "argocd-api:prod:stream", "argocd-api:prod:relist"} <= names

    await watcher.stop()
    await h.server.wait_for(lambda: h.server.active_streams == 0)
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert not any(name.startswith("argocd-api:") for name in names)


# -- reconnect ------------------------------------------------------------------------------------


async def test_a_dropped_stream_resumes_from_the_last_resource_version(h: Harness) -> None:
    h.server.put(app("checkout"))
    watcher = h.start()
    await h.streaming()
    h.server.put(app("checkout", team="web"))
    await h.rec.wait_for(lambda: len(h.rec.events) == 1)
    last = h.server.resource_version

    h.server.drop_streams()
    await h.time.wait_sleeping(lambda delays: 1.0 in delays)
    assert h.server.active_streams == 0
    await h.time.advance(1.0)
    await h.streaming(count=2)

    assert h.server.of("stream")[1].one("resourceVersion") == last
    assert len(h.server.of("list")) == 1
    assert watcher.counters.reconnects == 1
    h.server.put(app("search"))
    await h.rec.wait_for(lambda: len(h.rec.events) == 2)
    assert h.rec.log()[-1] == ("ADDED", "search")


async def test_failures_back_off_exponentially_and_an_event_resets_the_backoff(
    h: Harness,
) -> None:
    h.server.fail_next(500, on="stream", count=3)
    watcher = h.start()
    for delay in (1.0, 2.0, 4.0):
        await h.time.wait_sleeping(functools.partial(contains, item=delay))
        await h.time.advance(delay)
    await h.streaming()
    h.server.put(app("checkout"))
    await h.rec.wait_for(lambda: len(h.rec.events) == 1)

    h.server.drop_streams()
    await h.time.wait_sleeping(lambda delays: 1.0 in delays)
    assert watcher.counters.errors == 4
    assert [d for d in h.time.delays if d < 100] == [1.0, 2.0, 4.0, 1.0]


async def test_backoff_delays_are_jittered_below_the_ceiling(h: Harness) -> None:
    draws = iter([0.25, 0.5])
    h.server.fail_next(503, on="list", count=2)
    h.start(backoff=Backoff(initial=2.0, cap=8.0, rng=lambda: next(draws)))
    await h.time.wait_sleeping(lambda delays: 0.5 in delays)
    await h.time.advance(0.5)
    await h.time.wait_sleeping(lambda delays: 2.0 in delays)  # 0.5 of a ceiling of 4
    await h.time.advance(2.0)
    await h.streaming()
    assert h.rec.listed(0) == []


# -- periodic re-list -----------------------------------------------------------------------------


async def test_events_the_server_dropped_are_recovered_by_the_periodic_relist(
    h: Harness,
) -> None:
    h.server.put(app("checkout"))
    h.server.put(app("payments"))
    watcher = h.start()
    await h.streaming()
    await h.time.wait_sleeping(lambda delays: RELIST in delays)

    h.server.dropping = True
    h.server.put(app("search"))
    h.server.put(app("checkout", team="web"))
    h.server.delete(app("payments"))
    h.server.dropping = False
    assert h.server.dropped == 3

    await h.time.advance(RELIST - 1)
    assert h.rec.events == [] and len(h.rec.lists) == 1
    await h.time.advance(1)
    await h.rec.wait_for(lambda: len(h.rec.lists) == 2)

    assert h.rec.listed(1) == ["checkout", "search"]
    checkout = next(a for a in h.rec.lists[1][1] if a["metadata"]["name"] == "checkout")
    assert checkout["metadata"]["labels"] == {"team": "web"}
    assert watcher.counters.relists == 1
    await h.streaming(count=2)
    assert h.server.of("stream")[1].one("resourceVersion") == h.server.resource_version


async def test_the_relist_interval_runs_from_the_last_list_across_reconnects(h: Harness) -> None:
    h.start()
    await h.streaming()
    await h.time.advance(200)
    h.server.drop_streams()
    await h.time.wait_sleeping(lambda delays: 1.0 in delays)
    await h.time.advance(1.0)
    await h.streaming(count=2)
    await h.time.wait_sleeping(lambda delays: RELIST - 201 in delays)
    await h.time.advance(RELIST - 201)
    await h.server.wait_for(lambda: len(h.server.of("list")) == 2)


async def test_a_relist_that_falls_due_during_a_callback_waits_for_it(h: Harness) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()
    finished: list[str] = []

    async def slow_on_event(cluster: str, event_type: str, raw: dict[str, Any]) -> None:
        entered.set()
        await gate.wait()
        finished.append(raw["metadata"]["name"])

    watcher = h.start(on_event=slow_on_event)
    await h.streaming()
    h.server.put(app("checkout"))
    await asyncio.wait_for(entered.wait(), 5)
    await h.time.advance(RELIST)
    await asyncio.sleep(0)
    assert len(h.rec.lists) == 1
    gate.set()
    await h.rec.wait_for(lambda: len(h.rec.lists) == 2)
    assert finished == ["checkout"]
    assert watcher.counters.errors == 0


async def test_relist_on_request_closes_the_stream_and_lists_again(h: Harness) -> None:
    h.server.put(app("checkout"))
    watcher = h.start()
    await h.streaming()
    watcher.relist()
    await h.rec.wait_for(lambda: len(h.rec.lists) == 2)
    await h.streaming(count=2)
    assert h.rec.listed(1) == ["checkout"]


async def test_a_failing_callback_makes_the_loop_relist(h: Harness) -> None:
    h.start()
    await h.streaming()
    h.rec.fail_next_event = True
    h.server.put(app("checkout"))
    await h.time.wait_sleeping(lambda delays: 1.0 in delays)
    await h.time.advance(1.0)
    await h.rec.wait_for(lambda: len(h.rec.lists) == 2)
    assert h.rec.listed(1) == ["checkout"]


# -- auth -----------------------------------------------------------------------------------------


async def test_a_refused_token_is_logged_once_without_the_token_and_retried_slowly(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="watchers.argocd_api")
    old_token = "expired-" + TOKEN
    watcher = h.start(token=old_token)
    for _ in range(3):
        await h.time.wait_sleeping(lambda delays: AUTH_RETRY in delays)
        await h.time.advance(AUTH_RETRY)
    await h.time.wait_sleeping(lambda delays: AUTH_RETRY in delays)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    assert "[prod]" in text and h.server.url in text and "401" in text
    assert "ARGOCD_TOKEN" in text
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert all(r.status == 401 for r in h.server.of("list"))
    assert watcher.counters.unauthorized == 4
    assert not watcher.synced.is_set()

    h.server.token = old_token  # the server accepts the watcher's token again
    await h.time.advance(AUTH_RETRY)
    await h.streaming()
    assert watcher.synced.is_set()
    assert any("accepts the token again" in r.getMessage() for r in caplog.records)


async def test_an_error_line_in_the_stream_is_handled_by_its_status(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = h.start()
    await h.streaming()
    h.server.send_error(403, "permission denied: applications, get")
    await h.time.wait_sleeping(lambda delays: AUTH_RETRY in delays)
    assert watcher.unauthorized
    assert watcher.resource_version is None
    assert any("403" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    await h.time.advance(AUTH_RETRY)
    await h.rec.wait_for(lambda: len(h.rec.lists) == 2)


def test_the_token_is_read_from_the_named_environment_variable() -> None:
    config = ArgoCDApiConfig(cluster="prod", url="https://argocd.example.com", token_env="AC_TOK")
    with pytest.raises(MissingToken, match="AC_TOK"):
        ArgoCDApi.from_config(config, environ={})
    api = ArgoCDApi.from_config(config, environ={"AC_TOK": TOKEN})
    assert TOKEN not in repr(api)
    assert api.url_for("api", "v1", "applications", "a b", "revisions", "x/y").path.endswith(
        "/applications/a b/revisions/x/y"
    )
    assert "x%2Fy" in api.url_for("revisions", "x/y").raw_path


# -- filters --------------------------------------------------------------------------------------


async def test_project_and_selector_are_passed_to_list_and_stream(h: Harness) -> None:
    h.server.put(app("checkout", project="payments", team="checkout"))
    h.server.put(app("ledger", project="payments", team="ledger"))
    h.server.put(app("search", project="sre", team="checkout"))
    config = ArgoCDApiConfig(
        cluster="prod", url=h.server.url, project="payments", selector="team=checkout"
    )
    watcher = ArgoCDApiWatcher.from_config(
        config,
        on_list=h.rec.on_list,
        on_event=h.rec.on_event,
        environ={"ARGOCD_TOKEN": TOKEN},
        sleep=h.time.sleep,
        clock=h.time.clock,
    )
    h.watchers.append(watcher)
    watcher.start()
    await h.streaming()

    assert h.rec.listed(0) == ["checkout"]
    for request in (h.server.of("list")[0], h.server.of("stream")[0]):
        assert request.query["projects"] == ["payments"]
        assert request.query["project"] == ["payments"]
        assert request.query["selector"] == ["team=checkout"]
    h.server.put(app("ledger", project="payments", team="ledger", v="2"))
    h.server.put(app("new", project="payments", team="checkout"))
    await h.rec.wait_for(lambda: len(h.rec.events) == 1)
    assert h.rec.log() == [("ADDED", "new")]


# -- bad input ------------------------------------------------------------------------------------


async def test_malformed_lines_are_skipped_with_a_log_line(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = h.start()
    await h.streaming()
    h.server.send_raw(b"this is not json\n")
    h.server.send_raw(b"[1, 2, 3]\n")
    h.server.send_raw(b'{"result": {"type": "BOOKMARK", "application": {}}}\n')
    h.server.send_raw(b'{"result": {"type": "ADDED", "application": "checkout"}}\n')
    h.server.send_raw(b"\n\n")
    h.server.put(app("checkout"))
    await h.rec.wait_for(lambda: len(h.rec.events) == 1)

    assert h.rec.log() == [("ADDED", "checkout")]
    assert watcher.counters.malformed == 4
    skipped = [r for r in caplog.records if "skipping a stream line" in r.getMessage()]
    assert len(skipped) == 4
    assert len(h.server.of("stream")) == 1


async def test_a_list_that_is_not_an_application_list_is_retried(h: Harness) -> None:
    h.server.put(app("checkout"))
    h.server.fail_next(502, on="list")
    watcher = h.start()
    await h.time.wait_sleeping(lambda delays: 1.0 in delays)
    assert h.rec.lists == []
    await h.time.advance(1.0)
    await h.streaming()
    assert h.rec.listed(0) == ["checkout"]
    assert watcher.counters.errors == 1


# -- what a re-list accounts for ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, {}, True),
        ("team=checkout", {"team": "checkout"}, True),
        ("team==checkout", {"team": "checkout", "env": "prod"}, True),
        ("team=checkout", {"team": "search"}, False),
        ("team!=checkout", {"team": "search"}, True),
        ("team!=checkout", {}, True),
        ("team", {"team": ""}, True),
        ("team", {}, False),
        ("!team", {}, True),
        ("!team", {"team": "x"}, False),
        ("env in (prod, staging),team", {"env": "prod", "team": "x"}, True),
        ("env in (prod,staging)", {"env": "dev"}, False),
        ("env notin (prod)", {}, True),
        ("env notin (prod)", {"env": "prod"}, False),
        ("team=checkout,env=prod", {"team": "checkout", "env": "dev"}, False),
    ],
)
def test_selector_matches(selector: str | None, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


@given(st.text(), st.dictionaries(st.text(), st.text()))
def test_any_selector_is_read_without_error(selector: str, labels: dict[str, str]) -> None:
    assert selector_matches(selector, labels) in (True, False)


def test_selects_is_what_the_filters_let_through() -> None:
    api = ArgoCDApi("https://argocd.example.com", TOKEN, cluster="prod")

    async def ignore(*_: Any) -> None: ...

    watcher = ArgoCDApiWatcher(
        api, on_list=ignore, on_event=ignore, projects=["payments"], selector="team=checkout"
    )
    assert watcher.selects("payments", {"team": "checkout"})
    assert not watcher.selects("sre", {"team": "checkout"})
    assert not watcher.selects("payments", {"team": "search"})
    everything = ArgoCDApiWatcher(api, on_list=ignore, on_event=ignore)
    assert everything.selects("sre", {})
