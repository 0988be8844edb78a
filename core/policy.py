"""Alert policy: which events are announced, held for a while, or kept quiet. Decides only.

Every function here takes the policy state, the event (if any), `now` and the settings, and
returns a new state and a list of Decisions; nothing is sent, stored or read from a clock.
The caller delivers what is decided "send" and persists the returned state.

The policy is a chain of stages of one shape (as in Alertmanager's notification pipeline):
`stage(state, event, now, settings) -> Outcome`. A stage either decides the event (hold or
suppress, with a named reason), or passes it on, possibly amended, to the next stage; it may
also decide about other events (a held problem dropped by its recovery). The last stage
announces. Events released later (grace passed, flush) enter the chain after the stage that
held them, so stages added after grace (grouping, mutes) see them too.

Stages now: duplicates -> already open -> grace -> announce (open and close alerts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from core.immutable import PMap, SortedChunks
from core.model import (
    PROBLEM_KINDS,
    RECOVERY_KINDS,
    RESOLVED_BY,
    AppKey,
    EventKind,
    GitOpsEvent,
)

AlertKey = tuple[AppKey, EventKind]
"""One app and one problem kind: at most one alert of each is held or open at a time."""

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
    IN_GRACE = "in_grace"
    """hold: a problem waiting out its grace."""
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
    DELETED = "deleted"
    """suppress: a held problem of an app that has been deleted."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one event. `closes`: ids of all the open alerts a recovery closed."""

    event: GitOpsEvent
    action: Action
    reason: Reason
    closes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Policy knobs; passed per call so that each route can have its own."""

    grace: timedelta = timedelta(seconds=60)
    immediate: frozenset[EventKind] = frozenset({EventKind.ROLLBACK_FAILED})
    """Problem kinds announced at once: a failed rollback is final, waiting tells nothing."""
    remember_for: timedelta = timedelta(days=7)
    """How long announced ids are remembered (by event time) to refuse a second announcement."""
    remember_max: int = 50_000
    """At most this many announced ids are remembered (the oldest go first)."""


DEFAULT_SETTINGS = PolicySettings()


@dataclass(frozen=True, slots=True)
class Held:
    """A problem waiting out its grace, released at `due` if nothing resolved it."""

    event: GitOpsEvent
    due: datetime

    @property
    def alert_key(self) -> AlertKey:
        return (self.event.key, self.event.kind)


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An announced problem not yet resolved."""

    event: GitOpsEvent
    announced_at: datetime

    @property
    def alert_key(self) -> AlertKey:
        return (self.event.key, self.event.kind)

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def since(self) -> datetime:
        """When the problem began."""
        return self.event.occurred_at


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


def _due_order(entry: _Due) -> datetime:
    return entry[0]


def _due_queue(held: Iterable[Held] = ()) -> SortedChunks[_Due]:
    """Held problems by due time; equal times in the order they were held (by id when loaded)."""
    ordered = sorted(held, key=lambda h: (h.due, h.event.id))
    return SortedChunks.of(_due_order, ((h.due, h.event.id, h.alert_key) for h in ordered))


@dataclass(frozen=True, slots=True)
class PolicyState:
    """Everything the policy remembers; persisted by the store, never changed in place.

    Updates share what they do not touch (see core.immutable), so one event costs the same
    with ten apps or ten thousand. `due` orders the held problems by due time; an entry whose
    problem was cancelled stays there and is skipped when its time comes.
    """

    held: PMap[AlertKey, Held] = field(default_factory=PMap)
    open: PMap[AlertKey, OpenAlert] = field(default_factory=PMap)
    recent: RecentIds = field(default_factory=RecentIds)
    due: SortedChunks[_Due] = field(default_factory=_due_queue, compare=False, repr=False)

    @classmethod
    def of(
        cls,
        held: Iterable[Held] = (),
        open: Iterable[OpenAlert] = (),
        recent: RecentIds | None = None,
    ) -> PolicyState:
        """A state from plain values (as loaded from storage)."""
        held = list(held)
        return cls(
            held=PMap((h.alert_key, h) for h in held),
            open=PMap((a.alert_key, a) for a in open),
            recent=RecentIds() if recent is None else recent,
            due=_due_queue(held),
        )


def _update(
    state: PolicyState,
    *,
    held: PMap[AlertKey, Held] | None = None,
    open: PMap[AlertKey, OpenAlert] | None = None,
    recent: RecentIds | None = None,
    due: SortedChunks[_Due] | None = None,
) -> PolicyState:
    """`state` with the given parts replaced (dataclasses.replace, without its overhead)."""
    return PolicyState(
        state.held if held is None else held,
        state.open if open is None else open,
        state.recent if recent is None else recent,
        state.due if due is None else due,
    )


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
    held = state.held.get((event.key, event.kind))
    if event.id in state.recent or (held is not None and held.event.id == event.id):
        return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.DUPLICATE)])
    return Outcome(state, event, [])


