"""Alert policy: which events are announced, held for a while, grouped or kept quiet. Decides only.

Every function here takes the policy state, the event (if any), `now` and the settings, and
returns a new state and a list of Decisions; nothing is sent, stored or read from a clock.
The caller delivers what is decided "send" or "remind" and persists the returned state.

The policy is a chain of stages of one shape (as in Alertmanager's notification pipeline):
`stage(state, event, now, settings) -> Outcome`. A stage either decides the event (hold or
suppress, with a named reason), or passes it on, possibly amended, to the next stage; it may
also decide about other events (a held problem dropped by its recovery). The last stage
announces. Events released later (grace passed, a flap settled) enter the chain after the stage
that held them, so the stages after it see them too.

Stages: duplicates -> flaps -> already open -> text dedup -> grace -> mutes -> announce.
Announcing opens and closes alerts and puts the event in its aggregation group (per route and
`group_by` fields); a group is sent after `group_wait`, then updated in place at most once per
`group_interval`, held back in quiet hours, and reminded of every `repeat` while it has open,
unacknowledged problems. State is kept per route (`PolicySettings.route`): two routes with
different settings decide independently about the same event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol

from core.flap import Flap, FlapKey, flapping_notice, is_flip, record_flip
from core.grouping import EventGroup, Group, GroupKey, group_key
from core.immutable import PMap, SortedChunks
from core.model import (
    PROBLEM_KINDS,
    RECOVERY_KINDS,
    RESOLVED_BY,
    AppKey,
    EventKind,
    GitOpsEvent,
    Severity,
)
from core.mutes import Mute, muted_by
from core.textnorm import normalize_message

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


class Outcome(NamedTuple):
    """What one stage made of one event: `passed` goes on to the next stage (None: decided)."""

    state: PolicyState
    passed: GitOpsEvent | None
    decisions: list[Decision]


Stage = Callable[[PolicyState, GitOpsEvent, datetime, PolicySettings], Outcome]


def drop_duplicates(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: refuse an id already announced, or already held."""
    held = state.held.get((settings.route, event.key, event.kind))
    if _rid(settings.route, event.id) in state.recent or (
        held is not None and held.event.id == event.id
    ):
        return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.DUPLICATE)])
    return Outcome(state, event, [])


def damp_flaps(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: count an app's flips; past `flap_flips` within `flap_window`, pass on one
    flapping notice instead (and drop the app's held problems); while flapping, keep quiet."""
    if settings.flap_flips <= 0 or not is_flip(event):
        return Outcome(state, event, [])
    key: FlapKey = (settings.route, event.key)
    flap = record_flip(state.flaps.get(key) or Flap(), now, settings.flap_window)
    state = _push(state, now + settings.flap_window, "flap", key)
    if flap.flapping:
        flap = dataclasses.replace(flap, last=event)
        state = _update(state, flaps=state.flaps.set(key, flap))
        return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.FLAPPING)])
    if len(flap.flips) <= settings.flap_flips:
        return Outcome(_update(state, flaps=state.flaps.set(key, flap)), event, [])
    notice = flapping_notice(event, settings.route, len(flap.flips), settings.flap_window)
    flap = dataclasses.replace(flap, notice=notice, last=event)
    targets = [(settings.route, event.key, k) for k in PROBLEM_KINDS]
    dropped = [state.held[k] for k in targets if k in state.held]
    state = _update(state, flaps=state.flaps.set(key, flap), held=state.held.remove(*targets))
    decisions = [Decision(h.event, Action.SUPPRESS, Reason.FLAPPING) for h in dropped]
    decisions.append(Decision(event, Action.SUPPRESS, Reason.FLAPPING))
    return Outcome(state, notice, decisions)


