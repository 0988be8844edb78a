"""A real kube-apiserver set up for the actions tests: the upstream CRDs of the kinds acted
on, the chart's ServiceAccount with its read-only ClusterRole and (when asked) its opt-in
actions ClusterRole, a Flux Kustomization with its GitRepository, and Argo CD Applications
with a history, as the fixtures shape them.

`Cluster.as_driftbot()` is a client that is the chart's ServiceAccount (a TokenRequest
token), never admin, so every write the tests see passed the chart's RBAC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import (
    ApiClient,
    ApiextensionsV1Api,
    Configuration,
    CoreV1Api,
    CustomObjectsApi,
    RbacAuthorizationV1Api,
)

from tests.builders_argocd import REV_A, REV_B, REV_OLD, argocd_app, at, history_entry
from tests.builders_flux import gitrepository, kustomization
from tests.deploy.envtest import ApiServer
from tests.deploy.tools import ROOT, by_kind, helm_render

CRDS = ROOT / "tests" / "fixtures" / "crds"
NAMESPACE = "driftbot"
KINDS = (
    "argoproj.io_applications.yaml",
    "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    "source.toolkit.fluxcd.io_gitrepositories.yaml",
)
SOURCE = {"repoURL": "https://github.com/argoproj/argocd-example-apps", "path": "guestbook"}


def crd_file(name: str) -> Path:
    here = CRDS / name
    return here if here.exists() else ROOT.parent / "shared" / "fixtures" / "crds" / name


@dataclass
class Cluster:
    server: ApiServer
    admin: ApiClient
    account: str

    async def as_driftbot(self, account: str = "", namespace: str = NAMESPACE) -> ApiClient:
        """A client that is the chart's ServiceAccount, as a pod's projected token makes it."""
        answer = await CoreV1Api(self.admin).create_namespaced_service_account_token(
            account or self.account, namespace, {"spec": {"expirationSeconds": 600}}
        )
        configuration = Configuration(host=self.server.url)
        configuration.ssl_ca_cert = str(self.server.ca)
        configuration.api_key = {"BearerToken": answer.status.token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return ApiClient(configuration)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        group, version, plural = PLURALS[kind]
        found: dict[str, Any] = await CustomObjectsApi(self.admin).get_namespaced_custom_object(
            group, version, namespace, plural, name
        )
        return found

    async def create(self, obj: dict[str, Any]) -> None:
        group, version, plural = PLURALS[obj["kind"]]
        namespace = obj["metadata"]["namespace"]
        with contextlib.suppress(Exception):
            await CoreV1Api(self.admin).create_namespace({"metadata": {"name": namespace}})
        await CustomObjectsApi(self.admin).create_namespaced_custom_object(
            group, version, namespace, plural, obj
        )

    async def replace_status(self, kind: str, namespace: str, name: str, status: Any) -> None:
        """What the controller would write (admin): the status, through /status where the
        kind has that subresource."""
        group, version, plural = PLURALS[kind]
        api = CustomObjectsApi(self.admin)
        body = {"status": status}
        if kind == "Application":
            await api.patch_namespaced_custom_object(  # type: ignore[call-arg]
                group, version, namespace, plural, name, body,
                _content_type="application/merge-patch+json",
            )  # fmt: skip
        else:
            await api.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
                group, version, namespace, plural, name, body,
                _content_type="application/merge-patch+json",
            )  # fmt: skip


PLURALS = {
    "Application": ("argoproj.io", "v1alpha1", "applications"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
}


async def _install_crds(admin: ApiClient) -> None:
    api = ApiextensionsV1Api(admin)
    names = []
    for name in KINDS:
        crd = yaml.safe_load(crd_file(name).read_text())
        await api.create_custom_resource_definition(crd)
        names.append(crd["metadata"]["name"])
    for name in names:
        for _ in range(300):  # a real API server establishing a CRD: within seconds
            crd = await api.read_custom_resource_definition(name)
            conditions = {c.type: c.status for c in (crd.status.conditions or [])}
            if conditions.get("Established") == "True":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"CRD {name} not established")


async def apply_chart(admin: ApiClient, release: str, namespace: str, actions: bool) -> str:
    """Apply the chart's ServiceAccount and cluster RBAC for one release; its account name."""
    manifests = helm_render({"actions": {"enabled": actions}}, release=release, namespace=namespace)
    core, rbac = CoreV1Api(admin), RbacAuthorizationV1Api(admin)
    await core.create_namespace({"metadata": {"name": namespace}})
    (account,) = by_kind(manifests, "ServiceAccount")
    await core.create_namespaced_service_account(namespace, account)
    for role in by_kind(manifests, "ClusterRole"):
        await rbac.create_cluster_role(role)
    for binding in by_kind(manifests, "ClusterRoleBinding"):
        await rbac.create_cluster_role_binding(binding)
    return str(account["metadata"]["name"])


def checkout_app(auto_sync: bool = False) -> dict[str, Any]:
    """Application checkout in argocd: deployed REV_B (history 41) after REV_A (40) and REV_OLD
    (39); the history entries carry their source, as Argo CD records them."""
    history = [
        history_entry(39, REV_OLD, at(-3000), username="alice"),
        history_entry(40, REV_A, at(-2880), username="carol"),
        history_entry(41, REV_B, at(-10), username="bob"),
    ]
    for entry in history:
        entry["source"] = {**SOURCE, "targetRevision": "HEAD"}
    app = argocd_app("checkout", desired=REV_B, health="Degraded", history=history,
                     operation=False, auto_sync=auto_sync)  # fmt: skip
    app["metadata"] = {"name": "checkout", "namespace": "argocd"}
    app["spec"]["source"] = {**SOURCE, "targetRevision": "HEAD"}
    app["spec"]["project"] = "shop"
    return app


def named(app: dict[str, Any], name: str) -> dict[str, Any]:
    return {**app, "metadata": {**app["metadata"], "name": name}}


@contextlib.asynccontextmanager
async def cluster(server: ApiServer) -> AsyncIterator[Cluster]:
    """The API server with the CRDs, the chart's RBAC with actions on (release driftbot in
    namespace driftbot), and the objects acted on: Kustomizations apps and infra with their
    GitRepository, Applications checkout and payments (auto-sync off) and cart (on)."""
    configuration = Configuration()
    await kube_config.load_kube_config(
        config_file=str(server.kubeconfig), client_configuration=configuration, persist_config=False
    )
    async with ApiClient(configuration) as admin:
        await _install_crds(admin)
        account = await apply_chart(admin, "driftbot", NAMESPACE, actions=True)
        made = Cluster(server, admin, account)
        repository = gitrepository("flux-system")
        repository["spec"]["url"] = "https://github.com/fluxcd/flux2-kustomize-helm-example"
        await made.create(repository)
        await made.create(kustomization("apps"))
        await made.create(kustomization("infra"))
        await made.create(checkout_app())
        await made.create(named(checkout_app(), "payments"))
        await made.create(named(checkout_app(auto_sync=True), "cart"))
        yield made
