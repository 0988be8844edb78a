"""The opt-in ClusterRole of acting from chat: absent unless `actions.enabled`, only get and
patch on the kinds driftbot acts on, the same in the Helm chart and the Kustomize component.
Its effect on a real API server is tested in tests/bot/test_actions_kube.py."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.tools import CHART, KUSTOMIZE, by_kind, helm_render, one, schema_errors

ACTIONS = {"actions": {"enabled": True}}


def _component_rules() -> list[dict[str, Any]]:
    path = KUSTOMIZE / "components" / "actions" / "clusterrole.yaml"
    return list(one(list(yaml.safe_load_all(path.read_text())), "ClusterRole")["rules"])


def _chart_rules() -> list[dict[str, Any]]:
    template = (CHART / "templates" / "clusterrole-actions.yaml").read_text()
    text = template.split("\nrules:\n", 1)[1].split("\n---", 1)[0]
    return list(yaml.safe_load("rules:\n" + text)["rules"])


def test_the_chart_and_the_component_grant_the_same_get_and_patch_only() -> None:
    assert _chart_rules() == _component_rules()
    for rule in _component_rules():
        assert rule["verbs"] == ["get", "patch"]
    resources = {r for rule in _component_rules() for r in rule["resources"]}
    assert "secrets" not in resources and "*" not in resources


def test_read_only_installs_get_no_actions_role() -> None:
    names = [r["metadata"]["name"] for r in by_kind(helm_render(None), "ClusterRole")]
    assert names == ["driftbot"]


def test_actions_enabled_adds_the_role_bound_to_the_service_account() -> None:
    manifests = helm_render(ACTIONS, namespace="ops")
    assert schema_errors(manifests) == []
    roles = {r["metadata"]["name"]: r for r in by_kind(manifests, "ClusterRole")}
    assert set(roles) == {"driftbot", "driftbot-actions"}
    [binding] = [
        b
        for b in by_kind(manifests, "ClusterRoleBinding")
        if b["roleRef"]["name"] == "driftbot-actions"
    ]
    (account,) = by_kind(manifests, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "ops"}
    ]
