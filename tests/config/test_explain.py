"""`routes explain`: for each route, matched or not and why, who gets it, where matching stops."""

from __future__ import annotations

import textwrap

import pytest

from config.loader import ConfigError, load_config
from config.route_explain import explain
from core.model import EventKind, Severity

CONFIG = load_config(
    textwrap.dedent(
        """\
        receivers:
          - {name: log, console: {format: jsonl}}
          - {name: oncall, slack: {channel: C01ONCALL}}
          - {name: team, slack: {channel: C02TEAM}}
          - {name: rest, console: {}}
        routes:
          - receivers: [log]
            continue: true
          - match: {cluster: prod, kinds: [deploy_failed, health_degraded]}
            receivers: [oncall]
            mention: ["@sre-oncall"]
            grace: 30s
          - match: {namespace: "team-*", tool: flux}
            receivers: [team]
          - match: {labels: {tier: frontend}}
            receivers: [team]
            continue: true
          - receivers: [rest]
        """
    ),
    "routes.yaml",
)


def test_explains_each_route_and_where_matching_stops() -> None:
    lines = explain(
        "checkout", "prod", "deploy_failed", CONFIG, namespace="shop", tool="argocd", labels={}
    )
    assert lines == [
        "event: deploy_failed, severity critical (the default for this kind), app checkout in "
        "cluster prod (namespace shop, tool argocd, labels none)",
        "routes[0] (no match: every event): MATCH -> receivers log; grace 1m, group_wait 30s, "
        "group_interval 5m, repeat 4h, group_by cluster,kind; continue: true, goes on",
        "routes[1] cluster=prod kinds=deploy_failed,health_degraded: MATCH -> receivers oncall; "
        "mention @sre-oncall; grace 30s, group_wait 30s, group_interval 5m, repeat 4h, "
        "group_by cluster,kind; stop (no continue)",
        "routes[2] tool=flux namespace=team-*: not reached (matching stopped at routes[1])",
        "routes[3] labels.tier=frontend: not reached (matching stopped at routes[1])",
        "routes[4] (no match: every event): not reached (matching stopped at routes[1])",
        "result: sent to log, oncall (by routes[0], routes[1])",
    ]


@pytest.mark.parametrize(
    ("kwargs", "route", "expected"),
    [
        (
            {"kind": "drift_detected"},
            1,
            "routes[1] cluster=prod kinds=deploy_failed,health_degraded: no match: "
            "kind drift_detected is not in kinds [deploy_failed, health_degraded]",
        ),
        (
            {"kind": EventKind.DEPLOY_FAILED, "cluster": "staging"},
            1,
            "routes[1] cluster=prod kinds=deploy_failed,health_degraded: no match: "
            "cluster 'staging' does not match 'prod'",
        ),
        (
            {"kind": "drift_detected", "namespace": "team-a", "tool": "argocd"},
            2,
            "routes[2] tool=flux namespace=team-*: no match: tool 'argocd' does not match 'flux'",
        ),
        (
            {"kind": "drift_detected", "namespace": "shop", "tool": "flux"},
            2,
            "routes[2] tool=flux namespace=team-*: no match: "
            "namespace 'shop' does not match 'team-*'",
        ),
        (
            {"kind": "drift_detected", "labels": {"tier": "backend"}, "tool": "argocd"},
            3,
            "routes[3] labels.tier=frontend: no match: "
            "label tier='backend' does not match 'frontend'",
        ),
        (
            {"kind": "drift_detected", "labels": {"app": "x"}, "tool": "argocd"},
            3,
            "routes[3] labels.tier=frontend: no match: label tier is not set (wanted 'frontend')",
        ),
    ],
)
def test_first_failing_condition_is_the_reason(
    kwargs: dict[str, object], route: int, expected: str
) -> None:
    args = {"app": "checkout", "cluster": "prod", **kwargs}
    lines = explain(config=CONFIG, **args)  # type: ignore[arg-type]
    assert lines[route + 1] == expected


