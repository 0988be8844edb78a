"""A fake Kubernetes API server, so the real kubernetes_asyncio client can be tested end to end.

It speaks the wire protocol of the API server for any resource, core (`/api/v1/...`) or grouped
(`/apis/{group}/{version}/...`), namespaced or cluster-wide: LIST with labelSelector and
limit/continue paging, WATCH as newline-delimited JSON from a resourceVersion with bookmarks,
a monotonically increasing resourceVersion, and a history window: a watch from a compacted
resourceVersion gets an `ERROR` event with a 410 `Expired` Status, as the real server sends.

Single objects of a namespaced resource can be read (GET, 404 when absent), created (POST,
409 AlreadyExists) and replaced (PUT, 409 Conflict when the body's resourceVersion is not the
stored one): what a leader elector does with its coordination.k8s.io/v1 Lease. Lease MicroTime
fields (`acquireTime`, `renewTime`) must have the API server's exact form, six fractional
digits (`2006-01-02T15:04:05.000000Z`), or the write is refused with 400 as the real decoder does.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from aiohttp import web
from kubernetes_asyncio.client import Configuration

from tests.fakes.loopback import STREAMING, LoopbackServer

__all__ = ["FakeKubeAPI", "RecordedRequest", "plural_of"]

Verb = Literal["list", "watch", "get", "create", "update", "any"]
RequestVerb = Literal["list", "watch", "get", "create", "update"]

_CORE_KINDS = {
    "events": "Event",
    "pods": "Pod",
    "namespaces": "Namespace",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "services": "Service",
}
_TRUE = {"true", "True", "1"}
_MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)")
"""metav1.MicroTime on the wire: Go's layout 2006-01-02T15:04:05.000000Z07:00, exactly."""
_MICRO_TIME_FIELDS = {("coordination.k8s.io", "leases"): ("acquireTime", "renewTime")}


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
    409: "Conflict",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _error_response(code: int, message: str, reason: str | None = None) -> web.Response:
    body = orjson.dumps(_status(code, reason or _REASONS.get(code, "Unknown"), message))
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

    verb: RequestVerb
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


