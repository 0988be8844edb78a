"""Mutes: keep quiet about an app, a pattern of apps, a namespace or a cluster for a while.

A mute has a target, an expiry, a reason and who set it. Targets, as the chat command takes them:
`checkout` or `check*` (app name glob), `shop/checkout` (namespace/app, globs), `cluster:prod`,
`namespace:shop`. Pure: matching takes `now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from core.model import GitOpsEvent


class MuteTargetError(ValueError):
    """A mute target the chat command cannot use; the message says what is accepted."""


TARGET_HELP = (
    "an app (glob), namespace/app, cluster/namespace/app, cluster:NAME, env:NAME or namespace:NAME"
)


@dataclass(frozen=True, slots=True)
class Mute:
    target: str
    until: datetime
    reason: str = ""
    who: str = ""
    created_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return now < self.until


def parse_target(text: str) -> str:
    """The canonical form of a mute target (MuteTargetError if it is not one)."""
    target = text.strip()
    if not target or any(c.isspace() for c in target):
        raise MuteTargetError(f"mute target {text!r}: expected {TARGET_HELP}")
    if ":" in target:
        scope, _, value = target.partition(":")
        scope = {"ns": "namespace", "environment": "env"}.get(scope, scope)
        if (
            scope not in ("cluster", "env", "namespace")
            or not value
            or ":" in value
            or "/" in value
        ):
            raise MuteTargetError(f"mute target {text!r}: expected {TARGET_HELP}")
        return f"{scope}:{value}"
    parts = target.split("/")
    if len(parts) > 3 or not all(parts):
        raise MuteTargetError(f"mute target {text!r}: expected {TARGET_HELP}")
    return target


def target_matches(target: str, event: GitOpsEvent) -> bool:
    """Does `target` (canonical) cover `event`'s app?"""
    if target.startswith("cluster:"):
        return fnmatchcase(event.cluster, target.removeprefix("cluster:"))
    if target.startswith("namespace:"):
        return fnmatchcase(event.namespace, target.removeprefix("namespace:"))
    if target.startswith("env:"):
        env = target.removeprefix("env:")
        label = event.labels.get("env") or event.labels.get("environment") or ""
        return fnmatchcase(event.cluster, env) or bool(label and fnmatchcase(label, env))
    parts = target.split("/")
    if len(parts) == 3:
        cluster, namespace, name = parts
        return (
            fnmatchcase(event.cluster, cluster)
            and fnmatchcase(event.namespace, namespace)
            and fnmatchcase(event.name, name)
        )
    if len(parts) == 2:
        return fnmatchcase(event.namespace, parts[0]) and fnmatchcase(event.name, parts[1])
    return fnmatchcase(event.name, target)


def muted_by(mutes: Iterable[Mute], event: GitOpsEvent, now: datetime) -> Mute | None:
    """The first active mute among `mutes` that covers `event`."""
    for mute in mutes:
        if mute.active(now) and target_matches(mute.target, event):
            return mute
    return None
