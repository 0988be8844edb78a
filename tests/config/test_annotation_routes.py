"""Self-service routing: annotations on the watched objects add routes for their app, to what
`routing.allow` allows. The objects are the demo's Applications and AppProject as Argo CD's
docs write their subscriptions (tests/fixtures/argocd/applications-shop.yaml), read by the real
normalizer."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from config.loader import ConfigError, check_config, load_config
from config.route_explain import explain
from config.routing import match_routes
from core.model import AppState, EventKind, make_event
from tests.upstream import load_fixture
from watchers.argocd import normalize_application

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

CENTRAL = textwrap.dedent(
    """\
    receivers:
      - {name: log, console: {format: jsonl}}
      - {name: pm, teams: {webhook_env: TEAMS_PM_WEBHOOK}}
      - {name: oncall, slack: {channel: C0ONCALL}}
    routes:
      - receivers: [log]           # stops: annotation routes are added all the same
    routing:
      annotations: true
      allow: ["slack:shop-alerts", "slack:#shop-deploys", "teams:pm"]
    """
)
CONFIG = load_config(CENTRAL, "driftbot.yaml")


def shop(name: str) -> dict[str, object]:
    items = load_fixture("argocd/applications-shop.yaml")["items"]
    return next(i for i in items if i["metadata"]["name"] == name)


def app(name: str) -> AppState:
    state = normalize_application(shop(name), "prod", NOW)
    assert isinstance(state, AppState)
    return state


def receivers(kind: EventKind, name: str, project: dict[str, str] | None = None) -> list[str]:
    event = make_event(kind, app(name), NOW)
    return [r for taken in match_routes(event, CONFIG, project) for r in taken.receivers]


def test_an_allowed_channel_gets_a_receiver_of_its_own() -> None:
    names = {r.name: r for r in CONFIG.receivers}
    assert names["slack-shop-alerts"].slack is not None
    assert names["slack-shop-alerts"].slack.channel == "shop-alerts"
    assert names["slack-shop-deploys"].slack is not None


def test_subscribe_annotations_route_their_triggers_kinds_to_allowed_receivers() -> None:
    # payments: on-health-degraded -> shop-alerts; on-sync-failed -> shop-alerts;oncall
    assert receivers(EventKind.HEALTH_DEGRADED, "payments") == ["log", "slack-shop-alerts"]
    # oncall is not allowed: refused, shop-alerts still gets it
    assert receivers(EventKind.DEPLOY_FAILED, "payments") == ["log", "slack-shop-alerts"]
    assert receivers(EventKind.ROLLBACK_FAILED, "payments") == ["log", "slack-shop-alerts"]
    assert receivers(EventKind.DRIFT_DETECTED, "payments") == ["log"]
    # checkout: on-sync-status-unknown -> source_failed
    assert receivers(EventKind.SOURCE_FAILED, "checkout") == ["log", "slack-shop-alerts"]


def test_the_yaml_subscriptions_annotation_sends_to_teams_by_allowed_name() -> None:
    # catalog: on-sync-failed/on-sync-succeeded to slack catalog-team (not allowed) and teams pm
    assert receivers(EventKind.DEPLOY_SUCCEEDED, "catalog") == ["log", "pm"]
    assert receivers(EventKind.DEPLOY_FAILED, "catalog") == ["log", "pm"]


def test_the_app_project_annotation_routes_every_app_of_the_project() -> None:
    project = shop("shop")["metadata"]["annotations"]  # type: ignore[index]
    assert receivers(EventKind.DEPLOY_STARTED, "checkout", project) == [
        "log",
        "slack-shop-deploys",
    ]
    assert receivers(EventKind.DEPLOY_STARTED, "checkout") == ["log"]


def test_nothing_is_added_unless_the_config_opts_in() -> None:
    off = load_config(CENTRAL.replace("annotations: true", "annotations: false"), "d.yaml")
    event = make_event(EventKind.DEPLOY_FAILED, app("payments"), NOW)
    assert [t.receivers for t in match_routes(event, off)] == [("log",)]


@pytest.mark.parametrize(
    ("annotations", "kind", "expected"),
    [
        (
            {"driftbot.dev/notify": "slack:shop-alerts, teams:pm"},
            "drift_detected",
            ["log", "slack-shop-alerts", "pm"],
        ),
        ({"driftbot.dev/notify.deploy_failed": "teams:pm"}, "deploy_failed", ["log", "pm"]),
        ({"driftbot.dev/notify.deploy_failed": "teams:pm"}, "deploy_succeeded", ["log"]),
        # a webhook nobody allowed, a receiver not allowed, a kind that does not exist
        (
            {"driftbot.dev/notify": "teams:https://evil.example/hook, oncall"},
            "deploy_failed",
            ["log"],
        ),
        ({"driftbot.dev/notify.deploy_broke": "teams:pm"}, "deploy_failed", ["log"]),
    ],
)
def test_driftbot_notify_annotation(
    annotations: dict[str, str], kind: str, expected: list[str]
) -> None:
    import dataclasses

    state = dataclasses.replace(app("checkout"), annotations=annotations)
    event = make_event(EventKind(kind), state, NOW)
    assert [r for t in match_routes(event, CONFIG) for r in t.receivers] == expected


def test_explain_says_where_an_annotation_sent_the_event_and_what_it_refused() -> None:
    state = app("payments")
    lines = explain(
        "payments",
        "prod",
        "deploy_failed",
        CONFIG,
        namespace="argocd",
        tool="argocd",
        object_kind="Application",
        annotations=state.annotations,
    )
    key = "notifications.argoproj.io/subscribe"
    assert lines[2] == (
        f"annotation {key}.on-health-degraded.slack: 'shop-alerts' on Application "
        "argocd/payments: no match: kind deploy_failed is not in [health_degraded]"
    )
    assert lines[3].startswith(
        f"annotation {key}.on-sync-failed.slack: 'shop-alerts;oncall' on Application "
        "argocd/payments: MATCH -> receivers slack-shop-alerts; grace 1m"
    )
    assert lines[3].endswith("(refused: slack:oncall is not allowed by routing.allow)")
    assert lines[-1] == (
        "result: sent to log, slack-shop-alerts (by routes[0], annotation "
        f"{key}.on-sync-failed.slack: 'shop-alerts;oncall' on Application argocd/payments)"
    )
    unknown = explain("payments", "prod", "deploy_failed", CONFIG)
    assert unknown[-2] == "annotations not given: the routes they may add are not shown"


def test_subscribe_without_trigger_uses_default_triggers_or_sends_nothing() -> None:
    written = {"notifications.argoproj.io/subscribe.slack": "shop-alerts"}
    lines = explain("a", "prod", "deploy_failed", CONFIG, tool="argocd", annotations=written)
    assert lines[2].endswith(
        "sends nothing (refused: names no trigger and routing.default_triggers is empty "
        "(Argo CD sends nothing))"
    )
    with_defaults = load_config(
        CENTRAL + "  default_triggers: [on-sync-failed, on-deployed]\n", "d.yaml"
    )
    lines = explain("a", "prod", "deploy_failed", with_defaults, tool="argocd", annotations=written)
    assert "(default trigger on-sync-failed): MATCH -> receivers slack-shop-alerts" in lines[2]
    assert "(default trigger on-deployed): no match" in lines[3]


def test_check_config_refuses_allow_entries_that_name_no_receiver() -> None:
    bad = CENTRAL.replace('"teams:pm"]', '"teams:oncall", "teams:nobody", "slack:"]')
    with pytest.raises(ConfigError) as caught:
        load_config(bad, "d.yaml")
    assert [str(e) for e in caught.value.errors] == [
        "d.yaml:9: routing.allow[2]: receiver 'oncall' is not a Teams receiver",
        "d.yaml:9: routing.allow[3]: receiver 'nobody' is not defined (defined: log, pm, oncall)",
        "d.yaml:9: routing.allow[4]: 'slack:' names nothing "
        "(write slack:C0123, teams:NAME or NAME)",
    ]
    # allowed receivers are used, even when no route names them; oncall is not
    warnings = [str(w) for w in check_config(CENTRAL, "d.yaml").warnings]
    assert warnings == ["d.yaml:4: receivers[2].name: receiver 'oncall' is used by no route"]
