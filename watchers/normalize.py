"""One entry point from any raw object to the domain: AppState, Hint, or a reason to reject it.

Never raises on bad data: a malformed object or an unknown kind comes back as `Rejected`, so
the caller can report it (with its line number) and go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.model import AppState, Hint
from watchers import argocd, argocd_events, flux, flux_events, flux_webhook
from watchers.rejected import Rejected

__all__ = ["Normalized", "Rejected", "normalize_flux_notification", "normalize_object"]

Normalized = AppState | Hint | Rejected


def normalize_object(obj: Any, cluster: str, now: datetime) -> Normalized:
    """A Kubernetes object (Application, Flux kind, core/v1 Event) to the domain (pure)."""
    if not isinstance(obj, Mapping):
        return Rejected(f"object is {type(obj).__name__}, not a JSON object")
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return Rejected("object has no string apiVersion and kind")
    group = api_version.rpartition("/")[0]
    if kind == "Event" and group in ("", "events.k8s.io"):
        involved = obj.get("involvedObject") or obj.get("regarding")
        inv_api = involved.get("apiVersion") if isinstance(involved, Mapping) else None
        inv_group = inv_api.rpartition("/")[0] if isinstance(inv_api, str) else ""
        if inv_group == "argoproj.io":
            return argocd_events.normalize_event(obj, cluster, now)
        if inv_group.endswith(".toolkit.fluxcd.io"):
            return flux_events.normalize_event(obj, cluster, now)
        return Rejected(f"Event about {inv_api!r} is neither Argo CD's nor Flux's")
    if group == "argoproj.io" and kind == "Application":
        return argocd.normalize_application(obj, cluster, now)
    if group.endswith(".toolkit.fluxcd.io") and kind in flux.KINDS:
        return flux.normalize_object(obj, cluster, now)
    return Rejected(f"unknown kind {kind!r} of {api_version!r}")


def normalize_flux_notification(body: Any, cluster: str, now: datetime) -> Hint | Rejected:
    """A notification-controller generic webhook body to a Hint (pure)."""
    return flux_webhook.normalize_notification(body, cluster, now)