def skip_open(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: a problem already open or held for the same app says nothing new."""
    if event.kind in PROBLEM_KINDS:
        key = (settings.route, event.key, event.kind)
        if key in state.open:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.ALREADY_OPEN)])
        if key in state.held:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.ALREADY_HELD)])
    return Outcome(state, event, [])


def dedup_text(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: a problem or news whose kind and normalized message were sent for the same app
    within `dedup_window` says nothing new. Recoveries always pass: they close alerts."""
    if settings.dedup_window <= timedelta(0) or event.kind in RECOVERY_KINDS:
        return Outcome(state, event, [])
    seen = state.texts.get((settings.route, event.key, event.kind))
    if (
        seen is not None
        and now - seen.at < settings.dedup_window
        and seen.text == normalize_message(event.message)
    ):
        return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.DEDUP_TEXT)])
    return Outcome(state, event, [])


def hold_in_grace(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: hold problems for the grace; a recovery within it cancels the held problem.

    The cancelled problem is suppressed, and so is the recovery, unless it is informative
    (a deploy or rollback succeeded: news on its own) or also closes an open alert.
    A deletion drops the app's held problems.
    """
    route = settings.route
    if event.kind in PROBLEM_KINDS:
        if settings.grace <= timedelta(0) or event.kind in settings.immediate:
            return Outcome(state, event, [])
        key = (route, event.key, event.kind)
        held = Held(event, now + settings.grace, route)
        return Outcome(
            _update(
                state,
                held=state.held.set(key, held),
                due=state.due.push((held.due, event.id, key)),
            ),
            None,
            [Decision(event, Action.HOLD, Reason.IN_GRACE)],
        )
    if event.kind in RESOLVES:
        targets = [(route, event.key, k) for k in RESOLVES[event.kind]]
        cancelled = [state.held[k] for k in targets if k in state.held]
        if not cancelled:
            return Outcome(state, event, [])
        new_state = _update(state, held=state.held.remove(*targets))
        decisions = [Decision(h.event, Action.SUPPRESS, Reason.GRACE) for h in cancelled]
        closes_open = any(k in state.open for k in targets)
        if event.kind in INFORMATIVE_RECOVERIES or closes_open:
            return Outcome(new_state, event, decisions)
        decisions.append(Decision(event, Action.SUPPRESS, Reason.GRACE))
        return Outcome(new_state, None, decisions)
    if event.kind is EventKind.DELETED:
        targets = [(route, event.key, k) for k in PROBLEM_KINDS]
        dropped = [state.held[k] for k in targets if k in state.held]
        if not dropped:
            return Outcome(state, event, [])
        new_state = _update(state, held=state.held.remove(*targets))
        decisions = [Decision(h.event, Action.SUPPRESS, Reason.DELETED) for h in dropped]
        return Outcome(new_state, event, decisions)
    return Outcome(state, event, [])


def apply_mutes(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: an event about a muted app is suppressed. A muted recovery still closes the
    alerts it resolves, so nothing stays open behind the mute."""
    if not state.mutes or muted_by(state.mutes.values(), event, now) is None:
        return Outcome(state, event, [])
    if event.kind in RESOLVES or event.kind is EventKind.DELETED:
        kinds = RESOLVES.get(event.kind, tuple(PROBLEM_KINDS))
        targets = [(settings.route, event.key, k) for k in kinds]
        state = _update(
            state,
            open=state.open.remove(*targets),
            recent=state.recent.add(_rid(settings.route, event.id), event.occurred_at),
        )
    return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.MUTED)])


