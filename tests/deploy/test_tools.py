"""The schema check itself: it must catch what it is there to catch, or its passes mean nothing."""

from __future__ import annotations

from tests.deploy.tools import documents, schema_errors

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "driftbot", "namespace": "ops"},
    "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": "http"}]},
}


def test_a_valid_manifest_passes() -> None:
    assert schema_errors([SERVICE]) == []


def test_unknown_fields_and_wrong_types_are_errors() -> None:
    typo = {**SERVICE, "spec": {"ports": [{"port": 8080, "tragetPort": "http"}]}}
    wrong = {**SERVICE, "spec": {"ports": [{"port": "eighty"}]}}
    errors = schema_errors([typo, wrong])
    assert len(errors) == 2
    assert "tragetPort" in errors[0]
    assert "eighty" in errors[1]


def test_an_unknown_kind_is_an_error_and_a_crd_kind_is_left_to_its_tests() -> None:
    widget = {"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "spec": {}}
    errors = schema_errors([widget, monitor])
    assert len(errors) == 1 and errors[0].startswith("Widget/w")


def test_documents_drops_empty_ones() -> None:
    assert documents("---\n# only a comment\n---\na: 1\n---\n") == [{"a": 1}]
