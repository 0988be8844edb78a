"""A fake Argo CD API server, so the Application stream client can be tested over real HTTP.

It speaks what the real server (grpc-gateway in front of ApplicationService) speaks:

- `GET /api/v1/applications`: an ApplicationList, `{"metadata": {"resourceVersion"}, "items"}`,
  items without apiVersion/kind, filtered by `projects`/`project` and a label `selector`;
- `GET /api/v1/stream/applications`: newline-delimited `{"result": {"type", "application"}}`,
  kept open. Without `resourceVersion` it first sends an ADDED per app; with one, only later
  changes at or above it (the server replays nothing);
- `GET /api/v1/applications/{name}/revisions/{revision}/metadata`: RevisionMetadata;
- errors as grpc-gateway writes them: `{"error", "code" (gRPC), "message"}` with the HTTP status;
- `Authorization: Bearer <token>` on every request, else 401 (code 16).

Tests drive it synchronously (`put`, `delete`) and inject faults: drop the streams, answer an
error status to the next requests, hang a metadata request, send a raw line, or act as the real
server does with a slow subscriber and silently drop events (`dropping = True`).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

from tests.fakes.kube_api import selector_matches
from tests.fakes.loopback import STREAMING, LoopbackServer

__all__ = ["FakeArgoCDAPI", "RecordedRequest"]

Endpoint = Literal["list", "stream", "metadata", "get", "sync", "rollback", "terminate"]

_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 500: 13, 503: 14}
_PRECONDITION = 9
"""gRPC FailedPrecondition, which grpc-gateway answers with HTTP 400."""
_END = object()
_ABORT = object()


def _error(status: int, message: str, code: int | None = None) -> web.Response:
    code = code if code is not None else _GRPC_CODES.get(status, 2)
    body = {"error": message, "code": code, "message": message}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _result(event_type: str, app: dict[str, Any]) -> bytes:
    return orjson.dumps({"result": {"type": event_type, "application": app}}) + b"\n"


def _served(app: dict[str, Any]) -> dict[str, Any]:
    """An Application as the API server serializes it: from the informer, without TypeMeta."""
    out = copy.deepcopy(app)
    out.pop("apiVersion", None)
    out.pop("kind", None)
    return out


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it; `query` keeps repeated keys (`projects`) as lists."""

    endpoint: Endpoint
    path: str
    query: dict[str, list[str]]
    authorization: str
    status: int
    body: Any = None
    """The JSON body of a POST (sync, rollback)."""

    def one(self, key: str) -> str | None:
        values = self.query.get(key)
        return values[0] if values else None


@dataclass
class _Fault:
    on: Endpoint
    status: int
    message: str


@dataclass
class _Stream:
    projects: frozenset[str]
    selector: str | None
    since: int
    request: web.Request
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)

    def wants(self, app: dict[str, Any]) -> bool:
        if self.projects and app.get("spec", {}).get("project") not in self.projects:
            return False
        labels = app.get("metadata", {}).get("labels") or {}
        if not selector_matches(self.selector, labels):
            return False
        return int(app["metadata"]["resourceVersion"]) >= self.since


