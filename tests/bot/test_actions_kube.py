"""The Kubernetes backend of actions against a real kube-apiserver, as the chart's
ServiceAccount: with the opt-in actions ClusterRole the annotation, `spec.suspend` and the
Application `operation` land on the real objects; refusals come up front where the tool would
refuse; without the ClusterRole every write is a 403 said in plain words, and nothing changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from bot.actions.errors import ActionError
from bot.actions.kube import REQUESTED_AT, KubeActions, go_time
from core.actions import ActionRequest, Plan, Verb
from core.model import AppKey, Tool
from tests.bot.actions_cluster import Cluster, apply_chart, cluster
from tests.builders_argocd import REV_A, at, operation_state
from tests.deploy.envtest import ApiServer, api_server

NOW = datetime(2026, 12, 6, 3, 0, 0, 123456, tzinfo=UTC)
APPS = AppKey(Tool.FLUX, "prod", "flux-system", "Kustomization", "apps")
CHECKOUT = AppKey(Tool.ARGOCD, "prod", "argocd", "Application", "checkout")
CART = AppKey(Tool.ARGOCD, "prod", "argocd", "Application", "cart")
PAYMENTS = AppKey(Tool.ARGOCD, "prod", "argocd", "Application", "payments")
INFRA = AppKey(Tool.FLUX, "prod", "flux-system", "Kustomization", "infra")


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    with api_server() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def granted(server: ApiServer) -> AsyncIterator[Cluster]:
    async with cluster(server) as made:
        yield made


def _plan(verb: Verb, key: AppKey, **kwargs: object) -> Plan:
    return Plan(ActionRequest(verb, key, **kwargs))  # type: ignore[arg-type]


async def test_reconcile_with_source_annotates_the_kustomization_and_its_gitrepository(
    granted: Cluster,
) -> None:
    client = await granted.as_driftbot()
    try:
        started = await KubeActions(client, lambda: NOW).act(
            _plan(Verb.RECONCILE, APPS, with_source=True), "U0DEPLOY"
        )
    finally:
        await client.close()
    assert started.marker == "2026-12-06T03:00:00.123456Z" == go_time(NOW)
    kustomization = await granted.get("Kustomization", "flux-system", "apps")
    source = await granted.get("GitRepository", "flux-system", "flux-system")
    assert kustomization["metadata"]["annotations"][REQUESTED_AT] == started.marker
    assert source["metadata"]["annotations"][REQUESTED_AT] == started.marker


async def test_suspend_and_resume_flip_spec_suspend_and_a_suspended_object_is_not_reconciled(
    granted: Cluster,
) -> None:
    client = await granted.as_driftbot()
    actions = KubeActions(client, lambda: NOW)
    try:
        await actions.act(_plan(Verb.SUSPEND, INFRA), "U0DEPLOY")
        assert (await granted.get("Kustomization", "flux-system", "infra"))["spec"]["suspend"]
        with pytest.raises(ActionError, match="suspended"):
            await actions.act(_plan(Verb.RECONCILE, INFRA), "U0DEPLOY")
        await actions.act(_plan(Verb.RESUME, INFRA), "U0DEPLOY")
    finally:
        await client.close()
    resumed = await granted.get("Kustomization", "flux-system", "infra")
    assert resumed["spec"]["suspend"] is False
    assert resumed["metadata"]["annotations"][REQUESTED_AT] == go_time(NOW)


async def test_sync_writes_the_operation_as_argocd_core_does_and_acts_once(
    granted: Cluster,
) -> None:
    failed = operation_state("Failed", REV_A, started_at=at(-5), finished_at=at(-4))
    await granted.replace_status("Application", "argocd", "checkout", {"operationState": failed})
    client = await granted.as_driftbot()
    actions = KubeActions(client, lambda: NOW)
    try:
        started = await actions.act(_plan(Verb.SYNC, CHECKOUT, revision=REV_A), "U0DEPLOY")
        with pytest.raises(ActionError, match="another operation is already in progress"):
            await actions.act(_plan(Verb.SYNC, CHECKOUT), "U0OTHER")
    finally:
        await client.close()
    assert started.marker == "U0DEPLOY"
    app = await granted.get("Application", "argocd", "checkout")
    assert app["operation"]["initiatedBy"] == {"username": "U0DEPLOY"}
    assert app["operation"]["sync"]["revision"] == REV_A
    assert "operationState" not in app["status"]


async def test_rollback_syncs_to_the_history_entry_with_its_source(granted: Cluster) -> None:
    client = await granted.as_driftbot()
    plan = _plan(Verb.ROLLBACK, PAYMENTS, history_id="40")
    try:
        await KubeActions(client, lambda: NOW).act(plan, "U0DEPLOY")
    finally:
        await client.close()
    operation = (await granted.get("Application", "argocd", "payments"))["operation"]
    assert operation["initiatedBy"] == {"username": "U0DEPLOY"}
    assert operation["sync"]["revision"] == REV_A
    assert operation["sync"]["source"]["repoURL"].endswith("argocd-example-apps")
    assert operation["sync"]["syncStrategy"] == {"apply": {}}


async def test_rollback_is_refused_while_auto_sync_is_on_and_nothing_is_written(
    granted: Cluster,
) -> None:
    client = await granted.as_driftbot()
    try:
        with pytest.raises(ActionError, match="auto-sync"):
            await KubeActions(client, lambda: NOW).act(
                _plan(Verb.ROLLBACK, CART, history_id="40"), "U0DEPLOY"
            )
    finally:
        await client.close()
    assert "operation" not in await granted.get("Application", "argocd", "cart")


async def test_without_the_actions_clusterrole_every_write_is_a_plain_403(
    granted: Cluster,
) -> None:
    account = await apply_chart(granted.admin, "readonly", "readonly", actions=False)
    client = await granted.as_driftbot(account, "readonly")
    actions = KubeActions(client, lambda: NOW)
    try:
        for plan in (
            _plan(Verb.RECONCILE, APPS),
            _plan(Verb.SYNC, CART),
            _plan(Verb.REFRESH, CART),
        ):
            with pytest.raises(ActionError, match=r"actions\.enabled") as refused:
                await actions.act(plan, "U0DEPLOY")
            assert refused.value.status == 403
    finally:
        await client.close()
    cart = await granted.get("Application", "argocd", "cart")
    assert "operation" not in cart
    assert "argocd.argoproj.io/refresh" not in (cart["metadata"].get("annotations") or {})
