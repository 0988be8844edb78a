"""Links no single object carries: a Flux object's page in a Flux UI, and the repository of a
Kustomization's revision, joined from its GitRepository; then through a real replay."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app.cli import main
from bot.pipeline.links import state_with_repository, with_flux_ui_link, with_repository
from config.loader import load_config
from config.schema import ClusterConfig
from core.model import AppState, EventKind, make_event
from tests import builders_flux as flux
from tests.scenarios import Stream
from watchers.flux import normalize_object

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CAPACITOR = "https://capacitor.example.com/#/{kind_lower}/{namespace}/{name}"


def _state(obj: dict[str, object]) -> AppState:
    state = normalize_object(obj, "staging", NOW)
    assert isinstance(state, AppState), state
    return state


def _clusters(yaml: str) -> dict[str, ClusterConfig]:
    config = load_config(textwrap.dedent(yaml))
    return {c.name: c for c in config.clusters}


def test_a_flux_object_gets_the_page_of_its_clusters_flux_ui() -> None:
    clusters = _clusters(f"clusters:\n  - name: staging\n    flux_ui_url: '{CAPACITOR}'\n")
    podinfo = with_flux_ui_link(_state(flux.helmrelease("podinfo", "podinfo")), clusters)
    assert podinfo.url == "https://capacitor.example.com/#/helmrelease/podinfo/podinfo"
    elsewhere = _clusters(f"clusters:\n  - name: prod\n    flux_ui_url: '{CAPACITOR}'\n")
    assert with_flux_ui_link(_state(flux.kustomization()), elsewhere).url == ""


def test_a_kustomization_event_gets_the_url_of_the_repository_it_reads() -> None:
    apps = _state(flux.kustomization("apps", "flux-system"))
    repo = _state(flux.gitrepository("flux-system", url="git@github.com:example/fleet.git"))
    states = {apps.key: apps, repo.key: repo}
    event = make_event(EventKind.DEPLOY_FAILED, apps, NOW)
    assert with_repository(event, states).repo_url == "git@github.com:example/fleet.git"
    assert with_repository(event, {apps.key: apps}).repo_url == ""  # the source not seen yet
    # the status page joins the same way, so a Kustomization's deployed commit is linked
    assert state_with_repository(apps, states).repo_url == "git@github.com:example/fleet.git"
    assert state_with_repository(apps, {apps.key: apps}) is apps


def test_replay_links_flux_alerts_to_the_flux_ui_and_the_commit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = Stream()
    stream.add(0, "staging", flux.gitrepository(url="https://github.com/example/fleet"), "ADDED")
    stream.add(0, "staging", flux.kustomization("apps", applied=flux.REV1), "ADDED")
    failed = flux.kustomization(
        "apps",
        ready="False",
        reason="BuildFailed",
        applied=flux.REV1,
        attempted=flux.REV2,
        message="kustomize build failed: accumulating resources: 'apps/checkout' not found",
    )
    stream.add(5, "staging", failed)
    (tmp_path / "s.jsonl").write_bytes(b"".join(line + b"\n" for line in stream.render()))
    (tmp_path / "c.yaml").write_text(
        "clusters:\n"
        "  - name: staging\n"
        "    flux_ui_url:\n"
        "      Kustomization: 'https://weave.example.com/kustomization?clusterName=Default"
        "&name={name}&namespace={namespace}'\n"
        "receivers: [{name: out, console: {format: jsonl}}]\n"
        "routes: [{receivers: [out]}]\n"
    )
    args = ["replay", str(tmp_path / "s.jsonl"), "--config", str(tmp_path / "c.yaml")]
    assert main([*args, "--state", str(tmp_path / "st.sqlite")]) == 0
    (note,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert note["kind"] == "deploy_failed"
    assert note["url"] == (
        "https://weave.example.com/kustomization?clusterName=Default&name=apps"
        "&namespace=flux-system"
    )
    assert note["repo_url"] == "https://github.com/example/fleet"
    assert note["destination_namespace"] == "flux-system"
