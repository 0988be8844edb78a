"""The common shape of the typed views: Struct options, object metadata, the Mapping form.

Every view is a msgspec Struct whose fields are named as in the JSON and default to None, so
a view turned back into builtins (`as_mapping`) is the object with only the declared fields:
the normalizers, written against raw JSON, read it unchanged. Leaves are typed `Any` where a
normalizer accepts several JSON types (it checks them itself); a nested object is a Struct, and
a value of another type there fails the typed decoding, which then falls back to the full parse.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ObjectMeta", "ObjectView", "View", "as_mapping"]


class View(msgspec.Struct, omit_defaults=True, gc=False):
    """Base of every typed view. `gc=False`: decoded JSON holds no reference cycles."""


class ObjectMeta(View):
    name: Any = None
    namespace: Any = None
    uid: Any = None
    resourceVersion: Any = None
    labels: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None


class ObjectView(View, tag_field="kind"):
    """A Kubernetes object of one kind (the Struct's tag is its `kind`)."""

    apiVersion: Any = None
    metadata: ObjectMeta | None = None

    def relevant(self) -> Any:
        """What the pipeline reads of this object, but its identity and what moves on every
        reconcile without changing what it means: equal values, equal AppStates."""
        return (self.metadata_view(), getattr(self, "spec", None), getattr(self, "status", None))

    def metadata_view(self) -> Any:
        """What is read of the metadata but the identity: labels and annotations."""
        meta = self.metadata
        return None if meta is None else (meta.labels, meta.annotations)


def as_mapping(view: View) -> dict[str, Any]:
    """The view as the JSON object it was decoded from, less the fields it does not declare."""
    result: dict[str, Any] = msgspec.to_builtins(view)
    return result