class FakeKubeAPI(LoopbackServer):
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
        one = "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"
        app.router.add_get(one, self._handle_one)
        app.router.add_put(one, self._handle_one)
        app.router.add_post("/apis/{group}/{version}/namespaces/{namespace}/{plural}", self._create)
        self.url = await self.serve(app, **STREAMING)
        return self

    async def close(self) -> None:
        self._closing.set()
        for watch in self._watches:
            watch.queue.put_nowait(_END)
        await self.stop_serving()

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

    def rotate_token(self, token: str) -> None:
        """From now on only `token` is accepted (the old one expired or was revoked)."""
        self._token = token

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

    def get(
        self, api_version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """A copy of the stored object, or None."""
        obj = self._objects.get((api_version.rpartition("/")[0], plural, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The coordination.k8s.io/v1 Lease, as stored, or None."""
        return self.get("coordination.k8s.io/v1", "leases", namespace, name)

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

    def _take_fault(self, verb: RequestVerb) -> _Fault | None:
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

    def _check(
        self, request: web.Request, verb: RequestVerb
    ) -> tuple[web.Response | None, Callable[[int], None]]:
        """Authorization and injected status faults of a single-object request."""

        def record(status: int) -> None:
            self.requests.append(RecordedRequest(verb, request.path, dict(request.query), status))
            self._notify()

        if self._token is not None and request.headers.get("Authorization") != (
            f"Bearer {self._token}"
        ):
            record(401)
            return _error_response(401, "Unauthorized"), record
        fault = self._take_fault(verb)
        if fault is not None and fault.kind == "status":
            record(fault.status)
            return _error_response(fault.status, fault.message), record
        if fault is not None:
            raise NotImplementedError("hang faults are for list and watch requests")
        return None, record

    async def _body(
        self, request: web.Request, group: str, plural: str, record: Callable[[int], None]
    ) -> dict[str, Any] | web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            record(400)
            return _error_response(400, f"invalid JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            record(400)
            return _error_response(400, "the body must be an object with metadata")
        spec = body["spec"] if isinstance(body.get("spec"), dict) else {}
        for name in _MICRO_TIME_FIELDS.get((group, plural), ()):
            value = spec.get(name)
            if value is not None and not (isinstance(value, str) and _MICRO_TIME.fullmatch(value)):
                record(400)
                return _error_response(
                    400,
                    f"spec.{name}: parsing time {value!r} as "
                    '"2006-01-02T15:04:05.000000Z07:00": cannot parse',
                )
        return body

    def _stamp(
        self, body: dict[str, Any], group: str, version: str, plural: str, namespace: str
    ) -> dict[str, Any]:
        body["apiVersion"] = f"{group}/{version}"
        body.setdefault("kind", self._kinds.get((group, plural), ""))
        metadata = body["metadata"]
        metadata["namespace"] = namespace
        self._rv += 1
        metadata["resourceVersion"] = str(self._rv)
        return body

    async def _handle_one(self, request: web.Request) -> web.Response:
        match = request.match_info
        group, version, plural = match["group"], match["version"], match["plural"]
        namespace, name = match["namespace"], match["name"]
        verb: RequestVerb = "get" if request.method == "GET" else "update"
        refused, record = self._check(request, verb)
        if refused is not None:
            return refused
        what = f'{plural}.{group} "{name}"'
        key = (group, plural, namespace, name)
        stored = self._objects.get(key)
        if verb == "get":
            if stored is None:
                record(404)
                return _error_response(404, f"{what} not found")
            record(200)
            return web.Response(body=orjson.dumps(stored), content_type="application/json")
        body = await self._body(request, group, plural, record)
        if isinstance(body, web.Response):
            return body
        if body["metadata"].get("name") != name:
            record(400)
            return _error_response(400, "the name of the object does not match the name on the URL")
        if stored is None:
            record(404)
            return _error_response(404, f"{what} not found")
        sent_version = body["metadata"].get("resourceVersion")
        if sent_version and sent_version != stored["metadata"]["resourceVersion"]:
            record(409)
            return _error_response(
                409,
                f"Operation cannot be fulfilled on {what}: the object has been modified; "
                "please apply your changes to the latest version and try again",
            )
        for field_name in ("uid", "creationTimestamp"):
            if field_name in stored["metadata"]:
                body["metadata"][field_name] = stored["metadata"][field_name]
        replaced = self._stamp(body, group, version, plural, namespace)
        self._objects[key] = replaced
        self._record("MODIFIED", group, plural, replaced)
        record(200)
        return web.Response(body=orjson.dumps(replaced), content_type="application/json")

    async def _create(self, request: web.Request) -> web.Response:
        match = request.match_info
        group, version, plural = match["group"], match["version"], match["plural"]
        namespace = match["namespace"]
        refused, record = self._check(request, "create")
        if refused is not None:
            return refused
        body = await self._body(request, group, plural, record)
        if isinstance(body, web.Response):
            return body
        name = body["metadata"].get("name")
        if not isinstance(name, str) or not name:
            record(422)
            return _error_response(422, "metadata.name: Required value", "Invalid")
        key = (group, plural, namespace, name)
        if key in self._objects:
            record(409)
            return _error_response(
                409, f'{plural}.{group} "{name}" already exists', "AlreadyExists"
            )
        if body["metadata"].get("resourceVersion"):
            record(400)
            return _error_response(
                400, "resourceVersion should not be set on objects to be created"
            )
        body["metadata"]["uid"] = str(uuid.uuid4())
        body["metadata"]["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        created = self._stamp(body, group, version, plural, namespace)
        self._installed.add((group, plural))
        self._objects[key] = created
        self._record("ADDED", group, plural, created)
        record(201)
        return web.Response(status=201, body=orjson.dumps(created), content_type="application/json")

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
