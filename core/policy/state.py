"""The policy's values: decisions and their reasons, settings, held problems, open alerts,
remembered ids, and the state that holds them all (immutable, shared between versions)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from core.flap import Flap, FlapKey
from core.grouping import EventGroup, Group, GroupKey
from core.immutable import PMap, SortedChunks
from core.model import (
    RECOVERY_KINDS,
    RESOLVED_BY,
    AppKey,
    EventKind,
    GitOpsEvent,
    Severity,
)
from core.mutes import Mute

AlertKey = tuple[str, AppKey, EventKind]
"""One lane, one app and one problem kind: at most one alert of each is held or open."""

PendingKey = tuple[str, AppKey]
"""One lane and one app."""

RESOLVES: dict[EventKind, tuple[EventKind, ...]] = {
    recovery: tuple(p for p, by in RESOLVED_BY.items() if recovery in by)
    for recovery in RECOVERY_KINDS
}
"""Recovery kind -> the problem kinds it closes (RESOLVED_BY turned around)."""

INFORMATIVE_RECOVERIES: frozenset[EventKind] = frozenset(
    {EventKind.DEPLOY_SUCCEEDED, EventKind.ROLLBACK_SUCCEEDED}
)
"""Recoveries that are news on their own: announced even when they close nothing."""


class Action(StrEnum):
    SEND = "send"
    HOLD = "hold"
    SUPPRESS = "suppress"
    REMIND = "remind"
    """Tell again about an open problem: receivers thread it under the notification `updates`."""


class Reason(StrEnum):
    """Why a decision was made: stable names, for logs and metrics."""

    NEW = "new"
    """send: an event that opens or closes nothing (deploy started, deleted, informative)."""
    IMMEDIATE = "immediate"
    """send: a problem announced without grace (grace 0, or a kind in `immediate`)."""
    GRACE_PASSED = "grace_passed"
    """send: a held problem that still holds after its grace."""
    FLUSHED = "flushed"
    """send: a held problem released by `flush` (end of a replay)."""
    RESOLVES = "resolves"
    """send: a recovery that closes an open alert (`resolves` and `since` filled in)."""
    GROUPED = "grouped"
    """send: a group's notification, after group_wait or group_interval."""
    STABLE = "stable"
    """send: a flapping app has been stable for a window; its last state is told."""
    REMINDER = "reminder"
    """remind: problems of a group still open and not acknowledged after `repeat`."""
    IN_GRACE = "in_grace"
    """hold: a problem waiting out its grace."""
    GROUP_WAIT = "group_wait"
    """hold: an event waiting in its group for the group's notification."""
    QUIET_HOURS = "quiet_hours"
    """hold: a group below the quiet hours' severity, sent when they end."""
    GRACE = "grace"
    """suppress: a problem and its recovery both within the grace."""
    ALREADY_OPEN = "already_open"
    """suppress: the same problem is already announced for this app."""
    ALREADY_HELD = "already_held"
    """suppress: the same problem is already waiting out its grace for this app."""
    NOTHING_OPEN = "nothing_open"
    """suppress: a pure recovery (drift resolved …) of a problem never announced."""
    DUPLICATE = "duplicate"
    """suppress: this event id was already announced or is already held."""
    DEDUP_TEXT = "dedup_text"
    """suppress: the same kind and message (numbers, times, ids aside) was just sent."""
    FLAPPING = "flapping"
    """suppress: the app flips too often; it has been reported as flapping."""
    MUTED = "muted"
    """suppress: a mute covers the app."""
    DELETED = "deleted"
    """suppress: a held problem of an app that has been deleted."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one event.

    `closes`: ids of the open alerts a recovery closed. `group`: for a notification of several
    events, the group (and `event` its first member). `updates`: the id of the notification
    this one updates in place (a group that grew or resolved), or, for a reminder, the one it
    reminds of. `original`: for a single recovery, the problem it resolves. `thread`: for news
    about an app with an alert open, the id of the alert's notification: it is told as a reply
    there, not as a new message. `route`: the lane (the receiver) whose state decided it.
    """

    event: GitOpsEvent
    action: Action
    reason: Reason
    closes: tuple[str, ...] = ()
    group: EventGroup | None = None
    updates: str = ""
    original: GitOpsEvent | None = None
    route: str = ""
    thread: str = ""


