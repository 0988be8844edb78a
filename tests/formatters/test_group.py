from __future__ import annotations

import pytest

from core.model import EventKind, Severity, Tool
from formatters.group import EventGroup
from tests.formatters.builders import argocd_state, event, flux_state


def test_shared_fields_are_worked_out() -> None:
    members = [event(EventKind.DRIFT_DETECTED, flux_state(name=n)) for n in ("a", "b")]
    group = EventGroup.of(members)
    assert group.id == members[0].id
    assert group.count == 2
    assert (group.kind, group.tool, group.cluster, group.namespace) == (
        EventKind.DRIFT_DETECTED,
        Tool.FLUX,
        "prod",
        "flux-system",
    )
    assert group.revision == members[0].revision


def test_differing_fields_are_left_empty() -> None:
    group = EventGroup.of(
        [
            event(EventKind.DRIFT_DETECTED, flux_state()),
            event(EventKind.DEPLOY_FAILED, argocd_state(cluster="staging")),
        ],
        id="storm-1",
    )
    assert group.id == "storm-1"
    assert (group.kind, group.tool, group.cluster, group.namespace, group.revision) == (
        None,
        None,
        "",
        "",
        "",
    )
    assert group.severity is Severity.CRITICAL


def test_an_empty_group_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        EventGroup.of([])
    with pytest.raises(ValueError, match="at least one event"):
        EventGroup(events=())
