"""Raw Argo CD Applications and Events for tests, made from the upstream examples.

Every builder starts from a fixture copied from argoproj/argo-cd (see the fixtures README) and
edits a deep copy of its status, so the objects keep the real CRD's shape and field names.
Times are RFC 3339 strings relative to T0 (`at(minutes)`), so scenarios read as a timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.model import AppState
from tests.upstream import load_fixture
from watchers.argocd import normalize_application
from watchers.rejected import Rejected

DIFF_CACHE = "argocd/diff-cache-application.yaml"
"""A real Application with status: history, operationState, resources, summary (plugin source)."""
LIVE_CHILD = "argocd/live-child-application.yaml"
"""An app-of-apps child Application: Helm chart source, automated sync, no status."""

EVENT_ROLLBACK = "argocd/event-rollback-initiated.json"
EVENT_AUTOMATED_SYNC = "argocd/event-automated-sync.json"
EVENT_SYNC_STATUS = "argocd/event-sync-status-updated.json"
EVENT_HEALTH_STATUS = "argocd/event-health-status-updated.json"
ARGOCD_EVENTS = (EVENT_ROLLBACK, EVENT_AUTOMATED_SYNC, EVENT_SYNC_STATUS, EVENT_HEALTH_STATUS)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

REV_OLD = "3f1c0a9d2b7e4c6a8f5d1e0b9a7c3d2e1f0a4b5c"
REV_A = "ea8759964626a583667a2bfd08f334ec2070040a"
"""The revision the diff-cache fixture has deployed."""
REV_B = "7d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a0b2c4d6e"
REV_C = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"


def at(minutes: float) -> str:
    """T0 + `minutes` as Argo CD writes times (RFC 3339, seconds, Z)."""
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(minutes: float) -> datetime:
    """T0 + `minutes` as an aware datetime (the `now` of a scenario step)."""
    return T0 + timedelta(minutes=minutes)


def history_entry(
    id: int,
    revision: str,
    deployed_at: str,
    *,
    started_at: str | None = None,
    username: str = "",
    automated: bool = False,
    revisions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One status.history item (RevisionHistory)."""
    entry: dict[str, Any] = {
        "id": id,
        "deployStartedAt": started_at or deployed_at,
        "deployedAt": deployed_at,
        "initiatedBy": {"automated": True} if automated else {"username": username},
    }
    if revisions is not None:
        entry["revisions"] = list(revisions)
    else:
        entry["revision"] = revision
    return entry


def operation_state(
    phase: str,
    revision: str,
    *,
    started_at: str,
    finished_at: str | None = None,
    username: str = "",
    automated: bool = False,
    message: str | None = None,
    auto_heal_attempts: int | None = None,
    with_result: bool = True,
) -> dict[str, Any]:
    """status.operationState of a sync operation (requested revision, result, initiator)."""
    sync: dict[str, Any] = {"revision": revision, "syncStrategy": {"hook": {}}}
    if auto_heal_attempts is not None:
        sync["autoHealAttemptsCount"] = auto_heal_attempts
    state: dict[str, Any] = {
        "phase": phase,
        "startedAt": started_at,
        "message": message
        if message is not None
        else {
            "Running": "one or more tasks are running",
            "Succeeded": "successfully synced (all tasks run)",
        }.get(phase, ""),
        "operation": {
            "initiatedBy": {"automated": True} if automated else {"username": username},
            "retry": {"limit": 5},
            "sync": sync,
        },
    }
    if finished_at is not None:
        state["finishedAt"] = finished_at
    if with_result:
        state["syncResult"] = {"revision": revision, "resources": []}
    return state


