"""Import only what is used: the CLI loads no command, and the service no Slack, Teams,
PostgreSQL or leader-election module until the config asks for one (docs/benchmarks.md has
the memory this saves)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(module: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_importing_the_cli_loads_no_command() -> None:
    tops = _tops(_loaded("bot.app.cli"))
    for heavy in ("aiohttp", "slack_sdk", "slack_bolt", "asyncpg", "kubernetes_asyncio",
                  "pydantic", "apscheduler", "prometheus_client"):  # fmt: skip
        assert heavy not in tops, heavy


def test_the_service_loads_chat_postgres_and_leases_only_when_configured() -> None:
    loaded = _loaded("bot.app.server")
    tops = _tops(loaded)
    for unused in ("slack_sdk", "slack_bolt", "asyncpg", "kubernetes_validate", "jsonschema"):
        assert unused not in tops, unused
    for module in (
        "bot.chat.slack_app",
        "bot.delivery.slack_receiver",
        "bot.delivery.teams_receiver",
        "bot.store.postgres",
        "bot.app.leader",
        "kubernetes_asyncio.dynamic",
        "kubernetes_asyncio.stream",
    ):
        assert module not in loaded, module
    assert "bot.app.service" in loaded  # the probe did load the service


def test_the_pipeline_loads_no_http_client_without_an_argo_cd_api() -> None:
    """`driftbot replay` (and a service with no Argo CD API) asks Argo CD for no commit: its
    pipeline loads neither aiohttp nor the API client."""
    loaded = _loaded("bot.app.replay")
    assert "bot.pipeline.runner" in loaded and "watchers.commit_info" in loaded
    for unused in ("aiohttp", "kubernetes_asyncio", "watchers.argocd_client"):
        assert unused not in _tops(loaded) | loaded, unused


def test_building_the_command_line_loads_no_kubernetes_client() -> None:
    """Every command builds the whole parser, `import`'s included: `replay` and `check-config`
    must not pay for the Kubernetes client that only `import --from-cluster` uses."""
    probe = (
        "import json, sys\n"
        "from bot.app.cli import _parser\n"
        "_parser()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    tops = _tops(set(json.loads(done.stdout)))
    assert "argparse" in tops
    for heavy in ("kubernetes_asyncio", "aiohttp", "urllib3"):
        assert heavy not in tops, heavy
