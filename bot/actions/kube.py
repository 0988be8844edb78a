"""Acting through the Kubernetes API, with merge patches, as the tools' own CLIs do.

- Argo CD, as `argocd app sync --core` and `argocd app rollback --core`: the Application's
  `operation` field is written (`initiatedBy.username` is the Slack user, so Argo CD's own
  history says who did it) and the previous `status.operationState` cleared, with the
  Application's resourceVersion so a concurrent change is not overwritten; a rollback syncs to
  a history entry's revision and source with the apply strategy. Refused like Argo CD refuses:
  an operation already in progress, a rollback while auto-sync is on. A hard refresh is the
  `argocd.argoproj.io/refresh: hard` annotation; terminating sets the running operation's
  phase to Terminating.
- Flux, as `flux reconcile` / `suspend` / `resume`: the `reconcile.fluxcd.io/requestedAt`
  annotation (RFC 3339 with nanoseconds, as Go writes it), on the source first with
  `with_source`; `spec.suspend` true or false (resume also requests a reconcile). A suspended
  object is not reconciled.

Only `get` and `patch` are used: the chart's opt-in ClusterRole grants exactly these.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client import ApiClient, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from bot.actions.errors import ActionError
from bot.pipeline.sources import WATCHED
from core.actions import RUNNING, Plan, Started, Verb
from core.model import AppKey

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
REFRESH = "argocd.argoproj.io/refresh"
CONFLICT_TRIES = 3

_RESOURCES: dict[str, tuple[str, str, str]] = {
    kind: (w.spec.group, w.spec.version, w.spec.plural)
    for w in WATCHED
    if w.tool is not None
    for kind in w.kinds
}
"""Kind -> (group, version, plural) of every kind driftbot watches."""


def go_time(moment: datetime) -> str:
    """`moment` as Go's time.RFC3339Nano writes it (trailing zeros of the fraction dropped)."""
    utc = moment.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}000".rstrip("0")
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


