"""deploy/pin-digests.py, the update path of every digest the deployment pins: run on a copy of
the deployment files, it writes a digest where the Dockerfile, the chart and the Kustomize base
read it, the result still builds, and a bad digest writes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.deploy.test_dockerfile import base_images
from tests.deploy.tools import DEPLOY, ROOT, kustomize, one
from tests.deploy.workload import container

SCRIPT = DEPLOY / "pin-digests.py"
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    return tmp_path


def _pin(root: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=path) if path is not None else None
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_the_image_digest_reaches_the_chart_and_the_kustomize_build(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    for digest in (A, B):  # pinning again replaces the digest
        result = _pin(root, "image", digest)
        assert result.returncode == 0, result.stderr
    values = yaml.safe_load((root / "deploy/helm/driftbot/values.yaml").read_text())
    assert values["image"]["digest"] == B
    deployment = one(kustomize(root / "deploy/kustomize/base"), "Deployment")
    assert container(deployment)["image"] == f"ghcr.io/driftbot/driftbot:0.1.0@{B}", (
        "the tag stays as a label, as in the chart; the digest decides"
    )
    assert (root / "deploy/kustomize/base/kustomization.yaml").read_text().count("digest:") == 1


def test_the_base_image_digest_is_looked_up_with_a_registry_client(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    tools = tmp_path / "bin"
    tools.mkdir()
    crane = tools / "crane"
    wanted = "python:3.11-slim-bookworm"
    crane.write_text(f'#!/bin/sh\n[ "$1" = digest ] && [ "$2" = {wanted} ] && echo {A}\n')
    crane.chmod(0o755)
    result = _pin(root, "base", path=f"{tools}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    text = (root / "Dockerfile").read_text()
    assert f"ARG PYTHON_IMAGE=python:3.11-slim-bookworm@{A}\n" in text


def test_no_registry_client_or_a_bad_digest_writes_nothing(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    files = [root / "Dockerfile", root / "deploy/helm/driftbot/values.yaml"]
    before = [f.read_text() for f in files]
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = _pin(root, "base", path=str(empty))
    assert missing.returncode == 1 and "no registry client found" in missing.stderr
    bad = _pin(root, "image", "sha256:xyz")
    assert bad.returncode == 1 and "not a sha256" in bad.stderr
    assert [f.read_text() for f in files] == before


def test_every_base_image_is_pinned_by_digest() -> None:
    for image in base_images():
        name, _, digest = image.partition("@")
        assert ":" in name, f"{image}: keep the tag as a label"
        assert digest.startswith("sha256:") and len(digest) == 71, f"{image}: pin a digest"