class QuietWindow(Protocol):
    """Quiet hours as the policy needs them (config.schema.QuietHours is one)."""

    @property
    def min_severity(self) -> Severity: ...

    def active(self, now: datetime) -> bool: ...


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Policy knobs of one route; passed per call so that each route can have its own.

    The defaults decide as if nothing were grouped, damped or deduplicated by text.
    """

    grace: timedelta = timedelta(seconds=60)
    immediate: frozenset[EventKind] = frozenset({EventKind.ROLLBACK_FAILED})
    """Problem kinds announced at once: a failed rollback is final, waiting tells nothing."""
    remember_for: timedelta = timedelta(days=7)
    """How long announced ids are remembered (by event time) to refuse a second announcement."""
    remember_max: int = 50_000
    """At most this many announced ids are remembered (the oldest go first)."""
    route: str = ""
    """Which route's state this is: alerts, groups and flaps are kept per route."""
    group_by: tuple[str, ...] | None = None
    """Fields whose values make a group; None: every event is a group of its own."""
    group_wait: timedelta = timedelta(0)
    group_interval: timedelta = timedelta(0)
    repeat: timedelta = timedelta(0)
    """Reminder interval for open problems; 0: no reminders."""
    quiet: QuietWindow | None = None
    flap_flips: int = 0
    """More flips than this within `flap_window` is flapping; 0: no damping."""
    flap_window: timedelta = timedelta(minutes=15)
    dedup_window: timedelta = timedelta(0)
    """How long a sent message suppresses the same kind and text for the app; 0: off."""


DEFAULT_SETTINGS = PolicySettings()

RouteSettings = Mapping[str, PolicySettings]
"""Settings by route, for the work `tick` and `flush` do on every route at once."""