class FakeArgoCDAPI(LoopbackServer):
    """The fake server: `async with FakeArgoCDAPI(token="t") as api`, then point a client at
    `api.url`."""

    def __init__(self, *, token: str = "argocd-token", start_resource_version: int = 5000) -> None:
        self.token = token
        self._rv = start_resource_version
        self._apps: dict[tuple[str, str], dict[str, Any]] = {}
        self._streams: list[_Stream] = []
        self._faults: list[_Fault] = []
        self._hang_metadata = 0
        self._release = asyncio.Event()
        self._changed = asyncio.Event()
        self.url = ""
        self.dropping = False
        """Act as a server whose subscriber reads too slowly: changes reach no stream."""
        self.dropped = 0
        self.revision_metadata: dict[tuple[str, str], dict[str, Any]] = {}
        """(app name, revision) -> RevisionMetadata body."""
        self.requests: list[RecordedRequest] = []

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> FakeArgoCDAPI:
        app = web.Application()
        app.router.add_get("/api/v1/applications", self._list)
        app.router.add_get("/api/v1/stream/applications", self._stream)
        app.router.add_get(
            "/api/v1/applications/{name}/revisions/{revision}/metadata", self._metadata
        )
        app.router.add_get("/api/v1/applications/{name}", self._get)
        app.router.add_post("/api/v1/applications/{name}/sync", self._sync)
        app.router.add_post("/api/v1/applications/{name}/rollback", self._rollback)
        app.router.add_delete("/api/v1/applications/{name}/operation", self._terminate)
        self.url = await self.serve(app, **STREAMING)
        return self

    async def close(self) -> None:
        self._release.set()
        for stream in self._streams:
            stream.queue.put_nowait(_END)
        await self.stop_serving()

    # -- state ----------------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    def put(self, app: dict[str, Any]) -> dict[str, Any]:
        """Create or update an Application; streams get ADDED or MODIFIED (unless dropping)."""
        stored = _served(app)
        metadata = stored.setdefault("metadata", {})
        metadata.setdefault("namespace", "argocd")
        key = (metadata["namespace"], metadata["name"])
        event_type = "MODIFIED" if key in self._apps else "ADDED"
        self._rv += 1
        metadata["resourceVersion"] = str(self._rv)
        self._apps[key] = stored
        self._broadcast(event_type, stored)
        return stored

    def delete(self, app: dict[str, Any]) -> None:
        """Delete an Application; streams get DELETED with its last state."""
        metadata = app["metadata"]
        stored = self._apps.pop((metadata.get("namespace", "argocd"), metadata["name"]))
        self._rv += 1
        gone = copy.deepcopy(stored)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._broadcast("DELETED", gone)

    def names(self) -> list[str]:
        return sorted(name for _, name in self._apps)

    # -- faults ---------------------------------------------------------------------------------

    def fail_next(
        self, status: int = 500, *, on: Endpoint, count: int = 1, message: str = ""
    ) -> None:
        """Answer the next `count` requests to `on` with `status`."""
        text = message or {500: "internal error", 503: "unavailable"}.get(status, "error")
        self._faults.extend(_Fault(on, status, text) for _ in range(count))

    def drop_streams(self) -> None:
        """Cut every open stream (the connection is aborted, as by a proxy or a restart)."""
        for stream in self._streams:
            stream.queue.put_nowait(_ABORT)

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are to every open stream."""
        for stream in self._streams:
            stream.queue.put_nowait(data)

    def send_error(self, status: int, message: str) -> None:
        """An error line in every open stream, as grpc-gateway writes one after the headers."""
        line = {
            "error": {
                "grpc_code": _GRPC_CODES.get(status, 2),
                "http_code": status,
                "message": message,
                "http_status": "Error",
            }
        }
        self.send_raw(orjson.dumps(line) + b"\n")

    def hang_metadata(self, count: int = 1) -> None:
        """The next `count` metadata requests wait until the server closes."""
        self._hang_metadata += count

    async def wait_for(self, predicate: Callable[[], bool], *, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    def of(self, endpoint: Endpoint) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    # -- internals ------------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _broadcast(self, event_type: str, app: dict[str, Any]) -> None:
        for stream in self._streams:
            if not stream.wants(app):
                continue
            if self.dropping:
                self.dropped += 1
                continue
            stream.queue.put_nowait(_result(event_type, copy.deepcopy(app)))

    def _admit(self, request: web.Request, endpoint: Endpoint) -> web.Response | None:
        """The error answer for a request that gets one (auth, injected fault), else None."""
        answer: web.Response | None = None
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            answer = _error(401, "no session information")
        else:
            for index, fault in enumerate(self._faults):
                if fault.on == endpoint:
                    del self._faults[index]
                    answer = _error(fault.status, fault.message)
                    break
        if answer is not None:
            self._record(request, endpoint, answer.status)
        return answer

    def _record(
        self, request: web.Request, endpoint: Endpoint, status: int, body: Any = None
    ) -> None:
        query = {key: request.query.getall(key) for key in request.query}
        authorization = request.headers.get("Authorization", "")
        self.requests.append(
            RecordedRequest(endpoint, request.path, query, authorization, status, body)
        )
        self._notify()

    # -- acting (ApplicationService Sync, Rollback, Get with refresh, TerminateOperation) ----

    account = "driftbot"
    """The account the token belongs to: Argo CD's initiatedBy.username for its actions."""

    def _app_of(self, request: web.Request) -> dict[str, Any] | None:
        namespace = request.query.get("appNamespace") or "argocd"
        return self._apps.get((namespace, request.match_info["name"]))

    async def _acting(
        self, request: web.Request, endpoint: Endpoint
    ) -> tuple[dict[str, Any] | None, Any, web.Response | None]:
        body: Any = None
        if request.method == "POST":
            body = orjson.loads(await request.read() or b"{}")
        if (answer := self._admit(request, endpoint)) is not None:
            return None, body, answer
        app = self._app_of(request)
        if app is None:
            name = request.match_info["name"]
            self._record(request, endpoint, 404, body)
            return None, body, _error(404, f'applications.argoproj.io "{name}" not found')
        return app, body, None

    def _refuse(
        self, request: web.Request, endpoint: Endpoint, body: Any, message: str, code: int
    ) -> web.Response:
        self._record(request, endpoint, 400, body)
        return _error(400, message, code)

    def _operate(self, app: dict[str, Any], sync: dict[str, Any]) -> web.Response:
        changed = copy.deepcopy(app)
        changed["operation"] = {"sync": sync, "initiatedBy": {"username": self.account}}
        changed.get("status", {}).pop("operationState", None)
        stored = self.put(changed)
        return web.Response(body=orjson.dumps(stored), content_type="application/json")

    async def _get(self, request: web.Request) -> web.Response:
        app, _body, answer = await self._acting(request, "get")
        if answer is not None or app is None:
            return answer or _error(500, "no app")
        self._record(request, "get", 200)
        return web.Response(body=orjson.dumps(app), content_type="application/json")

    async def _sync(self, request: web.Request) -> web.Response:
        app, body, answer = await self._acting(request, "sync")
        if answer is not None or app is None:
            return answer or _error(500, "no app")
        if app.get("operation"):
            message = "another operation is already in progress"
            return self._refuse(request, "sync", body, message, _PRECONDITION)
        self._record(request, "sync", 200, body)
        return self._operate(app, {"revision": body.get("revision", "")})

    async def _rollback(self, request: web.Request) -> web.Response:
        app, body, answer = await self._acting(request, "rollback")
        if answer is not None or app is None:
            return answer or _error(500, "no app")
        if (app.get("spec", {}).get("syncPolicy") or {}).get("automated") is not None:
            message = "rollback cannot be initiated when auto-sync is enabled"
            return self._refuse(request, "rollback", body, message, _PRECONDITION)
        wanted = str(body.get("id"))
        history = app.get("status", {}).get("history") or []
        entry = next((h for h in history if str(h.get("id")) == wanted), None)
        if entry is None:
            name = app["metadata"]["name"]
            message = f"application {name} does not have deployment with id {wanted}"
            return self._refuse(request, "rollback", body, message, 3)
        self._record(request, "rollback", 200, body)
        return self._operate(app, {"revision": entry.get("revision", "")})

    async def _terminate(self, request: web.Request) -> web.Response:
        app, body, answer = await self._acting(request, "terminate")
        if answer is not None or app is None:
            return answer or _error(500, "no app")
        if not app.get("operation"):
            message = "Unable to terminate operation. No operation is in progress"
            return self._refuse(request, "terminate", body, message, 3)
        self._record(request, "terminate", 200)
        return web.Response(body=b"{}", content_type="application/json")

    def _selected(self, request: web.Request) -> list[dict[str, Any]]:
        projects = set(request.query.getall("projects", [])) or set(
            request.query.getall("project", [])
        )
        selector = request.query.get("selector")
        return [
            app
            for _, app in sorted(self._apps.items())
            if (not projects or app.get("spec", {}).get("project") in projects)
            and selector_matches(selector, app["metadata"].get("labels") or {})
        ]

    async def _list(self, request: web.Request) -> web.Response:
        if (answer := self._admit(request, "list")) is not None:
            return answer
        self._record(request, "list", 200)
        body = {
            "metadata": {"resourceVersion": self.resource_version},
            "items": [copy.deepcopy(app) for app in self._selected(request)],
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if (answer := self._admit(request, "stream")) is not None:
            return answer
        requested = request.query.get("resourceVersion", "")
        projects = set(request.query.getall("projects", [])) or set(
            request.query.getall("project", [])
        )
        stream = _Stream(
            frozenset(projects),
            request.query.get("selector"),
            int(requested) if requested.isdigit() else 0,
            request,
        )
        if not requested:
            for app in self._selected(request):
                stream.queue.put_nowait(_result("ADDED", copy.deepcopy(app)))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        self._record(request, "stream", 200)
        self._streams.append(stream)
        self._notify()
        try:
            await response.prepare(request)
            while True:
                item = await stream.queue.get()
                if item is _ABORT:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if item is _END:
                    break
                assert isinstance(item, bytes)
                await response.write(item)
            await response.write_eof()
        except ConnectionError:
            pass
        finally:
            self._streams.remove(stream)
            self._notify()
        return response

    async def _metadata(self, request: web.Request) -> web.Response:
        if (answer := self._admit(request, "metadata")) is not None:
            return answer
        if self._hang_metadata:
            self._hang_metadata -= 1
            self._record(request, "metadata", 0)  # 0: no answer
            await self._release.wait()
            return _error(503, "server is shutting down")
        key = (request.match_info["name"], request.match_info["revision"])
        body = self.revision_metadata.get(key)
        if body is None:
            self._record(request, "metadata", 404)
            return _error(404, f"revision {key[1]} of {key[0]} not found")
        self._record(request, "metadata", 200)
        return web.Response(body=orjson.dumps(body), content_type="application/json")
