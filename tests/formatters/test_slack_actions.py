from __future__ import annotations

import pytest

from core.model import AppKey, EventKind, Tool
from formatters.slack_actions import (
    MAX_VALUE,
    MUTE_ACTIONS,
    ActionTarget,
    action_value,
    mute_action_id,
    parse_action_value,
)
from tests.formatters.builders import argocd_state, event, flux_state


def test_value_round_trips_the_app_key() -> None:
    ev = event(EventKind.DRIFT_DETECTED, flux_state())
    target = parse_action_value(action_value(ev))
    assert target == ActionTarget(
        ev.id, AppKey(Tool.FLUX, "prod", "flux-system", "Kustomization", "apps")
    )


def test_an_oversized_key_leaves_only_the_event_id() -> None:
    ev = event(EventKind.DRIFT_DETECTED, argocd_state(name="n" * 5000))
    value = action_value(ev)
    assert len(value) <= MAX_VALUE
    assert parse_action_value(value) == ActionTarget(ev.id, None)


def test_mute_action_ids() -> None:
    assert [mute_action_id(h) for h in (1, 4, 24)] == list(MUTE_ACTIONS)
    assert MUTE_ACTIONS["driftbot_mute_4h"] == 4


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a driftbot"),
        ('{"v": 2, "e": "x"}', "not a driftbot"),
        ('{"v": 1}', "no event id"),
        ('{"v": 1, "e": "x", "k": ["argocd"]}', "malformed app key"),
        ('{"v": 1, "e": "x", "k": ["argocd", 1, 2, 3, 4]}', "malformed app key"),
        ('{"v": 1, "e": "x", "k": ["jenkins", "c", "n", "k", "a"]}', "unknown tool"),
    ],
)
def test_foreign_values_are_refused_with_a_reason(value: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_action_value(value)
