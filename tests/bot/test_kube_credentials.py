"""A watched cluster reached with a short-lived token: the token file a projected token or an
outside job replaces, and an exec plugin's expiring credential, are read again, so the client
follows a rotation instead of being refused from then on. Real kubernetes_asyncio client, real
kubeconfig files, against the fake API server that checks the bearer token."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from bot.pipeline.sources import api_client_for
from config.schema import ClusterConfig
from tests.fakes.kube_api import FakeKubeAPI

APPS = ("argoproj.io", "v1alpha1", "applications")


def _kubeconfig(path: Path, api: FakeKubeAPI, user: dict[str, Any]) -> Path:
    doc = api.kubeconfig(context="remote")
    doc["users"] = [{"name": "remote", "user": user}]
    path.write_text(yaml.safe_dump(doc))
    return path


def _replace(path: Path, text: str) -> None:
    """As the kubelet and `kubectl create secret` updates do: a new file renamed into place."""
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


async def _list(client: Any) -> int:
    answer = await CustomObjectsApi(client).list_cluster_custom_object(*APPS)
    return len(answer["items"])


@pytest.fixture
async def api() -> Any:
    async with FakeKubeAPI(token="first") as server:
        server.install_crd("argoproj.io", "applications", kind="Application")
        yield server


async def test_a_rotated_token_file_is_read_again(api: FakeKubeAPI, tmp_path: Path) -> None:
    token = tmp_path / "remote.token"
    token.write_text("first\n")
    # relative to the kubeconfig's folder, as kubectl takes it
    config = _kubeconfig(tmp_path / "remote.kubeconfig", api, {"tokenFile": "remote.token"})
    client = await api_client_for(ClusterConfig(name="remote", kubeconfig=str(config)))
    try:
        assert await _list(client) == 0
        api.rotate_token("second")
        with pytest.raises(ApiException) as refused:
            await _list(client)
        assert refused.value.status == 401, "the old token must be refused for this to mean much"
        _replace(token, "second\n")
        assert await _list(client) == 0
        token.unlink()  # gone for a moment: the last token is kept
        assert await _list(client) == 0
    finally:
        await client.close()
    assert [r.status for r in api.requests] == [200, 401, 200, 200]


def _plugin(tmp_path: Path, expires: str) -> dict[str, Any]:
    source = tmp_path / "current-token"
    script = tmp_path / "credential.py"
    script.write_text(
        "import json, pathlib\n"
        f"token = pathlib.Path({str(source)!r}).read_text().strip()\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
        "'kind': 'ExecCredential', "
        f"'status': {{'token': token, 'expirationTimestamp': {expires!r}}}}}))\n"
    )
    source.write_text("first")
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "interactiveMode": "Never",
        }
    }


@pytest.mark.parametrize(
    ("expires", "rotated"),
    [("2001-01-01T00:00:00Z", True), ("2999-01-01T00:00:00Z", False)],
    ids=["expired-asked-again", "valid-kept"],
)
async def test_an_exec_credential_is_asked_for_again_once_it_has_expired(
    api: FakeKubeAPI, tmp_path: Path, expires: str, rotated: bool
) -> None:
    config = _kubeconfig(tmp_path / "remote.kubeconfig", api, _plugin(tmp_path, expires))
    client = await api_client_for(ClusterConfig(name="remote", kubeconfig=str(config)))
    try:
        assert await _list(client) == 0
        (tmp_path / "current-token").write_text("second")
        if rotated:
            api.rotate_token("second")
        # expired: the plugin is run again and gives "second"; valid: "first" is sent again,
        # which the server still takes (were the plugin run, "second" would be refused)
        assert await _list(client) == 0
    finally:
        await client.close()
