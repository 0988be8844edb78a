"""What every rendering of driftbot must hold, whether Helm or Kustomize made it.

One set of checks for both, so the chart and the Kustomize base cannot drift apart on what
matters: a hardened pod, the probes, the state and tmp volumes, read-only RBAC plus, with leader
election only, the Lease and a Role limited to it, bindings to the pod's own ServiceAccount, a
Service and PodDisruptionBudget that select the pod, the Flux token from a Secret and named by
the config, and a config that driftbot itself accepts.
"""

from __future__ import annotations

from typing import Any

from config.loader import load_config
from tests.deploy.tools import Manifest, by_kind, one

READ_ONLY = {"get", "list", "watch"}

WATCHED: dict[str, set[str]] = {
    "argoproj.io": {"applications", "appprojects"},  # AppProjects: routing annotations
    "kustomize.toolkit.fluxcd.io": {"kustomizations"},
    "helm.toolkit.fluxcd.io": {"helmreleases"},
    "source.toolkit.fluxcd.io": {
        "gitrepositories",
        "ocirepositories",
        "helmrepositories",
        "helmcharts",
        "buckets",
    },
    "": {"events"},
    "events.k8s.io": {"events"},
}
"""API group -> resources driftbot reads: Argo CD and Flux objects and Events."""

UID = 10001
"""The image's numeric user (Dockerfile USER); the pod runs as it."""


def granted(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(group, resource) -> verbs, from RBAC rules."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                out.setdefault((group, resource), set()).update(rule.get("verbs", []))
    return out


def check_cluster_role(role: Manifest) -> None:
    grants = granted(role["rules"])
    wanted = {(g, r) for g, resources in WATCHED.items() for r in resources}
    assert set(grants) == wanted, f"ClusterRole covers {sorted(grants)}, want {sorted(wanted)}"
    for key, verbs in grants.items():
        assert verbs == READ_ONLY, f"{key}: verbs {sorted(verbs)} are not read-only"
    assert not any("resourceNames" in r or "nonResourceURLs" in r for r in role["rules"])


def check_lease_role(role: Manifest, lease_name: str) -> None:
    """get and update on the one Lease, by name; no create (RBAC cannot limit it to a name, so
    the Lease is rendered with the Role instead) and nothing else."""
    lease = ("coordination.k8s.io", "leases")
    assert granted(role["rules"]) == {lease: {"get", "update"}}
    for rule in role["rules"]:
        assert rule.get("resourceNames") == [lease_name], f"{rule} is not limited to the Lease"


def check_leader_election(manifests: list[Manifest], deployment: Manifest) -> None:
    """With leader election on: the Lease the pod names, in its namespace, and a Role bound to
    the pod's account that reaches that Lease only. Off: no Lease, Role or RoleBinding."""
    env = env_names(deployment)
    namespace = deployment["metadata"]["namespace"]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    if env["DRIFTBOT_LEADER_ELECTION__ENABLED"]["value"] != "true":
        assert deployment["spec"]["replicas"] == 1, "two replicas without leader election"
        for kind in ("Lease", "Role", "RoleBinding"):
            assert not by_kind(manifests, kind), f"a {kind} without leader election"
        return
    name = env["DRIFTBOT_LEADER_ELECTION__LEASE_NAME"]["value"]
    assert env["DRIFTBOT_LEADER_ELECTION__NAMESPACE"]["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.namespace"
    }
    lease = one(manifests, "Lease")
    assert lease["apiVersion"] == "coordination.k8s.io/v1"
    assert lease["metadata"]["name"] == name
    assert lease["metadata"]["namespace"] == namespace
    assert not lease.get("spec"), "the holder is driftbot's to write, not the manifest's"
    role = one(manifests, "Role")
    check_lease_role(role, name)
    binding = one(manifests, "RoleBinding")
    _bound(binding, account, namespace)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def _bound(binding: Manifest, account: str, namespace: str) -> None:
    subjects = binding["subjects"]
    assert subjects == [{"kind": "ServiceAccount", "name": account, "namespace": namespace}], (
        f"{binding['kind']}/{binding['metadata']['name']} binds {subjects}"
    )


def container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_names(deployment: Manifest) -> dict[str, Any]:
    return {e["name"]: e for e in container(deployment).get("env", [])}


def check_pod(deployment: Manifest) -> None:
    pod = deployment["spec"]["template"]["spec"]
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == UID and ctx["runAsGroup"] == UID and ctx["fsGroup"] == UID
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}

    main = container(deployment)
    sec = main["securityContext"]
    assert sec["readOnlyRootFilesystem"] is True
    assert sec["allowPrivilegeEscalation"] is False
    assert sec["capabilities"] == {"drop": ["ALL"]}
    assert main["args"] == ["run"], "the image's ENTRYPOINT is driftbot; the pod runs `run`"

    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": 8080}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }

    env = env_names(deployment)
    assert env["DRIFTBOT_STATE"]["value"] == "/var/lib/driftbot/driftbot.db"
    assert env["DRIFTBOT_CONFIG"]["value"] == "/etc/driftbot/config/config.yaml"
    assert env["DRIFTBOT_SERVER__PORT"]["value"] == "8080"
    for name, item in env.items():
        assert "value" not in item or not any(
            word in name for word in ("TOKEN", "SECRET", "PASSWORD", "DSN")
        ), f"{name} is set as a plain value: secrets come from Secrets"

    token = env.get("FLUX_WEBHOOK_TOKEN")
    if token is not None:
        assert set(token["valueFrom"]) == {"secretKeyRef"}, "the Flux token comes from a Secret"

    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in ("/var/lib/driftbot", "/tmp", "/etc/driftbot/config"):
        assert path in mounts, f"{path} is not mounted (the root filesystem is read-only)"
        assert mounts[path] in volumes
    assert "configMap" in volumes[mounts["/etc/driftbot/config"]]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    state = volumes[mounts["/var/lib/driftbot"]]
    assert "persistentVolumeClaim" in state or "emptyDir" in state
    if "persistentVolumeClaim" in state:
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"]["type"] == "Recreate", (
            "a ReadWriteOnce SQLite volume needs the old pod stopped before the new one starts"
        )


