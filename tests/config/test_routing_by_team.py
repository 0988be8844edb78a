"""Routes by what teams route by: where an Argo CD app deploys (destination cluster), its
project, the labels and annotations of the object, the Flux source an object reads.

The objects are the upstream fixtures (an Argo CD app deploying to a named remote cluster with
real annotations, an app-of-apps child deploying in-cluster) and Flux objects written as the
Flux docs write them; they go through the real normalizers, so a field the normalizer does not
keep fails here.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest

from config.loader import check_config, load_config
from config.route_explain import explain
from config.routing import match_routes
from core.model import AppState, EventKind, GitOpsEvent, make_event
from tests.upstream import load_fixture
from watchers.annotations import MAX_VALUE, kept_annotations
from watchers.argocd import normalize_application
from watchers.flux import normalize_object as normalize_flux

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

# One route per real-world pattern, as docs/configuration.md shows them.
CONFIG = load_config(
    textwrap.dedent(
        """\
        receivers:
          - {name: oncall, slack: {channel: C0ONCALL}}
          - {name: pm, teams: {webhook_env: TEAMS_PM_WEBHOOK}}
          - {name: sre-team, slack: {channel: C0SRE}}
          - {name: gke-europe, slack: {channel: C0GKEEU}}
          - {name: podinfo-team, slack: {channel: C0PODINFO}}
          - {name: image-updates, slack: {channel: C0IMAGES}}
          - {name: rest, console: {}}
        routes:
          - match: {min_severity: critical}             # on-call: failures only
            receivers: [oncall]
            continue: true
          - match: {destination_cluster: in-cluster, kinds: [deploy_succeeded, rollback_succeeded]}
            receivers: [pm]                              # PMs: deploys to the prod cluster only
            continue: true
          - match: {project: sre}                        # per team channel, by Argo CD project
            receivers: [sre-team]
            continue: true
          - match: {destination_cluster: "gke-*-europe-*"}  # per environment, by where it runs
            receivers: [gke-europe]
            continue: true
          - match: {annotations: {argocd-image-updater.argoproj.io/write-back-method: git}}
            receivers: [image-updates]
            continue: true
          - match: {tool: flux, source: podinfo}         # per team, by the Flux source
            receivers: [podinfo-team]
          - receivers: [rest]
        """
    ),
    "team-routes.yaml",
)


def receivers(event: GitOpsEvent) -> list[str]:
    return [r for taken in match_routes(event, CONFIG) for r in taken.receivers]


def argocd_state(relpath: str) -> AppState:
    state = normalize_application(load_fixture(relpath), "prod", NOW)
    assert isinstance(state, AppState)
    return state


def flux_state(obj: dict[str, Any]) -> AppState:
    state = normalize_flux(obj, "staging", NOW)
    assert isinstance(state, AppState)
    return state


# HelmRelease and Kustomization as the Flux docs write them (helmreleases.md, kustomizations.md).
HELMRELEASE = {
    "apiVersion": "helm.toolkit.fluxcd.io/v2",
    "kind": "HelmRelease",
    "metadata": {"name": "podinfo", "namespace": "default"},
    "spec": {
        "interval": "5m",
        "chart": {
            "spec": {
                "chart": "podinfo",
                "version": "6.5.*",
                "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                "interval": "1m",
            }
        },
        "values": {"replicaCount": 2},
    },
}
HELMRELEASE_CHARTREF = {
    "apiVersion": "helm.toolkit.fluxcd.io/v2",
    "kind": "HelmRelease",
    "metadata": {"name": "backend", "namespace": "default"},
    "spec": {
        "interval": "10m",
        "chartRef": {"kind": "OCIRepository", "name": "podinfo", "namespace": "default"},
    },
}
KUSTOMIZATION = {
    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
    "kind": "Kustomization",
    "metadata": {"name": "podinfo", "namespace": "flux-system"},
    "spec": {
        "interval": "10m",
        "targetNamespace": "default",
        "sourceRef": {"kind": "GitRepository", "name": "webapp"},
        "path": "./kustomize",
        "prune": True,
    },
}


def test_remote_destination_project_and_annotations_route_a_real_application() -> None:
    # diff-cache-application: project sre, destination name gke-alpha-01-europe-west1,
    # argocd-image-updater annotations (write-back-method: git).
    state = argocd_state("argocd/diff-cache-application.yaml")
    assert state.annotations["argocd-image-updater.argoproj.io/write-back-method"] == "git"
    failed = make_event(EventKind.DEPLOY_FAILED, state, NOW)
    assert receivers(failed) == ["oncall", "sre-team", "gke-europe", "image-updates", "rest"]
    deployed = make_event(EventKind.DEPLOY_SUCCEEDED, state, NOW)
    # a deploy to a remote cluster: no PM, no on-call
    assert receivers(deployed) == ["sre-team", "gke-europe", "image-updates", "rest"]


def test_in_cluster_deploys_reach_the_product_managers_only_as_deploys() -> None:
    # live-child-application: destination name in-cluster, project default, no annotations
    state = argocd_state("argocd/live-child-application.yaml")
    assert receivers(make_event(EventKind.DEPLOY_SUCCEEDED, state, NOW)) == ["pm", "rest"]
    assert receivers(make_event(EventKind.DRIFT_DETECTED, state, NOW)) == ["rest"]
    assert receivers(make_event(EventKind.HEALTH_DEGRADED, state, NOW)) == ["oncall", "rest"]


@pytest.mark.parametrize(
    ("obj", "source_ref"),
    [
        (HELMRELEASE, "HelmRepository/default/podinfo"),
        (HELMRELEASE_CHARTREF, "OCIRepository/default/podinfo"),
    ],
)
def test_a_helmrelease_is_routed_by_its_chart_source(obj: dict[str, Any], source_ref: str) -> None:
    state = flux_state(obj)
    assert state.source_ref == source_ref
    event = make_event(EventKind.DEPLOY_SUCCEEDED, state, NOW)
    assert event.source_ref == source_ref
    # Flux objects run where Flux runs: in-cluster, so the PM route takes their deploys too
    assert receivers(event) == ["pm", "podinfo-team"]


def test_a_kustomization_of_another_source_and_the_source_itself() -> None:
    other = flux_state(KUSTOMIZATION)
    assert receivers(make_event(EventKind.DRIFT_DETECTED, other, NOW)) == ["rest"]
    repo = flux_state(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "podinfo", "namespace": "flux-system"},
            "spec": {"interval": "5m", "url": "https://github.com/stefanprodan/podinfo"},
        }
    )
    assert receivers(make_event(EventKind.SOURCE_FAILED, repo, NOW)) == ["podinfo-team"]


def test_an_annotation_that_is_missing_or_different_does_not_match() -> None:
    config = load_config(
        "receivers: [{name: a, console: {}}]\nroutes:\n"
        "  - match: {annotations: {example.com/team: 'pay*'}}\n    receivers: [a]\n",
        "r.yaml",
    )
    lines = explain("x", "prod", "deploy_failed", config, annotations={})
    assert "annotation example.com/team is not set (wanted 'pay*')" in lines[1]
    lines = explain("x", "prod", "deploy_failed", config, annotations={"example.com/team": "ui"})
    assert "annotation example.com/team='ui' does not match 'pay*'" in lines[1]
    lines = explain("x", "prod", "deploy_failed", config)
    assert "matches only if annotation example.com/team matches 'pay*'" in lines[1]
    taken = explain("x", "prod", "deploy_failed", config, annotations={"example.com/team": "pay"})
    assert taken[-1] == "result: sent to a (by routes[0])"


def test_explain_names_destination_cluster_and_source() -> None:
    lines = explain(
        "podinfo",
        "staging",
        "deploy_succeeded",
        CONFIG,
        tool="flux",
        destination_cluster="in-cluster",
        source="webapp",
        project="",
        annotations={},
    )
    assert "destination cluster in-cluster, source webapp" in lines[0]
    assert "source 'webapp' does not match 'podinfo'" in lines[6]
    assert lines[-1] == "result: sent to pm, rest (by routes[1], routes[6])"


def test_kept_annotations_leave_out_blobs() -> None:
    kept = kept_annotations(
        {
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "big": "x" * (MAX_VALUE + 1),
            "n": 3,
            "team": "shop",
        }
    )
    assert kept == {"team": "shop"}
    assert kept_annotations(["not", "a", "mapping"]) == {}
    assert len(kept_annotations({f"k{i:03}": "v" for i in range(100)})) == 32


def test_check_config_warns_about_conditions_no_object_of_the_tool_meets() -> None:
    loaded = check_config(
        "receivers: [{name: a, console: {}}]\nroutes:\n"
        "  - match: {tool: argocd, source: podinfo}\n    receivers: [a]\n    continue: true\n"
        "  - match: {tool: flux, destination_cluster: gke-*}\n    receivers: [a]\n"
        "    continue: true\n"
        "  - match: {tool: '*', source: podinfo, destination_cluster: gke-*}\n    receivers: [a]\n",
        "r.yaml",
    )
    assert [str(w) for w in loaded.warnings] == [
        "r.yaml:3: routes[0].match.source: an Argo CD app reads no Flux source: this route "
        "takes nothing",
        "r.yaml:6: routes[1].match.destination_cluster: a Flux object's destination cluster is "
        "always in-cluster: this route takes nothing",
    ]