class KubeActions:
    """Acts on one cluster through `client` (whose identity the cluster's RBAC checks)."""

    def __init__(self, client: ApiClient, clock: Callable[[], datetime]) -> None:
        self.api = CustomObjectsApi(client)
        self.clock = clock

    async def act(self, plan: Plan, user: str) -> Started:
        request = plan.request
        key = request.key
        started = Started(self.clock(), "")
        verb = request.verb
        if verb in (Verb.SYNC, Verb.ROLLBACK):
            await self._retry(lambda: self._operation(plan, user))
            return Started(started.at, user)
        if verb is Verb.REFRESH:
            await self._patch(key, {"metadata": {"annotations": {REFRESH: "hard"}}})
            return started
        if verb is Verb.TERMINATE:
            await self._retry(lambda: self._terminate(key))
            return started
        obj = await self._get(key)
        suspended = (obj.get("spec") or {}).get("suspend") is True
        marker = go_time(started.at)
        annotate = {"metadata": {"annotations": {REQUESTED_AT: marker}}}
        if verb is Verb.RECONCILE:
            if suspended:
                raise ActionError(f"{key.kind} {key.name} is suspended: Flux will not reconcile it")
            if request.with_source:
                source = _source_of(obj, key)
                if source is not None:
                    await self._patch(source, annotate)
            await self._patch(key, annotate)
            return Started(started.at, marker)
        if verb is Verb.SUSPEND:
            await self._patch(key, {"spec": {"suspend": True}})
            return started
        await self._patch(key, {"spec": {"suspend": False}, **annotate})
        return Started(started.at, marker)

    async def _operation(self, plan: Plan, user: str) -> None:
        request = plan.request
        app = await self._get(request.key)
        if app.get("operation"):
            raise ActionError("another operation is already in progress")
        spec = app.get("spec") or {}
        policy = spec.get("syncPolicy") or {}
        sync: dict[str, Any] = {}
        if policy.get("syncOptions"):
            sync["syncOptions"] = policy["syncOptions"]
        if request.verb is Verb.SYNC:
            if request.revision:
                sync["revision"] = request.revision
        else:
            if policy.get("automated") is not None:
                raise ActionError("rollback cannot be initiated when auto-sync is enabled")
            entry = _history_entry(app, request.history_id)
            sync["syncStrategy"] = {"apply": {}}
            if entry.get("sources"):
                sync["sources"] = entry["sources"]
                sync["revisions"] = entry.get("revisions") or []
            else:
                sync["source"] = entry.get("source") or {}
                sync["revision"] = entry.get("revision") or ""
        body = {
            "metadata": {"resourceVersion": (app.get("metadata") or {}).get("resourceVersion")},
            "operation": {"sync": sync, "initiatedBy": {"username": user}},
            "status": {"operationState": None},
        }
        await self._patch(request.key, body)

    async def _terminate(self, key: AppKey) -> None:
        app = await self._get(key)
        state = (app.get("status") or {}).get("operationState") or {}
        if not app.get("operation") and state.get("phase") not in RUNNING:
            raise ActionError("Unable to terminate operation. No operation is in progress")
        body = {
            "metadata": {"resourceVersion": (app.get("metadata") or {}).get("resourceVersion")},
            "status": {"operationState": {"phase": "Terminating"}},
        }
        await self._patch(key, body)

    async def _retry(self, work: Callable[[], Awaitable[None]]) -> None:
        """Again on a conflict (someone changed the object between our read and write)."""
        for attempt in range(CONFLICT_TRIES):
            try:
                await work()
                return
            except ActionError as exc:
                if exc.status != 409 or attempt == CONFLICT_TRIES - 1:
                    raise
                logger.info("conflict while acting, reading the object again: %s", exc)

    def _where(self, key: AppKey) -> tuple[str, str, str]:
        found = _RESOURCES.get(key.kind)
        if found is None:
            raise ActionError(f"driftbot does not act on {key.kind} objects")
        return found

    async def _get(self, key: AppKey) -> dict[str, Any]:
        group, version, plural = self._where(key)
        try:
            obj = await self.api.get_namespaced_custom_object(
                group, version, key.namespace, plural, key.name
            )
        except ApiException as exc:
            raise _error(exc, "read", key) from None
        if not isinstance(obj, dict):
            raise ActionError(f"the API server answered {key.kind} {key.name} with no object")
        return obj

    async def _patch(self, key: AppKey, body: dict[str, Any]) -> None:
        group, version, plural = self._where(key)
        try:
            await self.api.patch_namespaced_custom_object(  # type: ignore[call-arg]
                group, version, key.namespace, plural, key.name, body, _content_type=MERGE_PATCH
            )
        except ApiException as exc:
            raise _error(exc, "patch", key) from None


def _history_entry(app: dict[str, Any], history_id: str) -> dict[str, Any]:
    for entry in (app.get("status") or {}).get("history") or []:
        if isinstance(entry, dict) and str(entry.get("id")) == history_id:
            return entry
    name = (app.get("metadata") or {}).get("name", "?")
    raise ActionError(f"application {name} does not have deployment with id {history_id}")


def _source_of(obj: dict[str, Any], key: AppKey) -> AppKey | None:
    """The source a Kustomization or HelmRelease reconciles from, as `--with-source` finds it."""
    spec = obj.get("spec") or {}
    ref = spec.get("sourceRef")
    if key.kind == "HelmRelease":
        ref = spec.get("chartRef") or ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef")
    if not isinstance(ref, dict) or ref.get("kind") not in _RESOURCES:
        return None
    return AppKey(
        key.tool, key.cluster, ref.get("namespace") or key.namespace, ref["kind"], ref["name"]
    )


def _error(exc: ApiException, what: str, key: AppKey) -> ActionError:
    status = int(exc.status or 0)
    thing = f"{key.kind} {key.name} in {key.namespace} on {key.cluster}"
    if status == 403:
        return ActionError(
            f"driftbot's service account may not {what} {thing} (403 Forbidden): install the "
            "chart with actions.enabled=true, or bind the actions ClusterRole",
            status,
        )
    if status == 404:
        return ActionError(f"{thing} was not found", status)
    if status == 409:
        return ActionError(f"{thing} changed while driftbot wrote it", status)
    return ActionError(f"the API server refused to {what} {thing} ({status} {exc.reason})", status)
