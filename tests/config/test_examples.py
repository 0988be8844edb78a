"""The shipped example loads cleanly, routes as its comments say, and the docs cover every key."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from types import UnionType
from typing import Any

import pytest
from pydantic import BaseModel

from config.loader import check_config, check_config_file
from config.routing import match_routes
from config.schema import Config
from core.model import AppState, EventKind, Tool, make_event
from tests.config.test_routing import NOW

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))
ORGANISATION = ROOT / "config" / "examples" / "organisation.yaml"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_without_errors_or_warnings(path: Path) -> None:
    loaded = check_config_file(path)
    assert loaded.warnings == ()
    assert loaded.config.routes


def receivers_for(kind: EventKind, cluster: str) -> list[str]:
    config = check_config_file(ORGANISATION).config
    state = AppState(
        tool=Tool.ARGOCD,
        cluster=cluster,
        namespace="argocd",
        kind="Application",
        name="checkout",
        observed_at=NOW,
    )
    return [r for t in match_routes(make_event(kind, state, NOW), config) for r in t.receivers]


@pytest.mark.parametrize(
    ("kind", "cluster", "expected"),
    [
        (EventKind.DEPLOY_FAILED, "prod", ["log", "oncall"]),
        (EventKind.DRIFT_DETECTED, "prod", ["log", "product", "product-teams", "oncall"]),
        (EventKind.ROLLBACK_FAILED, "prod", ["log", "product", "product-teams", "oncall"]),
        (EventKind.DEPLOY_SUCCEEDED, "prod", ["log", "oncall"]),
        (EventKind.DRIFT_DETECTED, "staging", ["log", "team-deploys"]),
        (EventKind.DEPLOY_STARTED, "staging", ["log"]),
    ],
)
def test_organisation_example_routes_as_described(
    kind: EventKind, cluster: str, expected: list[str]
) -> None:
    assert receivers_for(kind, cluster) == expected


def test_organisation_example_mentions_oncall_for_prod_criticals() -> None:
    config = check_config_file(ORGANISATION).config
    state = AppState(
        tool=Tool.FLUX,
        cluster="prod",
        namespace="apps",
        kind="HelmRelease",
        name="podinfo",
        observed_at=NOW,
    )
    taken = match_routes(make_event(EventKind.HEALTH_DEGRADED, state, NOW), config)
    assert [t.mention for t in taken if "oncall" in t.receivers] == [("@sre-oncall",)]
    assert [d.receivers for d in config.digests] == [("product",)]


def _keys(model: type[BaseModel]) -> set[str]:
    found: set[str] = set()
    for name, info in model.model_fields.items():
        found.add(info.alias or name)
        for inner in _models(info.annotation):
            found |= _keys(inner)
    return found


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, UnionType):
        return []
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def test_docs_name_every_key() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z_]+)", docs)) | set(re.findall(r"\.([a-z_]+)`", docs))
    missing = sorted(_keys(Config) - named)
    assert missing == []


DESIGN_OUTLINE = """\
clusters:                       # one entry per cluster; in_cluster: true inside a pod
  - {name: prod, kubeconfig: /path/to/kubeconfig, context: prod-admin, argocd_url: https://argocd.example.com}
argocd_api:                     # optional: the Argo CD API stream instead of / beside the CRD watch
  - {cluster: prod, url: https://argocd.example.com, token_env: ARGOCD_TOKEN}
receivers:
  - {name: oncall, slack: {channel: C0123456}}
  - {name: pm, teams: {webhook_env: TEAMS_PM_WEBHOOK, payload: envelope}}
  - {name: stdout, console: {format: jsonl}}     # text | jsonl, to standard output
routes:                         # first match wins unless continue: true
  - match: {cluster: prod, kinds: [drift_detected, deploy_failed, rollback_succeeded]}
    receivers: [oncall]
    mention: ["@sre-oncall"]
  - receivers: [stdout]
policy: {grace: 60s, group_wait: 30s, group_interval: 5m, repeat: 4h}
rbac: {operators: {users: [U0123], groups: [S0456]}}
slack: {mode: socket, command: /gitops, api_url: https://slack.com/api/}  # api_url: proxies and tests
server: {port: 8080}            # DRIFTBOT_SERVER__PORT
"""  # noqa: E501


def test_the_outline_of_the_design_loads() -> None:
    loaded = check_config(DESIGN_OUTLINE, "driftbot.yaml")
    assert [str(w) for w in loaded.warnings] == [
        "driftbot.yaml:7: receivers[1].name: receiver 'pm' is used by no route"
    ]
    assert [r.name for r in loaded.config.receivers] == ["oncall", "pm", "stdout"]
