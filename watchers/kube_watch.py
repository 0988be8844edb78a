"""Keeps one Kubernetes resource in view: list, watch from its resourceVersion, relist on 410.

kubernetes_asyncio's own `Watch` retries a 410 Gone once and then raises, turns objects into
models, and never notices a connection that went silent. This loop does what a controller needs
(kopf's watching is the model):

- LIST (paged, a consistent read), hand the whole set to `on_list` so the caller can diff it
  against what it holds: anything that happened while we were away shows up there;
- WATCH from the list's resourceVersion with bookmarks, handing each event to `on_event` in the
  order the server sent it (one task per resource, each callback awaited before the next line);
- on 410 Expired (an ERROR event or an HTTP 410) relist; on a dropped connection, a 5xx or a
  malformed line resume from the last resourceVersion after an exponential backoff with full
  jitter; on no event or bookmark for `inactivity_timeout` seconds reconnect;
- on 404 (the CRD is not installed) log once and check again every `absent_recheck` seconds.

Lines and pages are decoded by the resource's decoder (`watchers.decode.lines`): straight into
the typed view of what driftbot reads where the resource has one, else in full with orjson.
List items get the `kind` and `apiVersion` that the API server leaves out of built-in list
items, so they look like watch objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp
import orjson
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from watchers.backoff import Backoff
from watchers.decode.lines import JsonDecoder, identity, resource_version
from watchers.watch_loop import CallbackFailed, ContextLog, WatchLoop, read_lines

__all__ = [
    "KubeApiError",
    "OnEvent",
    "OnList",
    "Prepare",
    "ResourceSpec",
    "ResourceWatcher",
    "WatchCounters",
    "watch_resource",
]

logger = logging.getLogger(__name__)

RawObject = dict[str, Any]
OnList = Callable[[list[Any], str], Awaitable[None]]
"""Called with every object of the resource (or what `prepare` made of it) and the list's
resourceVersion, after each (re)list."""
Prepare = Callable[[Any], Any]
"""Turns each listed object (a typed view or a dict, as the decoder made it), as its page
arrives, into what on_list gets (None: left out)."""
OnEvent = Callable[[str, Any], Awaitable[None]]
"""Called with "ADDED", "MODIFIED" or "DELETED" and the object (a typed view or a dict), in the
server's order."""
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

_WATCH_TYPES = ("ADDED", "MODIFIED", "DELETED")


@dataclass(frozen=True)
class ResourceSpec:
    """Which objects to watch: a resource (group "" is the core API) in one namespace or all."""

    group: str
    version: str
    plural: str
    namespace: str | None = None
    label_selector: str | None = None

    def path(self) -> tuple[str, dict[str, str]]:
        """The API path template and its parameters (the client quotes them)."""
        params = {"version": self.version, "plural": self.plural}
        prefix = "/api/{version}"
        if self.group:
            prefix = "/apis/{group}/{version}"
            params["group"] = self.group
        if self.namespace:
            params["namespace"] = self.namespace
            return prefix + "/namespaces/{namespace}/{plural}", params
        return prefix + "/{plural}", params

    def __str__(self) -> str:
        name = (
            f"{self.plural}.{self.group}/{self.version}"
            if self.group
            else (f"{self.plural}/{self.version}")
        )
        where = f" in {self.namespace}" if self.namespace else ""
        selector = f" [{self.label_selector}]" if self.label_selector else ""
        return name + where + selector


@dataclass
class WatchCounters:
    """What the loop has done, for metrics."""

    lists: int = 0
    relists: int = 0
    watches: int = 0
    reconnects: int = 0
    events: int = 0
    bookmarks: int = 0
    expired: int = 0
    errors: int = 0
    inactivity_timeouts: int = 0
    absent_checks: int = 0