def mounted_paths(deployment: Manifest) -> list[str]:
    return [m["mountPath"] for m in container(deployment)["volumeMounts"]]


def check_config(manifests: list[Manifest], deployment: Manifest) -> None:
    """The ConfigMap the pod mounts exists, loads as driftbot's config, and every kubeconfig
    it names lies under a mounted volume."""
    pod = deployment["spec"]["template"]["spec"]
    name = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    maps = {m["metadata"]["name"]: m for m in by_kind(manifests, "ConfigMap")}
    assert name in maps, f"the pod mounts ConfigMap {name}, which is not rendered"
    config = load_config(maps[name]["data"]["config.yaml"], file=f"ConfigMap/{name}")
    assert config.server.port == 8080
    token = "FLUX_WEBHOOK_TOKEN" if "FLUX_WEBHOOK_TOKEN" in env_names(deployment) else None
    assert config.server.flux_webhook_token_env == token, (
        "the config must name the Flux token variable exactly when the pod is given one"
    )
    mounts = mounted_paths(deployment)
    for cluster in config.clusters:
        if cluster.kubeconfig:
            assert any(cluster.kubeconfig.startswith(m + "/") for m in mounts), (
                f"cluster {cluster.name}: {cluster.kubeconfig} is on no mounted volume"
            )


def labels_select(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def check_driftbot(manifests: list[Manifest]) -> Manifest:
    """All the checks on one rendering; returns its Deployment for further checks."""
    deployment = one(manifests, "Deployment")
    namespace = deployment["metadata"]["namespace"]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    check_pod(deployment)
    check_config(manifests, deployment)

    assert [a["metadata"]["name"] for a in by_kind(manifests, "ServiceAccount")] == [account]
    check_cluster_role(one(manifests, "ClusterRole"))
    _bound(one(manifests, "ClusterRoleBinding"), account, namespace)
    check_leader_election(manifests, deployment)
    assert (
        one(manifests, "ClusterRoleBinding")["roleRef"]["name"]
        == one(manifests, "ClusterRole")["metadata"]["name"]
    )

    assert labels_select(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    service = one(manifests, "Service")
    assert labels_select(service["spec"]["selector"], pod_labels)
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 8080, "http")
    ]
    pdb = one(manifests, "PodDisruptionBudget")
    assert labels_select(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pdb["spec"]["maxUnavailable"] == 1

    for manifest in manifests:
        if manifest["kind"] not in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
            assert manifest["metadata"].get("namespace") == namespace, (
                f"{manifest['kind']}/{manifest['metadata']['name']} is not in {namespace}"
            )
    return deployment