def test_unknown_fields_make_a_route_conditional() -> None:
    lines = explain("podinfo", "staging", "drift_detected", CONFIG, labels={})
    assert lines[3] == (
        "routes[2] tool=flux namespace=team-*: matches only if tool matches 'flux' "
        "(tool not given) and namespace matches 'team-*' (namespace not given) -> receivers team; "
        "grace 1m, group_wait 30s, group_interval 5m, repeat 4h, group_by cluster,kind "
        "(it would stop matching here)"
    )
    assert lines[-2].startswith("routes[4] (no match: every event): MATCH -> receivers rest")
    assert lines[-1] == (
        "result: sent to log, rest (by routes[0], routes[4]); depending on the fields not "
        "given, also team (by routes[2])"
    )


def test_nothing_matches() -> None:
    config = load_config(
        "receivers: [{name: a, console: {}}]\nroutes:\n  - match: {cluster: prod}\n"
        "    receivers: [a]\n",
        "r.yaml",
    )
    lines = explain("checkout", "staging", "drift_detected", config)
    assert lines[-1] == "result: no route takes this event; it is not sent"


def test_only_conditional_matches() -> None:
    config = load_config(
        "receivers: [{name: a, console: {}}]\nroutes:\n  - match: {namespace: shop}\n"
        "    receivers: [a]\n",
        "r.yaml",
    )
    lines = explain("checkout", "prod", "drift_detected", config)
    assert lines[-1] == (
        "result: depending on the fields not given, sent to a (by routes[0]); otherwise not sent"
    )


