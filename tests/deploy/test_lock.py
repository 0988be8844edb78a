"""The lock files in requirements/: every package pinned to one version with its hashes, in
agreement with pyproject.toml, the image's runtime lock a subset of the development lock at the
same versions, past the advisories the project raised its floors for, and used by the Dockerfile
and tasks.py with pip's hash checking."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.tools import ROOT

LOCKS = ROOT / "requirements"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

FLOORS = {"aiohttp": Version("3.12.14"), "orjson": Version("3.9.15")}
"""Lowest versions allowed: the first releases past their known advisories."""


def locked(path: Path) -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, sha256 hashes) of a `uv pip compile --generate-hashes` file."""
    text = path.read_text()
    entries: dict[str, tuple[Version, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", "\n" + text):
        block = block.strip()
        if not block or block.startswith("#"):
            continue
        head = block.split("\\", 1)[0].split(";", 1)[0].strip()
        name, sep, version = head.partition("==")
        assert sep, f"{path.name}: {head!r} is not pinned with =="
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        assert hashes, f"{path.name}: {name} has no sha256 hash"
        entries[canonicalize_name(name)] = (Version(version), hashes)
    assert entries, f"{path.name} pins nothing"
    return entries


DEV = locked(LOCKS / "dev.txt")
RUNTIME = locked(LOCKS / "runtime.txt")
BUILD = locked(LOCKS / "build.txt")


def _requirements(extras: tuple[str, ...]) -> list[Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return reqs


@pytest.mark.parametrize(
    ("lock", "extras"),
    [(DEV, ("dev", "bench")), (RUNTIME, ())],
    ids=["dev", "runtime"],
)
def test_the_lock_satisfies_pyproject(
    lock: dict[str, tuple[Version, list[str]]], extras: tuple[str, ...]
) -> None:
    for req in _requirements(extras):
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is not locked: run python3 tasks.py lock"
        version = lock[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}=={version} does not satisfy {req}: python3 tasks.py lock"
        )


def test_runtime_and_build_locks_agree_with_the_development_lock() -> None:
    for lock in (RUNTIME, BUILD):
        for name, (version, hashes) in lock.items():
            assert name in DEV, f"{name} is locked for the image but not for development"
            assert DEV[name][0] == version, f"{name}: {version} here, {DEV[name][0]} in dev.txt"
            assert set(hashes) == set(DEV[name][1])
    tools = {canonicalize_name(r.name) for r in _requirements(("dev",))}
    project = {canonicalize_name(r.name) for r in _requirements(())}
    leaked = (tools - project) & set(RUNTIME)
    assert not leaked, f"development tools would ship in the image: {sorted(leaked)}"
    assert "hatchling" in BUILD


def test_floors_are_past_the_known_advisories() -> None:
    declared = {canonicalize_name(r.name): r for r in _requirements(())}
    for name, floor in FLOORS.items():
        spec = declared[name].specifier
        assert spec.contains(floor) and not spec.contains(Version("0.0.1")), name
        below = Version(f"{floor.major}.{floor.minor}.{floor.micro - 1}")
        assert not spec.contains(below), f"pyproject.toml still allows {name} {below}"
        for lock in (DEV, RUNTIME):
            assert lock[name][0] >= floor


def test_the_image_and_the_venv_install_from_the_lock_with_hash_checking() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements/runtime.txt requirements/build.txt requirements/" in dockerfile
    assert "--require-hashes --no-deps -r requirements/runtime.txt" in dockerfile
    assert "--require-hashes --no-deps -r requirements/build.txt" in dockerfile
    assert "--no-build-isolation" in dockerfile and "pip check" in dockerfile
    tasks = (ROOT / "tasks.py").read_text()
    assert '"--require-hashes", "--no-deps", "-r", lock' in tasks
    assert 'lock = LOCKS / "dev.txt"' in tasks
