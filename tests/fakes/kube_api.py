"""A fake Kubernetes API server, so the real kubernetes_asyncio client can be tested end to end.

It speaks the wire protocol of the API server for any resource, core (`/api/v1/...`) or grouped
(`/apis/{group}/{version}/...`), namespaced or cluster-wide: LIST with labelSelector and
limit/continue paging, WATCH as newline-delimited JSON from a resourceVersion with bookmarks,
a monotonically increasing resourceVersion, and a history window: a watch from a compacted
resourceVersion gets an `ERROR` event with a 410 `Expired` Status, as the real server sends.

Tests drive it synchronously (`put`, `delete`, `bookmark`, `expire_history`, ...) and inject
faults: answer an error status, hang, drop a watch mid-stream, end it cleanly, restart with a
compacted history, or serve 404 for a resource whose CRD is not installed until `install_crd`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import orjson
import yaml
from aiohttp import web
from kubernetes_asyncio.client import Configuration

__all__ = ["FakeKubeAPI", "RecordedRequest", "plural_of"]

Verb = Literal["list", "watch", "any"]

_CORE_KINDS = {
    "events": "Event",
    "pods": "Pod",
    "namespaces": "Namespace",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "services": "Service",
}
_TRUE = {"true", "True", "1"}


def plural_of(kind: str) -> str:
    """The plural the API server uses for a kind: Bucket -> buckets, GitRepository -> ...ies."""
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + "s"


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _error_response(code: int, message: str) -> web.Response:
    body = orjson.dumps(_status(code, _REASONS.get(code, "Unknown"), message))
    return web.Response(status=code, body=body, content_type="application/json")


def _line(event_type: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": event_type, "object": obj}) + b"\n"


# ---------------------------------------------------------------------------------------------
# label selectors


_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _requirement(term: str) -> Callable[[dict[str, str]], bool]:
    set_match = _SET_RE.match(term)
    if set_match:
        key, op, values = set_match.groups()
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    if "!=" in term:
        key, value = (s.strip() for s in term.split("!=", 1))
        return lambda labels: labels.get(key) != value
    if "=" in term:
        key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
        return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    return lambda labels: term in labels


def selector_matches(selector: str | None, labels: dict[str, str]) -> bool:
    """Whether labels satisfy a Kubernetes label selector (equality, existence and set terms)."""
    if not selector:
        return True
    return all(_requirement(term)(labels) for term in _split_selector(selector))


# ---------------------------------------------------------------------------------------------
# server state


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it: for asserting what the client asked for."""

    verb: Literal["list", "watch"]
    path: str
    query: dict[str, str]
    status: int


@dataclass(frozen=True)
class _Target:
    group: str
    plural: str
    namespace: str | None

    def holds(self, obj: dict[str, Any], group: str, plural: str) -> bool:
        if (group, plural) != (self.group, self.plural):
            return False
        return self.namespace is None or obj["metadata"].get("namespace") == self.namespace


@dataclass
class _Fault:
    on: Verb
    kind: Literal["status", "hang"]
    status: int = 500
    message: str = ""
    after_headers: bool = False


_END = object()
_ABORT = object()


@dataclass
class _Watch:
    target: _Target
    selector: str | None
    bookmarks: bool
    request: web.Request
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)


@dataclass
class _Page:
    items: list[dict[str, Any]]
    resource_version: str