def skip_open(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: a problem already open or held for the same app says nothing new."""
    if event.kind in PROBLEM_KINDS:
        key = (event.key, event.kind)
        if key in state.open:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.ALREADY_OPEN)])
        if key in state.held:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.ALREADY_HELD)])
    return Outcome(state, event, [])


def hold_in_grace(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Stage: hold problems for the grace; a recovery within it cancels the held problem.

    The cancelled problem is suppressed, and so is the recovery, unless it is informative
    (a deploy or rollback succeeded: news on its own) or also closes an open alert.
    A deletion drops the app's held problems.
    """
    if event.kind in PROBLEM_KINDS:
        if settings.grace <= timedelta(0) or event.kind in settings.immediate:
            return Outcome(state, event, [])
        key = (event.key, event.kind)
        held = Held(event, now + settings.grace)
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
        targets = [(event.key, k) for k in RESOLVES[event.kind]]
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
        targets = [(event.key, k) for k in PROBLEM_KINDS]
        dropped = [state.held[k] for k in targets if k in state.held]
        if not dropped:
            return Outcome(state, event, [])
        new_state = _update(state, held=state.held.remove(*targets))
        decisions = [Decision(h.event, Action.SUPPRESS, Reason.DELETED) for h in dropped]
        return Outcome(new_state, event, decisions)
    return Outcome(state, event, [])


def announce(
    state: PolicyState, event: GitOpsEvent, now: datetime, settings: PolicySettings
) -> Outcome:
    """Last stage: send, opening an alert for a problem and closing those a recovery resolves.

    A recovery closing alerts is amended: `resolves` is the oldest closed problem's id and
    `since` when it began. A pure recovery that closes nothing is suppressed. A deletion
    closes every alert of the app.
    """
    key = (event.key, event.kind)
    if event.kind in PROBLEM_KINDS:
        if key in state.open:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.ALREADY_OPEN)])
        new_state = _update(
            state,
            open=state.open.set(key, OpenAlert(event, now)),
            recent=state.recent.add(event.id, event.occurred_at),
        )
        return Outcome(new_state, None, [Decision(event, Action.SEND, Reason.IMMEDIATE)])
    if event.kind in RESOLVES or event.kind is EventKind.DELETED:
        kinds = RESOLVES.get(event.kind, tuple(PROBLEM_KINDS))
        targets = [(event.key, k) for k in kinds]
        closed = sorted((state.open[k] for k in targets if k in state.open), key=lambda a: a.since)
        if closed and event.kind is not EventKind.DELETED:
            event = dataclasses.replace(event, resolves=closed[0].id, since=closed[0].since)
            reason = Reason.RESOLVES
        elif event.kind in RESOLVES and event.kind not in INFORMATIVE_RECOVERIES:
            return Outcome(state, None, [Decision(event, Action.SUPPRESS, Reason.NOTHING_OPEN)])
        else:
            reason = Reason.NEW
        new_state = _update(
            state,
            open=state.open.remove(*targets),
            recent=state.recent.add(event.id, event.occurred_at),
        )
        decision = Decision(event, Action.SEND, reason, tuple(a.id for a in closed))
        return Outcome(new_state, None, [decision])
    new_state = _update(state, recent=state.recent.add(event.id, event.occurred_at))
    return Outcome(new_state, None, [Decision(event, Action.SEND, Reason.NEW)])


STAGES: tuple[Stage, ...] = (drop_duplicates, skip_open, hold_in_grace, announce)
_AFTER_GRACE: tuple[Stage, ...] = STAGES[STAGES.index(hold_in_grace) + 1 :]


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
        decisions.append(Decision(passed, Action.SEND, Reason.NEW))
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
        if d.event.id == held.event.id and d.action is Action.SEND
        else d
        for d in decisions
    ]


def offer(
    state: PolicyState,
    event: GitOpsEvent,
    now: datetime,
    settings: PolicySettings = DEFAULT_SETTINGS,
) -> tuple[PolicyState, list[Decision]]:
    """Decide about `event` at `now` (pure).

    Runs `tick` first, so problems whose grace has passed are released before this event is
    looked at; their decisions come first in the list. The list holds one decision for
    `event` and possibly decisions about other events (released, or cancelled by it).
    """
    state, decisions = tick(state, now, settings)
    state, more = _through(STAGES, state, event, now, settings)
    return state, decisions + more


def tick(
    state: PolicyState, now: datetime, settings: PolicySettings = DEFAULT_SETTINGS
) -> tuple[PolicyState, list[Decision]]:
    """Release held problems whose grace has passed by `now`, and forget old ids (pure)."""
    decisions: list[Decision] = []
    first = state.due.first()
    if first is not None and first[0] <= now:
        entries, queue = state.due.pop_while(lambda entry: entry[0] <= now)
        state = _update(state, due=queue)
        for due, event_id, key in entries:
            held = state.held.get(key)
            if held is None or held.event.id != event_id or held.due != due:
                continue
            state, released = _release(state, held, now, settings, Reason.GRACE_PASSED)
            decisions.extend(released)
    recent = state.recent.prune(now - settings.remember_for, settings.remember_max)
    if recent is not state.recent:
        state = _update(state, recent=recent)
    return state, decisions


def flush(
    state: PolicyState, settings: PolicySettings = DEFAULT_SETTINGS
) -> tuple[PolicyState, list[Decision]]:
    """Release everything still held, each at its due time, as if its grace had passed (pure).

    Used at the end of a replay: the stream is over, the problems it left are taken to persist.
    """
    decisions: list[Decision] = []
    for held in sorted(state.held.values(), key=lambda h: (h.due, h.event.id)):
        state, released = _release(state, held, held.due, settings, Reason.FLUSHED)
        decisions.extend(released)
    return _update(state, due=_due_queue()), decisions


def sent(decisions: Iterable[Decision]) -> list[GitOpsEvent]:
    """The events to deliver, in order."""
    return [d.event for d in decisions if d.action is Action.SEND]
