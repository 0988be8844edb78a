"""Which of an object's annotations an AppState keeps: those routes may match on.

Annotations are where app teams say who hears about their app (Argo CD's
`notifications.argoproj.io/subscribe.*`, driftbot's `driftbot.dev/notify`) and where tools
leave large blobs (kubectl's last-applied-configuration, Helm's release data). One state per
app is kept in memory and in the store, so the blobs are left out and the rest is bounded;
keys and values are interned (`sys.intern`): thousands of apps carry the same few keys.
Pure: decides only.
"""

from __future__ import annotations

from collections.abc import Mapping
from sys import intern

MAX_ANNOTATIONS = 32
"""At most this many annotations are kept per object (in key order, so the choice is stable)."""
MAX_VALUE = 1024
"""An annotation longer than this (characters) is a blob, not a setting: left out."""
SKIPPED = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})


def kept_annotations(value: object) -> dict[str, str]:
    """The string annotations of a raw `metadata.annotations` worth keeping; anything that is
    not a mapping of strings is treated as absent."""
    if not isinstance(value, Mapping):
        return {}
    kept: dict[str, str] = {}
    for key in sorted(k for k in value if isinstance(k, str)):
        text = value[key]
        if key in SKIPPED or not isinstance(text, str) or len(text) > MAX_VALUE:
            continue
        kept[intern(key)] = intern(str(text))
        if len(kept) >= MAX_ANNOTATIONS:
            break
    return kept


ROUTING_PREFIXES = ("notifications.argoproj.io/", "driftbot.dev/")
"""The annotations an AppProject is watched for: the ones that route."""


def app_project(obj: object) -> tuple[str, dict[str, str]] | None:
    """An Argo CD AppProject (raw JSON) -> its name and routing annotations; None if `obj` is
    not an AppProject with a name."""
    if not isinstance(obj, Mapping) or obj.get("kind", "AppProject") != "AppProject":
        return None
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        return None
    assert isinstance(metadata, Mapping)
    kept = kept_annotations(metadata.get("annotations"))
    return name, {k: v for k, v in kept.items() if k.startswith(ROUTING_PREFIXES)}


def interned(pairs: Mapping[str, str]) -> dict[str, str]:
    """Labels or annotations with their keys and values interned, so the apps that carry the
    same ones (most of a fleet) share them."""
    return {intern(str(k)): intern(str(v)) for k, v in pairs.items()}