def argocd_app(
    name: str = "velero-test",
    *,
    base: str = DIFF_CACHE,
    sync: str = "Synced",
    health: str = "Healthy",
    desired: str | None = REV_A,
    history: Iterable[Mapping[str, Any]] | None = None,
    operation: Mapping[str, Any] | bool | None = True,
    auto_sync: bool | None = None,
    self_heal: bool = False,
    out_of_sync: Sequence[tuple[str, str, str]] = (),
    conditions: Sequence[tuple[str, str]] = (),
    images: Sequence[str] | None = None,
    reconciled_at: str | None = None,
    health_message: str | None = None,
    unhealthy: Sequence[tuple[str, str, str, str, str]] = (),
    destination: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A raw Application: a copy of the `base` fixture with its status edited.

    `history` is oldest first, as Argo CD stores it (None keeps the fixture's);
    `operation` True keeps the fixture's operationState, None or False removes it;
    `auto_sync` None keeps the fixture's syncPolicy, True/False sets or removes `automated`;
    `out_of_sync` marks (kind, namespace, name) resources OutOfSync, adding them if absent;
    `conditions` are (type, message) pairs;
    `health_message` sets status.health.message; `unhealthy` gives (kind, namespace, name)
    resources a health (status, message), adding them if absent; `destination` replaces
    spec.destination;
    `reconciled_at` sets status.reconciledAt; by default it is the operation's end (or start),
    as after the comparison Argo CD runs when an operation completes.
    """
    app: dict[str, Any] = load_fixture(base)
    app["metadata"]["name"] = name
    status = app.setdefault("status", {})
    status.setdefault("sync", {})["status"] = sync
    if desired is None:
        status["sync"].pop("revision", None)
    else:
        status["sync"]["revision"] = desired
    status.setdefault("health", {})["status"] = health
    if history is not None:
        status["history"] = [dict(h) for h in history]
    if operation is None or operation is False:
        status.pop("operationState", None)
    elif operation is not True:
        status["operationState"] = dict(operation)
    op_state = status.get("operationState") or {}
    reconciled = reconciled_at or op_state.get("finishedAt") or op_state.get("startedAt")
    if reconciled:
        status["reconciledAt"] = reconciled
    if auto_sync is not None:
        policy = app["spec"].setdefault("syncPolicy", {})
        if auto_sync:
            policy["automated"] = {"prune": True, "selfHeal": self_heal}
        else:
            policy.pop("automated", None)
    resources = status.setdefault("resources", [])
    for kind, namespace, res_name in out_of_sync:
        for res in resources:
            if (res.get("kind"), res.get("namespace"), res.get("name")) == (
                kind,
                namespace,
                res_name,
            ):
                res["status"] = "OutOfSync"
                break
        else:
            resources.append(
                {
                    "kind": kind,
                    "namespace": namespace,
                    "name": res_name,
                    "version": "v1",
                    "status": "OutOfSync",
                }
            )
    for kind, namespace, res_name, res_health, res_message in unhealthy:
        found = next(
            (
                res
                for res in resources
                if (res.get("kind"), res.get("namespace"), res.get("name"))
                == (kind, namespace, res_name)
            ),
            None,
        )
        if found is None:
            found = {"kind": kind, "namespace": namespace, "name": res_name, "version": "v1"}
            found["status"] = "Synced"
            resources.append(found)
        found["health"] = {"status": res_health, "message": res_message}
    if health_message is not None:
        status["health"]["message"] = health_message
    if destination is not None:
        app["spec"]["destination"] = dict(destination)
    if conditions:
        status["conditions"] = [
            {"type": type_, "message": message, "lastTransitionTime": at(0)}
            for type_, message in conditions
        ]
    if images is not None:
        status.setdefault("summary", {})["images"] = list(images)
    return app


def app_state(
    raw: Mapping[str, Any], now: datetime | None = None, cluster: str = "prod"
) -> AppState:
    """The AppState of a raw Application; fails the test if the normalizer rejects it."""
    state = normalize_application(raw, cluster, now or T0)
    if isinstance(state, Rejected):
        raise AssertionError(f"Application rejected: {state.reason}")
    return state
