"""Self-service routing on a real kube-apiserver: Argo CD's Application CRD (the upstream one,
tests/fixtures/crds) and AppProjects are served by the API server itself, driftbot lists and
watches them with its real client, and an annotation on the Application and on its AppProject
sends the app's alert to the team channels of the fake Slack Web API. Skipped with the reason
outside CI when no API server is at hand (tests/deploy/envtest.py), a failure in CI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio.client import (
    ApiClient,
    ApiextensionsV1Api,
    CoreV1Api,
    CustomObjectsApi,
)

from tests.bot.service_world import VirtualClock, until
from tests.bot.test_annotation_routing import config, payments, project, running, texts
from tests.builders_flux import T0
from tests.deploy.envtest import ApiServer
from tests.deploy.test_lease_rbac import admin, server
from tests.fakes.slack_api import FakeSlackApi
from tests.upstream import fixtures_dir

__all__ = ["admin", "server"]

APP_PROJECT_CRD: dict[str, Any] = {
    # The fields the API server needs to serve AppProjects; the schema keeps what it is given
    # (driftbot reads only metadata), so no part of Argo CD's own schema is restated here.
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "appprojects.argoproj.io"},
    "spec": {
        "group": "argoproj.io",
        "names": {
            "kind": "AppProject",
            "listKind": "AppProjectList",
            "plural": "appprojects",
            "singular": "appproject",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


async def install(admin: ApiClient) -> None:
    crds = ApiextensionsV1Api(admin)
    application = yaml.safe_load(
        (fixtures_dir() / "crds" / "argoproj.io_applications.yaml").read_text()
    )
    for crd in (application, APP_PROJECT_CRD):
        await crds.create_custom_resource_definition(crd)
    async with asyncio.timeout(30):
        for name in ("applications.argoproj.io", "appprojects.argoproj.io"):
            while True:
                got = await crds.read_custom_resource_definition(name)
                conditions = got.status.conditions or []
                if any(c.type == "Established" and c.status == "True" for c in conditions):
                    break
                await asyncio.sleep(0.1)  # a real API server establishing a CRD
    await CoreV1Api(admin).create_namespace({"metadata": {"name": "argocd"}})


async def put(admin: ApiClient, plural: str, obj: dict[str, Any]) -> None:
    objects = CustomObjectsApi(admin)
    name = obj["metadata"]["name"]
    obj = {**obj, "metadata": {**obj["metadata"], "namespace": "argocd"}}
    for server_set in ("resourceVersion", "uid", "creationTimestamp", "generation"):
        obj["metadata"].pop(server_set, None)  # the fixture's, from the cluster it came from
    try:
        current = await objects.get_namespaced_custom_object(
            "argoproj.io", "v1alpha1", "argocd", plural, name
        )
    except Exception:
        await objects.create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", "argocd", plural, obj
        )
        return
    obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    await objects.replace_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "argocd", plural, name, obj
    )


async def test_annotations_route_an_app_watched_on_a_real_api_server(
    admin: ApiClient, server: ApiServer, tmp_path: Path
) -> None:
    await install(admin)
    await put(admin, "appprojects", project())
    await put(admin, "applications", payments())
    clock = VirtualClock(T0)
    async with FakeSlackApi() as slack:
        allow = ["slack:shop-alerts", "slack:shop-deploys"]
        async with running(config(server.kubeconfig, slack.url, allow), tmp_path, clock) as service:
            assert service.pipeline.projects == {
                ("prod", "shop"): project()["metadata"]["annotations"]
            }
            clock.advance()
            await put(admin, "applications", payments(health="Degraded"))
            await until(
                lambda: bool(texts(slack, "shop-alerts")) and bool(texts(slack, "shop-deploys")),
                within=60,
            )
            # the project's subscription is taken away: its channel hears of nothing more
            await put(admin, "appprojects", {**project(), "metadata": {"name": "shop"}})
            await until(lambda: service.pipeline.projects == {("prod", "shop"): {}}, within=60)
    unhealthy = ["Needs action · payments on gke-alpha-01-europe-west1 is unhealthy"]
    assert texts(slack, "shop-alerts") == unhealthy
    assert texts(slack, "shop-deploys") == unhealthy
    assert texts(slack, "C0ONCALL") == []
