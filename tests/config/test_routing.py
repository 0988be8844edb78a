"""Route matching: which routes take an event, in which order, with which policy settings."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.loader import load_config
from config.route_id import RouteId, find_route
from config.routing import RouteMatch, match_routes, receiver_owners, receiver_policy
from config.schema import Config
from config.schema.root import lint
from core.model import AppState, EventKind, GitOpsEvent, Severity, Tool, make_event

NOW = datetime(2026, 11, 27, 10, 42, tzinfo=UTC)


def event(
    kind: EventKind = EventKind.DRIFT_DETECTED,
    *,
    tool: Tool = Tool.ARGOCD,
    cluster: str = "prod",
    namespace: str = "argocd",
    name: str = "guestbook",
    project: str = "default",
    labels: dict[str, str] | None = None,
    severity: Severity | None = None,
) -> GitOpsEvent:
    state = AppState(
        tool=tool,
        cluster=cluster,
        namespace=namespace,
        kind="Application" if tool is Tool.ARGOCD else "Kustomization",
        name=name,
        observed_at=NOW,
        project=project,
        labels=labels or {},
    )
    return make_event(kind, state, NOW, severity=severity)


ROUTES = load_config(
    textwrap.dedent(
        """\
        receivers:
          - {name: log, console: {format: jsonl}}
          - {name: oncall, slack: {channel: C01ONCALL}}
          - {name: payments, slack: {channel: C02PAY}}
          - {name: flux-team, slack: {channel: C03FLUX}}
          - {name: staging, slack: {channel: C04STG}}
          - {name: rest, console: {}}
        routes:
          - receivers: [log]                                   # 0
            continue: true
          - match: {cluster: prod, min_severity: critical}     # 1
            receivers: [oncall]
            mention: ["@sre-oncall"]
            grace: 30s
            repeat: 1h
            continue: true
          - match:                                             # 2
              labels: {team: pay*}
              kinds: [drift_detected, rollback_succeeded]
            receivers: [payments]
            group_by: [name]
          - match: {tool: flux, namespace: [flux-system, apps]} # 3
            receivers: [flux-team]
          - match: {cluster: "stag*", project: "[!s]*"}        # 4
            receivers: [staging]
          - match: {name: "noisy-*"}                           # 5
            receivers: []
          - receivers: [rest]                                  # 6
        policy: {grace: 60s, group_wait: 30s, group_interval: 5m, repeat: 4h}
        """
    ),
    "routes.yaml",
)


@pytest.mark.parametrize(
    ("ev", "routes", "receivers"),
    [
        pytest.param(event(), [0, 6], [("log",), ("rest",)], id="default-route"),
        pytest.param(
            event(EventKind.DEPLOY_FAILED),
            [0, 1, 6],
            [("log",), ("oncall",), ("rest",)],
            id="critical-on-prod-continues",
        ),
        pytest.param(
            event(EventKind.DEPLOY_FAILED, cluster="staging"),
            [0, 4],
            [("log",), ("staging",)],
            id="critical-elsewhere",
        ),
        pytest.param(
            event(EventKind.DRIFT_DETECTED, severity=Severity.CRITICAL),
            [0, 1, 6],
            [("log",), ("oncall",), ("rest",)],
            id="severity-overrides-kind-default",
        ),
        pytest.param(
            event(labels={"team": "payments"}),
            [0, 2],
            [("log",), ("payments",)],
            id="label-glob",
        ),
        pytest.param(
            event(EventKind.DEPLOY_SUCCEEDED, labels={"team": "payments"}),
            [0, 6],
            [("log",), ("rest",)],
            id="label-glob-but-kind-not-listed",
        ),
        pytest.param(
            event(labels={"owner": "payments"}),
            [0, 6],
            [("log",), ("rest",)],
            id="label-missing",
        ),
        pytest.param(
            event(tool=Tool.FLUX, namespace="flux-system", name="apps"),
            [0, 3],
            [("log",), ("flux-team",)],
            id="tool-and-namespace-list",
        ),
        pytest.param(
            event(tool=Tool.FLUX, namespace="data", name="redis"),
            [0, 6],
            [("log",), ("rest",)],
            id="namespace-not-in-list",
        ),
        pytest.param(
            event(cluster="staging", project="sre"),
            [0, 6],
            [("log",), ("rest",)],
            id="negated-class-glob",
        ),
        pytest.param(
            event(name="noisy-batch"),
            [0, 5],
            [("log",), ()],
            id="empty-receivers-drop-and-stop",
        ),
        pytest.param(
            event(cluster="Prod", severity=Severity.CRITICAL),
            [0, 6],
            [("log",), ("rest",)],
            id="globs-are-case-sensitive",
        ),
    ],
)
def test_match_routes(ev: GitOpsEvent, routes: list[int], receivers: list[tuple[str, ...]]) -> None:
    taken = match_routes(ev, ROUTES)
    assert [t.route_index for t in taken] == routes
    assert [t.receivers for t in taken] == receivers


def test_route_policy_overlays_the_defaults() -> None:
    taken = match_routes(event(EventKind.HEALTH_DEGRADED), ROUTES)
    oncall = next(t for t in taken if t.route_index == 1)
    assert oncall.mention == ("@sre-oncall",)
    assert oncall.policy.grace == timedelta(seconds=30)
    assert oncall.policy.repeat == timedelta(hours=1)
    assert oncall.policy.group_wait == timedelta(seconds=30)
    assert oncall.policy.group_interval == timedelta(minutes=5)
    assert oncall.policy.group_by == ("cluster", "kind")
    log = taken[0]
    assert log.policy.grace == timedelta(seconds=60)
    assert log.mention == ()


def test_group_by_and_quiet_hours_overrides() -> None:
    config = load_config(
        "policy:\n  quiet_hours: {start: '22:00', end: '06:00'}\n"
        "routes:\n  - receivers: [console]\n    group_by: [name]\n"
        "    quiet_hours: {start: '20:00', end: '08:00', timezone: Europe/Berlin}\n",
        "r.yaml",
    )
    (taken,) = match_routes(event(), config)
    assert taken.policy.group_by == ("name",)
    assert taken.policy.quiet_hours is not None
    assert taken.policy.quiet_hours.timezone == "Europe/Berlin"
    plain = load_config("policy:\n  quiet_hours: {start: '22:00', end: '06:00'}\n", "r.yaml")
    (default,) = match_routes(event(), plain)
    assert default.policy.quiet_hours == plain.policy.quiet_hours


def test_no_route_matches() -> None:
    config = load_config(
        "receivers: [{name: a, console: {}}]\nroutes:\n  - match: {cluster: prod}\n"
        "    receivers: [a]\n",
        "r.yaml",
    )
    assert match_routes(event(cluster="staging"), config) == []


def test_empty_match_takes_everything() -> None:
    config = load_config("routes:\n  - match: {}\n    receivers: [console]\n", "r.yaml")
    assert [t.route_index for t in match_routes(event(), config)] == [0]


def test_default_config_routes_everything_to_console() -> None:
    taken = match_routes(event(EventKind.DELETED, tool=Tool.FLUX), Config())
    assert taken == [
        RouteMatch(
            route=RouteId(0),
            receivers=("console",),
            mention=(),
            policy=taken[0].policy,
        )
    ]
    assert taken[0].policy.grace == timedelta(seconds=60)


@given(
    kind=st.sampled_from(list(EventKind)),
    tool=st.sampled_from(list(Tool)),
    cluster=st.text(max_size=10),
    namespace=st.text(max_size=10),
    name=st.text(max_size=10),
    labels=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_first_route_always_takes_and_order_is_kept(
    kind: EventKind,
    tool: Tool,
    cluster: str,
    namespace: str,
    name: str,
    labels: dict[str, str],
) -> None:
    ev = event(kind, tool=tool, cluster=cluster, namespace=namespace, name=name, labels=labels)
    taken = match_routes(ev, ROUTES)
    indexes = [t.route_index for t in taken]
    assert indexes[0] == 0
    assert indexes == sorted(set(indexes))
    # Every route but the last taken one has continue: true; the last one stops or is the end.
    for t in taken[:-1]:
        assert ROUTES.routes[t.route_index].continue_
    assert not ROUTES.routes[indexes[-1]].continue_


def test_object_kind_tells_a_helmrelease_from_a_kustomization() -> None:
    config = load_config(
        "receivers: [{name: helm, console: {}}, {name: rest, console: {}}]\nroutes:\n"
        "  - match: {object_kind: [HelmRelease, Helm*]}\n    receivers: [helm]\n"
        "  - receivers: [rest]\n",
        "r.yaml",
    )
    state = AppState(
        tool=Tool.FLUX,
        cluster="prod",
        namespace="apps",
        kind="HelmRelease",
        name="podinfo",
        observed_at=NOW,
    )
    helm = make_event(EventKind.DEPLOY_FAILED, state, NOW)
    kustomization = event(EventKind.DEPLOY_FAILED, tool=Tool.FLUX)
    assert [t.receivers for t in match_routes(helm, config)] == [("helm",)]
    assert [t.receivers for t in match_routes(kustomization, config)] == [("rest",)]


def test_destination_namespace_matches_where_the_app_runs() -> None:
    """An Argo CD Application lives in argocd and deploys into shop: `namespace` matches the
    first, `destination_namespace` the second; a Flux object without targetNamespace deploys
    into its own namespace."""
    config = load_config(
        textwrap.dedent(
            """\
            receivers:
              - {name: shop, slack: {channel: C0SHOP}}
              - {name: home, slack: {channel: C0HOME}}
            routes:
              - match: {destination_namespace: shop}
                receivers: [shop]
              - match: {namespace: argocd}
                receivers: [home]
            """
        )
    )
    app = event(namespace="argocd")
    assert [m.receivers for m in match_routes(app, config)] == [("home",)]
    deployed = replace(app, destination_namespace="shop")
    assert [m.receivers for m in match_routes(deployed, config)] == [("shop",)]
    flux = event(tool=Tool.FLUX, namespace="shop")
    assert [m.receivers for m in match_routes(flux, config)] == [("shop",)]
    flux_elsewhere = replace(flux, destination_namespace="web")
    assert match_routes(flux_elsewhere, config) == []


# --- route identities ---------------------------------------------------------------------------

NAMED = """
receivers: [{name: oncall, console: {}}, {name: pm, console: {}}]
routes:
  - {name: prod-drift, match: {cluster: prod}, receivers: [oncall], continue: true, grace: 5m}
  - {match: {cluster: prod}, receivers: [pm]}
