"""core.actions decided on real shapes: the states come from the fixtures through the
normalizers, the times are virtual."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from core.actions import (
    ActionRequest,
    Outcome,
    Pending,
    Plan,
    Refusal,
    Started,
    Verb,
    approval_expired,
    approve,
    confirm,
    outcome,
    plan,
)
from core.model import AppState, Operation
from formatters.actions import describe, refusal
from tests.bot.actions_cluster import checkout_app
from tests.builders_argocd import REV_A, REV_B, app_state, operation_state, when
from tests.builders_flux import kustomization
from watchers.flux import normalize_object

FIVE = timedelta(minutes=5)
FIFTEEN = timedelta(minutes=15)


def _checkout(**kwargs: object) -> AppState:
    return app_state(checkout_app(**kwargs), when(0))  # type: ignore[arg-type]


def _apps(**kwargs: object) -> AppState:
    state = normalize_object(kustomization("apps", **kwargs), "prod", when(0))  # type: ignore[arg-type]
    assert isinstance(state, AppState)
    return state


def test_a_rollback_without_an_id_goes_to_the_last_good_revision_and_says_so() -> None:
    state = _checkout()
    decided = plan(ActionRequest(Verb.ROLLBACK, state.key), state)
    assert isinstance(decided, Plan)
    assert decided.request.history_id == "40"
    assert (decided.from_revision, decided.to_revision) == (REV_B, REV_A)
    assert [c.id for c in decided.choices] == ["40", "39"]
    text = describe(decided, when(0))
    assert text.startswith("Roll back *checkout* on *prod* from `7d2e4f6` to `ea87599`")
    assert "(history 40, deployed by carol 2 days ago)" in text


@pytest.mark.parametrize(
    ("request_of", "state_of", "code"),
    [
        (lambda s: ActionRequest(Verb.ROLLBACK, s.key), lambda: _checkout(auto_sync=True),
         "auto_sync"),
        (lambda s: ActionRequest(Verb.ROLLBACK, s.key, history_id="7"), _checkout,
         "no_such_history"),
        (lambda s: ActionRequest(Verb.RECONCILE, s.key), lambda: _apps(suspend=True),
         "suspended"),
        (lambda s: ActionRequest(Verb.RESUME, s.key), _apps, "not_suspended"),
        (lambda s: ActionRequest(Verb.SYNC, s.key), _apps, "wrong_tool"),
        (lambda s: ActionRequest(Verb.RECONCILE, s.key), _checkout, "wrong_tool"),
        (lambda s: ActionRequest(Verb.TERMINATE, s.key), _checkout, "not_running"),
    ],
)  # fmt: skip
def test_refusals_are_said_up_front(request_of: object, state_of: object, code: str) -> None:
    state = state_of()  # type: ignore[operator]
    decided = plan(request_of(state), state)  # type: ignore[operator]
    assert isinstance(decided, Refusal)
    assert decided.code == code
    sentence = refusal(decided)
    assert "?" not in sentence and "{" not in sentence


def test_a_running_operation_refuses_a_sync() -> None:
    state = dataclasses.replace(_checkout(), operation=Operation(phase="Running"))
    assert plan(ActionRequest(Verb.SYNC, state.key), state) == Refusal(
        "running", {"app": "checkout", "cluster": "prod", "verb": "sync"}
    )


def _pending() -> Pending:
    state = _apps()
    decided = plan(ActionRequest(Verb.RECONCILE, state.key), state)
    assert isinstance(decided, Plan)
    return Pending("p1", decided, "U0ALICE", when(0))


def test_a_confirmation_counts_once_only_from_the_asker_and_only_within_five_minutes() -> None:
    pending = _pending()
    assert confirm(pending, "U0BOB", "", when(1), FIVE, False)[1] == "not_yours"
    assert confirm(pending, "U0ALICE", "", when(5.1), FIVE, False)[1] == "stale"
    going, verdict = confirm(pending, "U0ALICE", "hotfix", when(4), FIVE, False)
    assert verdict == "go" and going.stage == "acting" and going.reason == "hotfix"
    assert confirm(going, "U0ALICE", "", when(4), FIVE, False)[1] == "done_already"


def test_two_person_rule_same_user_refused_second_deployer_accepted_expiry() -> None:
    waiting, verdict = confirm(_pending(), "U0ALICE", "", when(1), FIVE, True)
    assert verdict == "wait_for_approval"
    assert approve(waiting, "U0ALICE", when(2), FIFTEEN)[1] == "same_person"
    approved, verdict = approve(waiting, "U0BOB", when(2), FIFTEEN)
    assert verdict == "go" and approved.approved_by == "U0BOB"
    assert approve(approved, "U0CAROL", when(3), FIFTEEN)[1] == "done_already"
    assert approve(waiting, "U0BOB", when(16.5), FIFTEEN)[1] == "expired"
    assert approval_expired(waiting, when(16.5), FIFTEEN)
    assert not approval_expired(waiting, when(15.5), FIFTEEN)


def test_the_outcome_is_what_the_watch_saw() -> None:
    request = ActionRequest(Verb.ROLLBACK, _checkout().key, history_id="40")
    started = Started(when(0), "U0ALICE")
    before = _checkout()
    assert outcome(request, started, before, when(1), FIFTEEN) is None
    failed = checkout_app()
    failed["status"]["operationState"] = operation_state(
        "Failed", REV_A, started_at="2026-11-20T09:00:10Z", finished_at="2026-11-20T09:01:00Z",
        username="U0ALICE", message="one or more objects failed to apply",
    )  # fmt: skip
    seen = outcome(request, started, app_state(failed, when(1)), when(1), FIFTEEN)
    assert seen == Outcome("failed", REV_A, "one or more objects failed to apply")
    assert outcome(request, started, before, when(16), FIFTEEN) == Outcome("timed_out")


def test_a_reconcile_is_done_when_the_controller_handled_our_request() -> None:
    request = ActionRequest(Verb.RECONCILE, _apps().key)
    started = Started(when(0), "2026-11-20T09:40:00.5Z")
    other = dataclasses.replace(_apps(), reconcile_handled="2026-11-20T09:00:00Z")
    assert outcome(request, started, other, when(1), FIFTEEN) is None
    ours = dataclasses.replace(_apps(), reconcile_handled=started.marker)
    found = outcome(request, started, ours, when(1), FIFTEEN)
    assert found is not None and found.kind == "succeeded"


def test_check_config_warns_when_acting_is_on_for_nobody_or_off_for_deployers() -> None:
    from config.schema import Config, lint

    on = Config.model_validate({"actions": {"enabled": True}})
    granted = Config.model_validate({"rbac": {"deployers": [{"users": ["U0ALICE"]}]}})
    nowhere = Config.model_validate(
        {
            "clusters": [{"name": "prod"}],
            "rbac": {"deployers": [{"users": ["U0ALICE"]}]},
            "actions": {"enabled": True, "approval": {"clusters": ["production"]}},
        }
    )
    assert [text for _, text in lint(on)] == [
        "actions.enabled is true but rbac.deployers is empty: nobody may act"
    ]
    assert [text for _, text in lint(granted)] == [
        "rbac.deployers is set but actions.enabled is false"
    ]
    assert [loc for loc, _ in lint(nowhere)] == [("actions", "approval", "clusters")]
