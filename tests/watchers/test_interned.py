"""Normalized states share the strings thousands of apps repeat (label and annotation keys and
values, namespaces, revisions), so 10,000 apps fit the memory goal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from core.model import AppState
from tests.builders_argocd import argocd_app
from tests.builders_flux import kustomization as _k
from watchers.argocd import normalize_application
from watchers.flux import normalize_object as normalize_flux

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _fresh(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a watch line decodes it: every string a new object."""
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    return parsed


def _labelled(obj: dict[str, Any], **labels: str) -> dict[str, Any]:
    obj = _fresh(obj)
    obj["metadata"]["labels"] = _fresh(labels)
    subscribe = {"notifications.argoproj.io/subscribe.on-sync-failed.slack": "team-payments"}
    obj["metadata"]["annotations"] = _fresh(subscribe)
    return obj


def test_two_argocd_apps_share_the_strings_they_both_carry() -> None:
    one = normalize_application(_labelled(argocd_app("one"), team="payments"), "c", NOW)
    two = normalize_application(_labelled(argocd_app("two"), team="payments"), "c", NOW)
    assert isinstance(one, AppState) and isinstance(two, AppState)
    (k1, v1), (k2, v2) = next(iter(one.labels.items())), next(iter(two.labels.items()))
    assert (k1, v1) == (k2, v2) and k1 is k2 and v1 is v2
    (a1, b1), (a2, b2) = next(iter(one.annotations.items())), next(iter(two.annotations.items()))
    assert a1 is a2 and b1 is b2
    assert one.revision == two.revision and one.revision is two.revision
    assert one.namespace is two.namespace


def test_two_flux_apps_share_the_strings_they_both_carry() -> None:
    raw_one, raw_two = _fresh(_k("one")), _fresh(_k("two"))
    one, two = normalize_flux(raw_one, "c", NOW), normalize_flux(raw_two, "c", NOW)
    assert isinstance(one, AppState) and isinstance(two, AppState)
    assert one.revision and one.revision == two.revision and one.revision is two.revision
