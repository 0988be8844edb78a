from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.model import AppState, EventKind, GitOpsEvent
from formatters import phrases
from formatters.escape import slack
from formatters.group import EventGroup
from tests.formatters.builders import (
    NOW,
    OLD_SHA,
    SHA,
    argocd_state,
    event,
    flux_state,
    helmrelease_state,
)
from tests.formatters.cases import CASE_IDS, HEADLINES


def test_the_headline_table_covers_every_event_kind() -> None:
    assert {e.kind for _, e, _ in HEADLINES} == set(EventKind)


@pytest.mark.parametrize(("case", "ev", "expected"), HEADLINES, ids=CASE_IDS)
def test_headline(case: str, ev: GitOpsEvent, expected: str) -> None:
    assert phrases.headline(ev) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (14 * 60 + 59, "14 min"),
        (3600, "1 h"),
        (2 * 3600 + 5 * 60, "2 h 5 min"),
        (3 * 86400, "3 d"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
        (-5, "0 s"),
    ],
)
def test_duration(seconds: int, expected: str) -> None:
    assert phrases.duration(timedelta(seconds=seconds)) == expected


def test_time_is_shown_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert phrases.time_utc(datetime(2026, 11, 20, 10, 40, tzinfo=paris)) == "2026-11-20 09:40 UTC"
    assert phrases.time_utc(datetime(2026, 11, 20, 9, 40)) == "2026-11-20 09:40 UTC"


def test_recovery_without_since_has_no_duration() -> None:
    ev = event(EventKind.DRIFT_RESOLVED)
    assert phrases.headline(ev) == "guestbook on prod matches Git again"


def test_recovery_duration_can_come_from_the_problem() -> None:
    ev = event(EventKind.DRIFT_RESOLVED, at=NOW + timedelta(hours=2, minutes=5))
    assert phrases.headline(ev, problem_start=NOW).endswith("(after 2 h 5 min)")


def test_mixed_naive_and_aware_times_give_no_duration_rather_than_an_error() -> None:
    ev = replace(event(EventKind.DRIFT_RESOLVED), since=datetime(2026, 11, 20, 9, 0))
    assert phrases.recovery_time(ev) is None


def test_resolved_headline() -> None:
    original = event(EventKind.DRIFT_DETECTED)
    fixed = event(EventKind.DRIFT_RESOLVED, at=NOW + timedelta(minutes=14))
    assert phrases.resolved_headline(original, fixed) == (
        "guestbook on prod matches Git again (after 14 min)"
    )
    assert phrases.first_line(fixed, resolves=original) == (
        "Resolved · guestbook on prod matches Git again (after 14 min)"
    )


@pytest.mark.parametrize(
    ("problem", "rollback", "expected"),
    [
        (
            event(EventKind.DEPLOY_FAILED, helmrelease_state(), revision="6.6.1+0cc9a8446c95"),
            event(
                EventKind.ROLLBACK_SUCCEEDED,
                helmrelease_state(
                    revision="6.6.0+cdd538a0167e", chart_version="6.6.0+cdd538a0167e"
                ),
                previous_revision="6.6.1+0cc9a8446c95",
                at=NOW + timedelta(minutes=1),
            ),
            "Needs attention · podinfo on staging: upgrade to 6.6.1 failed and was rolled back "
            "to 6.6.0",
        ),
        (
            event(EventKind.DEPLOY_FAILED),
            event(
                EventKind.ROLLBACK_SUCCEEDED,
                argocd_state(revision=OLD_SHA),
                previous_revision=SHA,
                actor="alice@example.com",
            ),
            "Needs attention · guestbook on prod: deploy of ea87599 failed and was rolled back "
            "to 731f7ea by alice@example.com",
        ),
        (
            event(EventKind.HEALTH_DEGRADED),
            event(
                EventKind.ROLLBACK_SUCCEEDED,
                argocd_state(revision=OLD_SHA),
                previous_revision=SHA,
                actor="alice@example.com",
            ),
            "Needs attention · guestbook on prod: ea87599 was unhealthy and was rolled back to "
            "731f7ea by alice@example.com",
        ),
    ],
    ids=["flux-upgrade", "argocd-failed-deploy", "argocd-unhealthy-deploy"],
)
def test_a_rollback_that_closes_an_alert_says_the_release_did_not_ship(
    problem: GitOpsEvent, rollback: GitOpsEvent, expected: str
) -> None:
    line = phrases.first_line(rollback, resolves=problem)
    assert line == expected
    assert "Resolved" not in line


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (argocd_state(), "namespace test-lla on prod"),
        (argocd_state(destination_namespace=""), "cluster prod"),
        (
            argocd_state(destination_cluster="https://10.0.0.7:6443", destination_namespace="web"),
            "namespace web on 10.0.0.7 (deployed from prod)",
        ),
        (flux_state(), "namespace flux-system on prod"),
        (flux_state(destination_namespace="shop"), "namespace shop on prod"),
    ],
)
def test_where_is_the_destination_and_the_object_is_a_detail(
    state: AppState, expected: str
) -> None:
    ev = event(EventKind.DRIFT_DETECTED, state)
    assert phrases.where(ev) == expected
    assert phrases.object_line(event(EventKind.DRIFT_DETECTED)) == (
        "Application argocd/guestbook (Argo CD), project default"
    )


def test_values_in_a_headline_are_escaped_and_shortened() -> None:
    ev = event(EventKind.DRIFT_DETECTED, argocd_state(name="<!channel>" + "x" * 200))
    text = phrases.headline(ev, slack)
    assert text.startswith("&lt;!channel&gt;")
    assert "<" not in text
    assert len(text) < 200


def test_an_unnamed_app_still_reads_as_a_sentence() -> None:
    ev = event(EventKind.DELETED, argocd_state(name="", cluster=""))
    assert phrases.headline(ev) == "an unnamed app was deleted"


def test_storm_headline() -> None:
    members = [event(EventKind.DRIFT_DETECTED, flux_state(name=f"app-{i}")) for i in range(37)]
    group = EventGroup.of(members)
    assert phrases.group_headline(group) == "37 apps drifted on prod after revision main@67e2c98"


def test_storm_headline_of_mixed_kinds_and_clusters() -> None:
    members = [
        event(EventKind.DRIFT_DETECTED, argocd_state(name="a", cluster="prod")),
        event(EventKind.DEPLOY_FAILED, argocd_state(name="b", cluster="staging", revision="1")),
        event(EventKind.DEPLOY_FAILED, argocd_state(name="c", cluster="staging", revision="2")),
    ]
    group = EventGroup.of(members)
    assert phrases.group_headline(group) == "3 apps need attention"
    assert phrases.group_breakdown(group) == "2 deploy failed, 1 drifted"
    assert phrases.member_line(members[1], group) == "b on staging: deploy failed, 1"


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_has_a_storm_headline(kind: EventKind) -> None:
    group = EventGroup.of(
        [event(kind, argocd_state(name=n), at=NOW.astimezone(UTC)) for n in ("a", "b")]
    )
    text = phrases.group_headline(group)
    assert text.startswith("2 ")
    assert "on prod" in text
