"""Developer entry points that need nothing but Python 3.11: `python3 tasks.py demo|test|bench`.

Each command makes (or refreshes) the virtualenv in .venv from the lock file
requirements/dev.txt (exact versions with their hashes), then runs. `python3 tasks.py lock`
writes the lock files again from pyproject.toml (the newest versions it allows).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("DRIFTBOT_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".driftbot-installed"
HELM_SDK = "helm-sdkpy==0.1.32"


def _run(*cmd: str | Path) -> int:
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT)


LOCKS = ROOT / "requirements"
UV = "uv==0.13.9"
"""The locker: `uv pip compile` with hashes (pip-tools' format, read by plain pip)."""


def ensure_venv() -> None:
    """Create .venv and install the locked dependencies and the project when pyproject.toml or
    the lock changed. Every locked package is checked against its hash; `pip check` then says
    if pyproject.toml asks for something the lock lacks (run `python3 tasks.py lock`)."""
    lock = LOCKS / "dev.txt"
    wanted = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + lock.read_bytes() + HELM_SDK.encode()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [BIN / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if _run(*pip, "--require-hashes", "--no-deps", "-r", lock) != 0:
        sys.exit("installing the locked dependencies failed (see above)")
    # hatchling, the build backend, is in the lock: no unpinned build environment.
    if _run(*pip, "--no-deps", "--no-build-isolation", "-e", ".") != 0:
        sys.exit("installing driftbot failed (see above)")
    if _run(BIN / "python", "-m", "pip", "check") != 0:
        sys.exit(
            "the lock does not satisfy pyproject.toml: run `python3 tasks.py lock` and commit "
            "requirements/"
        )
    # Helm's engine as a library, for rendering the chart in tests (no helm binary on PyPI).
    # It declares Python >= 3.12 but works on 3.11; without it those tests skip and say why.
    if _run(*pip, "--ignore-requires-python", HELM_SDK) != 0:
        print(f"warning: {HELM_SDK} did not install; chart rendering tests will skip",
              file=sys.stderr)
    STAMP.write_text(wanted)


def lock(args: list[str]) -> int:
    """requirements/{dev,runtime,build}.txt from pyproject.toml, with every file's hash:
    dev (the project with its dev and bench extras: .venv and CI), runtime (what the image
    installs) and build (the wheel's build backend, for the image's builder stage). runtime and
    build are held to dev's versions, so all three agree. Extra arguments go to every
    `uv pip compile` (`--upgrade-package aiohttp`, `--upgrade`); without --upgrade, versions
    already locked are kept where pyproject.toml still allows them."""
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = BIN / "uv"
    if not uv.exists() and _run(BIN / "python", "-m", "pip", "install", "-q", UV) != 0:
        return 1
    common = ["--universal", "--python-version", "3.11", "--generate-hashes", "-q", *args]
    dev = "requirements/dev.txt"
    steps = [
        ["pyproject.toml", "--extra", "dev", "--extra", "bench", "-o", dev],
        ["pyproject.toml", "-c", dev, "-o", "requirements/runtime.txt"],
        ["requirements/build.in", "-c", dev, "-o", "requirements/build.txt"],
    ]
    for step in steps:
        rc = _run(uv, "pip", "compile", *step, *common)
        if rc != 0:
            return rc
    return 0


def demo(args: list[str]) -> int:
    return _run(BIN / "driftbot", "demo", *args)


def audit() -> int:
    """Known vulnerabilities in the installed dependencies (pip-audit): 1 if any is found.

    Where no vulnerability service can be reached (a registry mirror without PyPI's JSON API),
    nothing can be audited: that is said loudly, and is not taken as a pass or a failure.
    """
    cmd = [str(BIN / "pip-audit"), "--skip-editable", "--progress-spinner", "off", "-f", "json"]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        print(done.stderr, file=sys.stderr)
        print("dependency audit: pip-audit gave no report; not audited", file=sys.stderr)
        return 0
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    for dep in vulnerable:
        ids = ", ".join(v.get("id", "?") for v in dep["vulns"])
        print(f"dependency audit: {dep['name']} {dep.get('version')}: {ids}", file=sys.stderr)
    if vulnerable:
        return 1
    audited = len(deps) - len(skipped)
    if deps and not audited:
        print(
            f"WARNING: dependency audit: none of {len(deps)} packages could be audited "
            "(no vulnerability service reachable from here)",
            file=sys.stderr,
        )
    else:
        print(
            f"dependency audit: {audited} packages, no known vulnerabilities"
            + (f" ({len(skipped)} not audited)" if skipped else ""),
            file=sys.stderr,
        )
    return 0


def test(args: list[str]) -> int:
    """Lint, types, import layers, the dependency audit, then the test suite; stops at the
    first failing step."""
    steps: list[list[str | Path]] = [
        [BIN / "ruff", "check", "."],
        [BIN / "mypy"],
        [BIN / "lint-imports"],
        ["audit"],
        [BIN / "pytest", *args],
    ]
    for step in steps:
        rc = audit() if step == ["audit"] else _run(*step)
        if rc != 0:
            print(f"FAILED: {' '.join(str(s) for s in step)} (exit {rc})", file=sys.stderr)
            return rc
    return 0


def bench(args: list[str]) -> int:
    if not args:
        sys.exit("usage: python3 tasks.py bench SCRIPT [ARGS...]  (scripts live in bench/)")
    return _run(BIN / "python", *args)


COMMANDS = {"demo": demo, "test": test, "bench": bench, "lock": lock}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: python3 tasks.py {{{'|'.join(COMMANDS)}}} [ARGS...]", file=sys.stderr)
        return 2
    if sys.argv[1] != "lock":  # the lock is made before the venv can be installed from it
        ensure_venv()
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
