"""Alerts link to the status page when driftbot has a public address (`server.public_url`):
every event kind, in Slack and Teams, single, resolved and grouped; nothing without one; the
path parts URL-encoded; Block Kit and Adaptive Card limits kept whatever the names."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from core.model import EventKind, GitOpsEvent
from formatters.group import EventGroup
from formatters.slack import (
    render_slack,
    render_slack_cleared,
    render_slack_group,
    render_slack_resolved,
)
from formatters.teams import render_teams, render_teams_group, render_teams_resolved
from tests.formatters.adaptive_card import assert_valid_teams, card_of
from tests.formatters.blockkit import assert_valid_slack
from tests.formatters.builders import event, flux_state, recovery
from tests.formatters.cases import CASE_IDS, HEADLINES

PUBLIC = "https://driftbot.example.com/"
APP_PAGE = "https://driftbot.example.com/status/prod/argocd/guestbook"


def _slack_links(message: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, url, action_id) of every link button."""
    return [
        (b["text"]["text"], b["url"], b["action_id"])
        for block in message["blocks"]
        if block["type"] == "actions"
        for b in block["elements"]
        if "url" in b
    ]


def _teams_links(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["title"], a["url"]) for a in card_of(payload).get("actions", [])]


def _page_of(ev: GitOpsEvent) -> str:
    return f"https://driftbot.example.com/status/{ev.cluster}/{ev.namespace}/{ev.name}"


@pytest.mark.parametrize(("case", "ev", "_headline"), HEADLINES, ids=CASE_IDS)
def test_every_alert_has_a_status_page_button_beside_the_others(
    case: str, ev: GitOpsEvent, _headline: str
) -> None:
    slack = render_slack(ev, public_url=PUBLIC)
    assert_valid_slack(slack)
    without = _slack_links(render_slack(ev))
    assert _slack_links(slack) == [*without, ("Status page", _page_of(ev), "driftbot_open_page")]
    teams = render_teams(ev, public_url=PUBLIC)
    assert_valid_teams(teams)
    assert _teams_links(teams) == [*_teams_links(render_teams(ev)), ("Status page", _page_of(ev))]


def test_a_resolved_alert_keeps_the_link_and_no_public_url_means_no_link() -> None:
    problem = event(EventKind.HEALTH_DEGRADED)
    healed = recovery(EventKind.HEALTH_RECOVERED)
    edit = render_slack_resolved(problem, healed, public_url=PUBLIC)
    assert_valid_slack(edit)
    assert ("Status page", APP_PAGE, "driftbot_open_page") in _slack_links(edit)
    card = render_teams_resolved(problem, healed, public_url=PUBLIC)
    assert ("Status page", APP_PAGE) in _teams_links(card)
    for message in (render_slack(problem), render_slack_resolved(problem, healed)):
        assert "driftbot.example.com" not in str(message)
        assert "driftbot_open_page" not in str(message)
    assert "Status page" not in str(render_teams(problem))
    assert "Status page" not in str(render_teams(problem, public_url=""))


def test_a_storm_links_its_environment_or_every_environment() -> None:
    states = [flux_state(name=f"app-{i}") for i in range(5)]
    members = [event(EventKind.DRIFT_DETECTED, state) for state in states]
    group = EventGroup.of(members)
    message = render_slack_group(group, public_url=PUBLIC)
    assert_valid_slack(message)
    page = "https://driftbot.example.com/status/prod"
    assert _slack_links(message) == [("Status page", page, "driftbot_open_page")]
    assert _teams_links(render_teams_group(group, public_url=PUBLIC)) == [("Status page", page)]
    spread = EventGroup.of([*members, event(EventKind.DRIFT_DETECTED, flux_state(cluster="qa"))])
    assert _slack_links(render_slack_group(spread, public_url=PUBLIC)) == [
        ("Status page", "https://driftbot.example.com/status", "driftbot_open_page")
    ]
    healed = [recovery(EventKind.DRIFT_RESOLVED, state) for state in states]
    cleared = replace(group, resolved=tuple(healed))
    assert cleared.cleared
    over = render_slack_group(cleared, public_url=PUBLIC)
    assert_valid_slack(over)
    assert _slack_links(over) == [("Status page", page, "driftbot_open_page")]
    assert "driftbot.example.com" not in str(render_slack_group(group))
    assert "driftbot.example.com" not in str(render_slack_cleared(cleared))
    assert "actions" not in card_of(render_teams_group(group))


def test_names_are_url_encoded_and_a_link_too_long_for_slack_is_left_out() -> None:
    odd = event(
        EventKind.DRIFT_DETECTED,
        flux_state(name="web app/v2?x=1#top", namespace="team a", cluster="eu west"),
    )
    links = _slack_links(render_slack(odd, public_url=PUBLIC))
    assert ("Status page", "https://driftbot.example.com/status/eu%20west/team%20a/"
            "web%20app%2Fv2%3Fx%3D1%23top", "driftbot_open_page") in links  # fmt: skip
    huge = event(EventKind.DRIFT_DETECTED, flux_state(name="n" * 4000))
    message = render_slack(huge, public_url=PUBLIC)
    assert_valid_slack(message)
    assert all(label != "Status page" for label, _, _ in _slack_links(message))
    card = render_teams(huge, public_url=PUBLIC)
    assert_valid_teams(card)