@dataclass(frozen=True, slots=True)
class Held:
    """A problem waiting out its grace, released at `due` if nothing resolved it."""

    event: GitOpsEvent
    due: datetime
    route: str = ""

    @property
    def alert_key(self) -> AlertKey:
        return (self.route, self.event.key, self.event.kind)


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An announced problem not yet resolved; `group` is the group it was sent in."""

    event: GitOpsEvent
    announced_at: datetime
    route: str = ""
    group: str = ""
    acked_by: str = ""
    acked_at: datetime | None = None

    @property
    def alert_key(self) -> AlertKey:
        return (self.route, self.event.key, self.event.kind)

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def since(self) -> datetime:
        """When the problem began."""
        return self.event.occurred_at

    @property
    def acked(self) -> bool:
        return bool(self.acked_by)


@dataclass(frozen=True, slots=True)
class TextSeen:
    """The normalized message last sent for one route, app and kind, and when."""

    text: str
    at: datetime


_CHUNK = 256


class RecentIds:
    """Announced event ids with their event time, oldest first; an immutable value.

    Kept in chunks of at most 256 ids, all full but the last, so adding an id copies one small
    chunk and pruning drops whole chunks from the old end: cheap with tens of thousands of ids.
    """

    __slots__ = ("_index", "_newest", "chunks")

    def __init__(
        self,
        chunks: tuple[Mapping[str, datetime], ...] = (),
        index: PMap[str, datetime] | None = None,
        newest: tuple[datetime, ...] | None = None,
    ) -> None:
        self.chunks = chunks
        """Read-only: the store saves only chunks it has not seen (by identity)."""
        self._index = index if index is not None else PMap(self.items())
        self._newest = newest if newest is not None else tuple(max(c.values()) for c in chunks)

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, datetime]]) -> RecentIds:
        chunks: list[dict[str, datetime]] = []
        seen: set[str] = set()
        for event_id, at in pairs:
            if event_id in seen:
                continue
            seen.add(event_id)
            if not chunks or len(chunks[-1]) >= _CHUNK:
                chunks.append({})
            chunks[-1][event_id] = at
        return cls(tuple(chunks))

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._index

    def __len__(self) -> int:
        return len(self._index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecentIds):
            return NotImplemented
        return list(self.items()) == list(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RecentIds({len(self)} ids)"

    def items(self) -> Iterator[tuple[str, datetime]]:
        for chunk in self.chunks:
            yield from chunk.items()

    def add(self, event_id: str, at: datetime) -> RecentIds:
        if event_id in self._index:
            return self
        index = self._index.set(event_id, at)
        chunks, newest = self.chunks, self._newest
        if chunks and len(chunks[-1]) < _CHUNK:
            return RecentIds(
                (*chunks[:-1], {**chunks[-1], event_id: at}),
                index,
                (*newest[:-1], max(newest[-1], at)),
            )
        return RecentIds((*chunks, {event_id: at}), index, (*newest, at))

    def prune(self, older_than: datetime, keep_at_most: int) -> RecentIds:
        """Drop whole chunks from the old end: those all older than `older_than`, then as many
        as needed to hold at most `keep_at_most` ids (rounded up to a chunk)."""
        chunks = self.chunks
        total = len(self)
        start = 0
        while start < len(chunks):
            if self._newest[start] < older_than or total - len(chunks[start]) >= keep_at_most:
                total -= len(chunks[start])
                start += 1
            else:
                break
        if start == 0:
            return self
        gone = [event_id for chunk in chunks[:start] for event_id in chunk]
        return RecentIds(chunks[start:], self._index.remove(*gone), self._newest[start:])


_Due = tuple[datetime, str, AlertKey]
"""An entry of the due queue: when, which event, which held slot."""

Timer = tuple[datetime, str, object]
"""An entry of the timer queue: when, what (flush, close, remind, flap), of which group/flap."""


def _due_order(entry: tuple[datetime, str, object]) -> datetime:
    return entry[0]


def _due_queue(held: Iterable[Held] = ()) -> SortedChunks[_Due]:
    """Held problems by due time; equal times in the order they were held (by id when loaded)."""
    ordered = sorted(held, key=lambda h: (h.due, h.event.id))
    return SortedChunks.of(_due_order, ((h.due, h.event.id, h.alert_key) for h in ordered))


def _timer_queue(
    groups: Iterable[Group] = (), flaps: Iterable[tuple[FlapKey, Flap]] = ()
) -> SortedChunks[Timer]:
    """The timers a loaded state implies: group flushes, closes and reminders, flap checks."""
    timers: list[Timer] = []
    for g in groups:
        for when, what in ((g.due, "flush"), (g.close_at, "close"), (g.remind_at, "remind")):
            if when is not None:
                timers.append((when, what, g.id))
    for key, flap in flaps:
        if flap.flips:
            timers.append((flap.flips[-1], "flap", key))
    return SortedChunks.of(_due_order, sorted(timers, key=lambda t: (t[0], t[1], str(t[2]))))


@dataclass(frozen=True, slots=True)
class PolicyState:
    """Everything the policy remembers; persisted by the store, never changed in place.

    Updates share what they do not touch (see core.immutable), so one event costs the same
    with ten apps or ten thousand. `due` orders the held problems by due time and `timers`
    the groups' and flaps' next checks; an entry whose subject changed since stays there and
    is skipped when its time comes. `due`, `timers`, `current` and `quieted` are derived:
    `of` rebuilds them from the rest.
    """

    held: PMap[AlertKey, Held] = field(default_factory=PMap)
    open: PMap[AlertKey, OpenAlert] = field(default_factory=PMap)
    recent: RecentIds = field(default_factory=RecentIds)
    due: SortedChunks[_Due] = field(default_factory=_due_queue, compare=False, repr=False)
    groups: PMap[str, Group] = field(default_factory=PMap)
    flaps: PMap[FlapKey, Flap] = field(default_factory=PMap)
    mutes: PMap[str, Mute] = field(default_factory=PMap)
    texts: PMap[AlertKey, TextSeen] = field(default_factory=PMap)
    current: PMap[GroupKey, str] = field(default_factory=PMap, compare=False, repr=False)
    """The group that takes new events, by group key."""
    quieted: PMap[str, str] = field(default_factory=PMap, compare=False, repr=False)
    """Groups held back by quiet hours -> their route."""
    timers: SortedChunks[Timer] = field(default_factory=_timer_queue, compare=False, repr=False)
    pending: PMap[PendingKey, str] = field(default_factory=PMap, compare=False, repr=False)
    """The group holding an app's events not sent yet, by lane and app: an app's next event
    is sent only after them (see `_emit`), so a channel reads an app's story in order."""

    @classmethod
    def of(
        cls,
        held: Iterable[Held] = (),
        open: Iterable[OpenAlert] = (),
        recent: RecentIds | None = None,
        *,
        groups: Iterable[Group] = (),
        flaps: Iterable[tuple[FlapKey, Flap]] = (),
        mutes: Iterable[Mute] = (),
        texts: Iterable[tuple[AlertKey, TextSeen]] = (),
    ) -> PolicyState:
        """A state from plain values (as loaded from storage)."""
        held = list(held)
        groups = list(groups)
        flaps = list(flaps)
        return cls(
            held=PMap((h.alert_key, h) for h in held),
            open=PMap((a.alert_key, a) for a in open),
            recent=RecentIds() if recent is None else recent,
            due=_due_queue(held),
            groups=PMap((g.id, g) for g in groups),
            flaps=PMap(flaps),
            mutes=PMap((m.target, m) for m in mutes),
            texts=PMap(texts),
            current=PMap(
                (g.key, g.id)
                for g in sorted(groups, key=lambda g: g.members[0].occurred_at)
                if g.accepting
            ),
            quieted=PMap((g.id, g.route) for g in groups if g.quiet),
            timers=_timer_queue(groups, flaps),
            pending=PMap(
                ((g.route, e.key), g.id)
                for g in groups
                for e in (*g.members[g.sent_members :], *g.resolved[g.sent_resolved :])
            ),
        )


