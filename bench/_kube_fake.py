"""The tests' fake Kubernetes API server, with what an operator framework asks of it beside
list and watch: API discovery, PATCH of an object, POST of an Event, GET of one object.

kopf discovers resources (`/api`, `/apis`, `/apis/{group}/{version}`) before it watches, and
writes to the objects it handles: the last-handled state in an annotation (a JSON merge patch
that the server turns into a MODIFIED watch event, as the real one does) and, unless turned
off, Events. This subclass serves those requests for the benches that run on the fake
(`bench/kopf_compare.py` now runs on a real kube-apiserver instead). Every request it does not serve
is answered 404 and counted in `unserved`, so a bench can show what a client asked for that
the fake lacks. `fast_copies()` makes the fake's writes cheap enough for a load generator.
"""

from __future__ import annotations

import copy
import types
from collections import Counter
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import kube_api
from tests.fakes.kube_api import FakeKubeAPI
from tests.fakes.loopback import STREAMING


def _json_copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def fast_copies() -> None:
    """Let the fake copy objects with a JSON round trip instead of `copy.deepcopy`.

    The fake copies an object three times per `put` (stored, history, returned); for a 15 KB
    Application `copy.deepcopy` takes milliseconds, enough to keep a bench's load generator
    from making 100 or 200 changes a second on a busy machine. The objects are JSON, so a
    round trip through orjson is the same deep copy, about ten times cheaper. Only the fake's
    module sees the change.
    """
    kube_api.copy = types.SimpleNamespace(deepcopy=_json_copy)  # type: ignore[attr-defined, assignment]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: `null` deletes a key, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


class OperatorFakeKubeAPI(FakeKubeAPI):
    """`FakeKubeAPI` plus discovery, PATCH (merge patch), single GET and Event POST.

    `versions` maps an API group to the version discovery announces for it.
    """

    def __init__(self, *, versions: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._versions = versions
        self.patches = 0
        self.events_posted = 0
        self.unserved: Counter[str] = Counter()

    async def start(self) -> OperatorFakeKubeAPI:
        app = web.Application()
        named = "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"
        app.router.add_get("/api", self._api_versions)
        app.router.add_get("/api/v1", self._core_resources)
        app.router.add_get("/apis", self._groups)
        app.router.add_get("/apis/{group}/{version}", self._group_resources)
        app.router.add_get("/version", self._version)
        app.router.add_get(named, self._get_one)
        app.router.add_patch(named, self._patch)
        app.router.add_patch(named + "/{subresource}", self._patch)
        app.router.add_post("/api/v1/namespaces/{namespace}/events", self._post_event)
        app.router.add_get("/api/v1/{plural}", self._handle)
        app.router.add_get("/api/v1/namespaces/{namespace}/{plural}", self._handle)
        app.router.add_get("/apis/{group}/{version}/{plural}", self._handle)
        app.router.add_get("/apis/{group}/{version}/namespaces/{namespace}/{plural}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._unserved)
        self.url = await self.serve(app, **STREAMING)
        return self

    # -- discovery ---------------------------------------------------------------------------

    async def _version(self, request: web.Request) -> web.Response:
        return _json({"major": "1", "minor": "31", "gitVersion": "v1.31.0"})

    async def _api_versions(self, request: web.Request) -> web.Response:
        return _json({"kind": "APIVersions", "versions": ["v1"]})

    async def _core_resources(self, request: web.Request) -> web.Response:
        resources = [
            ("events", "Event", True),
            ("namespaces", "Namespace", False),
            ("pods", "Pod", True),
        ]
        return _json(self._resource_list("v1", resources))

    async def _groups(self, request: web.Request) -> web.Response:
        groups = []
        for group in sorted({g for g, _ in self._installed if g}):
            version = self._versions.get(group, "v1")
            entry = {"groupVersion": f"{group}/{version}", "version": version}
            groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
        return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    async def _group_resources(self, request: web.Request) -> web.Response:
        group, version = request.match_info["group"], request.match_info["version"]
        resources = [
            (plural, self._kinds.get((g, plural), plural), True)
            for g, plural in sorted(self._installed)
            if g == group
        ]
        if not resources or self._versions.get(group, "v1") != version:
            return _json({"kind": "Status", "code": 404, "reason": "NotFound"}, 404)
        return _json(self._resource_list(f"{group}/{version}", resources))

    @staticmethod
    def _resource_list(
        group_version: str, resources: list[tuple[str, str, bool]]
    ) -> dict[str, Any]:
        verbs = ["get", "list", "watch", "create", "update", "patch", "delete"]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": [
                {
                    "name": plural,
                    "singularName": kind.lower(),
                    "namespaced": namespaced,
                    "kind": kind,
                    "verbs": verbs,
                }
                for plural, kind, namespaced in resources
            ],
        }

    # -- writes ------------------------------------------------------------------------------

    def _stored(self, request: web.Request) -> dict[str, Any] | None:
        info = request.match_info
        key = (info["group"], info["plural"], info["namespace"], info["name"])
        return self._objects.get(key)

    async def _get_one(self, request: web.Request) -> web.Response:
        stored = self._stored(request)
        if stored is None:
            return _json({"kind": "Status", "code": 404, "reason": "NotFound"}, 404)
        return _json(stored)

    async def _patch(self, request: web.Request) -> web.Response:
        stored = self._stored(request)
        if stored is None:
            return _json({"kind": "Status", "code": 404, "reason": "NotFound"}, 404)
        if request.content_type != "application/merge-patch+json":
            self.unserved[f"PATCH {request.content_type}"] += 1
            return _json({"kind": "Status", "code": 415, "reason": "UnsupportedMediaType"}, 415)
        patch = orjson.loads(await request.read())
        patched = merge_patch(stored, patch)
        patched["metadata"].pop("resourceVersion", None)
        self.patches += 1
        return _json(self.put(patched, plural=request.match_info["plural"]))

    async def _post_event(self, request: web.Request) -> web.Response:
        self.events_posted += 1
        body = orjson.loads(await request.read())
        return _json(body, 201)

    async def _unserved(self, request: web.Request) -> web.Response:
        self.unserved[f"{request.method} {request.path}"] += 1
        return _json({"kind": "Status", "code": 404, "reason": "NotFound"}, 404)


__all__ = ["OperatorFakeKubeAPI", "merge_patch"]
