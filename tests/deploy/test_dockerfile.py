"""The Dockerfile, checked without a Docker engine: its structure (stages, user, health check,
entry point, no `latest`, no secrets), that the build context holds what the wheel is built
from, and hadolint where it is installed."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.deploy.tools import ROOT, require_hadolint, run
from tests.deploy.workload import UID


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int
    """Index of the FROM this instruction belongs to (-1 before the first FROM)."""


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, args.strip(), stage))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


DOCKERFILE = parse((ROOT / "Dockerfile").read_text())
FINAL = max(i.stage for i in DOCKERFILE)


def final(keyword: str) -> list[Instruction]:
    return [i for i in DOCKERFILE if i.keyword == keyword and i.stage == FINAL]


def env_pairs(args: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(args))


def exec_form(args: str) -> list[str]:
    value: Any = json.loads(args)
    assert isinstance(value, list), f"{args} is not in exec form"
    return [str(v) for v in value]


def base_images() -> list[str]:
    args = {}
    for i in DOCKERFILE:
        if i.keyword == "ARG" and i.stage == -1 and "=" in i.args:
            name, value = i.args.split("=", 1)
            args[name] = value
    images = []
    for i in DOCKERFILE:
        if i.keyword == "FROM":
            image = i.args.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def test_is_multi_stage_with_a_named_builder_and_a_slim_final_image() -> None:
    froms = [i.args.split() for i in DOCKERFILE if i.keyword == "FROM"]
    assert len(froms) >= 2
    assert froms[0][-2:] == ["AS", "builder"]
    assert base_images()[-1].startswith("python:3.11-slim")
    copies = final("COPY")
    assert [c.args for c in copies] == ["--from=builder /opt/driftbot /opt/driftbot"], (
        "the final image takes only the virtualenv from the builder"
    )
    builder_runs = " ".join(i.args for i in DOCKERFILE if i.keyword == "RUN" and i.stage == 0)
    assert "pip wheel" in builder_runs and "/opt/driftbot/bin/pip install" in builder_runs


def test_no_image_is_latest_or_untagged() -> None:
    for image in base_images():
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag and tag != "latest", f"{image}: pin a version"
        assert "@" in image or re.match(r"\d", tag), f"{image}: the tag names no version"


def test_runs_as_a_numeric_non_root_user() -> None:
    users = final("USER")
    assert users, "the final stage sets no USER: it would run as root"
    user, _, group = users[-1].args.partition(":")
    assert user.isdigit() and int(user) == UID
    assert not group or int(group) == UID
    setup = " ".join(i.args for i in final("RUN"))
    assert f"--uid {UID}" in setup and f"chown {UID}:{UID} /var/lib/driftbot" in setup


def test_state_and_scratch_paths_suit_a_read_only_root() -> None:
    env: dict[str, str] = {}
    for i in final("ENV"):
        env |= env_pairs(i.args)
    assert env["DRIFTBOT_STATE"].startswith("/var/lib/driftbot/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["TMPDIR"] == "/tmp"
    assert env["HOME"] == "/var/lib/driftbot"
    assert env["PATH"].startswith("/opt/driftbot/bin:")


def test_declares_no_secrets() -> None:
    for i in DOCKERFILE:
        if i.keyword in ("ENV", "ARG"):
            names = env_pairs(i.args) if i.keyword == "ENV" else {i.args.split("=")[0]: ""}
            for name in names:
                assert not re.search(r"TOKEN|SECRET|PASSWORD|DSN|KEY", name), (
                    f"{i.keyword} {name}: secrets come from the environment at run time"
                )


def test_health_check_asks_healthz_with_the_standard_library() -> None:
    (check,) = final("HEALTHCHECK")
    options, _, command = check.args.partition("CMD ")
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request" in argv[2] and "/healthz" in argv[2]
    assert "DRIFTBOT_SERVER__PORT" in argv[2], "follows a port changed by the environment"
    compile(argv[2], "HEALTHCHECK", "exec")
    assert "--timeout=" in options and "--interval=" in options


def test_entry_point_and_port() -> None:
    assert exec_form(final("ENTRYPOINT")[-1].args) == ["driftbot"]
    assert exec_form(final("CMD")[-1].args) == ["run"]
    assert [i.args for i in final("EXPOSE")] == ["8080"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "driftbot" in scripts


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path.split("/")[0], p.rstrip("/"))
        for p in patterns
    )


def test_build_context_holds_what_the_wheel_is_built_from() -> None:
    """Every package pyproject.toml puts in the wheel, and the files hatch reads, are copied
    into the builder and not excluded by .dockerignore."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    needed = ["pyproject.toml", project["project"]["readme"], *packages]
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = " ".join(i.args for i in DOCKERFILE if i.keyword == "COPY" and i.stage == 0)
    for path in needed:
        assert not _ignored(path, ignore), f".dockerignore excludes {path}"
        assert re.search(rf"(^|\s){re.escape(path)}/?(\s|$)", copied), f"{path} is not copied"
    for noise in (".venv", ".git", "tests"):
        assert _ignored(noise, ignore), f".dockerignore should exclude {noise}"


def test_hadolint_is_clean() -> None:
    hadolint = require_hadolint()
    result = run([hadolint, "--no-color", "Dockerfile"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_builds_and_ships_the_demo_scenario_and_examples(tmp_path: Path) -> None:
    """What the image installs: the wheel must build and carry its data files."""
    result = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("driftbot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "bot/app/scenarios/demo.jsonl" in names
    assert "config/examples/organisation.yaml" in names
    assert not any(name.startswith("tests/") for name in names)