class KubeApiError(Exception):
    """The API answered with an error status, an ERROR event, or something unreadable."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class _Expired(KubeApiError):
    """410: the resourceVersion (or a list's continue token) is older than the server's history."""


class _Absent(KubeApiError):
    """404: the API does not serve the resource (its CRD is not installed)."""


class _Inactive(Exception):
    """Nothing arrived on the watch for the inactivity timeout."""


def _error_from(status: int, body: bytes | str | dict[str, Any] | None) -> KubeApiError:
    """The error for a failed request or an ERROR event, from its Status body if it has one."""
    reason, message = "", ""
    parsed: Any = body
    if not isinstance(body, dict):
        with contextlib.suppress(orjson.JSONDecodeError, TypeError):
            parsed = orjson.loads(body or b"")
    if isinstance(parsed, dict):
        reason = str(parsed.get("reason") or "")
        message = str(parsed.get("message") or "")
    if not message and isinstance(body, bytes | str) and body:
        message = (body if isinstance(body, str) else body.decode("utf-8", "replace"))[:300]
    error_class = {410: _Expired, 404: _Absent}.get(status, KubeApiError)
    return error_class(status, reason or "Error", message)


class ResourceWatcher(WatchLoop):
    """The list -> watch -> relist loop for one resource of one cluster.

    `start()` runs it as a named task, `stop()` cancels it and waits. Callbacks run inside the
    loop's task, one at a time: a slow callback slows the watch, never reorders it. If a
    callback raises, the error is logged and the loop relists after a backoff.
    """

    loop_kind = "watch loop"

    def __init__(
        self,
        api_client: ApiClient,
        resource: ResourceSpec,
        *,
        on_list: OnList,
        on_event: OnEvent,
        cluster: str = "default",
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        inactivity_timeout: float = 120.0,
        watch_timeout_seconds: int = 300,
        list_timeout: float = 120.0,
        page_size: int = 100,
        absent_recheck: float = 60.0,
        min_watch_seconds: float = 1.0,
        max_line_bytes: int = 64 * 1024 * 1024,
        prepare: Prepare | None = None,
        decoder: JsonDecoder | None = None,
    ) -> None:
        self._api = api_client
        self._decoder = decoder or JsonDecoder()
        """Typed views for the resources driftbot reads (`watchers.decode.lines.decoder_for`)."""
        self._prepare = prepare
        """With it, a list of thousands of large objects is never held whole in raw form."""
        self.resource = resource
        self.cluster = cluster
        self._on_list = on_list
        self._on_event = on_event
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self._inactivity_timeout = inactivity_timeout
        self._watch_timeout_seconds = watch_timeout_seconds
        self._list_timeout = list_timeout
        self._page_size = page_size
        """Small pages keep memory flat: a page of 100 Argo CD Applications is about 1.5 MB of
        JSON, and the memory its parsed form took stays with the allocator after it is gone."""
        self._absent_recheck = absent_recheck
        self._min_watch_seconds = min_watch_seconds
        self._max_line_bytes = max_line_bytes
        self._log = ContextLog(
            logger, {"cluster": cluster, "resource": str(resource)}, str(resource)
        )
        self._task: asyncio.Task[None] | None = None
        self._expired_in_a_row = 0
        self.resource_version: str | None = None
        """The last resourceVersion seen (list, event or bookmark); None means relist next."""
        self.counters = WatchCounters()
        self.absent = False
        self.synced = asyncio.Event()
        """Set once the first list has been handed to on_list."""

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def task_name(self) -> str:
        return f"kube-watch:{self.cluster}:{self.resource}"

    # -- the loop -------------------------------------------------------------------------------

    async def _recover(self, exc: Exception) -> None:
        if isinstance(exc, _Absent):
            await self._absent_pause(exc)
        elif isinstance(exc, _Expired):
            await self._after_expired(exc)
        elif isinstance(exc, _Inactive):
            self.counters.inactivity_timeouts += 1
            self._log.info("nothing received for %.1fs; reconnecting", self._inactivity_timeout)
        elif isinstance(exc, KubeApiError | aiohttp.ClientError | TimeoutError | OSError):
            await self._after_error(exc, relist=False)
        elif isinstance(exc, CallbackFailed):
            await self._after_error(exc.__cause__ or exc, relist=True)
        else:
            await self._after_error(exc, relist=True)

    async def _cycle(self) -> None:
        if self.resource_version is None:
            await self._list()
        else:
            self.counters.reconnects += 1
        await self._watch()

    async def _absent_pause(self, exc: KubeApiError) -> None:
        self.resource_version = None
        self.counters.absent_checks += 1
        if not self.absent:
            self.absent = True
            self._log.warning(
                "not served by the API server (is its CRD installed?): %s; "
                "checking again every %.0fs",
                exc.message,
                self._absent_recheck,
            )
        await self._sleep(self._absent_recheck)

    async def _after_expired(self, exc: KubeApiError) -> None:
        self.counters.expired += 1
        self.resource_version = None
        self._log.info("resourceVersion expired (%s); relisting", exc.message)
        # A server that answers every fresh watch with 410 must not get a tight loop.
        if self._expired_in_a_row:
            await self._sleep(self._backoff.next_delay())
        self._expired_in_a_row += 1

    async def _after_error(self, exc: BaseException, *, relist: bool) -> None:
        self.counters.errors += 1
        if relist:
            self.resource_version = None
        delay = self._backoff.next_delay()
        then = (
            "relisting"
            if self.resource_version is None
            else (f"resuming from resourceVersion {self.resource_version}")
        )
        if isinstance(exc, KubeApiError | aiohttp.ClientError | TimeoutError | OSError):
            level = logging.ERROR if getattr(exc, "status", 0) in (401, 403) else logging.WARNING
            self._log.log(level, "watch failed: %r; %s in %.2fs", exc, then, delay)
        else:
            self._log.error("watch loop failed; %s in %.2fs", then, delay, exc_info=exc)
        await self._sleep(delay)

    # -- list -----------------------------------------------------------------------------------

    async def _list(self) -> None:
        objects: list[Any] = []
        resource_version = ""
        token: str | None = None
        async with asyncio.timeout(self._list_timeout):
            while True:
                query: list[tuple[str, Any]] = [("limit", self._page_size)]
                if token:
                    query.append(("continue", token))
                if self.resource.label_selector:
                    query.append(("labelSelector", self.resource.label_selector))
                response = await self._request(query)
                try:
                    body = await response.read()
                finally:
                    response.release()
                try:
                    page, version, token = self._decoder.page(body)
                except ValueError as exc:
                    raise KubeApiError(200, "Malformed", f"list response: {exc}") from None
                del body
                resource_version = resource_version or version
                if self._prepare is None:
                    objects.extend(page)
                else:
                    prepared = (self._prepare(obj) for obj in page)
                    objects.extend(item for item in prepared if item is not None)
                del page
                if not token:
                    break
        if not resource_version:
            # Without it the watch could not start where the list ended: nothing would be safe.
            raise KubeApiError(200, "Malformed", "list response has no metadata.resourceVersion")
        self.counters.lists += 1
        if self.counters.lists > 1:
            self.counters.relists += 1
        if self.absent:
            self.absent = False
            self._log.warning("now served by the API server; watching")
        try:
            await self._on_list(objects, resource_version)
        except Exception as exc:
            raise CallbackFailed("on_list failed") from exc
        self.resource_version = resource_version
        self._backoff.reset()
        self.synced.set()
        self._log.debug("listed %d objects at resourceVersion %s", len(objects), resource_version)

    # -- watch ----------------------------------------------------------------------------------

    async def _watch(self) -> None:
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", self._watch_timeout_seconds),
        ]
        if self.resource_version:
            query.append(("resourceVersion", self.resource_version))
        if self.resource.label_selector:
            query.append(("labelSelector", self.resource.label_selector))
        self.counters.watches += 1
        started = self._clock()
        received = 0
        response: aiohttp.ClientResponse | None = None
        try:
            try:
                async with asyncio.timeout(self._inactivity_timeout):
                    response = await self._request(query)
            except TimeoutError as exc:
                raise _Inactive() from exc
            async with contextlib.aclosing(self._lines(response)) as lines:
                async for line in lines:
                    received += 1
                    await self._handle_line(line)
        finally:
            if response is not None:
                response.close()
        if not received and self._clock() - started < self._min_watch_seconds:
            raise KubeApiError(200, "EmptyWatch", "watch ended at once without a single event")

    def _lines(self, response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
        """Complete lines of the stream; each must arrive within the inactivity timeout."""
        return read_lines(
            response,
            max_line_bytes=self._max_line_bytes,
            too_long=lambda: KubeApiError(
                200, "Malformed", f"watch line longer than {self._max_line_bytes} bytes"
            ),
            inactivity=self._inactivity_timeout,
            silent=_Inactive,
        )

    async def _handle_line(self, line: bytes) -> None:
        try:
            event_type, obj = self._decoder.event(line)
        except ValueError:
            raise KubeApiError(
                200, "Malformed", f"watch sent a line that is not JSON: {line[:200]!r}"
            ) from None
        if obj is None or isinstance(obj, list | str | int | float | bool):
            raise KubeApiError(200, "Malformed", f"watch event without an object: {line[:200]!r}")
        if event_type == "ERROR":
            code = obj.get("code") if isinstance(obj, dict) else None
            raise _error_from(code if isinstance(code, int) else 500, obj)
        self._expired_in_a_row = 0
        self._backoff.reset()
        version = resource_version(obj)
        if event_type == "BOOKMARK":
            self.counters.bookmarks += 1
        elif event_type in _WATCH_TYPES:
            self.counters.events += 1
            try:
                await self._on_event(event_type, obj)
            except Exception as exc:
                raise CallbackFailed(f"on_event failed on {event_type}") from exc
        else:
            _, namespace, name, _ = identity(obj)
            self._log.warning(
                "skipping a watch event of unknown type %r",
                event_type,
                extra={"namespace": namespace, "object_name": name},
            )
            return
        if version:
            self.resource_version = version

    # -- HTTP -----------------------------------------------------------------------------------

    async def _request(self, query: list[tuple[str, Any]]) -> aiohttp.ClientResponse:
        path, params = self.resource.path()
        try:
            response: aiohttp.ClientResponse = await self._api.call_api(
                path,
                "GET",
                path_params=params,
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                response_types_map={},
                _preload_content=False,
            )
        except ApiException as exc:
            raise _error_from(exc.status or 0, exc.body) from exc
        if response.status != 200:
            try:
                body = await response.read()
            finally:
                response.release()
            raise _error_from(response.status, body)
        return response


async def watch_resource(
    api_client: ApiClient,
    resource: ResourceSpec,
    *,
    on_list: OnList,
    on_event: OnEvent,
    **options: Any,
) -> NoReturn:
    """Run the loop for one resource in the current task until cancelled (see ResourceWatcher)."""
    await ResourceWatcher(api_client, resource, on_list=on_list, on_event=on_event, **options).run()