def _update(
    state: PolicyState,
    *,
    held: PMap[AlertKey, Held] | None = None,
    open: PMap[AlertKey, OpenAlert] | None = None,
    recent: RecentIds | None = None,
    due: SortedChunks[_Due] | None = None,
    groups: PMap[str, Group] | None = None,
    flaps: PMap[FlapKey, Flap] | None = None,
    mutes: PMap[str, Mute] | None = None,
    texts: PMap[AlertKey, TextSeen] | None = None,
    current: PMap[GroupKey, str] | None = None,
    quieted: PMap[str, str] | None = None,
    timers: SortedChunks[Timer] | None = None,
    pending: PMap[PendingKey, str] | None = None,
) -> PolicyState:
    """`state` with the given parts replaced (dataclasses.replace, without its overhead)."""
    return PolicyState(
        state.held if held is None else held,
        state.open if open is None else open,
        state.recent if recent is None else recent,
        state.due if due is None else due,
        state.groups if groups is None else groups,
        state.flaps if flaps is None else flaps,
        state.mutes if mutes is None else mutes,
        state.texts if texts is None else texts,
        state.current if current is None else current,
        state.quieted if quieted is None else quieted,
        state.timers if timers is None else timers,
        state.pending if pending is None else pending,
    )


def _rid(route: str, event_id: str) -> str:
    """The id remembered as announced: per route, so each route announces an event once."""
    return f"{route}/{event_id}" if route else event_id


def _push(state: PolicyState, when: datetime, what: str, ref: object) -> PolicyState:
    return _update(state, timers=state.timers.push((when, what, ref)))
