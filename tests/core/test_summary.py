"""What an app's state means in one word, and clusters summed up worst first (core.summary)."""

from __future__ import annotations

import pytest

from core.model import AppState, Condition, Health, Operation, SyncStatus
from core.summary import Condition as AppCondition
from core.summary import condition, summarize
from tests.formatters.builders import argocd_state, flux_state, helmrelease_state

ok = {"sync": SyncStatus.SYNCED, "health": Health.HEALTHY}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (argocd_state(**ok), AppCondition.OK),
        (argocd_state(sync=SyncStatus.SYNCED, health=Health.DEGRADED), AppCondition.FAILING),
        (argocd_state(sync=SyncStatus.SYNCED, health=Health.MISSING), AppCondition.FAILING),
        (argocd_state(**ok, operation=Operation(phase="Failed")), AppCondition.FAILING),
        (argocd_state(sync=SyncStatus.OUT_OF_SYNC, health=Health.HEALTHY), AppCondition.DRIFTED),
        (
            argocd_state(sync=SyncStatus.OUT_OF_SYNC, desired_revision="b" * 40),
            AppCondition.PENDING,
        ),
        (
            argocd_state(
                sync=SyncStatus.UNKNOWN,
                conditions=(Condition("ComparisonError", "True", "", "repo not found"),),
            ),
            AppCondition.FAILING,
        ),
        (argocd_state(**ok, operation=Operation(phase="Running")), AppCondition.PROGRESSING),
        (argocd_state(sync=SyncStatus.SYNCED, health=Health.PROGRESSING), AppCondition.PROGRESSING),
        (argocd_state(**ok, suspended=True), AppCondition.PAUSED),
        (argocd_state(sync=SyncStatus.UNKNOWN, health=Health.UNKNOWN), AppCondition.UNKNOWN),
        (flux_state(ready=True, sync=SyncStatus.SYNCED), AppCondition.OK),
        (flux_state(ready=False, ready_reason="BuildFailed"), AppCondition.FAILING),
        (flux_state(ready=False, ready_reason="Progressing"), AppCondition.PROGRESSING),
        (flux_state(ready=False, ready_reason="BuildFailed", suspended=True), AppCondition.PAUSED),
        (helmrelease_state(ready=True), AppCondition.OK),
    ],
)
def test_what_a_state_means(state: AppState, expected: AppCondition) -> None:
    assert condition(state) is expected


def test_deleted_apps_are_not_counted() -> None:
    summaries = summarize([argocd_state(**ok), argocd_state(name="gone", deleted=True)])
    assert summaries[0].total == 1
