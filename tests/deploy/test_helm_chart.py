"""The Helm chart: static checks that need no helm (values used and defined, blocks closed,
defaults equal to the Kustomize base), and, where helm is installed, `helm lint` and
`helm template` renderings checked against the Kubernetes schemas and tests/deploy/workload.py.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.loader import load_config
from tests.deploy.tools import (
    CHART,
    KUSTOMIZE,
    ROOT,
    by_kind,
    helm_lint,
    helm_render,
    helm_template,
    kustomize,
    one,
    schema_errors,
)
from tests.deploy.workload import check_driftbot, container, env_names, mounted_paths

TEMPLATES = sorted((CHART / "templates").glob("*"))
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
CHART_META: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())

HA = {
    "replicaCount": 2,
    "persistence": {"enabled": False},
    "store": {"existingSecret": "driftbot-postgres"},
}
HUB = {
    "slack": {"existingSecret": "driftbot-slack"},
    "teams": {"existingSecret": "driftbot-teams"},
    "kubeconfigs": {"existingSecret": "driftbot-kubeconfigs"},
    "config": {
        "clusters": [
            {"name": "hub", "in_cluster": True},
            {"name": "staging", "kubeconfig": "/etc/driftbot/kubeconfigs/staging.kubeconfig"},
        ],
        "receivers": [
            {"name": "oncall", "slack": {"channel": "C0123456789"}},
            {"name": "pm", "teams": {"webhook_env": "TEAMS_PM_WEBHOOK"}},
        ],
        "routes": [{"receivers": ["oncall", "pm"]}],
    },
}


def _template_text() -> str:
    return "\n".join(path.read_text() for path in TEMPLATES)


def _base_deployment() -> dict[str, Any]:
    doc = yaml.safe_load((KUSTOMIZE / "base" / "deployment.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


# --- without helm ------------------------------------------------------------------------------


def test_chart_metadata_and_app_version_follow_the_project() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert CHART_META["apiVersion"] == "v2"
    assert CHART_META["name"] == "driftbot"
    assert re.fullmatch(r"\d+\.\d+\.\d+", CHART_META["version"])
    assert CHART_META["appVersion"] == project["version"]
    kustomization = yaml.safe_load((KUSTOMIZE / "base" / "kustomization.yaml").read_text())
    assert kustomization["images"][0]["newTag"] == project["version"]


def test_default_config_is_one_driftbot_accepts() -> None:
    config = load_config(yaml.safe_dump(VALUES["config"]), file="values.yaml#config")
    assert [c.name for c in config.clusters] == ["in-cluster"]
    assert config.clusters[0].in_cluster


def _paths(tree: Any, prefix: str = "") -> set[str]:
    out = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            out |= _paths(value, path)
    return out


def test_every_value_the_templates_read_is_defined_and_every_value_is_read() -> None:
    used = set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", _template_text()))
    defined = _paths(VALUES)
    assert sorted(used - defined) == [], "templates read values that values.yaml lacks"
    tops = {path.split(".")[0] for path in used}
    assert sorted(set(VALUES) - tops) == [], "values.yaml has keys no template reads"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_blocks_are_closed(path: Path) -> None:
    actions = re.findall(r"{{-?\s*(\w+)", path.read_text())
    depth = 0
    for action in actions:
        if action in ("if", "range", "with", "define", "block"):
            depth += 1
        elif action == "end":
            depth -= 1
            assert depth >= 0, f"{path.name}: an end without a block"
    assert depth == 0, f"{path.name}: {depth} block(s) left open"
    assert path.read_text().count("{{") == path.read_text().count("}}")


def test_chart_defaults_equal_the_kustomize_base() -> None:
    base = _base_deployment()
    main = container(base)
    pod = base["spec"]["template"]["spec"]
    assert VALUES["podSecurityContext"] == pod["securityContext"]
    assert VALUES["securityContext"] == main["securityContext"]
    assert VALUES["resources"] == main["resources"]
    assert VALUES["livenessProbe"] == main["livenessProbe"]
    assert VALUES["readinessProbe"] == main["readinessProbe"]
    assert VALUES["replicaCount"] == base["spec"]["replicas"]
    assert VALUES["containerPort"] == main["ports"][0]["containerPort"]


def test_chart_and_base_grant_the_same_rules() -> None:
    template = (CHART / "templates" / "clusterrole.yaml").read_text()
    rules_text = template.split("\nrules:\n", 1)[1].split("\n---", 1)[0]
    chart_rules = yaml.safe_load("rules:\n" + rules_text)["rules"]
    access = list(yaml.safe_load_all((KUSTOMIZE / "access" / "clusterrole.yaml").read_text()))
    assert chart_rules == one(access, "ClusterRole")["rules"]



def _env_in(path: Path) -> set[str]:
    return set(re.findall(r"- name: ([A-Z][A-Z0-9_]+)", path.read_text()))


def test_chart_sets_the_same_environment_as_the_base_and_its_ha_overlay() -> None:
    chart_env = _env_in(CHART / "templates" / "deployment.yaml")
    kustomize_env = set(env_names(_base_deployment()))
    kustomize_env |= _env_in(KUSTOMIZE / "components" / "leader-election" / "deployment.yaml")
    kustomize_env |= _env_in(KUSTOMIZE / "overlays" / "ha" / "two-replicas.yaml")
    assert chart_env == kustomize_env


# --- with helm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, HA, HUB], ids=["default", "ha", "hub"])
def test_helm_lint_is_clean(values: dict[str, Any] | None, tmp_path: Path) -> None:
    result = helm_lint(values, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", [None, HA, HUB], ids=["default", "ha", "hub"])
def test_renders_valid_hardened_manifests(values: dict[str, Any] | None) -> None:
    manifests = helm_render(values, namespace="ops")
    assert schema_errors(manifests) == []
    deployment = check_driftbot(manifests)
    assert deployment["metadata"]["namespace"] == "ops"
    assert container(deployment)["image"] == f"ghcr.io/driftbot/driftbot:{CHART_META['appVersion']}"


def test_default_keeps_state_on_a_volume_that_survives_uninstall() -> None:
    manifests = helm_render()
    claim = one(manifests, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    deployment = one(manifests, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert "SLACK_BOT_TOKEN" not in env_names(deployment), "no Slack Secret was named"


def test_two_replicas_elect_a_leader_and_share_the_postgres_store() -> None:
    manifests = helm_render(HA)
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert not by_kind(manifests, "PersistentVolumeClaim")
    env = env_names(deployment)
    assert env["DRIFTBOT_STORE_DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": "driftbot-postgres",
        "key": "DRIFTBOT_STORE_DSN",
    }
    assert env["DRIFTBOT_LEADER_ELECTION__ENABLED"]["value"] == "true"
    assert env["DRIFTBOT_LEADER_ELECTION__IDENTITY"]["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.name"
    }


def test_the_lease_role_and_the_kustomize_ha_overlays_are_the_same() -> None:
    chart = helm_render(HA)
    kustomized = kustomize(KUSTOMIZE / "overlays" / "ha")
    assert one(chart, "Role")["rules"] == one(kustomized, "Role")["rules"]
    assert one(chart, "Lease")["spec"] == one(kustomized, "Lease")["spec"]


@pytest.mark.parametrize(
    ("values", "elects"),
    [
        (None, False),
        ({"persistence": {"enabled": False}}, True),
        (HA, True),
        ({"leaderElection": {"enabled": True}}, True),
        ({**HA, "leaderElection": {"enabled": True}}, True),
        ({"leaderElection": {"enabled": "true"}}, True),  # as --set-string gives it
        ({"persistence": {"enabled": False}, "leaderElection": {"enabled": False}}, False),
    ],
    ids=[
        "one-replica-on-sqlite",
        "one-replica-rolling",
        "two-replicas",
        "forced-on",
        "ha-on",
        "string",
        "forced-off",
    ],
)
def test_leader_election_and_its_lease_role_only_where_two_pods_can_run(
    values: dict[str, Any] | None, elects: bool
) -> None:
    manifests = helm_render(values)
    deployment = check_driftbot(manifests)
    enabled = env_names(deployment)["DRIFTBOT_LEADER_ELECTION__ENABLED"]["value"]
    assert enabled == ("true" if elects else "false")
    assert bool(by_kind(manifests, "Role")) is elects
    assert bool(by_kind(manifests, "Lease")) is elects


def test_the_lease_role_reaches_only_the_release_lease() -> None:
    manifests = helm_render({**HA, "leaderElection": {"enabled": "auto", "leaseName": "ops-bot"}})
    (rule,) = one(manifests, "Role")["rules"]
    assert rule["resourceNames"] == ["ops-bot"]
    assert "create" not in rule["verbs"]
    assert one(manifests, "Lease")["metadata"]["name"] == "ops-bot"


def test_flux_token_comes_from_a_secret_and_the_config_names_it() -> None:
    manifests = helm_render({"flux": {"webhookToken": {"existingSecret": "driftbot-flux"}}})
    deployment = check_driftbot(manifests)
    env = env_names(deployment)
    assert env["FLUX_WEBHOOK_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "driftbot-flux",
        "key": "token",
    }
    config = yaml.safe_load(one(manifests, "ConfigMap")["data"]["config.yaml"])
    assert config["server"]["flux_webhook_token_env"] == "FLUX_WEBHOOK_TOKEN"
    default = helm_render()
    assert "FLUX_WEBHOOK_TOKEN" not in env_names(one(default, "Deployment"))
    annotations = [
        one(m, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        for m in (manifests, default)
    ]
    assert annotations[0] != annotations[1], "a config the chart changed must roll the pods"


def test_image_digest_pins_the_pod_and_keeps_the_tag_as_a_label() -> None:
    digest = "sha256:" + "ab" * 32
    deployment = one(helm_render({"image": {"digest": digest}}), "Deployment")
    image = container(deployment)["image"]
    assert image == f"ghcr.io/driftbot/driftbot:{CHART_META['appVersion']}@{digest}"


def test_hub_mounts_kubeconfigs_and_reads_secrets_by_reference() -> None:
    manifests = helm_render(HUB)
    deployment = one(manifests, "Deployment")
    assert "/etc/driftbot/kubeconfigs" in mounted_paths(deployment)
    env = env_names(deployment)
    assert env["SLACK_BOT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "driftbot-slack"
    assert {"secretRef": {"name": "driftbot-teams"}} in container(deployment)["envFrom"]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"replicaCount": 2}, "cannot share the SQLite volume"),
        (
            {
                "replicaCount": 2,
                "persistence": {"enabled": False},
                "leaderElection": {"enabled": False},
            },
            "needs leaderElection.enabled=true",
        ),
        ({"image": {"tag": "latest"}}, "latest is not reproducible"),
        ({"leaderElection": {"enabled": "yes"}}, "use auto, true or false"),
        (
            {
                "flux": {"webhookToken": {"existingSecret": "driftbot-flux"}},
                "config": {"server": {"flux_webhook_token_env": "MY_TOKEN"}},
            },
            "remove it from config",
        ),
    ],
    ids=["ha-on-sqlite-volume", "ha-without-lease", "latest-tag", "election-typo", "flux-env"],
)
def test_refuses_settings_that_would_double_notify_or_drift(
    values: dict[str, Any], reason: str
) -> None:
    result = helm_template(values)
    assert result.returncode != 0
    assert reason in result.stderr


def test_service_monitor_scrapes_metrics_of_the_service() -> None:
    manifests = helm_render({"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}})
    monitor = one(manifests, "ServiceMonitor")
    service = one(manifests, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert all(service["metadata"]["labels"].get(k) == v for k, v in selector.items())
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert not by_kind(helm_render(), "ServiceMonitor"), "off by default: it needs the CRD"


def test_the_status_page_ingress_is_off_by_default_and_routes_only_the_page() -> None:
    assert not by_kind(helm_render(), "Ingress")
    values = {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "host": "driftbot.example.com",
            "tls": [{"secretName": "driftbot-tls", "hosts": ["driftbot.example.com"]}],
        }
    }
    manifests = helm_render(values)
    assert schema_errors(manifests) == []
    ingress = one(manifests, "Ingress")
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "driftbot.example.com"
    assert [p["path"] for p in rule["http"]["paths"]] == ["/status", "/badge", "/api/v1/apps"]
    service = one(manifests, "Service")["metadata"]["name"]
    assert {p["backend"]["service"]["name"] for p in rule["http"]["paths"]} == {service}
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"][0]["secretName"] == "driftbot-tls"
    result = helm_template({"ingress": {"enabled": True}})
    assert result.returncode != 0
    assert "ingress.enabled needs ingress.host" in result.stderr
