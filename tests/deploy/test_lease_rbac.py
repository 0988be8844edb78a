"""The Lease Role as a real kube-apiserver enforces it: the chart's two-replica rendering is
applied (the Lease, the Role limited to it by name, the binding, the ServiceAccount), and
driftbot's own LeaderElector, authenticated as that ServiceAccount with a token from the
TokenRequest API, takes and renews the Lease without any `create`; the same identity is refused
every other Lease, and the creation of any Lease."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import (
    ApiClient,
    Configuration,
    CoordinationV1Api,
    CoreV1Api,
    RbacAuthorizationV1Api,
)
from kubernetes_asyncio.client.exceptions import ApiException

from bot.app.leader import LeaderElector
from tests.deploy.envtest import ApiServer, api_server
from tests.deploy.test_helm_chart import HA
from tests.deploy.tools import by_kind, helm_render, one

NAMESPACE = "ops"


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    with api_server() as running:
        yield running


@pytest.fixture
async def admin(server: ApiServer) -> AsyncIterator[ApiClient]:
    configuration = Configuration()
    await kube_config.load_kube_config(
        config_file=str(server.kubeconfig), client_configuration=configuration, persist_config=False
    )
    async with ApiClient(configuration) as client:
        yield client


async def _apply_chart(admin: ApiClient) -> dict[str, Any]:
    """Apply what the chart renders for leader election; the Deployment's view of it back."""
    manifests = helm_render(HA, namespace=NAMESPACE)
    core, rbac = CoreV1Api(admin), RbacAuthorizationV1Api(admin)
    await core.create_namespace({"metadata": {"name": NAMESPACE}})
    (account,) = by_kind(manifests, "ServiceAccount")
    await core.create_namespaced_service_account(NAMESPACE, account)
    await CoordinationV1Api(admin).create_namespaced_lease(NAMESPACE, one(manifests, "Lease"))
    await rbac.create_namespaced_role(NAMESPACE, one(manifests, "Role"))
    await rbac.create_namespaced_role_binding(NAMESPACE, one(manifests, "RoleBinding"))
    deployment = one(manifests, "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    return {
        "account": account["metadata"]["name"],
        "lease": env["DRIFTBOT_LEADER_ELECTION__LEASE_NAME"],
    }


async def _as_account(server: ApiServer, admin: ApiClient, account: str) -> ApiClient:
    """A client that is the ServiceAccount, as a pod's projected token makes it."""
    request = {"spec": {"expirationSeconds": 600}}
    answer = await CoreV1Api(admin).create_namespaced_service_account_token(
        account, NAMESPACE, request
    )
    configuration = Configuration(host=server.url)
    configuration.ssl_ca_cert = str(server.ca)
    configuration.api_key = {"BearerToken": answer.status.token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return ApiClient(configuration)


async def _status(call: Any) -> int:
    try:
        await call
    except ApiException as exc:
        return int(exc.status)
    return 200


async def test_the_chart_lease_role_lets_driftbot_lead_and_reaches_nothing_else(
    server: ApiServer, admin: ApiClient
) -> None:
    names = await _apply_chart(admin)
    other = {"metadata": {"name": "someone-else"}, "spec": {"holderIdentity": "other"}}
    await CoordinationV1Api(admin).create_namespaced_lease(NAMESPACE, other)

    client = await _as_account(server, admin, names["account"])
    try:
        elector = LeaderElector(client, name=names["lease"], namespace=NAMESPACE, identity="pod-a")
        assert await elector.try_acquire_or_renew(), "the chart's Lease could not be taken"
        assert await elector.try_acquire_or_renew(), "nor renewed"
        lease = await CoordinationV1Api(admin).read_namespaced_lease(names["lease"], NAMESPACE)
        assert lease.spec.holder_identity == "pod-a"

        leases = CoordinationV1Api(client)
        created = {"metadata": {"name": "forged"}, "spec": {"holderIdentity": "pod-a"}}
        assert await _status(leases.create_namespaced_lease(NAMESPACE, created)) == 403
        assert await _status(leases.read_namespaced_lease("someone-else", NAMESPACE)) == 403
        taken = {"metadata": {"name": "someone-else"}, "spec": {"holderIdentity": "pod-a"}}
        assert (
            await _status(leases.replace_namespaced_lease("someone-else", NAMESPACE, taken)) == 403
        )
        assert await _status(leases.list_namespaced_lease(NAMESPACE)) == 403
        assert await _status(leases.delete_namespaced_lease(names["lease"], NAMESPACE)) == 403
        still = await CoordinationV1Api(admin).read_namespaced_lease("someone-else", NAMESPACE)
        assert still.spec.holder_identity == "other"
    finally:
        await client.close()
