"""Kubernetes objects out of what `kubectl get -o yaml|json` and manifests hold: one object, a
multi-document YAML stream, a `List` (`kind: List` or `ApplicationList`, ...) with `items`, or
a JSON array. Pure: takes text, returns objects, or raises ImportInputError saying where."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import yaml

KubeObject = dict[str, Any]


class ImportInputError(ValueError):
    """Input that is not Kubernetes objects; the message names the source and the place."""


def parse_objects(text: str, source: str) -> list[KubeObject]:
    """Every object in `text` (YAML or JSON), Lists flattened, empty documents skipped."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ImportInputError(f"{where}: not YAML or JSON: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ImportInputError(f"{source}: not YAML or JSON: {exc}") from None
    objects: list[KubeObject] = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        objects.extend(_flatten(document, f"{source} (document {index})"))
    return objects


def _flatten(value: Any, where: str) -> Iterator[KubeObject]:
    if isinstance(value, list):
        for position, item in enumerate(value):
            yield from _flatten(item, f"{where}, item {position}")
        return
    if not isinstance(value, dict):
        raise ImportInputError(f"{where}: expected a Kubernetes object, got {type(value).__name__}")
    kind = value.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(value.get("items"), list):
        for position, item in enumerate(value["items"]):
            yield from _flatten(item, f"{where}, items[{position}]")
        return
    if not isinstance(kind, str) or not kind:
        raise ImportInputError(f"{where}: an object without `kind`")
    yield value


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def text_map(value: object) -> dict[str, str]:
    """A string-to-string mapping (labels, annotations, ConfigMap data); other entries dropped."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def name_of(obj: Mapping[str, Any]) -> str:
    name = metadata(obj).get("name")
    return name if isinstance(name, str) else ""


def namespace_of(obj: Mapping[str, Any], default: str = "") -> str:
    namespace = metadata(obj).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else default


def describe(obj: Mapping[str, Any]) -> str:
    """`Application argocd/guestbook`, as a comment names an object."""
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "object"
    namespace = namespace_of(obj)
    name = name_of(obj) or "(no name)"
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
