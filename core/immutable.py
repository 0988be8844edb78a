"""Immutable collections whose updates copy only a small part, for state kept across events.

The policy returns a new state for every event; with 10,000 apps, copying whole dicts on each
event makes a storm quadratic. These structures share everything an update does not touch:
`PMap` copies one of 512 buckets, `SortedChunks` one chunk of at most a few hundred entries.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

_FANOUT = 32
_LEAVES = 16
_BUCKETS = _FANOUT * _LEAVES


class PMap(Mapping[K, V]):
    """An immutable mapping; `set` and `remove` return a new map sharing untouched buckets.

    The 512 buckets sit in 32 groups of 16, so an update copies one bucket, one group and the
    32 group references, not all 512. Buckets are exposed (`buckets`) so a writer can find
    what changed by identity; they follow the process's hash of the keys, so compare only
    maps made in the same process.
    """

    __slots__ = ("_groups", "_len")

    def __init__(self, items: Iterable[tuple[K, V]] = ()) -> None:
        buckets: list[dict[K, V]] = [{} for _ in range(_BUCKETS)]
        for key, value in items:
            buckets[hash(key) % _BUCKETS][key] = value
        self._groups: tuple[tuple[dict[K, V], ...], ...] = tuple(
            tuple(buckets[i : i + _LEAVES]) for i in range(0, _BUCKETS, _LEAVES)
        )
        self._len = sum(len(b) for b in buckets)

    @classmethod
    def _make(cls, groups: tuple[tuple[dict[K, V], ...], ...], length: int) -> PMap[K, V]:
        new: PMap[K, V] = cls.__new__(cls)
        new._groups = groups
        new._len = length
        return new

    @property
    def buckets(self) -> tuple[Mapping[K, V], ...]:
        return tuple(bucket for group in self._groups for bucket in group)

    def _bucket(self, key: object) -> dict[K, V]:
        index = hash(key) % _BUCKETS
        return self._groups[index // _LEAVES][index % _LEAVES]

    def __getitem__(self, key: K) -> V:
        return self._bucket(key)[key]

    def get(self, key: K, default: Any = None) -> Any:
        return self._bucket(key).get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._bucket(key)

    def __iter__(self) -> Iterator[K]:
        for group in self._groups:
            for bucket in group:
                yield from bucket

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"

    def set(self, key: K, value: V) -> PMap[K, V]:
        index = hash(key) % _BUCKETS
        g, b = divmod(index, _LEAVES)
        groups = self._groups
        group = groups[g]
        bucket = group[b]
        grown = 0 if key in bucket else 1
        changed = dict(bucket)
        changed[key] = value
        new_group = (*group[:b], changed, *group[b + 1 :])
        return self._make((*groups[:g], new_group, *groups[g + 1 :]), self._len + grown)

    def remove(self, *keys: K) -> PMap[K, V]:
        """A map without `keys` (absent keys are ignored); the same map if nothing was there."""
        groups: list[list[dict[K, V]] | tuple[dict[K, V], ...]] | None = None
        length = self._len
        for key in keys:
            g, b = divmod(hash(key) % _BUCKETS, _LEAVES)
            current = (groups or self._groups)[g][b]
            if key not in current:
                continue
            if groups is None:
                groups = list(self._groups)
            if isinstance(groups[g], tuple):
                groups[g] = list(groups[g])
            changed = dict(current)
            del changed[key]
            groups[g][b] = changed  # type: ignore[index]
            length -= 1
        if groups is None:
            return self
        return self._make(tuple(g if isinstance(g, tuple) else tuple(g) for g in groups), length)


_CHUNK = 256


class SortedChunks(Generic[T]):
    """An immutable sorted sequence in chunks; adding at the end (the usual case) is cheap.

    `push` copies one chunk; `pop_while` drops whole chunks from the front.
    """

    __slots__ = ("chunks", "key")

    def __init__(self, key: Callable[[T], Any], chunks: tuple[tuple[T, ...], ...] = ()) -> None:
        self.key = key
        self.chunks = chunks

    @classmethod
    def of(cls, key: Callable[[T], Any], items: Iterable[T]) -> SortedChunks[T]:
        ordered = sorted(items, key=key)
        return cls(
            key, tuple(tuple(ordered[i : i + _CHUNK]) for i in range(0, len(ordered), _CHUNK))
        )

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)

    def __iter__(self) -> Iterator[T]:
        for chunk in self.chunks:
            yield from chunk

    def first(self) -> T | None:
        return self.chunks[0][0] if self.chunks else None

    def push(self, item: T) -> SortedChunks[T]:
        chunks, key = self.chunks, self.key
        if not chunks or key(item) >= key(chunks[-1][-1]):
            if chunks and len(chunks[-1]) < _CHUNK:
                return SortedChunks(key, (*chunks[:-1], (*chunks[-1], item)))
            return SortedChunks(key, (*chunks, (item,)))
        index = bisect_left([key(c[-1]) for c in chunks], key(item))
        chunk = list(chunks[index])
        insort(chunk, item, key=key)
        parts = (
            (tuple(chunk[:_CHUNK]), tuple(chunk[_CHUNK:]))
            if len(chunk) > 2 * _CHUNK
            else (tuple(chunk),)
        )
        return SortedChunks(key, (*chunks[:index], *parts, *chunks[index + 1 :]))

    def pop_while(self, keep_going: Callable[[T], bool]) -> tuple[list[T], SortedChunks[T]]:
        """The leading items for which `keep_going` holds, and the rest."""
        chunks = self.chunks
        taken: list[T] = []
        start = 0
        while start < len(chunks) and keep_going(chunks[start][-1]):
            taken.extend(chunks[start])
            start += 1
        rest = chunks[start:]
        if rest:
            head = rest[0]
            cut = 0
            while cut < len(head) and keep_going(head[cut]):
                cut += 1
            if cut:
                taken.extend(head[:cut])
                rest = (head[cut:], *rest[1:])
        return taken, (self if not taken else SortedChunks(self.key, rest))
