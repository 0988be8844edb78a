"""The pipeline runner: normalize -> detect -> route -> policy -> deliver -> record.

One instance serves every source (replay, watches, webhooks). Each call takes `now`, the time
at which the input was observed, so replay runs on recorded time and tests on virtual time.
The pure stages decide; this class only moves values between them and the store.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bot.receivers import Notification, Receiver
from bot.store import Store
from config.routing import RouteMatch, match_routes
from config.schema import Config
from core import policy
from core.detect import detect, detect_hint
from core.model import AppKey, AppState, GitOpsEvent, Hint, Tool
from core.policy import RESOLVES, Action, AlertKey, Decision, OpenAlert, PolicySettings, PolicyState
from watchers.normalize import Rejected, normalize_flux_notification, normalize_object

logger = logging.getLogger(__name__)


class Pipeline:
    """Feeds observations through the stages; call `load` first and `close` last."""

    def __init__(self, store: Store, config: Config, receivers: Mapping[str, Receiver]) -> None:
        self.store = store
        self.config = config
        self.receivers = dict(receivers)
        self.policy_state = PolicyState()
        self.states: dict[AppKey, AppState] = {}
        """Every app as last seen: the store's app states, read once at load and written through."""
        self.stats: Counter[str] = Counter()
        self.detected: Counter[tuple[str, str]] = Counter()
        """(event kind, tool) of every event detected, for metrics."""
        self._argocd_urls = {c.name: c.argocd_url for c in config.clusters if c.argocd_url}
        self._defaults = PolicySettings(grace=config.policy.grace)

    async def load(self) -> None:
        self.policy_state = await self.store.load_policy()
        self.states = await self.store.all_states()

    async def close(self) -> None:
        await self.store.save_policy(self.policy_state)
        for receiver in self.receivers.values():
            await receiver.close()

    # --- inputs ----------------------------------------------------------------------------

    async def observe(self, obj: Any, cluster: str, watch_type: str, now: datetime) -> str:
        """A watch event (ADDED, MODIFIED, DELETED) for one object; returns what became of it."""
        found = normalize_object(obj, cluster, now)
        if isinstance(found, Rejected):
            self.stats["rejected"] += 1
            return f"rejected: {found.reason}"
        if isinstance(found, Hint):
            return await self._hint(found, now)
        current = self._enrich(found)
        if watch_type == "DELETED":
            current = dataclasses.replace(current, deleted=True)
        previous = self.states.get(current.key)
        if previous is not None and _stale(previous, current):
            self.stats["stale"] += 1
            return "stale"
        self.states[current.key] = current
        await self.store.put_state(current)
        await self._decide(detect(previous, current, now), now)
        return "observed"

    async def relist(
        self, cluster: str, objects: list[Any], now: datetime, covers: Callable[[AppKey], bool]
    ) -> None:
        """A full list of one resource: each object is observed, and every app held for it
        (`covers`) that the list no longer has is observed as deleted. So a change made while
        the watch was down is announced once, and nothing twice."""
        listed: set[AppKey] = set()
        for obj in objects:
            found = normalize_object(obj, cluster, now)
            if isinstance(found, AppState):
                listed.add(found.key)
            await self.observe(obj, cluster, "MODIFIED", now)
        gone = [
            state
            for key, state in self.states.items()
            if key.cluster == cluster and covers(key) and key not in listed and not state.deleted
        ]
        for state in gone:
            deleted = dataclasses.replace(state, observed_at=now, deleted=True)
            self.states[state.key] = deleted
            await self.store.put_state(deleted)
            await self._decide(detect(state, deleted, now), now)

    async def notify(self, body: Any, cluster: str, now: datetime) -> str:
        """A Flux notification-controller webhook body."""
        found = normalize_flux_notification(body, cluster, now)
        if isinstance(found, Rejected):
            self.stats["rejected"] += 1
            return f"rejected: {found.reason}"
        return await self._hint(found, now)

    async def advance(self, now: datetime) -> None:
        """Let time pass: release problems whose grace is over."""
        self.policy_state, decisions = policy.tick(self.policy_state, now, self._defaults)
        if decisions:
            await self._deliver(decisions)
            await self.store.save_policy(self.policy_state)

    async def finish(self) -> None:
        """End of a finite stream: what is still held is taken to persist and is announced."""
        self.policy_state, decisions = policy.flush(self.policy_state, self._defaults)
        await self._deliver(decisions)

    # --- stages ----------------------------------------------------------------------------

    async def _hint(self, hint: Hint, now: datetime) -> str:
        state = self.states.get(hint.key)
        await self._decide(detect_hint(hint, state, now), now)
        return "hint"

    def _enrich(self, state: AppState) -> AppState:
        base = self._argocd_urls.get(state.cluster)
        if base and state.tool is Tool.ARGOCD and not state.url:
            url = f"{base.rstrip('/')}/applications/{state.namespace}/{state.name}"
            return dataclasses.replace(state, url=url)
        return state

    def _settings(self, event: GitOpsEvent) -> PolicySettings:
        routes = match_routes(event, self.config)
        if not routes:
            return self._defaults
        return dataclasses.replace(self._defaults, grace=routes[0].policy.grace)

    async def _decide(self, events: list[GitOpsEvent], now: datetime) -> None:
        for event in events:
            self.stats[f"detected.{event.kind}"] += 1
            self.detected[(event.kind.value, event.tool.value)] += 1
            was_open = self.policy_state.open
            self.policy_state, decisions = policy.offer(
                self.policy_state, event, now, self._settings(event)
            )
            await self._deliver(decisions, was_open)
        if events:
            await self.store.save_policy(self.policy_state)

    async def _deliver(
        self, decisions: list[Decision], was_open: Mapping[AlertKey, OpenAlert] | None = None
    ) -> None:
        """Send what policy decided to send to the receivers of its routes; a recovery also
        goes where the problem it resolves went (an alert of `was_open`)."""
        for decision in decisions:
            if decision.action is not Action.SEND:
                self.stats[f"{decision.action}.{decision.reason}"] += 1
                continue
            event = decision.event
            original = _resolved(event, was_open) if event.resolves and was_open else None
            matches = match_routes(event, self.config)
            if original is not None:
                matches += match_routes(original, self.config)
            names = _receivers(matches)
            if not names:
                self.stats["unrouted"] += 1
                continue
            note = Notification(event, names, _mentions(matches), original)
            for name in names:
                receiver = self.receivers.get(name)
                if receiver is None:
                    logger.error("receiver %r is not configured; event %s dropped", name, event.id)
                    continue
                await receiver.deliver(note)
            self.stats["sent"] += 1


def _resolved(event: GitOpsEvent, was_open: Mapping[AlertKey, OpenAlert]) -> GitOpsEvent | None:
    """The open problem a recovery resolves: looked up by its alert key, not by a scan."""
    for kind in RESOLVES.get(event.kind, ()):
        alert = was_open.get((event.key, kind))
        if alert is not None and alert.id == event.resolves:
            return alert.event
    return None


def _stale(previous: AppState, current: AppState) -> bool:
    """A state older than the one held, or the very one held again (a replayed stream)."""
    if previous.observed_at > current.observed_at:
        return True
    if previous.observed_at == current.observed_at:
        return dataclasses.replace(previous, url=current.url) == current
    return False


def _receivers(matches: list[RouteMatch]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for m in matches for name in m.receivers))


def _mentions(matches: list[RouteMatch]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for m in matches for name in m.mention))
