"""`helm template` without a helm binary: Helm's own engine from the helm-sdkpy wheel.

No helm binary is packaged on PyPI or in Debian, but helm-sdkpy ships Helm (the Go library)
as a shared library. It offers install but no dry run, so this module installs the chart into
a small Kubernetes API server of its own, on the loopback address, that answers discovery,
reports every object as absent and accepts every create: the manifest Helm returns is what
`helm template` prints, rendered by the same engine, with `fail` and template errors reported
the same way.

`lint` is Helm's linter; the library reports where a problem is and how severe, not its text.

Run as a program so the Go runtime lives in its own process:
    python -m tests.deploy.helm_engine template CHART RELEASE NAMESPACE [VALUES.json]
    python -m tests.deploy.helm_engine lint CHART
print the manifest (or the lint findings) on stdout, or the error on stderr and exit 1.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.loopback import on_loopback

RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("configmaps", "ConfigMap", True),
        ("namespaces", "Namespace", False),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("secrets", "Secret", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("services", "Service", True),
    ],
    "apps/v1": [("deployments", "Deployment", True)],
    "coordination.k8s.io/v1": [("leases", "Lease", True)],
    "monitoring.coreos.com/v1": [("servicemonitors", "ServiceMonitor", True)],
    "networking.k8s.io/v1": [("ingresses", "Ingress", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "rbac.authorization.k8s.io/v1": [
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("clusterroles", "ClusterRole", False),
        ("rolebindings", "RoleBinding", True),
        ("roles", "Role", True),
    ],
}
"""The API the fake server discovers: the kinds the chart renders, and Helm's release Secret."""

KUBERNETES_VERSION = ("1", "30")


def _resource_list(group_version: str) -> dict[str, Any]:
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {"name": n, "singularName": k.lower(), "namespaced": ns, "kind": k, "verbs": verbs}
            for n, k, ns in RESOURCES[group_version]
        ],
    }


def _groups() -> dict[str, Any]:
    groups = []
    for group_version in RESOURCES:
        if "/" in group_version:
            group, version = group_version.split("/")
            entry = {"groupVersion": group_version, "version": version}
            groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


async def _api(request: web.Request) -> web.Response:
    """Discovery answers; every object absent; every create or update accepted."""
    parts = request.path.strip("/").split("/")
    if request.path == "/version":
        major, minor = KUBERNETES_VERSION
        return web.json_response(
            {"major": major, "minor": minor, "gitVersion": f"v{major}.{minor}.0"}
        )
    if request.path == "/api":
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
    if request.path == "/apis":
        return web.json_response(_groups())
    if parts == ["api", "v1"]:
        return web.json_response(_resource_list("v1"))
    if parts[0] == "apis" and len(parts) == 3:
        return web.json_response(_resource_list(f"{parts[1]}/{parts[2]}"))
    if request.method == "GET" and "labelSelector" in request.query:
        return web.json_response({"kind": "List", "apiVersion": "v1", "items": []})
    if request.method == "GET":
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure"}
        return web.json_response({**status, "reason": "NotFound", "code": 404}, status=404)
    await request.read()
    # Helm's release record comes as protobuf; any object with metadata satisfies the client.
    accepted = {"kind": "Secret", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}}
    return web.json_response(accepted, status=201 if request.method == "POST" else 200)


def _kubeconfig(server: str, namespace: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": server}}],
            "users": [{"name": "local", "user": {"token": "local"}}],
            "contexts": [
                {
                    "name": "local",
                    "context": {"cluster": "local", "user": "local", "namespace": namespace},
                }
            ],
            "current-context": "local",
        }
    )


async def render(chart: str, release: str, namespace: str, values: dict[str, Any]) -> str:
    """The chart's manifest as Helm renders it; raises the engine's error (a `fail` message,
    a template error) as helm_sdkpy's exception."""
    from helm_sdkpy import Configuration, Install

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _api)
    async with on_loopback(app, access_log=None) as base:
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(_kubeconfig(base, namespace))
            config = Configuration(namespace=namespace, kubeconfig=str(kubeconfig))
            result = await Install(config).run(release, chart, values=values, wait=False)
    return str(result["manifest"])


SEVERITIES = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
"""Helm's lint severities (helm.sh/helm/pkg/lint/support)."""


async def lint(chart: str) -> list[str]:
    """Helm's lint findings at WARNING or worse, as `SEVERITY path` lines (strict, like
    `helm lint --strict`). Lints with the chart's own values.yaml."""
    from helm_sdkpy import Configuration
    from helm_sdkpy.chart import Lint

    result = await Lint(Configuration()).run(chart)
    return [
        f"{SEVERITIES.get(m['Severity'], m['Severity'])} {m['Path']}"
        for m in result.get("Messages") or []
        if m["Severity"] >= 2
    ]


def main(argv: list[str]) -> int:
    command, chart, *rest = argv
    try:
        if command == "lint":
            findings = asyncio.run(lint(chart))
            print("\n".join(findings))
            return 1 if findings else 0
        release, namespace, *values_file = rest
        values = json.loads(Path(values_file[0]).read_text()) if values_file else {}
        manifest = asyncio.run(render(chart, release, namespace, values))
    except Exception as exc:  # the engine's error is the answer, as helm's stderr would be
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
