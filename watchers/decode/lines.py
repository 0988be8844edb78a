"""Decoders of watch lines, list pages and recorded lines: typed views where the kind has one.

`ResourceDecoder` is what a `ResourceWatcher` decodes its bytes with. For a resource with a
view (`VIEWS`), a line is decoded straight into it; a line the view cannot take (an ERROR
event, whose object is a Status; a field of an unexpected type) is parsed in full with orjson,
as every line was before, so nothing the old path accepted is lost. Objects are handed on as
views or, after a full parse, as dicts; `as_mapping` makes either a JSON object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import msgspec
import orjson

from watchers.decode import argocd, events, flux
from watchers.decode.base import ObjectView, as_mapping

__all__ = [
    "OBJECT_VIEWS",
    "VIEWS",
    "JsonDecoder",
    "ResourceDecoder",
    "decoder_for",
    "identity",
    "object_mapping",
    "resource_version",
]

T = TypeVar("T")

VIEWS: dict[tuple[str, str], type[ObjectView]] = {
    ("argoproj.io", "applications"): argocd.Application,
    ("kustomize.toolkit.fluxcd.io", "kustomizations"): flux.Kustomization,
    ("helm.toolkit.fluxcd.io", "helmreleases"): flux.HelmRelease,
    ("source.toolkit.fluxcd.io", "gitrepositories"): flux.GitRepository,
    ("source.toolkit.fluxcd.io", "ocirepositories"): flux.OCIRepository,
    ("source.toolkit.fluxcd.io", "helmrepositories"): flux.HelmRepository,
    ("source.toolkit.fluxcd.io", "helmcharts"): flux.HelmChart,
    ("source.toolkit.fluxcd.io", "buckets"): flux.Bucket,
    ("", "events"): events.Event,
    ("events.k8s.io", "events"): events.Event,
}
"""(API group, plural) -> the view of its objects."""

OBJECT_VIEWS: tuple[type[ObjectView], ...] = tuple(dict.fromkeys(VIEWS.values()))

_TYPED = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})

_UNDECODABLE = (msgspec.DecodeError, RecursionError)
"""What a view cannot take: msgspec nests by recursion (deep JSON raises RecursionError, which
orjson's full parse, to 1,024 levels, may still take or refuses as invalid JSON)."""


class _WatchEvent(msgspec.Struct, Generic[T], gc=False):
    type: Any = None
    object: T | None = None


class _ListMeta(msgspec.Struct, gc=False):
    resourceVersion: Any = None
    continue_: Any = msgspec.field(default=None, name="continue")


class _ListPage(msgspec.Struct, Generic[T], gc=False):
    apiVersion: Any = None
    kind: Any = None
    metadata: _ListMeta | None = None
    items: list[T] | None = None


class JsonDecoder:
    """Every line and page parsed in full with orjson, objects as dicts."""

    def event(self, line: bytes) -> tuple[Any, Any]:
        """(type, object) of a watch line; ValueError if it is not JSON."""
        event = orjson.loads(line)
        if not isinstance(event, dict):
            return None, None
        return event.get("type"), event.get("object")

    def page(self, body: bytes) -> tuple[list[Any], str, str | None]:
        """(items, resourceVersion, continue token) of a list page; ValueError if it is not a
        JSON object. Items get the kind and apiVersion that built-in list items leave out."""
        parsed = orjson.loads(body)
        if not isinstance(parsed, dict):
            raise ValueError("list response is not a JSON object")
        metadata = parsed.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}
        items = _with_kind(parsed)
        return items, str(metadata.get("resourceVersion") or ""), metadata.get("continue") or None


class ResourceDecoder(JsonDecoder):
    """Lines and pages of one resource decoded into its view; see the module docstring."""

    def __init__(self, view: type[ObjectView]) -> None:
        self.view = view
        self._event = msgspec.json.Decoder(_WatchEvent[view])  # type: ignore[valid-type]
        self._page = msgspec.json.Decoder(_ListPage[view])  # type: ignore[valid-type]
        self.fallbacks = 0
        """Lines and pages the view could not take, parsed in full instead."""

    def event(self, line: bytes) -> tuple[Any, Any]:
        try:
            decoded = self._event.decode(line)
        except _UNDECODABLE:
            decoded = None
        if decoded is not None and decoded.object is not None and decoded.type in _TYPED:
            return decoded.type, decoded.object
        if decoded is None:
            self.fallbacks += 1
        return super().event(line)

    def page(self, body: bytes) -> tuple[list[Any], str, str | None]:
        try:
            decoded = self._page.decode(body)
        except _UNDECODABLE:
            self.fallbacks += 1
            return super().page(body)
        items: list[ObjectView] = decoded.items or []
        api_version = decoded.apiVersion
        if isinstance(api_version, str):
            for item in items:
                if item.apiVersion is None:
                    item.apiVersion = api_version
        meta = decoded.metadata
        version = str(meta.resourceVersion or "") if meta is not None else ""
        token = (meta.continue_ or None) if meta is not None else None
        return items, version, token


def decoder_for(group: str, plural: str) -> JsonDecoder:
    """The decoder of a resource: typed where it has a view, else the full parse."""
    view = VIEWS.get((group, plural))
    return JsonDecoder() if view is None else ResourceDecoder(view)


def object_mapping(obj: Any) -> Any:
    """A decoded object as the normalizers read it: a view as its JSON object, anything else
    (a dict of the full parse) as it is."""
    return as_mapping(obj) if isinstance(obj, ObjectView) else obj


def resource_version(obj: Any) -> str | None:
    """metadata.resourceVersion of a decoded object (view or dict), if it is a string."""
    if isinstance(obj, ObjectView):
        meta = obj.metadata
        version = meta.resourceVersion if meta is not None else None
    else:
        metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
        version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return version if isinstance(version, str) else None


def identity(obj: Any) -> tuple[str, str, str, str]:
    """(kind, namespace, name, uid) of a decoded object (view or dict); "" where absent."""
    if isinstance(obj, ObjectView):
        meta = obj.metadata
        kind = type(obj).__name__
        if meta is None:
            return kind, "", "", ""
        ns, name, uid = meta.namespace, meta.name, meta.uid
        if type(ns) is str and type(name) is str and type(uid) is str:
            return kind, ns, name, uid
        return kind, _text(ns), _text(name), _text(uid)
    if not isinstance(obj, Mapping):
        return "", "", "", ""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    return (
        _text(obj.get("kind")),
        _text(metadata.get("namespace")),
        _text(metadata.get("name")),
        _text(metadata.get("uid")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _with_kind(body: dict[str, Any]) -> list[dict[str, Any]]:
    """List items, with the kind and apiVersion that built-in list items leave out."""
    items = body.get("items") or []
    list_kind = body.get("kind")
    kind = (
        list_kind[: -len("List")]
        if isinstance(list_kind, str) and list_kind.endswith("List")
        else None
    )
    api_version = body.get("apiVersion")
    result: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        if kind and "kind" not in item:
            item["kind"] = kind
        if isinstance(api_version, str) and "apiVersion" not in item:
            item["apiVersion"] = api_version
        result.append(item)
    return result