def announce(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Last stage: send, opening an alert for a problem and closing those a recovery resolves.

    A recovery closing alerts is amended: `resolves` is the oldest closed problem's id and
    `since` when it began; it joins the group its problem was sent in. A pure recovery that
    closes nothing is suppressed. A deletion closes every alert of the app. What is sent goes
    to its group, which sends it now or later (see `group_wait`).
    """
    route = settings.route
    key = (route, event.key, event.kind)
    rid = _rid(route, event.id)
    if event.kind in PROBLEM_KINDS:
        if key in state.open:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.ALREADY_OPEN)])
        state = _remember_text(
            _update(state, recent=state.recent.add(rid, event.occurred_at)), event, now, settings
        )
        state, gid, decisions = _emit(state, event, now, settings, Reason.IMMEDIATE)
        state = _update(state, open=state.open.set(key, OpenAlert(event, now, route, gid)))
        return Outcome(state, None, decisions)
    if event.kind in RESOLVES or event.kind is EventKind.DELETED:
        kinds = RESOLVES.get(event.kind, tuple(PROBLEM_KINDS))
        targets = [(route, event.key, k) for k in kinds]
        closed = sorted((state.open[k] for k in targets if k in state.open), key=lambda a: a.since)
        into = ""
        original = None
        earlier: list[Decision] = []
        thread = ""
        if closed and event.kind is not EventKind.DELETED:
            event = dataclasses.replace(event, resolves=closed[0].id, since=closed[0].since)
            reason = Reason.RESOLVES
            into, original = closed[0].group, closed[0].event
        elif event.kind in RESOLVES and event.kind not in INFORMATIVE_RECOVERIES:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.NOTHING_OPEN)])
        else:
            reason = Reason.NEW
            state, earlier = _send_earlier(state, event, now, settings, "")
            thread = _thread_of(state, route, event.key)
        state = _update(
            state,
            open=state.open.remove(*targets),
            recent=state.recent.add(rid, event.occurred_at),
        )
        closes = tuple(a.id for a in closed)
        if thread:
            told = Decision(event, Action.SEND, reason, closes, route=route, thread=thread)
            return Outcome(state, None, [*earlier, told])
        state, _, decisions = _emit(
            state, event, now, settings, reason, closes=closes, original=original, into=into
        )
        return Outcome(state, None, earlier + decisions)
    state = _remember_text(
        _update(state, recent=state.recent.add(rid, event.occurred_at)), event, now, settings
    )
    if event.kind is not EventKind.FLAPPING:
        state, earlier = _send_earlier(state, event, now, settings, "")
        thread = _thread_of(state, route, event.key)
        if thread:
            told = Decision(event, Action.SEND, Reason.NEW, route=route, thread=thread)
            return Outcome(state, None, [*earlier, told])
    else:
        earlier = []
    state, gid, decisions = _emit(state, event, now, settings, Reason.NEW)
    if event.kind is EventKind.FLAPPING:
        flap = state.flaps.get((route, event.key))
        if flap is not None:
            flap = dataclasses.replace(flap, notice_group=gid)
            state = _update(state, flaps=state.flaps.set((route, event.key), flap))
    return Outcome(state, None, earlier + decisions)


def _thread_of(state: PolicyState, route: str, key: AppKey) -> str:
    """The notification of the app's oldest alert open in the lane, once it has been sent
    (news about the app is told in its thread); empty when there is none."""
    alerts: list[OpenAlert] = [
        state.open[(route, key, k)] for k in PROBLEM_KINDS if (route, key, k) in state.open
    ]
    for alert in sorted(alerts, key=lambda a: a.since):
        group: Group | None = state.groups.get(alert.group)
        if group is None:
            return alert.event.id
        if group.flushes:
            return group.members[0].id
    return ""


def _remember_text(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> PolicyState:
    if settings.dedup_window <= timedelta(0):
        return state
    seen = TextSeen(normalize_message(event.message), now)
    return _update(state, texts=state.texts.set((settings.route, event.key, event.kind), seen))


STAGES: tuple[Stage, ...] = (
    drop_duplicates,
    damp_flaps,
    skip_open,
    dedup_text,
    hold_in_grace,
    apply_mutes,
    announce,
)
_AFTER_FLAPS: tuple[Stage, ...] = STAGES[STAGES.index(damp_flaps) + 1 :]
_AFTER_GRACE: tuple[Stage, ...] = STAGES[STAGES.index(hold_in_grace) + 1 :]


# --- groups ------------------------------------------------------------------------------------


def _emit(
    state: PolicyState,
    event: GitOpsEvent,
    now: datetime,
    settings: PolicySettings,
    reason: Reason,
    *,
    closes: tuple[str, ...] = (),
    original: GitOpsEvent | None = None,
    into: str = "",
) -> tuple[PolicyState, str, list[Decision]]:
    """Put an event to send in its group (a recovery in its problem's group `into`); the group
    is sent now if it is due, else later. Returns the group's id.

    What another group of the lane still holds of the same app is sent first (whatever its
    wait): an app's events reach a channel in the order they happened, even when they belong
    to groups with different timers (a deploy_started waiting out its group's interval must not
    come after the deploy_succeeded of the same sync)."""
    target = state.groups.get(into) if into else None
    key = group_key(event, settings.route, settings.group_by)
    current = state.groups.get(state.current.get(key, "")) if target is None else None
    joining = target or (current if current is not None and current.accepting else None)
    state, earlier = _send_earlier(state, event, now, settings, joining.id if joining else "")
    if target is not None:
        group = dataclasses.replace(target, resolved=(*target.resolved, event))
    else:
        if current is not None and current.accepting:
            group = dataclasses.replace(current, members=(*current.members, event))
        else:
            group = Group(
                id=_rid(settings.route, event.id), route=settings.route, key=key, members=(event,)
            )
            state = _update(state, current=state.current.set(key, group.id))
    due = group.due
    if due is None:
        due = now + settings.group_wait
        if group.last_flush is not None:
            due = max(due, group.last_flush + settings.group_interval)
    if due <= now:
        state = _update(state, groups=state.groups.set(group.id, group))
        state, decisions = _flush(state, group, now, settings, reason, closes, original)
        return state, group.id, earlier + decisions
    if group.due is None:
        group = dataclasses.replace(group, due=due)
        state = _push(state, due, "flush", group.id)
    state = _update(
        state,
        groups=state.groups.set(group.id, group),
        pending=state.pending.set((group.route, event.key), group.id),
    )
    held = Decision(event, Action.HOLD, Reason.GROUP_WAIT, route=group.route)
    return state, group.id, [*earlier, held]


def _send_earlier(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings, joining: str
) -> tuple[PolicyState, list[Decision]]:
    """Send now what a group other than `joining` holds of `event`'s app, quiet hours or not."""
    slot = (settings.route, event.key)
    waiting = state.pending.get(slot)
    if waiting is None or waiting == joining:
        return state, []
    group = state.groups.get(waiting)
    if group is None or not group.pending:
        return _update(state, pending=state.pending.remove(slot)), []
    return _flush(state, group, now, settings, ignore_quiet=True)


def _alive(state: PolicyState, group: Group) -> list[OpenAlert]:
    """The group's problems still open."""
    alive = []
    for member in group.members:
        alert = state.open.get((group.route, member.key, member.kind))
        if alert is not None and alert.id == member.id:
            alive.append(alert)
    return alive


def _drop_group(state: PolicyState, group: Group) -> PolicyState:
    current = state.current
    if current.get(group.key) == group.id:
        current = current.remove(group.key)
    return _update(
        state,
        groups=state.groups.remove(group.id),
        current=current,
        quieted=state.quieted.remove(group.id),
        pending=_sent_from(state.pending, group, (*group.members, *group.resolved)),
    )


def _sent_from(
    pending: PMap[PendingKey, str], group: Group, events: Iterable[GitOpsEvent]
) -> PMap[PendingKey, str]:
    """`pending` without `group`'s entries for the apps of `events` (they have been sent)."""
    done = [(group.route, e.key) for e in events if pending.get((group.route, e.key)) == group.id]
    return pending.remove(*done) if done else pending


def _flush(
    state: PolicyState,
    group: Group,
    now: datetime,
    settings: PolicySettings,
    reason: Reason = Reason.GROUPED,
    closes: tuple[str, ...] | None = None,
    original: GitOpsEvent | None = None,
    *,
    ignore_quiet: bool = False,
) -> tuple[PolicyState, list[Decision]]:
    """Send what is waiting in `group`: the plain event for a group of one, else the group,
    as an update of the first notification once there was one."""
    decisions: list[Decision] = []
    members, resolved = group.members, group.resolved
    new_members = members[group.sent_members :]
    new_resolved = resolved[group.sent_resolved :]
    if not members:
        return _drop_group(state, group), decisions
    if not new_members and not new_resolved:
        group = dataclasses.replace(group, due=None)
        return _update(state, groups=state.groups.set(group.id, group)), decisions
    waiting = (*new_members, *new_resolved)
    quiet = settings.quiet
    if (
        not ignore_quiet
        and quiet is not None
        and max(e.severity.rank for e in waiting) < quiet.min_severity.rank
        and quiet.active(now)
    ):
        group = dataclasses.replace(group, due=None, quiet=True)
        state = _update(
            state,
            groups=state.groups.set(group.id, group),
            quieted=state.quieted.set(group.id, group.route),
        )
        decisions.append(Decision(waiting[0], Action.HOLD, Reason.QUIET_HOURS, route=group.route))
        return state, decisions
    updates = members[0].id if group.flushes else ""
    if len(members) == 1:
        if new_members:
            decisions.append(
                Decision(
                    members[0],
                    Action.SEND,
                    reason,
                    () if new_resolved else closes or (),
                    route=group.route,
                )
            )
        if new_resolved:
            recovery = new_resolved[-1]
            decisions.append(
                Decision(
                    recovery,
                    Action.SEND,
                    Reason.RESOLVES if new_members else reason,
                    (recovery.resolves,) if closes is None else closes,
                    original=original or members[0],
                    route=group.route,
                )
            )
    else:
        decisions.append(
            Decision(
                members[0],
                Action.SEND,
                Reason.GROUPED,
                tuple(r.resolves for r in new_resolved) if closes is None else closes,
                group=EventGroup.of(
                    members,
                    id=members[0].id,
                    resolved=resolved,
                    told=group.sent_members if group.flushes else 0,
                    told_resolved=group.sent_resolved if group.flushes else 0,
                ),
                updates=updates,
                route=group.route,
            )
        )
    group = dataclasses.replace(
        group,
        sent_members=len(members),
        sent_resolved=len(resolved),
        flushes=group.flushes + 1,
        due=None,
        last_flush=now,
        quiet=False,
    )
    state = _update(
        state,
        quieted=state.quieted.remove(group.id),
        pending=_sent_from(state.pending, group, waiting),
    )
    if group.accepting:
        group = dataclasses.replace(group, close_at=now + settings.group_interval)
        state = _push(state, now + settings.group_interval, "close", group.id)
    if (
        settings.repeat > timedelta(0)
        and group.remind_at is None
        and any(m.kind in PROBLEM_KINDS for m in new_members)
    ):
        group = dataclasses.replace(group, remind_at=now + settings.repeat)
        state = _push(state, now + settings.repeat, "remind", group.id)
    state = _update(state, groups=state.groups.set(group.id, group))
    if not group.accepting and not _alive(state, group):
        state = _drop_group(state, group)
    return state, decisions


def _close(state: PolicyState, group: Group) -> PolicyState:
    """A group's group_interval passed without news: it takes no new events; once nothing in
    it is open or waiting, it is forgotten."""
    group = dataclasses.replace(group, accepting=False, close_at=None)
    current = state.current
    if current.get(group.key) == group.id:
        current = current.remove(group.key)
    state = _update(state, groups=state.groups.set(group.id, group), current=current)
    if not group.pending and not _alive(state, group):
        state = _drop_group(state, group)
    return state


def _remind(
    state: PolicyState, group: Group, now: datetime, settings: PolicySettings
) -> tuple[PolicyState, list[Decision]]:
    """Remind of the group's problems still open and not acknowledged."""
    unacked = [a.event for a in _alive(state, group) if not a.acked]
    if not unacked or settings.repeat <= timedelta(0):
        group = dataclasses.replace(group, remind_at=None)
        return _update(state, groups=state.groups.set(group.id, group)), []
    group = dataclasses.replace(group, remind_at=now + settings.repeat)
    state = _push(state, now + settings.repeat, "remind", group.id)
    state = _update(state, groups=state.groups.set(group.id, group))
    decision = Decision(
        unacked[0],
        Action.REMIND,
        Reason.REMINDER,
        group=EventGroup.of(unacked, id=group.members[0].id) if len(unacked) > 1 else None,
        updates=group.members[0].id,
        route=group.route,
    )
    return state, [decision]


def _settle(
    state: PolicyState, key: FlapKey, now: datetime, settings: PolicySettings
) -> tuple[PolicyState, list[Decision]]:
    """A flap check: forget flips that left the window; a flapping app stable for a window
    is told once more, in the state it settled in."""
    flap = state.flaps.get(key)
    if flap is None or not flap.flips or flap.flips[-1] + settings.flap_window > now:
        return state, []
    state = _update(state, flaps=state.flaps.remove(key))
    last, notice = flap.last, flap.notice
    if notice is None or last is None:
        return state, []
    route = settings.route
    closes_open = last.kind in RESOLVES and any(
        (route, last.key, k) in state.open for k in RESOLVES[last.kind]
    )
    if last.kind in RESOLVES and not closes_open:
        if muted_by(state.mutes.values(), last, now) is not None:
            return state, [Decision(last, Action.SUPPRESS, Reason.MUTED)]
        recovery = dataclasses.replace(last, resolves=notice.id, since=notice.occurred_at)
        state = _update(state, recent=state.recent.add(_rid(route, last.id), last.occurred_at))
        state, _, decisions = _emit(
            state,
            recovery,
            now,
            settings,
            Reason.STABLE,
            closes=(),
            original=notice,
            into=flap.notice_group,
        )
        return state, decisions
    return _through(_AFTER_FLAPS, state, last, now, settings)


# --- running the chain -------------------------------------------------------------------------


def _through(
    stages: Sequence[Stage],
    state: PolicyState,
    event: GitOpsEvent,
    now: datetime,
    settings: PolicySettings,
) -> tuple[PolicyState, list[Decision]]:
    decisions: list[Decision] = []
    passed: GitOpsEvent | None = event
    for stage in stages:
        if passed is None:
            break
        state, passed, decided = stage(state, passed, now, settings)
        decisions.extend(decided)
    if passed is not None:
        decisions.append(Decision(passed, Action.SEND, Reason.NEW, route=settings.route))
    return state, decisions


def _release(
    state: PolicyState,
    held: Held,
    now: datetime,
    settings: PolicySettings,
    reason: Reason,
) -> tuple[PolicyState, list[Decision]]:
    state = _update(state, held=state.held.remove(held.alert_key))
    state, decisions = _through(_AFTER_GRACE, state, held.event, now, settings)
    return state, [
        dataclasses.replace(d, reason=reason)
        if d.event.id == held.event.id and d.action is Action.SEND and d.group is None
        else d
        for d in decisions
    ]


def _for(route: str, settings: PolicySettings, routes: RouteSettings | None) -> PolicySettings:
    if routes is not None and route in routes:
        return routes[route]
    return dataclasses.replace(settings, route=route) if settings.route != route else settings


def offer(
    state: PolicyState,
    event: GitOpsEvent,
    now: datetime,
    settings: PolicySettings = DEFAULT_SETTINGS,
    routes: RouteSettings | None = None,
) -> tuple[PolicyState, list[Decision]]:
    """Decide about `event` at `now` on the route of `settings` (pure).

    Runs `tick` first (with `routes` for the other routes' settings), so what is due by `now`
    is decided before this event is looked at; those decisions come first in the list. The
    list holds one final decision (send, suppress, or hold) for `event`, possibly decisions
    about other events (released, cancelled by it), and the sends of groups that came due.
    """
    state, decisions = tick(state, now, settings, routes)
    state, more = _through(STAGES, state, event, now, settings)
    return state, decisions + more


def tick(
    state: PolicyState,
    now: datetime,
    settings: PolicySettings = DEFAULT_SETTINGS,
    routes: RouteSettings | None = None,
) -> tuple[PolicyState, list[Decision]]:
    """Do what is due by `now`, each at its own time and in time order (pure): release held
    problems whose grace has passed, send groups whose wait is over and those quiet hours
    held back once they end, close groups, remind, settle flaps, and forget old ids.
    `routes` gives each route's settings (default: `settings` for every route)."""
    decisions: list[Decision] = []
    while True:
        held_first, timer_first = state.due.first(), state.timers.first()
        times = [e[0] for e in (held_first, timer_first) if e is not None and e[0] <= now]
        if not times:
            break
        when = min(times)
        entries, queue = state.due.pop_while(_until(when))
        state = _update(state, due=queue)
        for due, event_id, key in entries:
            held = state.held.get(key)
            if held is None or held.event.id != event_id or held.due != due:
                continue
            state, released = _release(
                state, held, when, _for(held.route, settings, routes), Reason.GRACE_PASSED
            )
            decisions.extend(released)
        timers, later = state.timers.pop_while(_until(when))
        state = _update(state, timers=later)
        for at, what, ref in timers:
            state, fired = _fire(state, at, what, ref, now, settings, routes)
            decisions.extend(fired)
    for group_id, route in list(state.quieted.items()) if state.quieted else ():
        quiet = _for(route, settings, routes).quiet
        group = state.groups.get(group_id)
        if group is None:
            state = _update(state, quieted=state.quieted.remove(group_id))
        elif quiet is None or not quiet.active(now):
            state, sent_now = _flush(state, group, now, _for(route, settings, routes))
            decisions.extend(sent_now)
    recent = state.recent.prune(now - settings.remember_for, settings.remember_max)
    if recent is not state.recent:
        state = _update(state, recent=recent)
    return state, decisions


def _until(when: datetime) -> Callable[[tuple[datetime, str, object]], bool]:
    return lambda entry: entry[0] <= when


def _fire(
    state: PolicyState,
    when: datetime,
    what: str,
    ref: object,
    now: datetime,
    settings: PolicySettings,
    routes: RouteSettings | None,
) -> tuple[PolicyState, list[Decision]]:
    """One timer: skipped when its subject has changed since it was set."""
    if what == "flap":
        key: FlapKey = ref  # type: ignore[assignment]
        return _settle(state, key, when, _for(key[0], settings, routes))
    group = state.groups.get(str(ref))
    if group is None:
        return state, []
    route_settings = _for(group.route, settings, routes)
    if what == "flush" and group.due == when:
        return _flush(state, group, when, route_settings)
    if what == "close" and group.close_at == when:
        return _close(state, group), []
    if what == "remind" and group.remind_at == when:
        return _remind(state, group, now, route_settings)
    return state, []


def flush(
    state: PolicyState,
    settings: PolicySettings = DEFAULT_SETTINGS,
    routes: RouteSettings | None = None,
) -> tuple[PolicyState, list[Decision]]:
    """Decide now everything still waiting, each at its own due time, as if time had passed
    (pure): held problems are released, groups sent (quiet hours or not), flapping apps
    settled. Used at the end of a replay: the stream is over, what it left is taken to last.
    """
    decisions: list[Decision] = []
    while True:
        # Held problems first, also those a settling flap held again in the last round.
        for held in sorted(state.held.values(), key=lambda h: (h.due, h.event.id)):
            state, released = _release(
                state, held, held.due, _for(held.route, settings, routes), Reason.FLUSHED
            )
            decisions.extend(released)
        state = _update(state, due=_due_queue())
        for group_id, route in list(state.quieted.items()):
            group = state.groups.get(group_id)
            state = _update(state, quieted=state.quieted.remove(group_id))
            if group is not None:
                state, sent_now = _flush(
                    state,
                    group,
                    group.last_flush or group.members[0].occurred_at,
                    _for(route, settings, routes),
                    ignore_quiet=True,
                )
                decisions.extend(sent_now)
        waiting = [t[0] for t in state.timers if t[1] in ("flush", "flap")]
        if not waiting:
            if state.held:
                continue
            break
        state, more = tick(state, min(waiting), settings, routes)
        decisions.extend(more)
    return state, decisions


def sent(decisions: Iterable[Decision]) -> list[GitOpsEvent]:
    """The events to deliver, in order (a group's first member stands for the group)."""
    return [d.event for d in decisions if d.action is Action.SEND]


def routes_holding(state: PolicyState, key: AppKey, routes: Iterable[str]) -> list[str]:
    """Those of `routes` that hold or have announced a problem of the app `key`: where its
    recovery must go, whichever routes the recovery itself matches."""
    return [
        route
        for route in routes
        if any(
            (route, key, k) in state.open or (route, key, k) in state.held for k in PROBLEM_KINDS
        )
        or (route, key) in state.flaps
    ]


def relane(state: PolicyState, lanes: Callable[[str], tuple[str, ...]]) -> PolicyState:
    """`state` with everything kept under one lane moved to the lanes `lanes` names for it
    (pure): an older state, kept per route, becomes one kept per receiver, each route's alerts,
    held problems, groups, flaps and remembered ids going to every receiver the route names.
    A lane mapped to no lane is dropped; mutes are kept as they are. The same state (`is`)
    when `lanes` maps every lane to itself."""
    names = {h.route for h in state.held.values()} | {a.route for a in state.open.values()}
    names |= {g.route for g in state.groups.values()} | {k[0] for k in state.flaps}
    moved = {name: lanes(name) for name in names}
    if all(to == (name,) for name, to in moved.items()):
        return state

    def to(name: str) -> tuple[str, ...]:
        if name not in moved:
            moved[name] = lanes(name)
        return moved[name]

    def regroup(group_id: str, old: str, new: str) -> str:
        return _rid(new, group_id[len(old) + 1 :]) if group_id.startswith(f"{old}/") else group_id

    held = [
        dataclasses.replace(h, route=lane) for h in state.held.values() for lane in moved[h.route]
    ]
    opened = [
        dataclasses.replace(a, route=lane, group=regroup(a.group, a.route, lane))
        for a in state.open.values()
        for lane in moved[a.route]
    ]
    groups = [
        dataclasses.replace(
            g, id=regroup(g.id, g.route, lane), route=lane, key=(lane, *g.key[1:])
        )
        for g in state.groups.values()
        for lane in moved[g.route]
    ]
    flaps = [
        ((lane, key[1]), dataclasses.replace(f, notice_group=regroup(f.notice_group, key[0], lane)))
        for key, f in state.flaps.items()
        for lane in moved[key[0]]
    ]
    texts = [
        ((lane, key[1], key[2]), seen)
        for key, seen in state.texts.items()
        for lane in to(key[0])
    ]
    recent: list[tuple[str, datetime]] = []
    for rid, at in state.recent.items():
        old, sep, event_id = rid.partition("/")
        if not sep:
            recent.append((rid, at))
            continue
        recent.extend((_rid(lane, event_id), at) for lane in to(old))
    return PolicyState.of(
        held,
        opened,
        RecentIds.of(recent),
        groups=groups,
        flaps=flaps,
        mutes=state.mutes.values(),
        texts=texts,
    )