"""

INSERTED = """
receivers: [{name: oncall, console: {}}, {name: pm, console: {}}, {name: new, console: {}}]
routes:
  - {match: {cluster: staging}, receivers: [new]}
  - {name: prod-drift, match: {cluster: prod}, receivers: [oncall], continue: true, grace: 5m}
  - {match: {cluster: prod}, receivers: [pm]}
"""


def test_a_named_route_keeps_its_identity_when_a_route_is_inserted_before_it() -> None:
    before = load_config(NAMED, "r.yaml")
    after = load_config(INSERTED, "r.yaml")
    named_before, unnamed_before = (t.route for t in match_routes(event(), before))
    named_after, unnamed_after = (t.route for t in match_routes(event(), after))
    assert named_before == named_after and named_before.label == "prod-drift"
    assert (named_before.place, named_after.place) == (0, 1)
    # An unnamed route has nothing but its place to be known by.
    assert (unnamed_before.label, unnamed_after.label) == ("routes[1]", "routes[2]")
    assert unnamed_before != unnamed_after
    assert receiver_owners(after)["oncall"] == receiver_owners(before)["oncall"]
    assert receiver_policy(after, "oncall") == receiver_policy(before, "oncall")
    assert receiver_policy(after, "oncall").grace == timedelta(minutes=5)  # type: ignore[union-attr]


def test_route_ids_are_told_apart_by_name_annotation_or_place() -> None:
    assert RouteId(0, "a") == RouteId(3, "a") and hash(RouteId(0, "a")) == hash(RouteId(3, "a"))
    assert RouteId(0) != RouteId(1) and RouteId(2) == RouteId(2)
    assert RouteId(None, origin="annotation x") != RouteId(None, origin="annotation y")
    assert RouteId(0, "routes[1]") != RouteId(1), "a name that looks like a place is a name"
    assert str(RouteId(4)) == "routes[4]" and str(RouteId(None, origin="o")) == "o"


def test_find_route_finds_a_named_route_wherever_it_moved() -> None:
    before = load_config(NAMED, "r.yaml")
    after = load_config(INSERTED, "r.yaml")
    named = receiver_owners(before)["oncall"]
    assert find_route(after, named) is after.routes[1]
    assert find_route(after, RouteId(0)) is after.routes[0]
    assert find_route(after, RouteId(1)) is None, "routes[1] is a named route now"
    assert find_route(after, RouteId(9)) is None


def test_check_config_names_the_route_that_takes_everything_by_its_name() -> None:
    config = load_config(
        "receivers: [{name: a, console: {}}]\n"
        "routes:\n  - {name: catch-all, receivers: [a]}\n  - {receivers: [a]}\n",
        "r.yaml",
    )
    assert [text for _, text in lint(config)] == [
        "unreachable: catch-all has no match and no continue, so it takes every event first"
    ]
