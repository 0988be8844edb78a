"""The "nothing relevant changed" fast path: one digest per object of what the pipeline reads.

In a real fleet almost every watch event changes nothing that matters: Argo CD rewrites
`status.reconciledAt` of every app at every refresh, Flux its snapshots' `lastReconciled` at
every interval. For each object, `HeldViews` keeps a 64-bit digest of its relevant view
(`ObjectView.relevant`: the declared fields less identity and what moves without meaning) as
last handed to the pipeline and held there. A MODIFIED event whose digest is the one held is
dropped before normalize, detect, policy and the store: the pipeline would have made the same
AppState of it, and detection works on transitions. Only the watcher's resourceVersion moves.

ADDED and DELETED events always go through, and so does every object the typed views could not
take (no view, no digest). A digest is held only once the pipeline has taken the object as the
app's state, so a rejected or stale observation is never taken as held. Keys carry the uid: an
object deleted and made again under the same name is a new object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from watchers.decode.base import ObjectView, as_mapping
from watchers.decode.lines import identity

__all__ = ["Change", "HeldViews", "digest"]

_encode = msgspec.json.Encoder().encode

Key = tuple[str, str, str]
Held = tuple[str, int]


def digest(view: ObjectView) -> int:
    """A 64-bit hash of the relevant view's JSON (SipHash, as Python hashes bytes): views
    that differ have equal digests by a 2^-64 chance. It is only ever compared within one
    process, so the per-process hash seed does no harm; a cryptographic hash would cost more
    than decoding the line (blake2b: 5-13 us for the 4 KB view of a production Application)."""
    return hash(_encode(view.relevant()))


@dataclass(frozen=True, slots=True)
class Change:
    """An event to hand to the pipeline: the object as it reads it, and what to hold after."""

    obj: Any
    key: Key
    held: Held | None


class HeldViews:
    """Digests of the relevant views the pipeline holds, for one feed (resource and cluster)."""

    def __init__(self) -> None:
        self._held: dict[Key, Held] = {}
        self._listing: dict[Key, Held] = {}
        self.skipped = 0
        """MODIFIED events dropped because nothing relevant changed."""

    def __len__(self) -> int:
        return len(self._held)

    def change(self, watch_type: str, obj: Any) -> Change | None:
        """The event to hand on, or None if it changed nothing the pipeline reads."""
        kind, namespace, name, uid = identity(obj)
        key = (kind, namespace, name)
        if not isinstance(obj, ObjectView):
            return Change(obj, key, None)
        if watch_type == "DELETED":
            return Change(as_mapping(obj), key, None)
        held = (uid, digest(obj))
        if watch_type == "MODIFIED" and self._held.get(key) == held:
            self.skipped += 1
            return None
        return Change(as_mapping(obj), key, held)

    def settle(self, change: Change, *, taken: bool) -> None:
        """After the pipeline saw `change`: hold its digest if the pipeline took the object as
        the app's state (`taken`), else hold nothing for it."""
        if taken and change.held is not None:
            self._held[change.key] = change.held
        else:
            self._held.pop(change.key, None)

    def listing(self, obj: Any) -> Change:
        """An object of a list being read (before the pipeline's relist)."""
        kind, namespace, name, uid = identity(obj)
        key = (kind, namespace, name)
        self._listing.pop(key, None)  # what a list read before and not taken left behind
        if not isinstance(obj, ObjectView):
            return Change(obj, key, None)
        return Change(as_mapping(obj), key, (uid, digest(obj)))

    def listed(self, change: Change) -> None:
        """`change`, of the list being read, normalized to an app state."""
        if change.held is not None:
            self._listing[change.key] = change.held

    def relisted(self) -> None:
        """The pipeline took the list: what it holds now is what was listed."""
        self._held, self._listing = self._listing, {}
