"""Which apps a question is about (pure): what a selector picks among the live apps, names
close to a miss for "did you mean", what a channel may see when `slack.scope_channels` is on,
and the open problems the answers show beside each app.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from bot.chat.commands.parse import Selector
from config.globs import glob_match
from config.schema import Config
from core.model import AppState
from core.problems import open_alerts, problems_since
from core.summary import live

__all__ = [
    "Scope",
    "channel_scope",
    "open_alerts",
    "problems_since",
    "select",
    "selects",
    "suggestions",
]


def _match(pattern: str, value: str) -> bool:
    """`*` and `?` wildcards only: a `[` typed in chat is a literal."""
    return glob_match(pattern.replace("[", "[[]"), value)


def selects(selector: Selector, state: AppState) -> bool:
    if selector.kind == "all":
        return True
    if selector.kind == "cluster":
        return _match(selector.value, state.cluster)
    if selector.kind == "namespace":
        return _match(selector.value, state.namespace)
    if selector.kind == "env":
        env = state.labels.get("env") or state.labels.get("environment") or ""
        return _match(selector.value, state.cluster) or bool(env and _match(selector.value, env))
    return (
        _match(selector.value, state.name)
        and (selector.namespace is None or _match(selector.namespace, state.namespace))
        and (selector.cluster is None or _match(selector.cluster, state.cluster))
    )


def select(states: Iterable[AppState], selector: Selector) -> list[AppState]:
    """The live apps `selector` picks. A bare word that names no app but names a cluster
    picks that cluster (`status staging`)."""
    present = live(states)
    picked = [s for s in present if selects(selector, s)]
    if picked or selector.kind != "app" or selector.namespace or selector.cluster:
        return picked
    return [s for s in present if _match(selector.value, s.cluster)]


def suggestions(states: Iterable[AppState], selector: Selector) -> list[str]:
    """Names close to what was asked, for "did you mean"."""
    words = {s.name for s in states} | {s.cluster for s in states}
    return difflib.get_close_matches(selector.value, sorted(words), n=3)


@dataclass(frozen=True, slots=True)
class Scope:
    """The clusters and namespaces a channel follows: those of the routes that post to it.
    Each rule is (cluster patterns, namespace patterns); None matches anything."""

    channel: str
    rules: tuple[tuple[tuple[str, ...] | None, tuple[str, ...] | None], ...]

    def covers(self, state: AppState) -> bool:
        return any(
            (clusters is None or any(glob_match(p, state.cluster) for p in clusters))
            and (namespaces is None or any(glob_match(p, state.namespace) for p in namespaces))
            for clusters, namespaces in self.rules
        )


def channel_scope(config: Config, channel_id: str, channel_name: str = "") -> Scope | None:
    """What a question asked in this channel may show (pure). None: everything, either
    because `slack.scope_channels` is off or because no Slack receiver posts here."""
    if not config.slack.scope_channels or not channel_id:
        return None
    names = {channel_id, channel_name, f"#{channel_name}"} - {"", "#"}
    receivers = {r.name for r in config.receivers if r.slack and r.slack.channel in names}
    if not receivers:
        return None
    rules = tuple(
        (
            route.match.cluster if route.match else None,
            route.match.namespace if route.match else None,
        )
        for route in config.routes
        if receivers.intersection(route.receivers)
    )
    return Scope(channel_id, rules)
