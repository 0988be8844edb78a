from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from core.model import EventKind, GitOpsEvent, ResourceRef
from formatters.group import EventGroup
from formatters.text import render_group_text, render_text, render_text_resolved
from tests.formatters.builders import (
    ARGOCD_URL,
    COMMIT_URL,
    NOW,
    OLD_SHA,
    argocd_state,
    event,
    flux_state,
    helmrelease_state,
    recovery,
)
from tests.formatters.cases import CASE_IDS, HEADLINES, first_line


@pytest.mark.parametrize(("case", "ev", "expected"), HEADLINES, ids=CASE_IDS)
def test_first_line_is_the_headline(case: str, ev: GitOpsEvent, expected: str) -> None:
    assert render_text(ev).splitlines()[0] == first_line(case, expected)


def test_details_are_indented_below_the_headline() -> None:
    ev = event(EventKind.DEPLOY_FAILED, previous_revision=OLD_SHA, actor="alice@example.com")
    lines = render_text(ev).splitlines()
    assert lines[0] == "Needs action · guestbook on prod: deploy of ea87599 failed"
    assert all(line.startswith("    ") for line in lines[1:])
    assert lines[1:] == [
        "    why:                one or more objects failed to apply (dry run)",
        "    where:              namespace test-lla on prod",
        "    revision:           ea87599 (still running 731f7ea)",
        "    initiated by:       alice@example.com",
        "    problem began:      2026-11-20 09:40 UTC",
        "    object:             Application argocd/guestbook (Argo CD), project default",
        "    out of sync (2):    Service/test-lla/test-lla",
        "                        Deployment/test-lla/test-lla",
        f"    link:               {ARGOCD_URL}",
        f"    commit link:        {COMMIT_URL}",
    ]


def test_chart_version_and_its_change() -> None:
    ev = event(
        EventKind.DEPLOY_SUCCEEDED,
        helmrelease_state(),
        previous_revision="6.6.0+cdd538a0167e",
        previous_chart_version="6.6.0+cdd538a0167e",
    )
    text = render_text(ev)
    assert text.splitlines()[0] == (
        "For your information · podinfo on staging was updated from 6.6.0 to 6.6.1"
    )
    assert "chart version:      6.6.1+0cc9a8446c95 (was 6.6.0+cdd538a0167e)" in text
    assert "revision:" not in text  # the chart version is the revision: said once


def test_resources_end_with_and_n_more() -> None:
    refs = tuple(ResourceRef("Deployment", "shop", f"web-{i}") for i in range(50))
    ev = event(
        EventKind.DRIFT_DETECTED, argocd_state(out_of_sync_resources=refs), resource_count=73
    )
    text = render_text(ev)
    assert "out of sync (73):   Deployment/shop/web-0" in text
    assert "Deployment/shop/web-4\n" in text
    assert "web-5" not in text
    lines = [line.strip() for line in text.splitlines()]
    assert lines[lines.index("Deployment/shop/web-4") + 1] == "and 68 more"


def test_commit_subject_and_author() -> None:
    ev = replace(
        event(EventKind.DEPLOY_SUCCEEDED), commit_subject="Bump podinfo\nbody", commit_author="Jane"
    )
    assert "commit:             Bump podinfo body (by Jane)" in render_text(ev)
    assert "commit:" not in render_text(event(EventKind.DEPLOY_SUCCEEDED))


def test_multiline_message_stays_indented() -> None:
    ev = event(EventKind.DEPLOY_FAILED, message="first\nsecond")
    lines = render_text(ev).splitlines()
    index = next(i for i, line in enumerate(lines) if "first" in line)
    assert lines[index + 1] == " " * lines[index].index("first") + "second"


def test_terminal_escapes_from_the_cluster_are_removed() -> None:
    ev = event(EventKind.DEPLOY_FAILED, argocd_state(name="web\x1b[2J"), message="\x1b]0;pwned\x07")
    assert "\x1b" not in render_text(ev)
    assert "\x07" not in render_text(ev)


def test_invalid_link_is_left_out() -> None:
    ev = event(EventKind.DEPLOY_FAILED, argocd_state(url="javascript:alert(1)"))
    assert "    link:" not in render_text(ev)


def test_resolved_names_the_original_alert() -> None:
    original = event(EventKind.DRIFT_DETECTED, message="Deployment/test-lla/guestbook changed")
    text = render_text_resolved(original, recovery(EventKind.DRIFT_RESOLVED))
    lines = text.splitlines()
    assert lines[0] == "Resolved · guestbook on prod matches Git again (after 14 min)"
    assert "earlier alert:      guestbook on prod no longer matches Git" in text
    assert "what went wrong:    Deployment/test-lla/guestbook changed" in text
    assert "problem began:      2026-11-20 09:40 UTC" in text
    assert "resolved at:        2026-11-20 09:54 UTC" in text


def test_storm() -> None:
    members = [
        event(EventKind.DRIFT_DETECTED, flux_state(name=f"app-{i}"), at=NOW + timedelta(seconds=i))
        for i in range(37)
    ]
    text = render_group_text(EventGroup.of(members))
    lines = text.splitlines()
    assert lines[0] == "Needs attention · 37 apps drifted on prod after revision main@67e2c98"
    assert lines[1] == "    - app-0"
    assert lines[-1].strip() == "and 17 more"
    assert len(lines) == 1 + 20 + 1


def test_storm_of_one_is_the_event_itself() -> None:
    ev = event(EventKind.DEPLOY_FAILED)
    assert render_group_text(EventGroup.of([ev])) == render_text(ev)
