"""What a storm's notifications become in Slack and Teams as its members recover: the Slack
message is edited to count them and, once all are back, says so once in its thread; Teams gets
no card for a count, one card when the storm grows and one when it is over."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from bot.delivery.receivers import Notification, render_console_text
from bot.delivery.slack_receiver import plan_slack
from bot.delivery.teams_receiver import plan_teams
from core.model import EventKind, GitOpsEvent
from formatters.group import EventGroup
from tests.formatters.builders import NOW, argocd_state, event

NAMES = [f"svc-{i}" for i in range(8)]
DRIFTS = [event(EventKind.DRIFT_DETECTED, argocd_state(name=n)) for n in NAMES]


def _back(count: int) -> list[GitOpsEvent]:
    return [
        replace(
            event(EventKind.DRIFT_RESOLVED, argocd_state(name=d.name), NOW + timedelta(minutes=7)),
            resolves=d.id,
            since=d.occurred_at,
        )
        for d in DRIFTS[:count]
    ]


def _update(back: int, told: int = 8, told_resolved: int = 0, members: int = 8) -> Notification:
    group = EventGroup.of(
        DRIFTS[:members], resolved=_back(back), told=told, told_resolved=told_resolved
    )
    return Notification(group.events[0], ("chan",), group=group, updates=group.id)


def _text(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_a_partial_recovery_edits_the_slack_message_and_sends_teams_nothing() -> None:
    note = _update(back=3)
    [edit] = plan_slack(note)
    assert edit["op"] == "update" and edit["target"] == DRIFTS[0].id
    assert "3 of 8 back in sync" in _text(edit["message"])
    assert "driftbot_ack" in _text(edit["message"]), "still open: the buttons stay"
    assert plan_teams(note) == []
    assert "3 of 8 back in sync" in render_console_text(note)


def test_the_update_that_clears_the_storm_says_so_once_in_slack_and_in_one_teams_card() -> None:
    note = _update(back=8, told_resolved=3)
    edit, reply = plan_slack(note)
    assert edit["op"] == "update"
    assert "All 8 apps match Git again on prod after 7 min" in _text(edit["message"])
    assert "driftbot_ack" not in _text(edit["message"]), "nothing left to acknowledge"
    assert reply["op"] == "post" and reply["thread_of"] == DRIFTS[0].id
    assert reply["notification"] == note.id
    [card] = plan_teams(note)
    assert "All 8 apps match Git again on prod after 7 min" in _text(card)
    # The same cleared group told again (nothing new recovered) replies no more.
    again = _update(back=8, told_resolved=8)
    assert [p["op"] for p in plan_slack(again)] == ["update"]
    assert plan_teams(again) == []


def test_a_storm_that_grows_is_a_teams_card_as_it_stands() -> None:
    note = _update(back=0, told=5)
    [card] = plan_teams(note)
    assert "8 apps drifted" in _text(card)
    assert [p["op"] for p in plan_slack(note)] == ["update"]
