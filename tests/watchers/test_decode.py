"""Typed decoding: the views declare every field the normalizers read, and normalizing a view
gives the AppState (or Hint, or rejection) that normalizing the whole object gives.

The real fixtures and the tests' builders go through both paths: the whole object parsed with
orjson, and the bytes decoded into the view the service's watcher uses. A normalizer that reads
a field its view does not declare fails `test_normalizers_read_only_declared_fields` at once
(even where the fixture lacks the field), and would make the two paths differ where it has it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.detect import detect
from core.model import AppState
from tests.builders_argocd import REV_B, argocd_app, at, history_entry, operation_state
from tests.builders_flux import (
    REV2,
    flux_event,
    helm_snapshot,
    helmrelease,
    kustomization,
    source,
)
from tests.upstream import load_fixture
from watchers.decode.base import ObjectView
from watchers.decode.lines import VIEWS, JsonDecoder, ResourceDecoder, object_mapping
from watchers.decode.unchanged import digest
from watchers.normalize import normalize_object

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PLURALS = {view.__name__: (group, plural) for (group, plural), view in VIEWS.items()}


def _argocd() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in ("diff-cache-application", "live-child-application"):
        yield name, load_fixture(f"argocd/{name}.yaml")
    yield "out-of-sync", argocd_app(sync="OutOfSync", out_of_sync=[("Deployment", "prod", "web")])
    yield "degraded", argocd_app(health="Degraded", conditions=[("SyncError", "boom")])
    yield "self-heal", argocd_app(auto_sync=True, self_heal=True, images=["nginx:1.27"])
    yield "no-operation", argocd_app(operation=None, auto_sync=False)
    yield (
        "history",
        argocd_app(
            history=[history_entry(i, REV_B, at(i), username="jane") for i in range(1, 14)],
            operation=operation_state("Running", REV_B, started_at=at(20), automated=True),
        ),
    )
    yield "stale-sync", argocd_app(sync="OutOfSync", reconciled_at="2020-01-01T00:00:00Z")


def _flux() -> Iterator[tuple[str, dict[str, Any]]]:
    yield "kustomization", kustomization("apps")
    yield (
        "kustomization-failed",
        kustomization("apps", ready="False", reason="BuildFailed", message="build failed"),
    )
    yield "kustomization-moved", kustomization("apps", applied=REV2, labels={"team": "a"})
    yield "kustomization-suspended", kustomization("apps", suspend=True, healthy="False")
    yield "helmrelease", helmrelease("podinfo")
    yield (
        "helmrelease-failed",
        helmrelease("podinfo", ready="False", reason="UpgradeFailed", message="failed"),
    )
    yield (
        "helmrelease-history",
        helmrelease(
            "podinfo",
            history=[helm_snapshot(3, "6.1.0"), helm_snapshot(2, "6.0.0", "superseded")],
            remediated=("True", "RollbackSucceeded", "rolled back"),
        ),
    )
    yield "helmrelease-example", load_fixture("flux/helmrelease-history-example.yaml")
    for kind in ("GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket"):
        yield kind, source(kind)
        yield f"{kind}-failed", source(kind, ready="False", reason="GitOperationFailed")


def _events() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in (
        "argocd/event-automated-sync.json",
        "argocd/event-health-status-updated.json",
        "argocd/event-rollback-initiated.json",
        "argocd/event-sync-status-updated.json",
        "flux/event-helmrelease-drift.json",
        "flux/event-helmrelease-rollback.json",
        "flux/event-kustomization-changeset.json",
    ):
        yield name, load_fixture(name)
    yield "flux-event", flux_event()


CORPUS = [*_argocd(), *_flux(), *_events()]


def _typed(obj: dict[str, Any], watch_type: str = "MODIFIED") -> Any:
    """The object as the service's watcher hands it on: decoded from a watch line's bytes."""
    decoder = ResourceDecoder(VIEWS[PLURALS[obj["kind"]]])
    line = orjson.dumps({"type": watch_type, "object": obj})
    _, decoded = decoder.event(line)
    return decoded


class _Strict(Mapping[str, Any]):
    """A view as a JSON object that fails the test when a key its Struct lacks is read."""

    def __init__(self, view: msgspec.Struct, path: str) -> None:
        self._path = path
        self._declared = {f.encode_name for f in msgspec.structs.fields(view)}
        self._data: dict[str, Any] = {}
        if isinstance(view, ObjectView):
            self._declared.add("kind")
            self._data["kind"] = type(view).__name__
        for field in msgspec.structs.fields(view):
            value = getattr(view, field.name)
            if value is not None:
                self._data[field.encode_name] = _strict(value, f"{path}.{field.encode_name}")

    def _check(self, key: object) -> None:
        if key not in self._declared:
            raise AssertionError(f"the normalizer reads {self._path}.{key}, not declared")

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        self._check(key)
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        self._check(key)
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        raise AssertionError(f"the normalizer iterates over {self._path}")

    def __len__(self) -> int:
        return len(self._data)


def _strict(value: Any, path: str) -> Any:
    if isinstance(value, msgspec.Struct):
        return _Strict(value, path)
    if isinstance(value, list):
        return [_strict(v, f"{path}[]") for v in value]
    return value


@pytest.mark.parametrize(("name", "obj"), CORPUS, ids=[name for name, _ in CORPUS])
def test_normalizers_read_only_declared_fields(name: str, obj: dict[str, Any]) -> None:
    view = _typed(obj)
    assert isinstance(view, ObjectView), f"{name} fell back to the full parse"
    assert normalize_object(_Strict(view, obj["kind"]), "prod", NOW) == normalize_object(
        obj, "prod", NOW
    )


@pytest.mark.parametrize(("name", "obj"), CORPUS, ids=[name for name, _ in CORPUS])
def test_typed_decoding_normalizes_as_the_full_object(name: str, obj: dict[str, Any]) -> None:
    full = normalize_object(orjson.loads(orjson.dumps(obj)), "prod", NOW)
    assert normalize_object(object_mapping(_typed(obj)), "prod", NOW) == full


def test_list_pages_decode_into_views_with_kind_and_api_version() -> None:
    events = [obj for _, obj in _events() if obj.get("apiVersion") == "v1"]
    for event in events:
        del event["kind"], event["apiVersion"]  # as built-in list items come
    body = orjson.dumps(
        {
            "kind": "EventList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "42", "continue": "next-page"},
            "items": events,
        }
    )
    typed, version, token = ResourceDecoder(VIEWS[("", "events")]).page(body)
    full, full_version, full_token = JsonDecoder().page(body)
    assert (version, token) == (full_version, full_token) == ("42", "next-page")
    assert [object_mapping(item) for item in typed] == [
        {k: v for k, v in object_mapping(item).items()} for item in typed
    ]
    assert [normalize_object(object_mapping(i), "c", NOW) for i in typed] == [
        normalize_object(i, "c", NOW) for i in full
    ]
    assert all(object_mapping(i)["apiVersion"] == "v1" for i in typed)


def test_a_page_the_view_cannot_take_is_parsed_in_full() -> None:
    app = argocd_app()
    app["status"]["history"] = "not a list"
    decoder = ResourceDecoder(VIEWS[("argoproj.io", "applications")])
    body = orjson.dumps({"kind": "ApplicationList", "metadata": {}, "items": [app]})
    items, _, _ = decoder.page(body)
    assert items == [app]
    assert decoder.fallbacks == 1


def test_an_error_event_reaches_the_watcher_as_its_status() -> None:
    decoder = ResourceDecoder(VIEWS[("argoproj.io", "applications")])
    status = {"kind": "Status", "status": "Failure", "code": 410, "reason": "Expired"}
    assert decoder.event(orjson.dumps({"type": "ERROR", "object": status})) == ("ERROR", status)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CORPUS), st.data(), _json)
def test_any_value_anywhere_normalizes_as_the_full_parse(
    case: tuple[str, dict[str, Any]], data: st.DataObject, value: Any
) -> None:
    obj = copy.deepcopy(case[1])
    paths = [p for p in _paths(obj) if p and p[0] != "kind"]
    path = data.draw(st.sampled_from(paths))
    target: Any = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    decoded = _typed(obj)
    full = orjson.loads(orjson.dumps(obj))
    mapping = object_mapping(decoded)
    assume(not _hollow(full, mapping))
    assert normalize_object(mapping, "c", NOW) == normalize_object(full, "c", NOW)


def _hollow(full: Any, pruned: Any) -> bool:
    """Whether a non-empty object holds none of the fields its view declares: the view reads
    it as empty, and a normalizer that tests an object's truth (`if not item`) tells the two
    apart. Only made-up objects are like that; the known cases are documented in
    watchers/decode/__init__.py."""
    if isinstance(full, dict) and isinstance(pruned, dict):
        if full and not pruned:
            return True
        return any(_hollow(full[k], pruned[k]) for k in pruned if k in full)
    if isinstance(full, list) and isinstance(pruned, list):
        return any(_hollow(f, p) for f, p in zip(full, pruned, strict=False))
    return False


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([c for c in CORPUS if c[1]["kind"] != "Event"]), st.data(), _json)
def test_equal_digests_mean_the_same_app_state(
    case: tuple[str, dict[str, Any]], data: st.DataObject, value: Any
) -> None:
    """What the fast path drops (an equal digest for the same object: kind, namespace and name
    are its key) is what the pipeline would have made the same AppState of, and detected
    nothing in, either way."""
    before = copy.deepcopy(case[1])
    after = copy.deepcopy(before)
    identity = {("metadata",), ("metadata", "name"), ("metadata", "namespace")}
    paths = [
        p
        for p in _paths(after)
        if len(p) > 1 and p[0] in ("metadata", "spec", "status") and p[:2] not in identity
    ]
    path = data.draw(st.sampled_from(paths))
    target: Any = after
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    old, new = _typed(before), _typed(after)
    if not isinstance(new, ObjectView) or digest(old) != digest(new):
        return
    a = normalize_object(object_mapping(old), "c", NOW)
    b = normalize_object(object_mapping(new), "c", NOW)
    if isinstance(a, AppState) and isinstance(b, AppState):
        assert dataclasses.replace(a, reconciled_at=None) == dataclasses.replace(
            b, reconciled_at=None
        )
        assert detect(a, b, NOW) == detect(b, a, NOW) == []
    else:
        assert a == b


def test_what_moves_at_every_refresh_leaves_the_digest_alone() -> None:
    app = argocd_app("checkout")
    refreshed = copy.deepcopy(app)
    refreshed["status"]["reconciledAt"] = "2030-01-01T00:00:00Z"
    refreshed["metadata"]["resourceVersion"] = "99"
    refreshed["metadata"]["managedFields"] = [{"manager": "argocd", "time": "2030-01-01T00:00:00Z"}]
    assert digest(_typed(app)) == digest(_typed(refreshed))
    annotated = copy.deepcopy(refreshed)
    annotated["metadata"]["annotations"] = {"driftbot.dev/notify": "team-a"}  # routes read these
    assert digest(_typed(annotated)) != digest(_typed(refreshed))
    changed = copy.deepcopy(refreshed)
    changed["status"]["sync"]["status"] = "OutOfSync"
    assert digest(_typed(changed)) != digest(_typed(refreshed))

    ks = kustomization("apps")
    ks["status"]["history"] = [
        {"digest": "sha256:a", "firstReconciled": at(1), "lastReconciled": at(5),
         "lastReconciledStatus": "ReconciliationSucceeded", "totalReconciliations": 5,
         "metadata": {"revision": "main@sha1:a"}},
        {"digest": "sha256:b", "firstReconciled": at(0), "lastReconciled": at(1),
         "lastReconciledStatus": "ReconciliationSucceeded", "totalReconciliations": 1,
         "metadata": {"revision": "main@sha1:b"}},
    ]  # fmt: skip
    reconciled = copy.deepcopy(ks)
    reconciled["status"]["history"][0].update(lastReconciled=at(10), totalReconciliations=6)
    assert digest(_typed(ks)) == digest(_typed(reconciled))
    # lastHandledReconcileAt moves only when a reconcile was requested (the requestedAt
    # annotation), and a reconcile asked for from chat is followed to its result through it.
    requested = copy.deepcopy(reconciled)
    requested["status"]["lastHandledReconcileAt"] = at(10)
    assert digest(_typed(requested)) != digest(_typed(reconciled))
    reordered = copy.deepcopy(ks)
    reordered["status"]["history"][1]["lastReconciled"] = at(20)
    assert digest(_typed(ks)) != digest(_typed(reordered))


def test_a_line_nested_too_deep_for_the_view_is_parsed_in_full() -> None:
    app = orjson.dumps(argocd_app())
    decoder = ResourceDecoder(VIEWS[("argoproj.io", "applications")])
    deep = b"[" * 1000 + b"]" * 1000
    line = b'{"type": "ADDED", "object": ' + app[:-1] + b', "x": ' + deep + b"}}"
    watch_type, obj = decoder.event(line)
    assert watch_type == "ADDED" and isinstance(obj, dict) and decoder.fallbacks == 1
    too_deep = line.replace(deep, b"[" * 1100 + b"]" * 1100)
    with pytest.raises(ValueError, match="depth"):
        decoder.event(too_deep)
