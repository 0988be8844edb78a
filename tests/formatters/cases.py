"""The expected headline of every event kind: one table, checked in every output format."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from core.model import EventKind, GitOpsEvent
from tests.formatters.builders import (
    NOW,
    OLD_SHA,
    argocd_state,
    event,
    flux_state,
    helmrelease_state,
)

_ROLLBACK_STATE = argocd_state(revision=OLD_SHA)


def _recovered(kind: EventKind) -> GitOpsEvent:
    return replace(event(kind, at=NOW + timedelta(minutes=14)), since=NOW)


HEADLINES: list[tuple[str, GitOpsEvent, str]] = [
    (
        "drift_detected",
        event(EventKind.DRIFT_DETECTED),
        "guestbook on prod no longer matches Git",
    ),
    (
        "drift_resolved",
        _recovered(EventKind.DRIFT_RESOLVED),
        "guestbook on prod matches Git again (after 14 min)",
    ),
    (
        "deploy_started",
        event(EventKind.DEPLOY_STARTED, actor="automated"),
        "guestbook on prod: deploying ea87599 automatically",
    ),
    (
        "deploy_succeeded",
        event(EventKind.DEPLOY_SUCCEEDED, previous_revision=OLD_SHA, actor="alice@example.com"),
        "guestbook on prod was updated from 731f7ea to ea87599 by alice@example.com",
    ),
    (
        "deploy_failed",
        event(EventKind.DEPLOY_FAILED),
        "guestbook on prod: deploy of ea87599 failed",
    ),
    (
        "deploy_failed_flux",
        event(EventKind.DEPLOY_FAILED, flux_state()),
        "apps on prod: deploy of main@67e2c98 failed",
    ),
    (
        "health_degraded",
        event(EventKind.HEALTH_DEGRADED),
        "guestbook on prod is unhealthy",
    ),
    (
        "health_recovered",
        _recovered(EventKind.HEALTH_RECOVERED),
        "guestbook on prod is healthy again (after 14 min)",
    ),
    (
        "rollback_succeeded",
        event(
            EventKind.ROLLBACK_SUCCEEDED,
            _ROLLBACK_STATE,
            previous_revision="ea8759964626a583667a2bfd08f334ec2070040a",
            actor="alice@example.com",
        ),
        "guestbook on prod: ea87599 was rolled back by alice@example.com; 731f7ea runs again",
    ),
    (
        "rollback_succeeded_flux",
        event(
            EventKind.ROLLBACK_SUCCEEDED,
            helmrelease_state(revision="6.6.0+cdd538a0167e", chart_version="6.6.0+cdd538a0167e"),
            previous_revision="6.6.1+0cc9a8446c95",
        ),
        "podinfo on staging: upgrade to 6.6.1 failed and was rolled back to 6.6.0",
    ),
    (
        "rollback_failed",
        event(EventKind.ROLLBACK_FAILED, _ROLLBACK_STATE),
        "guestbook on prod: rollback to 731f7ea failed",
    ),
    (
        "out_of_sync",
        event(EventKind.OUT_OF_SYNC),
        "guestbook on prod: ea87599 is waiting to be deployed",
    ),
    (
        "suspended",
        event(EventKind.SUSPENDED, actor="bob"),
        "guestbook on prod was paused by bob: new changes in Git are not deployed",
    ),
    (
        "resumed",
        event(EventKind.RESUMED),
        "guestbook on prod was resumed and follows Git again",
    ),
    (
        "source_failed",
        event(EventKind.SOURCE_FAILED, flux_state(kind="GitRepository", name="flux-system")),
        "flux-system on prod cannot fetch its source",
    ),
    (
        "source_recovered",
        event(EventKind.SOURCE_RECOVERED, flux_state(kind="GitRepository", name="flux-system")),
        "flux-system on prod can fetch its source again",
    ),
    (
        "deleted",
        event(EventKind.DELETED),
        "guestbook on prod was deleted",
    ),
    (
        "flapping",
        event(EventKind.FLAPPING),
        "guestbook on prod keeps flipping between states; further changes are held until it "
        "settles",
    ),
]

CASE_IDS = [case[0] for case in HEADLINES]

WORDS: dict[str, str] = {
    "drift_detected": "Needs attention",
    "drift_resolved": "Resolved",
    "deploy_started": "For your information",
    "deploy_succeeded": "For your information",
    "deploy_failed": "Needs action",
    "deploy_failed_flux": "Needs action",
    "health_degraded": "Needs action",
    "health_recovered": "Resolved",
    "rollback_succeeded": "Needs attention",
    "rollback_succeeded_flux": "Needs attention",
    "rollback_failed": "Needs action",
    "out_of_sync": "For your information",
    "suspended": "Needs attention",
    "resumed": "For your information",
    "source_failed": "Needs attention",
    "source_recovered": "Resolved",
    "deleted": "Needs attention",
    "flapping": "Needs attention",
}
"""What the reader has to do, in words, for each case: the first line is `word · headline`."""


def first_line(case: str, headline: str) -> str:
    return f"{WORDS[case]} · {headline}"
