"""Running the chain: `offer` an event (`decide` when the clock was let pass already), `tick`
the clock, `flush` at the end of a stream; released events (grace passed, a flap settled)
re-enter after the stage that held them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from core.flap import FlapKey
from core.model import (
    PROBLEM_KINDS,
    AppKey,
    GitOpsEvent,
)
from core.mutes import muted_by
from core.policy.groups import (
    _close,
    _emit,
    _flush,
    _remind,
)
from core.policy.stages import (
    _AFTER_FLAPS,
    _AFTER_GRACE,
    STAGES,
    Stage,
)
from core.policy.state import (
    DEFAULT_SETTINGS,
    RESOLVES,
    Action,
    Decision,
    Held,
    PolicySettings,
    PolicyState,
    Reason,
    RouteSettings,
    _due_queue,
    _rid,
    _update,
)


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
    state, more = decide(state, event, now, settings)
    return state, decisions + more


def decide(
    state: PolicyState,
    event: GitOpsEvent,
    now: datetime,
    settings: PolicySettings = DEFAULT_SETTINGS,
) -> tuple[PolicyState, list[Decision]]:
    """`offer` without letting time pass first (pure): for a caller that has run `tick` to
    `now` already (the pipeline advances its clock once per input)."""
    return _through(STAGES, state, event, now, settings)


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
        # Held problems first, also those a settling flap held again in the last round. (The
        # maps are walked only when they hold something: this loop runs once per timer.)
        held_now = sorted(state.held.values(), key=_due_first) if state.held else ()
        for held in held_now:
            state, released = _release(
                state, held, held.due, _for(held.route, settings, routes), Reason.FLUSHED
            )
            decisions.extend(released)
        state = _update(state, due=_due_queue())
        for group_id, route in list(state.quieted.items()) if state.quieted else ():
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
        # The queue is in time order: the first flush or flap timer is the earliest. (Listing
        # them all each round made a stream that ends with thousands of timers quadratic.)
        waiting = next((t[0] for t in state.timers if t[1] in ("flush", "flap")), None)
        if waiting is None:
            if state.held:
                continue
            break
        state, more = tick(state, waiting, settings, routes)
        decisions.extend(more)
    return state, decisions


def _due_first(held: Held) -> tuple[datetime, str]:
    return held.due, held.event.id


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
