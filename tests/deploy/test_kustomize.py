"""The Kustomize base and overlays build with `kubectl kustomize`, pass the Kubernetes schemas
and hold what every driftbot deployment must (tests/deploy/workload.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.deploy.tools import KUSTOMIZE, by_kind, kustomize, one, schema_errors
from tests.deploy.workload import check_cluster_role, check_driftbot, env_names, mounted_paths

RUNNING = ("base", "overlays/single-cluster", "overlays/hub", "overlays/ha")


@pytest.mark.parametrize("path", [*RUNNING, "overlays/watched-cluster"])
def test_builds_and_matches_the_kubernetes_schemas(path: str) -> None:
    manifests = kustomize(KUSTOMIZE / path)
    assert manifests, f"{path} built nothing"
    assert schema_errors(manifests) == []


@pytest.mark.parametrize("path", RUNNING)
def test_runs_driftbot_hardened_with_read_only_access(path: str) -> None:
    manifests = kustomize(KUSTOMIZE / path)
    deployment = check_driftbot(manifests)
    assert deployment["metadata"]["namespace"] == "driftbot"
    labels = one(manifests, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_overlays_replace_the_base_config() -> None:
    base = one(kustomize(KUSTOMIZE / "base"), "ConfigMap")
    for overlay in ("single-cluster", "hub"):
        config = one(kustomize(KUSTOMIZE / "overlays" / overlay), "ConfigMap")
        assert (
            config["data"]["config.yaml"]
            == (KUSTOMIZE / "overlays" / overlay / "config.yaml").read_text()
        )
        assert config["metadata"]["name"] != base["metadata"]["name"], (
            "the hash suffix must change with the config, so the pods roll"
        )


def test_hub_mounts_the_kubeconfigs_its_config_names() -> None:
    manifests = kustomize(KUSTOMIZE / "overlays" / "hub")
    deployment = one(manifests, "Deployment")
    assert "/etc/driftbot/kubeconfigs" in mounted_paths(deployment)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["kubeconfigs"]["secret"]["secretName"] == "driftbot-kubeconfigs"
    config = yaml.safe_load(one(manifests, "ConfigMap")["data"]["config.yaml"])
    remote = [c for c in config["clusters"] if "kubeconfig" in c]
    assert len(remote) >= 2, "the hub example watches at least two other clusters"
    # The base's mounts and env survive the strategic merge patch.
    assert "/var/lib/driftbot" in mounted_paths(deployment)
    assert "SLACK_BOT_TOKEN" in env_names(deployment)


def test_watched_cluster_gets_read_access_and_no_long_lived_token() -> None:
    manifests = kustomize(KUSTOMIZE / "overlays" / "watched-cluster")
    assert sorted(m["kind"] for m in manifests) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
        "ServiceAccount",
    ]
    check_cluster_role(one(manifests, "ClusterRole"))
    assert not by_kind(manifests, "Secret"), "tokens are short-lived and made outside"
    assert not by_kind(manifests, "Deployment")


@pytest.mark.parametrize("path", [*RUNNING, "overlays/watched-cluster"])
def test_no_service_account_token_secret_anywhere(path: str) -> None:
    for manifest in kustomize(KUSTOMIZE / path):
        assert manifest.get("type") != "kubernetes.io/service-account-token", path


def test_the_status_page_ingress_is_a_component_an_overlay_opts_into(tmp_path: Path) -> None:
    assert not by_kind(kustomize(KUSTOMIZE / "base"), "Ingress"), "off by default"
    overlay = tmp_path / "with-ingress"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "driftbot",
                "resources": [os.path.relpath(KUSTOMIZE / "base", overlay)],
                "components": [
                    os.path.relpath(KUSTOMIZE / "components" / "status-ingress", overlay)
                ],
            }
        )
    )
    manifests = kustomize(overlay)
    assert schema_errors(manifests) == []
    ingress = one(manifests, "Ingress")
    assert ingress["metadata"]["namespace"] == "driftbot"
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert [p["path"] for p in paths] == ["/status", "/badge", "/api/v1/apps"]
    assert {p["backend"]["service"]["name"] for p in paths} == {
        one(manifests, "Service")["metadata"]["name"]
    }
