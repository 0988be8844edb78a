"""Detection: turn a change of AppState, or a Hint, into GitOpsEvents. Decides; does nothing.

Transitions, not levels: an app that stays OutOfSync produces one drift, not one per watch
event. The first sight of an object (no previous state) is a silent baseline.
"""

from __future__ import annotations

from datetime import datetime

from core import detect_argocd, detect_flux
from core.model import AppState, EventKind, GitOpsEvent, Hint, Tool, make_event


def detect(previous: AppState | None, current: AppState, now: datetime) -> list[GitOpsEvent]:
    """Events for the move from `previous` to `current` at `now` (pure)."""
    if previous is None or previous.deleted:
        return []
    if current.deleted:
        return [make_event(EventKind.DELETED, previous, now, message="")]
    if current.tool is Tool.ARGOCD:
        return detect_argocd.transitions(previous, current, now)
    return detect_flux.transitions(previous, current, now)


def detect_hint(hint: Hint, state: AppState | None, now: datetime) -> list[GitOpsEvent]:
    """Events that a Kubernetes Event or Flux notification reveals about `state` (pure)."""
    if hint.tool is Tool.ARGOCD:
        return detect_argocd.from_hint(hint, state, now)
    return detect_flux.from_hint(hint, state, now)
