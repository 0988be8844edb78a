"""Keeps the Applications of one Argo CD API server in view: list, stream, re-list.

Where the bot may not read the Application CRDs (no kubeconfig for the control plane, or only
an API token), the Argo CD API server gives the same objects over HTTP:

- `GET /api/v1/applications` lists them (`ApplicationList`: `items`, `metadata.resourceVersion`),
  filtered by `projects` (and its legacy spelling `project`) and a label `selector`;
- `GET /api/v1/stream/applications` streams `ApplicationWatchEvent`s as newline-delimited JSON,
  `{"result": {"type": "ADDED|MODIFIED|DELETED", "application": {...}}}`, with the same filters.
  With a `resourceVersion` it sends only changes newer than it; without, an ADDED per app first.
  An error after the stream began comes as a line `{"error": {...}}` (grpc-gateway).

The loop: LIST and hand the whole set to `on_list(cluster, items)` (so the caller can diff it
against what it holds), then STREAM from the list's resourceVersion, handing each change to
`on_event(cluster, type, app)` in the server's order. A dropped stream is resumed from the last
resourceVersion after an exponential backoff with full jitter. The server replays nothing on
resume and silently drops events for a subscriber that reads too slowly, so the loop also
re-lists every `relist_interval` seconds (default 5 min): that is what catches up.
401/403 are logged once, naming the cluster and URL (never the token), and retried slowly.
A line that is not a watch event is skipped with a log line.

Applications from the API have the CRD's shape but may lack `apiVersion` and `kind`: both are
set (argoproj.io/v1alpha1, Application) before any callback sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from config.schema import ArgoCDApiConfig
from watchers.argocd_client import (
    API_VERSION,
    KIND,
    ArgoCDApi,
    ArgoCDApiError,
    MissingToken,
    Query,
    RawApp,
    Unauthorized,
    as_application,
    error_from_line,
)
from watchers.backoff import Backoff
from watchers.watch_loop import CallbackFailed, ContextLog, WatchLoop, read_lines

__all__ = [
    "API_VERSION",
    "KIND",
    "ArgoCDApi",
    "ArgoCDApiError",
    "ArgoCDApiWatcher",
    "MissingToken",
    "OnEvent",
    "OnList",
    "StreamCounters",
    "as_application",
    "selector_matches",
]

logger = logging.getLogger(__name__)


OnList = Callable[[str, list[RawApp]], Awaitable[None]]
"""Called with the cluster and every Application the filters select, after each (re)list."""
OnEvent = Callable[[str, str, RawApp], Awaitable[None]]
"""Called with the cluster, "ADDED", "MODIFIED" or "DELETED" and the Application, in order."""
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

_WATCH_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED"})


class _StreamEnded(ArgoCDApiError):
    """The server (or something between) closed the stream."""


class _RelistDue(Exception):
    """A re-list was asked for while a callback ran: the stream ends after it."""


@dataclass
class StreamCounters:
    """What the loop has done, for metrics."""

    lists: int = 0
    relists: int = 0
    streams: int = 0
    reconnects: int = 0
    events: int = 0
    malformed: int = 0
    errors: int = 0
    unauthorized: int = 0


class ArgoCDApiWatcher(WatchLoop):
    """The list -> stream -> re-list loop for the Applications of one Argo CD API server.

    `start()` runs it as a named task, `stop()` cancels it and waits. Callbacks run inside the
    loop, one at a time: a slow callback slows the stream, never reorders it (and makes the
    server drop events, which the next re-list repairs). If a callback raises, the error is
    logged and the loop re-lists after a backoff. `relist()` asks for a re-list at once.
    """

    loop_kind = "stream loop"

    def __init__(
        self,
        api: ArgoCDApi,
        *,
        on_list: OnList,
        on_event: OnEvent,
        projects: Sequence[str] = (),
        selector: str | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        relist_interval: float = 300.0,
        auth_retry: float = 60.0,
        list_timeout: float = 60.0,
        connect_timeout: float = 30.0,
        max_line_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if relist_interval <= 0:
            raise ValueError(f"relist_interval must be positive, got {relist_interval}")
        self.api = api
        self.cluster = api.cluster
        self.projects = tuple(projects)
        self.selector = selector or None
        self._on_list = on_list
        self._on_event = on_event
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self._relist_interval = relist_interval
        self._auth_retry = auth_retry
        self._list_timeout = list_timeout
        self._connect_timeout = connect_timeout
        self._max_line_bytes = max_line_bytes
        self._log = ContextLog(logger, {"cluster": api.cluster, "url": api.url}, "Argo CD API")
        self._task: asyncio.Task[None] | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._in_callback = False
        self._listed_at = 0.0
        self._relist_requested = False
        self.unauthorized = False
        self.resource_version: str | None = None
        """The last resourceVersion seen ("" after a list without one); None: list next."""
        self.counters = StreamCounters()
        self.synced = asyncio.Event()
        """Set once the first list has been handed to on_list."""

    @classmethod
    def from_config(
        cls,
        config: ArgoCDApiConfig,
        *,
        on_list: OnList,
        on_event: OnEvent,
        environ: Mapping[str, str] = os.environ,
        session: aiohttp.ClientSession | None = None,
        **options: Any,
    ) -> ArgoCDApiWatcher:
        """The watcher of an `argocd_api` config entry (project and selector as configured)."""
        api = ArgoCDApi.from_config(config, environ=environ, session=session)
        projects = (config.project,) if config.project else ()
        return cls(
            api,
            on_list=on_list,
            on_event=on_event,
            projects=projects,
            selector=config.selector,
            **options,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def task_name(self) -> str:
        return f"argocd-api:{self.cluster}"

    async def stop(self) -> None:
        """Cancel the loop, wait until its connection is closed, and close the API session."""
        await super().stop()
        await self.api.close()

    def relist(self) -> None:
        """Re-list as soon as possible (the current stream, if any, is closed)."""
        self._interrupt_stream()

    def selects(self, project: str, labels: Mapping[str, str]) -> bool:
        """Whether an app of this project with these labels is one the filters let through: a
        re-list accounts only for those (an app held but not selected was not deleted)."""
        if self.projects and project not in self.projects:
            return False
        return selector_matches(self.selector, labels)

    # -- the loop -------------------------------------------------------------------------------

    async def _recover(self, exc: Exception) -> None:
        if isinstance(exc, Unauthorized):
            await self._after_unauthorized(exc)
        elif isinstance(exc, _StreamEnded):
            await self._after_error(exc, relist=False, level=logging.INFO)
        elif isinstance(exc, ArgoCDApiError | aiohttp.ClientError | TimeoutError | OSError):
            await self._after_error(exc, relist=False)
        elif isinstance(exc, CallbackFailed):
            await self._after_error(exc.__cause__ or exc, relist=True)
        else:
            await self._after_error(exc, relist=True)

    async def _cycle(self) -> None:
        due = self._relist_requested or (self._clock() - self._listed_at >= self._relist_interval)
        if self.resource_version is None or due:
            await self._list()
        else:
            self.counters.reconnects += 1
        remaining = self._relist_interval - (self._clock() - self._listed_at)
        if remaining > 0:
            await self._stream_until_relist(remaining)

    async def _stream_until_relist(self, remaining: float) -> None:
        """Stream until the re-list is due (or `relist()` is called), or the stream fails."""
        stream = asyncio.create_task(self._stream(), name=f"{self.task_name}:stream")
        timer = asyncio.create_task(_wait(self._sleep, remaining), name=f"{self.task_name}:relist")
        self._stream_task = stream
        try:
            await asyncio.wait({stream, timer}, return_when=asyncio.FIRST_COMPLETED)
            if timer.done() and not stream.done():
                self._log.debug("periodic re-list is due")
                self._interrupt_stream()
            await asyncio.wait({stream})
        finally:
            self._stream_task = None
            for task in (stream, timer):
                task.cancel()
            await asyncio.gather(stream, timer, return_exceptions=True)
        error = None if stream.cancelled() else stream.exception()
        if error is not None and not isinstance(error, _RelistDue):
            raise error

    def _interrupt_stream(self) -> None:
        """Ask for a re-list and end the stream: at once while it waits for the server; after
        the callback while one runs, so that no callback is cut off halfway."""
        self._relist_requested = True
        stream = self._stream_task
        if stream is not None and not stream.done() and not self._in_callback:
            stream.cancel()

    async def _after_unauthorized(self, exc: ArgoCDApiError) -> None:
        self.counters.unauthorized += 1
        self.resource_version = None
        if not self.unauthorized:
            self.unauthorized = True
            where = f" (${self.api.token_env})" if self.api.token_env else ""
            self._log.error(
                "%s refused the token%s: %d %s; retrying every %.0fs",
                self.api.url,
                where,
                exc.status,
                exc.message,
                self._auth_retry,
            )
        else:
            self._log.debug("still refused: %d %s", exc.status, exc.message)
        await self._sleep(self._auth_retry)

    async def _after_error(
        self, exc: BaseException, *, relist: bool, level: int = logging.WARNING
    ) -> None:
        self.counters.errors += 1
        if relist:
            self.resource_version = None
        delay = self._backoff.next_delay()
        then = (
            "re-listing"
            if self.resource_version is None
            else f"resuming from resourceVersion {self.resource_version or '(none)'}"
        )
        if isinstance(exc, ArgoCDApiError | aiohttp.ClientError | TimeoutError | OSError):
            self._log.log(level, "%s: %r; %s in %.2fs", self.api.url, exc, then, delay)
        else:
            self._log.error("stream loop failed; %s in %.2fs", then, delay, exc_info=exc)
        await self._sleep(delay)

    def _authorized(self) -> None:
        if self.unauthorized:
            self.unauthorized = False
            self._log.warning("%s accepts the token again", self.api.url)

    def _filters(self) -> Query:
        query: Query = []
        for project in self.projects:
            # `projects` for current servers, `project` for those before the rename; a server
            # that knows both reads `projects`.
            query.append(("projects", project))
            query.append(("project", project))
        if self.selector:
            query.append(("selector", self.selector))
        return query

    # -- list -----------------------------------------------------------------------------------

    async def _list(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._list_timeout)
        async with asyncio.timeout(self._list_timeout):
            response = await self.api.request(
                ("api", "v1", "applications"), self._filters(), limits=timeout
            )
            try:
                raw = await response.read()
            finally:
                response.release()
        self._authorized()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ArgoCDApiError(200, "the application list is not JSON") from None
        if not isinstance(body, dict):
            raise ArgoCDApiError(200, "the application list is not a JSON object")
        items = body.get("items") or []
        if not isinstance(items, list):
            raise ArgoCDApiError(200, "the application list has no list of items")
        apps = [as_application(item) for item in items if isinstance(item, dict)]
        if len(apps) != len(items):
            self.counters.malformed += len(items) - len(apps)
            self._log.warning("skipped %d list items that are not objects", len(items) - len(apps))
        metadata = body.get("metadata")
        version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
        try:
            await self._on_list(self.cluster, apps)
        except Exception as exc:
            raise CallbackFailed("on_list failed") from exc
        self.counters.lists += 1
        if self.counters.lists > 1:
            self.counters.relists += 1
        self.resource_version = version if isinstance(version, str) else ""
        self._listed_at = self._clock()
        self._relist_requested = False
        self._backoff.reset()
        self.synced.set()
        self._log.debug(
            "listed %d applications at resourceVersion %s", len(apps), self.resource_version
        )

    # -- stream ---------------------------------------------------------------------------------

    async def _stream(self) -> None:
        query = self._filters()
        if self.resource_version:
            query.append(("resourceVersion", self.resource_version))
        self.counters.streams += 1
        # No read timeout: the server sends nothing while nothing changes (not even headers,
        # until the first event), and the re-list timer bounds every stream anyway.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout)
        response = await self.api.request(
            ("api", "v1", "stream", "applications"), query, limits=timeout
        )
        try:
            self._authorized()
            async with contextlib.aclosing(self._lines(response)) as lines:
                async for line in lines:
                    await self._handle_line(line)
        finally:
            response.close()
        raise _StreamEnded(0, "the server closed the stream")

    def _lines(self, response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
        """Complete non-empty lines of the stream."""
        return read_lines(
            response,
            max_line_bytes=self._max_line_bytes,
            too_long=lambda: ArgoCDApiError(
                200, f"stream line longer than {self._max_line_bytes} bytes"
            ),
        )

    def _skip(self, why: str, line: bytes) -> None:
        self.counters.malformed += 1
        self._log.warning("skipping a stream line that %s: %r", why, line[:200])

    async def _handle_line(self, line: bytes) -> None:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            self._skip("is not JSON", line)
            return
        if not isinstance(message, dict):
            self._skip("is not a JSON object", line)
            return
        if "error" in message:
            raise error_from_line(message["error"])
        result = message.get("result")
        if not isinstance(result, dict):
            self._skip("has no result object", line)
            return
        event_type = result.get("type")
        app = result.get("application")
        if event_type not in _WATCH_TYPES:
            self._skip(f"has an unknown event type {event_type!r}", line)
            return
        if not isinstance(app, dict):
            self._skip("has no application object", line)
            return
        self._backoff.reset()
        self.counters.events += 1
        self._in_callback = True
        try:
            await self._on_event(self.cluster, event_type, as_application(app))
        except Exception as exc:
            raise CallbackFailed(f"on_event failed on {event_type}") from exc
        finally:
            self._in_callback = False
        metadata = app.get("metadata")
        version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
        if isinstance(version, str) and version:
            self.resource_version = _newer(self.resource_version, version)
        if self._relist_requested:
            raise _RelistDue()


_SET_TERM = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _terms(selector: str) -> list[str]:
    """The comma-separated terms of a selector; commas inside `(...)` belong to a set."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [term.strip() for term in terms if term.strip()]


def selector_matches(selector: str | None, labels: Mapping[str, str]) -> bool:
    """Whether labels satisfy a Kubernetes label selector, as Argo CD applies `selector`
    (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`). Pure."""
    for term in _terms(selector or ""):
        if match := _SET_TERM.match(term):
            key, op, values = match.groups()
            allowed = {v.strip() for v in values.split(",") if v.strip()}
            if (labels.get(key) in allowed) != (op == "in"):
                return False
        elif "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


async def _wait(sleep: Sleep, delay: float) -> None:
    await sleep(delay)


def _newer(held: str | None, seen: str) -> str:
    """The later of two resourceVersions. The server compares them as integers and sends only
    changes at or above the one given, so never step back to an older one."""
    if held and held.isdigit() and seen.isdigit() and int(held) > int(seen):
        return held
    return seen
