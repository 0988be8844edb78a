"""The pipeline runner: normalize -> detect -> route -> policy -> deliver -> record.

One instance serves every source (replay, watches, webhooks). Each call takes `now`, the time
at which the input was observed, so replay runs on recorded time and tests on virtual time.
The pure stages decide; this class only moves values between them and the store.

The policy keeps its state per receiver (a lane): whichever routes take an event, each
receiver decides about it once (config.routing.deliveries says how the routes' settings
combine), so a channel reached by several routes gets one message, one thread and one set of
updates. Decisions that several receivers made alike are delivered as one notification.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.delivery.receivers import ConsoleReceiver, Notification, Receiver
from bot.ops.logs import about, about_object
from bot.ops.metrics import METRICS
from bot.pipeline import links
from bot.pipeline.app_states import AppStates
from bot.pipeline.outcome import HINT, OBSERVED, STALE, Taken, rejected
from bot.store.store import Store, StoreError
from config.route_id import RouteId
from config.routing import deliveries, match_routes, owner_policy, receiver_owners
from config.schema import Config
from core import policy
from core.detect import detect, detect_hint
from core.model import AppKey, AppState, EventKind, GitOpsEvent, Hint, Tool
from core.policy import Action, Decision, PolicySettings, PolicyState, Reason
from watchers.annotations import app_project
from watchers.commit_info import CommitDescriber
from watchers.normalize import Rejected, normalize_flux_notification, normalize_object

logger = logging.getLogger(__name__)


class Pipeline:
    """Feeds observations through the stages; call `load` first and `close` last."""

    def __init__(
        self,
        store: Store,
        config: Config,
        receivers: Mapping[str, Receiver],
        commits: CommitDescriber | None = None,
    ) -> None:
        self.store = store
        self.commits = commits or CommitDescriber()
        """Commit author and subject for deploys and rollbacks: Argo CD's revision metadata
        where its API is configured, Flux's from the sources' NewArtifact reports."""
        self.policy_state = PolicyState()
        self.states = AppStates()
        """Every app as last seen: the store's app states, read once at load (decoded when
        first used) and written through."""
        self.stats: Counter[str] = Counter()
        self.detected: Counter[tuple[str, str]] = Counter()
        """(event kind, tool) of every event detected, for metrics."""
        self.decided: Counter[tuple[Action, Reason]] = Counter()
        """(action, reason) of every decision to hold or suppress, for metrics."""
        self.projects: dict[tuple[str, str], dict[str, str]] = {}
        """(cluster, Argo CD project) -> the AppProject's routing annotations, kept by the
        AppProject watch when `routing.annotations` is on (bot/pipeline/projects.py)."""
        self.metrics = METRICS
        """Where delivery latency starts: each notification's change, as it is handed over."""
        self.listeners: list[Callable[[AppState, datetime], Awaitable[None]]] = []
        """Told every app state recorded (actions from chat follow their result this way)."""
        self.reconfigure(config, receivers)

    def reconfigure(self, config: Config, receivers: Mapping[str, Receiver]) -> None:
        """Take a new config and its receivers at once (a hot reload); held problems, open
        alerts and app states are kept. Closing receivers no longer used is the caller's."""
        self.config = config
        self.receivers = dict(receivers)
        self._mentions: dict[str, dict[str, tuple[str, ...]]] = {}
        """Event id -> the mention of each receiver the config's routes give it; a group's
        members are asked again at every message of the group, so the answers are kept (for
        this config, up to `_MENTIONS_KEPT` events)."""
        self._argocd_urls = {c.name: c.argocd_url for c in config.clusters if c.argocd_url}
        self._clusters = {c.name: c for c in config.clusters}
        self._defaults = PolicySettings(grace=config.policy.grace)
        owners = receiver_owners(config)
        self._lanes: dict[str, PolicySettings] = {
            r.name: lane_settings(r.name, config, owners.get(r.name)) for r in config.receivers
        }
        """Each receiver's policy settings (its lane's): the policy keeps its state per
        receiver, with the settings of the first route naming it (the policy defaults for a
        receiver only annotations send to)."""

    async def load(self) -> None:
        self.policy_state = policy.relane(await self.store.load_policy(), self._lane_of_route)
        self.states = AppStates(await self.store.stored_states(), self.store.where)
        await self.close_gone(None)

    async def close_gone(self, now: datetime | None) -> int:
        """Close what the policy keeps for receivers the config no longer has (removed in a
        reload, or while driftbot was stopped): their open alerts are closed with a note in
        the audit log and a warning, their held problems and groups dropped, so nothing waits
        for a recovery that can no longer reach them. Returns how many alerts were closed."""
        state = self.policy_state
        lanes = {a.route for a in state.open.values()} | {h.route for h in state.held.values()}
        lanes |= {g.route for g in state.groups.values()}
        gone = {lane for lane in lanes if lane and lane not in self._lanes}
        if not gone:
            return 0
        closed = [a for a in state.open.values() if a.route in gone]
        self.policy_state = policy.relane(state, lambda lane: () if lane in gone else (lane,))
        for lane in sorted(gone):
            count = sum(1 for a in closed if a.route == lane)
            logger.warning(
                "receiver %s is no longer in the config: %d open alert(s) closed", lane, count
            )
        for alert in closed:
            detail = {
                "receiver": alert.route,
                "alert": alert.event.id,
                "kind": alert.event.kind.value,
                "note": f"closed: receiver {alert.route} is no longer in the config",
            }
            try:
                await self.store.audit(
                    "driftbot", "closed", alert.event.key, detail, at=now, with_policy=True
                )
            except StoreError:
                logger.exception("could not write the audit entry of a closed alert")
        await self.store.save_policy(self.policy_state)
        return len(closed)

    def _lane_of_route(self, lane: str) -> tuple[str, ...]:
        """Where a state kept by an older version, per route (`routes[2]`), goes now: to each
        receiver that route names in the current config (its alerts are updated there); any
        other lane stays as it is."""
        if not (lane.startswith("routes[") and lane.endswith("]") and lane[7:-1].isdigit()):
            return (lane,)
        index = int(lane[7:-1])
        routes = self.config.routes
        return tuple(dict.fromkeys(routes[index].receivers)) if index < len(routes) else ()

    async def close(self) -> None:
        await self.store.save_policy(self.policy_state)
        await self.store.flush()  # the receivers then send what it queued
        await self.commits.close()
        for receiver in self.receivers.values():
            await receiver.close()

    # --- inputs ----------------------------------------------------------------------------

    async def observe(self, obj: Any, cluster: str, watch_type: str, now: datetime) -> Taken:
        """A watch event (ADDED, MODIFIED, DELETED) for one object; returns what became of it.
        Time is let pass to `now` first."""
        await self.advance(now)
        if isinstance(obj, dict) and obj.get("kind") == "AppProject":
            return self.observe_project(obj, cluster, watch_type)
        return await self._observe_normalized(normalize_object(obj, cluster, now), watch_type, now)

    async def _observe_normalized(
        self, found: AppState | Hint | Rejected, watch_type: str, now: datetime
    ) -> Taken:
        if isinstance(found, Rejected):
            self.stats["rejected"] += 1
            return rejected(found.reason)
        if isinstance(found, Hint):
            return await self._hint(found, now)
        current = self._enrich(found)
        if watch_type == "DELETED":
            current = dataclasses.replace(current, deleted=True)
        previous = self.states.get(current.key)
        if previous is not None and _stale(previous, current):
            self.stats["stale"] += 1
            return STALE
        self.states[current.key] = current
        await self.store.put_state(current)
        await self._decide(detect(previous, current, now), now)
        for listener in self.listeners:
            await listener(current, now)
        return OBSERVED

    def observe_project(self, obj: Any, cluster: str, watch_type: str) -> Taken:
        """An Argo CD AppProject: its routing annotations are kept for its apps' events."""
        found = app_project(obj)
        if found is None:
            return rejected("an AppProject without a name")
        name, annotations = found
        if watch_type == "DELETED":
            self.projects.pop((cluster, name), None)
        else:
            self.projects[(cluster, name)] = annotations
        return OBSERVED

    async def relist(
        self, cluster: str, objects: list[Any], now: datetime, covers: Callable[[AppKey], bool]
    ) -> None:
        """A full list of one resource (raw objects, or what a watcher's `prepare` normalized
        as the list arrived): each object is observed, and every app held for it
        (`covers`) that the list no longer has is observed as deleted. So a change made while
        the watch was down is announced once, and nothing twice. Time is let pass to `now`
        first."""
        await self.advance(now)
        listed: set[AppKey] = set()
        for obj in objects:
            found = obj if isinstance(obj, _NORMALIZED) else normalize_object(obj, cluster, now)
            if isinstance(found, AppState):
                listed.add(found.key)
            taken = await self._observe_normalized(found, "MODIFIED", now)
            if taken.rejected and found is not obj:
                logger.warning("listed object %s", taken, extra=about_object(cluster, obj))
        unlisted = [
            key
            for key in self.states.keys_unread()
            if key.cluster == cluster and covers(key) and key not in listed
        ]
        held = [self.states.get(key) for key in unlisted]
        gone = [state for state in held if state is not None and not state.deleted]
        for state in gone:
            deleted = dataclasses.replace(state, observed_at=now, deleted=True)
            self.states[state.key] = deleted
            await self.store.put_state(deleted)
            await self._decide(detect(state, deleted, now), now)

    async def notify(self, body: Any, cluster: str, now: datetime) -> Taken:
        """A Flux notification-controller webhook body; time is let pass to `now` first."""
        await self.advance(now)
        found = normalize_flux_notification(body, cluster, now)
        if isinstance(found, Rejected):
            self.stats["rejected"] += 1
            return rejected(found.reason)
        return await self._hint(found, now)

    async def advance(self, now: datetime) -> None:
        """Let time pass: release problems whose grace is over, send groups that are due."""
        self.policy_state, decisions = policy.tick(
            self.policy_state, now, self._defaults, self._lanes
        )
        if decisions:
            await self._deliver(decisions, now)
            await self.store.save_policy(self.policy_state)

    async def finish(self) -> None:
        """End of a finite stream: what is still held is taken to persist and is announced."""
        self.policy_state, decisions = policy.flush(self.policy_state, self._defaults, self._lanes)
        await self._deliver(decisions)

    # --- stages ----------------------------------------------------------------------------

    async def _hint(self, hint: Hint, now: datetime) -> Taken:
        state = self.states.get(hint.key)
        self.commits.observe_hint(hint)
        await self._decide(detect_hint(hint, state, now), now)
        return HINT

    def _enrich(self, state: AppState) -> AppState:
        state = links.with_flux_ui_link(state, self._clusters)
        base = self._argocd_urls.get(state.cluster)
        if base and state.tool is Tool.ARGOCD and not state.url:
            url = f"{base.rstrip('/')}/applications/{state.namespace}/{state.name}"
            return dataclasses.replace(state, url=url)
        return state

    def _lanes_of(self, event: GitOpsEvent) -> list[PolicySettings]:
        """The receivers that decide about `event`, with the settings each decides by: those of
        the routes taking it (once each, see config.routing.deliveries), and for a recovery or
        a deletion also those holding a problem of its app (a recovery goes where its problem
        went)."""
        project = self.projects.get((event.cluster, event.project)) if event.project else None
        lanes = {
            d.receiver: dataclasses.replace(self._lanes[d.receiver], grace=d.grace)
            for d in deliveries(match_routes(event, self.config, project), self.config)
            if d.receiver in self._lanes
        }
        if event.kind in policy.RESOLVES or event.kind is EventKind.DELETED:
            for lane in policy.routes_holding(self.policy_state, event.key, self._lanes):
                lanes.setdefault(lane, self._lanes[lane])
        return list(lanes.values())

    async def _decide(self, events: list[GitOpsEvent], now: datetime) -> None:
        for found in events:
            event = await self.commits.enrich(links.with_repository(found, self.states))
            self.stats[f"detected.{event.kind}"] += 1
            self.detected[(event.kind.value, event.tool.value)] += 1
            lanes = self._lanes_of(event)
            if not lanes:
                self.stats["unrouted"] += 1
            decisions: list[Decision] = []
            for settings in lanes:
                self.policy_state, decided = policy.decide(self.policy_state, event, now, settings)
                decisions.extend(decided)
            await self._deliver(decisions, now)
        if events:
            await self.store.save_policy(self.policy_state)

    async def _deliver(self, decisions: list[Decision], now: datetime | None = None) -> None:
        """Send what policy decided to send (or to remind of) to the receiver that decided it,
        one notification for the receivers that decided alike, and record each notification
        and its deliveries in the audit log (`now`: when it was decided; a flush at the end
        of a stream uses the event's time)."""
        for decision in decisions:
            if decision.action not in (Action.SEND, Action.REMIND):
                self.decided[(decision.action, decision.reason)] += 1
        for note, decision in self._notifications(decisions):
            outcomes: dict[str, str] = {}
            timed = note.timed_ids()
            if timed is not None:
                # Only chat receivers report an acceptance; a console's entries would wait for
                # one until the map's cap pushed them out.
                chat = [
                    n
                    for n in note.receivers
                    if not isinstance(self.receivers.get(n), ConsoleReceiver)
                ]
                self.metrics.changes_seen(chat, *timed)
            context = _about(note)
            for name in note.receivers:
                receiver = self.receivers.get(name)
                if receiver is None:
                    logger.error(
                        "receiver %r is not configured; %s dropped",
                        name,
                        note.id,
                        extra={**context, "receiver": name},
                    )
                    outcomes[name] = "failed: receiver not configured"
                    continue
                try:
                    await receiver.deliver(note)
                except Exception as exc:
                    logger.exception(
                        "receiver %r failed to take %s",
                        name,
                        note.id,
                        extra={**context, "receiver": name},
                    )
                    self.stats["delivery_failed"] += 1
                    outcomes[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
                    continue
                outcomes[name] = "ok"
            self.stats["reminded" if note.reminds else "sent"] += 1
            await self._audit(note, decision, outcomes, now or decision.event.occurred_at)

    def _notifications(self, decisions: list[Decision]) -> list[tuple[Notification, Decision]]:
        """The notifications of `decisions` to send or remind of: one per distinct message,
        with every receiver that decided it alike (same event or group, same update, same
        mentions), each receiver's in the order it decided them."""
        merged: list[tuple[tuple[object, ...], list[str], Decision, tuple[str, ...]]] = []
        last: dict[str, int] = {}
        mentions = self._mentions
        if len(mentions) > _MENTIONS_KEPT:
            mentions.clear()
        for decision in decisions:
            if decision.action not in (Action.SEND, Action.REMIND):
                continue
            lane = decision.route
            if lane not in self._lanes:
                self.stats["unrouted"] += 1
                continue
            mention = self._mention(decision, lane, mentions)
            key = (_sameness(decision), mention)
            for index in range(last.get(lane, -1) + 1, len(merged)):
                if merged[index][0] == key:
                    merged[index][1].append(lane)
                    break
            else:
                index = len(merged)
                merged.append((key, [lane], decision, mention))
            last[lane] = index
        notes = []
        for _, lanes, decision, mention in merged:
            reminds = decision.updates if decision.action is Action.REMIND else ""
            note = Notification(
                decision.event,
                tuple(lanes),
                mention,
                decision.original,
                group=decision.group,
                updates="" if reminds else decision.updates,
                reminds=reminds,
                thread=decision.thread,
            )
            notes.append((note, decision))
        return notes

    def _mention(
        self, decision: Decision, lane: str, cache: dict[str, dict[str, tuple[str, ...]]]
    ) -> tuple[str, ...]:
        """The mentions of every route that takes the decision's events and names `lane`."""
        events = decision.group.events if decision.group is not None else (decision.event,)
        found: list[str] = []
        for event in events:
            by_lane = cache.get(event.id)
            if by_lane is None:
                taken = deliveries(match_routes(event, self.config), self.config)
                by_lane = cache[event.id] = {d.receiver: d.mention for d in taken}
            found.extend(by_lane.get(lane, ()))
        return tuple(dict.fromkeys(found))

    async def _audit(
        self, note: Notification, decision: Decision, outcomes: dict[str, str], at: datetime
    ) -> None:
        """One audit entry per notification: the events it tells of and each receiver's
        outcome. A store that cannot write it is logged, never stops a delivery."""
        events = note.group.events + note.group.resolved if note.group else (note.event,)
        detail: dict[str, Any] = {
            "notification": note.id,
            "kind": "group" if note.group else note.event.kind.value,
            "receiver_state": decision.route,
            "reason": decision.reason.value,
            "receivers": outcomes,
            "events": events,
        }
        if note.original is not None:
            detail["original"] = note.original
        if note.updates:
            detail["updates"] = note.updates
        if note.reminds:
            detail["reminds"] = note.reminds
        app = None if note.group is not None else note.event.key
        action = "remind" if note.reminds else "announce"
        try:
            await self.store.audit("driftbot", action, app, detail, at=at, with_policy=True)
        except StoreError:
            logger.exception("could not write the audit entry of %s", note.id, extra=_about(note))


def _about(note: Notification) -> dict[str, Any]:
    """The log context of a notification: its app's, or for a group its cluster's."""
    if note.group is not None:
        return about(note.group.cluster, note.group.namespace or "")
    event = note.event
    return about(event.cluster, event.namespace, event.name)


_MENTIONS_KEPT = 50_000
"""Events whose mentions `Pipeline._mention` keeps (a few hundred bytes each)."""

_NORMALIZED = (AppState, Hint, Rejected)
"""What a listed item may already be (a watcher's `prepare` normalized it as it arrived)."""


def lane_settings(receiver: str, config: Config, owner: RouteId | None) -> PolicySettings:
    """The policy settings of one receiver's lane: the effective policy of `owner` (the first
    route naming it; None: no route does, the policy defaults), the flap damping, and text
    dedup over the flap window (a message repeated within it says nothing new)."""
    p = owner_policy(config, owner)
    flap = config.policy.flap
    return PolicySettings(
        grace=p.grace,
        route=receiver,
        group_by=p.group_by,
        group_wait=p.group_wait,
        group_interval=p.group_interval,
        repeat=p.repeat,
        quiet=p.quiet_hours,
        flap_flips=flap.flips,
        flap_window=flap.window,
        dedup_window=flap.window if flap.flips else timedelta(0),
    )


def _sameness(decision: Decision) -> tuple[object, ...]:
    """What makes two receivers' decisions one message: the same event (or group members and
    recoveries), the same update, original and thread."""
    group = decision.group
    members = (
        (tuple(e.id for e in group.events), tuple(e.id for e in group.resolved), group.told)
        if group is not None
        else ()
    )
    original = decision.original.id if decision.original is not None else ""
    return (
        decision.action,
        decision.event.id,
        decision.event.resolves,
        members,
        decision.updates,
        original,
        decision.thread,
    )


def _stale(previous: AppState, current: AppState) -> bool:
    """A state older than the one held, or the very one held again (a replayed stream)."""
    if previous.observed_at > current.observed_at:
        return True
    if previous.observed_at == current.observed_at:
        return dataclasses.replace(previous, url=current.url) == current
    return False