class FakeKubeAPI:
    """The fake server: `async with FakeKubeAPI() as api`, then `ApiClient(api.configuration())`."""

    def __init__(self, *, token: str | None = None, start_resource_version: int = 1000) -> None:
        self._token = token
        self._rv = start_resource_version
        self._compacted_before = 0
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._history: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self._installed: set[tuple[str, str]] = set()
        self._kinds: dict[tuple[str, str], str] = {}
        self._watches: list[_Watch] = []
        self._faults: list[_Fault] = []
        self._pages: dict[str, _Page] = {}
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.lists_served = 0
        self.watches_served = 0
        self.requests: list[RecordedRequest] = []

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> FakeKubeAPI:
        app = web.Application()
        app.router.add_get("/api/v1/{plural}", self._handle)
        app.router.add_get("/api/v1/namespaces/{namespace}/{plural}", self._handle)
        app.router.add_get("/apis/{group}/{version}/{plural}", self._handle)
        app.router.add_get("/apis/{group}/{version}/namespaces/{namespace}/{plural}", self._handle)
        # Like the real server, notice a client that went away and end its watch.
        self._runner = web.AppRunner(
            app, shutdown_timeout=1.0, access_log=None, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        self._closing.set()
        for watch in self._watches:
            watch.queue.put_nowait(_END)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeKubeAPI:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def configuration(self) -> Configuration:
        """A client Configuration pointing at this server (with the bearer token, if any)."""
        config = Configuration(host=self.url)
        if self._token is not None:
            config.api_key = {"BearerToken": self._token}
            config.api_key_prefix = {"BearerToken": "Bearer"}
        return config

    def kubeconfig(self, *, context: str = "fake") -> dict[str, Any]:
        """A kubeconfig document for this server, for `load_kube_config_from_dict`."""
        user: dict[str, Any] = {"token": self._token} if self._token is not None else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": user}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        }

    def write_kubeconfig(self, path: Path, *, context: str = "fake") -> Path:
        """Write `kubeconfig()` to a file, for code that takes a kubeconfig path."""
        path.write_text(yaml.safe_dump(self.kubeconfig(context=context)))
        return path

    # -- state driven by tests --------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        """The latest resourceVersion the server has handed out."""
        return str(self._rv)

    @property
    def active_watches(self) -> int:
        return len(self._watches)

    def install_crd(self, group: str, plural: str, *, kind: str | None = None) -> None:
        """Serve this resource from now on (before, it answers 404 as if the CRD were absent)."""
        self._installed.add((group, plural))
        if kind is not None:
            self._kinds[(group, plural)] = kind
        self._notify()

    def uninstall_crd(self, group: str, plural: str) -> None:
        """Stop serving the resource: its objects go, its watches end, requests get 404."""
        for key in [k for k in self._objects if (k[0], k[1]) == (group, plural)]:
            self._record("DELETED", group, plural, self._objects.pop(key))
        self._installed.discard((group, plural))
        for watch in [
            w for w in self._watches if (w.target.group, w.target.plural) == (group, plural)
        ]:
            self._end(watch, _END)

    def put(self, obj: dict[str, Any], *, plural: str | None = None) -> dict[str, Any]:
        """Create or update an object (ADDED or MODIFIED); returns the stored copy with its rv."""
        group, plural = self._resource_of(obj, plural)
        stored = copy.deepcopy(obj)
        metadata = stored.setdefault("metadata", {})
        if "name" not in metadata:
            raise ValueError("object has no metadata.name")
        key = (group, plural, metadata.get("namespace", ""), metadata["name"])
        previous = self._objects.get(key)
        metadata["uid"] = previous["metadata"]["uid"] if previous else str(uuid.uuid4())
        self._installed.add((group, plural))
        self._kinds.setdefault((group, plural), stored["kind"])
        self._rv += 1
        metadata["resourceVersion"] = str(self._rv)
        self._objects[key] = stored
        self._record("MODIFIED" if previous else "ADDED", group, plural, stored)
        return copy.deepcopy(stored)

    def delete(self, obj: dict[str, Any], *, plural: str | None = None) -> dict[str, Any]:
        """Delete an object (DELETED carries its last state with a new rv); KeyError if absent."""
        group, plural = self._resource_of(obj, plural)
        metadata = obj["metadata"]
        stored = self._objects.pop((group, plural, metadata.get("namespace", ""), metadata["name"]))
        self._rv += 1
        stored["metadata"]["resourceVersion"] = str(self._rv)
        self._record("DELETED", group, plural, stored)
        return copy.deepcopy(stored)

    def touch(self) -> str:
        """Advance the resourceVersion with no change a watch sees (another resource changed)."""
        self._rv += 1
        return str(self._rv)

    def bookmark(self) -> None:
        """Send a BOOKMARK at the current resourceVersion to every watch that allows them."""
        for watch in self._watches:
            if watch.bookmarks:
                obj = {
                    "kind": self._kinds.get((watch.target.group, watch.target.plural), ""),
                    "apiVersion": "",
                    "metadata": {"resourceVersion": str(self._rv)},
                }
                watch.queue.put_nowait(_line("BOOKMARK", obj))

    def compact(self, before: int) -> None:
        """Forget history: a watch from a resourceVersion older than `before` gets 410 Expired."""
        self._compacted_before = before
        self._history = [entry for entry in self._history if entry[0] >= before]
        self._pages.clear()

    def expire_history(self, *, notify_watches: bool = True) -> None:
        """Compact history up to now; running watches lose their unsent events and get 410.

        This is what a client sees when it falls behind: the events it has not read yet are gone,
        so only a relist can tell it what happened in the gap.
        """
        self.compact(self._rv)
        if notify_watches:
            expired = _line("ERROR", _status(410, "Expired", "too old resource version"))
            for watch in list(self._watches):
                _drain(watch.queue)
                watch.queue.put_nowait(expired)
                self._end(watch, _END)

    def restart(self, *, jump: int = 1000) -> None:
        """Restart with new resourceVersions: watches drop, history is compacted, rv jumps."""
        self.drop_watches()
        self._rv += jump
        self.compact(self._rv)

    def fail_next(
        self, status: int = 500, *, count: int = 1, on: Verb = "any", message: str = "injected"
    ) -> None:
        """Answer the next `count` matching requests with this HTTP status and a Status body."""
        self._faults.extend(
            _Fault(on=on, kind="status", status=status, message=message) for _ in range(count)
        )

    def hang_next(self, *, count: int = 1, on: Verb = "watch", after_headers: bool = False) -> None:
        """Let the next `count` matching requests hang, sending nothing (or only the headers)."""
        self._faults.extend(
            _Fault(on=on, kind="hang", after_headers=after_headers) for _ in range(count)
        )

    def drop_watches(self) -> None:
        """Cut every running watch connection mid-stream (the client sees a broken response)."""
        for watch in list(self._watches):
            _drain(watch.queue)
            self._end(watch, _ABORT)

    def end_watches(self) -> None:
        """End every running watch cleanly, as the server does when timeoutSeconds runs out."""
        for watch in list(self._watches):
            self._end(watch, _END)

    def send_raw(self, data: bytes) -> None:
        """Write raw bytes into every running watch stream (malformed input tests)."""
        for watch in self._watches:
            watch.queue.put_nowait(data)

    async def wait_for(self, predicate: Callable[[], bool], *, within: float = 5.0) -> None:
        """Wait until the predicate over this server's state holds (after each request/change)."""
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    def watch_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.verb == "watch"]

    def list_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.verb == "list"]

    # -- internals ------------------------------------------------------------------------------

    def _resource_of(self, obj: dict[str, Any], plural: str | None) -> tuple[str, str]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError("object needs a string apiVersion and kind")
        return api_version.rpartition("/")[0], plural or plural_of(kind)

    def _record(self, event_type: str, group: str, plural: str, obj: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(obj)
        self._history.append((self._rv, event_type, group, plural, snapshot))
        line = _line(event_type, snapshot)
        for watch in self._watches:
            if watch.target.holds(snapshot, group, plural) and selector_matches(
                watch.selector, snapshot["metadata"].get("labels") or {}
            ):
                watch.queue.put_nowait(line)
        self._notify()

    def _end(self, watch: _Watch, how: object) -> None:
        watch.queue.put_nowait(how)
        if watch in self._watches:
            self._watches.remove(watch)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _take_fault(self, verb: Literal["list", "watch"]) -> _Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.on in (verb, "any"):
                return self._faults.pop(index)
        return None

    def _matching(self, target: _Target, selector: str | None) -> Iterator[dict[str, Any]]:
        for (group, plural, _, _), obj in sorted(self._objects.items()):
            if target.holds(obj, group, plural) and selector_matches(
                selector, obj["metadata"].get("labels") or {}
            ):
                yield obj

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        match = request.match_info
        group = match.get("group", "")
        version = match.get("version", "v1")
        target = _Target(group, match["plural"], match.get("namespace"))
        query = dict(request.query)
        verb: Literal["list", "watch"] = "watch" if query.get("watch") in _TRUE else "list"

        def record(status: int) -> None:
            self.requests.append(RecordedRequest(verb, request.path, query, status))
            self._notify()

        if self._token is not None and request.headers.get("Authorization") != (
            f"Bearer {self._token}"
        ):
            record(401)
            return _error_response(401, "Unauthorized")
        fault = self._take_fault(verb)
        if fault is not None and fault.kind == "status":
            record(fault.status)
            return _error_response(fault.status, fault.message)
        if fault is not None:
            record(200)
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            if fault.after_headers:
                await response.prepare(request)
            await self._closing.wait()
            return response
        if group and (group, target.plural) not in self._installed:
            record(404)
            return _error_response(404, "the server could not find the requested resource")
        kind = self._kinds.get((group, target.plural)) or _CORE_KINDS.get(target.plural, "")
        api_version = f"{group}/{version}" if group else version
        if verb == "watch":
            return await self._watch(request, target, query, record)
        return self._list(target, query, kind, api_version, record)

    def _list(
        self,
        target: _Target,
        query: dict[str, str],
        kind: str,
        api_version: str,
        record: Callable[[int], None],
    ) -> web.Response:
        token = query.get("continue")
        if token:
            page = self._pages.pop(token, None)
            if page is None:
                record(410)
                return _error_response(410, "The provided continue parameter is too old")
            items, resource_version = page.items, page.resource_version
        else:
            requested = query.get("resourceVersion")
            if (
                requested
                and query.get("resourceVersionMatch") == "Exact"
                and int(requested) < self._compacted_before
            ):
                record(410)
                return _error_response(410, f"too old resource version: {requested}")
            items = [
                copy.deepcopy(obj) for obj in self._matching(target, query.get("labelSelector"))
            ]
            if not target.group:
                # The real server leaves kind and apiVersion out of built-in list items.
                for item in items:
                    item.pop("kind", None)
                    item.pop("apiVersion", None)
            resource_version = str(self._rv)
        metadata: dict[str, Any] = {"resourceVersion": resource_version}
        limit = int(query.get("limit") or 0)
        if limit and len(items) > limit:
            token = uuid.uuid4().hex
            self._pages[token] = _Page(items[limit:], resource_version)
            items = items[:limit]
            metadata["continue"] = token
        self.lists_served += 1
        record(200)
        body = {
            "apiVersion": api_version,
            "kind": f"{kind}List",
            "metadata": metadata,
            "items": items,
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _watch(
        self,
        request: web.Request,
        target: _Target,
        query: dict[str, str],
        record: Callable[[int], None],
    ) -> web.StreamResponse:
        selector = query.get("labelSelector")
        requested = query.get("resourceVersion") or ""
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        try:
            since = int(requested) if requested not in ("", "0") else None
        except ValueError:
            record(400)
            return _error_response(400, f"invalid resourceVersion {requested!r}")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if since is not None and since < self._compacted_before:
            record(200)
            await response.prepare(request)
            await response.write(
                _line("ERROR", _status(410, "Expired", f"too old resource version: {since}"))
            )
            await response.write_eof()
            return response
        if since is None:
            replay = [_line("ADDED", obj) for obj in self._matching(target, selector)]
        else:
            replay = [
                _line(event_type, obj)
                for rv, event_type, group, plural, obj in self._history
                if rv > since
                and target.holds(obj, group, plural)
                and selector_matches(selector, obj["metadata"].get("labels") or {})
            ]
        watch = _Watch(target, selector, query.get("allowWatchBookmarks") in _TRUE, request)
        for line in replay:
            watch.queue.put_nowait(line)
        self._watches.append(watch)
        self.watches_served += 1
        record(200)
        try:
            await response.prepare(request)
            deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        item = await watch.queue.get()
                except TimeoutError:
                    break
                if item is _ABORT:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if item is _END:
                    break
                assert isinstance(item, bytes)
                await response.write(item)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            if watch in self._watches:
                self._watches.remove(watch)
                self._notify()
        return response


def _drain(queue: asyncio.Queue[object]) -> None:
    with contextlib.suppress(asyncio.QueueEmpty):
        for _ in itertools.count():
            queue.get_nowait()