def test_severity_given_and_dropping_route() -> None:
    config = load_config(
        "routes:\n  - match: {min_severity: critical}\n    receivers: []\n"
        "  - receivers: [console]\n",
        "r.yaml",
    )
    lines = explain("checkout", "prod", "drift_detected", config, severity=Severity.CRITICAL)
    assert lines[0].startswith("event: drift_detected, severity critical, app checkout")
    assert lines[1] == (
        "routes[0] min_severity=critical: MATCH -> no receivers: the event is dropped; "
        "stop (no continue)"
    )
    assert lines[-1] == "result: sent to nobody (dropped) (by routes[0])"
    lines = explain("checkout", "prod", "drift_detected", config, severity="info")
    assert lines[1] == (
        "routes[0] min_severity=critical: no match: severity info is below min_severity critical"
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kind": "drfit_detected"}, "unknown event kind 'drfit_detected' (did you mean"),
        ({"kind": "drift_detected", "severity": "high"}, "unknown severity 'high'"),
    ],
)
def test_bad_names_are_value_errors(kwargs: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        explain("checkout", "prod", config=CONFIG, **kwargs)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


def test_object_kind_is_a_condition_and_unknown_until_given() -> None:
    config = load_config(
        "receivers: [{name: a, console: {}}]\nroutes:\n  - match: {object_kind: HelmRelease}\n"
        "    receivers: [a]\n",
        "r.yaml",
    )
    unknown = explain("podinfo", "staging", "deploy_failed", config)
    assert unknown[1].startswith(
        "routes[0] object_kind=HelmRelease: matches only if object_kind matches 'HelmRelease' "
        "(object_kind not given)"
    )
    other = explain("apps", "staging", "deploy_failed", config, object_kind="Kustomization")
    assert other[1] == (
        "routes[0] object_kind=HelmRelease: no match: object_kind 'Kustomization' does not "
        "match 'HelmRelease'"
    )
    helm = explain("podinfo", "staging", "deploy_failed", config, object_kind="HelmRelease")
    assert helm[-1] == "result: sent to a (by routes[0])"


TEAM_NAMESPACES = load_config(
    textwrap.dedent(
        """\
        receivers:
          - {name: shop, slack: {channel: C0SHOP}}
          - {name: rest, console: {}}
        routes:
          - match: {destination_namespace: shop}
            receivers: [shop]
          - receivers: [rest]
        """
    ),
    "team.yaml",
)


def test_destination_namespace_is_a_condition_and_unknown_until_given() -> None:
    unknown = explain("checkout", "prod", "drift_detected", TEAM_NAMESPACES, namespace="argocd")
    assert unknown[1] == (
        "routes[0] destination_namespace=shop: matches only if destination_namespace matches "
        "'shop' (destination_namespace not given) -> receivers shop; grace 1m, group_wait 30s, "
        "group_interval 5m, repeat 4h, group_by cluster,kind (it would stop matching here)"
    )
    given = explain(
        "checkout",
        "prod",
        "drift_detected",
        TEAM_NAMESPACES,
        namespace="argocd",
        destination_namespace="shop",
    )
    assert "destination namespace shop" in given[0]
    assert given[-1] == "result: sent to shop (by routes[0])"
    other = explain(
        "search", "prod", "drift_detected", TEAM_NAMESPACES, destination_namespace="search"
    )
    assert other[1] == (
        "routes[0] destination_namespace=shop: no match: destination_namespace 'search' does "
        "not match 'shop'"
    )


def test_a_receiver_reached_by_several_routes_is_explained_once_with_what_combines() -> None:
    config = load_config(
        textwrap.dedent(
            """\
            receivers:
              - {name: shop, slack: {channel: C0SHOP}}
              - {name: shop-teams, teams: {webhook_env: TEAMS_SHOP}}
            routes:
              - match: {min_severity: critical}
                receivers: [shop]
                mention: [S0ONCALL]
                grace: 0s
                continue: true
              - receivers: [shop, shop-teams]
                mention: ["@here"]
                group_by: [cluster]
            """
        ),
        "routes.yaml",
    )
    lines = explain("payments", "prod", EventKind.DEPLOY_FAILED, config)
    assert lines[-1] == "result: sent to shop, shop-teams (by routes[0], routes[1])"
    # shop-teams is reached by one route, whose settings are its own: no line of its own.
    assert lines[-2] == (
        "  shop (by routes[0], routes[1]): one message; mention S0ONCALL @here; grace 0 "
        "(the shortest); grouping, repeat, quiet hours of routes[0] (the first naming it)"
    )
    drift = explain("payments", "prod", EventKind.DRIFT_DETECTED, config)
    assert drift[-2] == (
        "  shop (by routes[1]): one message; mention @here; grace 1m; "
        "grouping, repeat, quiet hours of routes[0] (the first naming it)"
    )


def test_named_routes_are_explained_by_name_and_names_are_unique() -> None:
    named = load_config(
        "receivers: [{name: a, console: {}}, {name: b, console: {}}]\nroutes:\n"
        "  - {name: oncall-failures, match: {min_severity: critical}, receivers: [a]}\n"
        "  - {receivers: [b]}\n"
        "  - {name: never, receivers: [a]}\n",
        "named.yaml",
    )
    lines = explain("checkout", "prod", "deploy_failed", named)
    assert lines[1].startswith("oncall-failures min_severity=critical: MATCH -> receivers a")
    assert (
        lines[3]
        == "never (no match: every event): not reached (matching stopped at oncall-failures)"
    )
    assert lines[-1] == "result: sent to a (by oncall-failures)"
    lines = explain("checkout", "prod", "deploy_succeeded", named)
    assert lines[2].startswith("routes[1] (no match: every event): MATCH -> receivers b")
    with pytest.raises(ConfigError) as caught:
        load_config(
            "receivers: [{name: a, console: {}}]\nroutes:\n"
            "  - {name: same, receivers: [a], continue: true}\n  - {name: same, receivers: [a]}\n",
            "dup.yaml",
        )
    assert [str(e) for e in caught.value.errors] == [
        "dup.yaml:4: routes[1].name: duplicate route name 'same' (first defined at routes[0])"
    ]
