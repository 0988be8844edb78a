"""The JSON of `/api/v1/apps` and of one app, drawn from the status page's view values, so a
script reading it and a person reading the page never disagree. Its fields are part of the
documented contract (README, "The status page"). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.codec import format_time
from formatters import phrases
from formatters.status_paths import badge_path
from formatters.status_timeline import TimelineEntry
from formatters.status_view import AppView, ClusterView


def _time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def app_json(app: AppView) -> dict[str, Any]:
    """One app for `/api/v1/apps` (its fields are part of the documented contract)."""
    key = app.key
    deploy = app.last_deploy
    return {
        "tool": key.tool.value,
        "cluster": key.cluster,
        "namespace": key.namespace,
        "kind": key.kind,
        "name": key.name,
        "state": app.status,
        "state_text": app.words,
        "since": _time(app.since),
        "problem": app.problem,
        "sync": app.sync,
        "health": app.health,
        "revision": app.revision,
        "desired_revision": app.desired_revision,
        "chart": app.chart,
        "chart_version": app.chart_version,
        "last_deploy": None
        if deploy is None
        else {
            "revision": deploy.revision,
            "by": deploy.by,
            "at": _time(deploy.at),
            "commit_url": deploy.commit_url,
        },
        "open_alerts": [
            {"kind": a.kind.value, "since": _time(a.occurred_at), "headline": phrases.headline(a)}
            for a in app.alerts
        ],
        "message": app.message,
        "url": app.url,
        "page": app.path,
        "badge": badge_path(key.cluster, key.namespace, key.name),
    }


def fleet_json(clusters: Sequence[ClusterView], now: datetime) -> dict[str, Any]:
    return {
        "generated_at": format_time(now),
        "clusters": [
            {
                "name": c.name,
                "verdict": c.verdict,
                "problems": len(c.problems),
                "apps": [app_json(a) for a in c.apps],
            }
            for c in clusters
        ],
    }


def timeline_json(entries: Sequence[TimelineEntry]) -> list[dict[str, Any]]:
    return [
        {"at": format_time(e.at), "category": e.category, "kind": e.kind, "text": e.text}
        for e in entries
    ]
