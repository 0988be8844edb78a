"""The whole `driftbot run` server acting from Slack on a real kube-apiserver: its own watches
(as the chart's ServiceAccount, with the opt-in actions ClusterRole) see the cluster, a signed
`/gitops reconcile apps` and the submitted modal put a new requestedAt on the real
Kustomization, and when the status the controller writes comes through the watch, the thread
says so. Nothing here feeds the pipeline by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
import yaml
from kubernetes_asyncio.client import CoreV1Api

from bot.actions.kube import REQUESTED_AT
from tests.bot.actions_cluster import NAMESPACE, Cluster, cluster
from tests.bot.service_world import VirtualClock, make_config, serving, until, until_ready
from tests.bot.test_slack_app import SECRET, signed_form
from tests.builders_flux import T0, kustomization
from tests.deploy.envtest import ApiServer, api_server
from tests.fakes.slack_api import TEAM_ID, VALID_TOKEN, FakeSlackApi

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEPLOYER = "U0DEPLOYER"
CHANNEL = "C0ALERTS"


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    with api_server() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kube(server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    async with cluster(server) as made:
        token = await CoreV1Api(made.admin).create_namespaced_service_account_token(
            made.account, NAMESPACE, {"spec": {"expirationSeconds": 3600}}
        )
        path = tmp_path_factory.mktemp("live") / "driftbot.kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "prod",
                    "cluster": {"server": server.url, "certificate-authority": str(server.ca)},
                }
            ],
            "users": [{"name": "driftbot", "user": {"token": token.status.token}}],
            "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "driftbot"}}],
            "current-context": "prod",
        }
        path.write_text(yaml.safe_dump(config))
        yield made, path


async def _post(http: aiohttp.ClientSession, base: str, body: str) -> int:
    async with http.post(f"{base}/slack/events", data=body, headers=signed_form(body)) as response:
        return response.status


async def _requested_at(kube: Cluster) -> str:
    obj = await kube.get("Kustomization", "flux-system", "apps")
    return str((obj["metadata"].get("annotations") or {}).get(REQUESTED_AT, ""))


async def _changed(kube: Cluster, before: str) -> str:
    """The requestedAt the server writes after the post that says it is reconciling."""
    for _ in range(600):
        now = await _requested_at(kube)
        if now != before:
            return now
        await asyncio.sleep(0.05)  # a real API server, written by another task
    raise AssertionError("reconcile.fluxcd.io/requestedAt was not written within 30 s")


async def test_run_reconciles_from_slack_and_the_thread_tells_what_its_watch_saw(
    kube: Any, tmp_path: Path
) -> None:
    made, kubeconfig = kube
    clock = VirtualClock(T0)
    async with FakeSlackApi() as slack:
        config = make_config(
            {"prod": kubeconfig},
            receivers=[{"name": "oncall", "slack": {"channel": CHANNEL}}],
            routes=[{"receivers": []}],
            slack={"mode": "http", "api_url": slack.url},
            rbac={"deployers": [{"users": [DEPLOYER], "clusters": ["prod"]}]},
            actions={"enabled": True},
        )
        environ = {"SLACK_BOT_TOKEN": VALID_TOKEN, "SLACK_SIGNING_SECRET": SECRET}
        async with (
            serving(config, tmp_path / "state.sqlite", clock, environ=environ) as base,
            aiohttp.ClientSession() as http,
        ):
            await until_ready(http, base)
            command = {
                "team_id": TEAM_ID,
                "channel_id": CHANNEL,
                "user_id": DEPLOYER,
                "command": "/gitops",
                "text": "reconcile apps",
                "response_url": f"{base}/unused",
                "trigger_id": slack.issue_trigger(),
            }
            assert await _post(http, base, urlencode(command)) == 200
            await until(lambda: bool(slack.opened))
            before = await _requested_at(made)

            payload = {
                "type": "view_submission",
                "team": {"id": TEAM_ID},
                "user": {"id": DEPLOYER, "team_id": TEAM_ID},
                "trigger_id": slack.issue_trigger(),
                "view": {**slack.opened[0], "state": {"values": {}}},
            }
            assert await _post(http, base, urlencode({"payload": json.dumps(payload)})) == 200
            await until(lambda: bool(slack.messages(CHANNEL)))
            [started] = slack.messages(CHANNEL)
            assert started["text"].startswith("Reconciling")
            marker = await _changed(made, before)

            done = kustomization("apps")["status"]
            await made.replace_status(
                "Kustomization", "flux-system", "apps", {**done, "lastHandledReconcileAt": marker}
            )
            await until(lambda: len(slack.messages(CHANNEL)) == 2)
            reply = slack.messages(CHANNEL)[1]
            assert reply.get("thread_ts") == started["ts"]
            assert "Reconcile of *apps* on *prod* succeeded" in reply["text"]
