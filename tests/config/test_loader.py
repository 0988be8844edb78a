"""The loader: every problem of a config file reported at once, each at its file and line."""

from __future__ import annotations

import textwrap
from datetime import time, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from config.loader import (
    ConfigError,
    ConfigIssue,
    check_config,
    check_config_file,
    load_config,
    load_config_file,
)
from config.schema import Config, default_config
from core.model import EventKind, Severity

FILE = "routes.yaml"


def issues(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(textwrap.dedent(text), FILE)
    assert str(caught.value) == "\n".join(str(i) for i in caught.value.errors)
    return caught.value.errors


def only(text: str) -> ConfigIssue:
    found = issues(text)
    assert len(found) == 1, found
    return found[0]


RECEIVERS = """\
receivers:
  - name: oncall
    slack: {channel: C0123456}
"""


def test_message_names_file_line_and_key() -> None:
    text = (
        RECEIVERS
        + "\n" * 6
        + textwrap.dedent(
            """\
        routes:
          - match: {cluster: prod}
            receivers: [oncall]
          - match:
              kinds: [drfit_detected]
            receivers: [oncall]
        """
        )
    )
    issue = only(text)
    assert issue == ConfigIssue(
        FILE,
        14,
        "routes[1].match.kinds[0]",
        issue.message,
    )
    assert str(issue).startswith(
        "routes.yaml:14: routes[1].match.kinds[0]: unknown event kind 'drfit_detected' "
        "(did you mean 'drift_detected'? expected one of: drift_detected, drift_resolved,"
    )


# Each case: YAML text, expected line, expected path, a fragment of the message.
ERROR_CASES = [
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\n    contnue: true\n",
        6,
        "routes[0].contnue",
        "unknown key 'contnue' (did you mean 'continue'? expected one of: match, receivers,",
        id="unknown-key",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\npolcy: {grace: 30s}\n",
        6,
        "polcy",
        "unknown key 'polcy' (did you mean 'policy'?",
        id="unknown-top-level-key",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\nserver:\n  port: eighty\n",
        7,
        "server.port",
        "expected a whole number, got text 'eighty'",
        id="wrong-type-int",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: oncall\n",
        5,
        "routes[0].receivers",
        "expected a list, got text 'oncall'",
        id="wrong-type-list",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\n    continue: maybe\n",
        6,
        "routes[0].continue",
        "expected true or false, got text 'maybe'",
        id="wrong-type-bool",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\npolicy:\n  grace: 5 min\n",
        7,
        "policy.grace",
        "invalid duration '5 min' (write it like 30s, 5m, 4h, 1h30m or 0)",
        id="bad-duration",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\n    repeat: 60\n",
        6,
        "routes[0].repeat",
        "duration '60' has no unit",
        id="duration-without-unit",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - match: {namespace: 'team-[ab'}\n    receivers: [oncall]\n",
        5,
        "routes[0].match.namespace",
        "bad pattern 'team-[ab': '[' at position 6 is never closed",
        id="bad-glob",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - match:\n      labels: {team: '[z-a]'}\n    receivers: [oncall]\n",
        6,
        "routes[0].match.labels.team",
        "a character range is empty",
        id="bad-label-glob",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - match: {tool: argo}\n    receivers: [oncall]\n",
        5,
        "routes[0].match.tool",
        "tool pattern 'argo' matches no tool (tools: argocd, flux)",
        id="tool-pattern-matches-nothing",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - match:\n      kinds:\n        - drift_detected\n"
        "        - rollback\n    receivers: [oncall]\n",
        8,
        "routes[0].match.kinds[1]",
        "unknown event kind 'rollback'",
        id="unknown-event-kind",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - match: {min_severity: high}\n    receivers: [oncall]\n",
        5,
        "routes[0].match.min_severity",
        "unknown severity 'high' (expected one of: info, warning, critical)",
        id="unknown-severity",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers:\n      - oncall\n      - on-call-sre\n",
        7,
        "routes[0].receivers[1]",
        "receiver 'on-call-sre' is not defined (did you mean 'oncall'? defined: oncall)",
        id="undefined-receiver",
    ),
    pytest.param(
        RECEIVERS + "  - name: oncall\n    console: {}\nroutes:\n  - receivers: [oncall]\n",
        4,
        "receivers[1].name",
        "duplicate receiver name 'oncall' (first defined at receivers[0])",
        id="duplicate-receiver",
    ),
    pytest.param(
        "receivers:\n  - name: pm\n    teams: {webhook_env: ''}\nroutes:\n  - receivers: [pm]\n",
        3,
        "receivers[0].teams.webhook_env",
        "is empty: name the environment variable",
        id="teams-empty-env-name",
    ),
    pytest.param(
        "receivers:\n  - name: pm\n    teams: {payload: card}\nroutes:\n  - receivers: [pm]\n",
        3,
        "receivers[0].teams",
        "exactly one of webhook_env",
        id="teams-without-webhook",
    ),
    pytest.param(
        "receivers:\n  - name: pm\n    teams: {webhook_env: X, payload: json}\n"
        "routes:\n  - receivers: [pm]\n",
        3,
        "receivers[0].teams.payload",
        "invalid value 'json' (expected one of: envelope, card)",
        id="teams-bad-payload",
    ),
    pytest.param(
        "receivers:\n  - name: both\n    slack: {channel: C1}\n    console: {}\n"
        "routes:\n  - receivers: [both]\n",
        2,
        "receivers[0]",
        "needs exactly one of slack, teams, console; found slack and console",
        id="receiver-with-two-targets",
    ),
    pytest.param(
        "receivers:\n  - name: none\nroutes:\n  - receivers: [none]\n",
        2,
        "receivers[0]",
        "found none",
        id="receiver-without-target",
    ),
    pytest.param(
        "receivers:\n  - slack: {channel: C1}\nroutes:\n  - receivers: [x]\n",
        2,
        "receivers[0].name",
        "missing required key 'name'",
        id="missing-key",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\n    receivers: [oncall]\n",
        6,
        "routes[0].receivers",
        "duplicate key 'receivers' (also on line 5)",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        RECEIVERS,
        1,
        "routes",
        "no routes: no event would reach any receiver",
        id="receivers-without-routes",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\nslack: {command: gitops}\n",
        6,
        "slack.command",
        "like /gitops), got 'gitops'",
        id="slash-command",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\nslack: {mode: websocket}\n",
        6,
        "slack.mode",
        "invalid value 'websocket' (did you mean 'socket'? expected one of: socket, http)",
        id="slack-mode",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\n"
        "digests:\n  - receivers: [oncall]\n    schedule: '0 9 * * mon-fry'\n",
        8,
        "digests[0].schedule",
        "day of week 'fry'",
        id="bad-cron",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\n"
        "    quiet_hours: {start: '22:00', end: '25:00'}\n",
        6,
        "routes[0].quiet_hours.end",
        "expected a time of day like '22:00'",
        id="bad-clock-time",
    ),
    pytest.param(
        RECEIVERS + "routes:\n  - receivers: [oncall]\n"
        "    quiet_hours: {start: '22:00', end: '07:00', timezone: Europe/Berlinn}\n",
        6,
        "routes[0].quiet_hours.timezone",
        "unknown time zone 'Europe/Berlinn'",
        id="bad-timezone",
    ),
    pytest.param(
        "clusters:\n  - name: prod\n    in_cluster: true\n    kubeconfig: /k\n",
        2,
        "clusters[0]",
        "in_cluster: true uses the pod's service account",
        id="in-cluster-with-kubeconfig",
    ),
    pytest.param(
        "clusters:\n  - {name: prod}\nargocd_api:\n  - {cluster: prd, url: https://a.example}\n",
        4,
        "argocd_api[0].cluster",
        "cluster 'prd' is not in clusters (did you mean 'prod'? defined: prod)",
        id="argocd-api-unknown-cluster",
    ),
    pytest.param(
        "argocd_api:\n  - {cluster: prod, url: argocd.example.com}\n",
        2,
        "argocd_api[0].url",
        "expected an http:// or https:// URL",
        id="argocd-api-url",
    ),
    pytest.param(
        "clusters:\n  - {name: prod}\n  - {name: prod}\n",
        3,
        "clusters[1].name",
        "duplicate cluster name 'prod'",
        id="duplicate-cluster",
    ),
    pytest.param(
        "receivers:\n  - name: 'on call'\n    console: {}\nroutes:\n  - receivers: ['on call']\n",
        2,
        "receivers[0].name",
        "must start with a letter or digit",
        id="receiver-name-characters",
    ),
    pytest.param(
        "routes:\n  - receivers: [console]\n    group_by: [cluster, app]\n",
        3,
        "routes[0].group_by[1]",
        "invalid value 'app' (expected one of: tool, cluster, namespace",
        id="group-by-field",
    ),
    pytest.param(
        "clusters:\n  - name: staging\n    flux_ui_url: 'https://ui.example.com/{app}'\n",
        3,
        "clusters[0].flux_ui_url",
        "unknown placeholder {app}",
        id="flux-ui-placeholder",
    ),
    pytest.param(
        "clusters:\n  - name: staging\n    flux_ui_url:\n      Kustomisation: 'https://ui/{name}'\n",
        4,
        "clusters[0].flux_ui_url",
        "unknown Flux kind 'Kustomisation' (did you mean 'Kustomization'?",
        id="flux-ui-kind",
    ),
    pytest.param(
        "clusters:\n  - name: staging\n    flux_ui_url: 'ui.example.com/{name}'\n",
        3,
        "clusters[0].flux_ui_url",
        "expected an http:// or https:// URL",
        id="flux-ui-not-a-url",
    ),
    pytest.param(
        "routes:\n  - receivers: [console]\n    match:\n      labels: {1: a}\n",
        4,
        "routes[0].match.labels[1]",
        "a key must be text, got number 1",
        id="key-not-text",
    ),
]


@pytest.mark.parametrize(("text", "line", "path", "fragment"), ERROR_CASES)
def test_error_names_file_line_and_key(text: str, line: int, path: str, fragment: str) -> None:
    found = issues(text)
    matching = [i for i in found if i.path == path]
    assert matching, f"no issue at {path}: {found}"
    issue = matching[0]
    assert (issue.file, issue.line) == (FILE, line), issue
    assert fragment in issue.message, issue.message
    assert str(issue).startswith(f"{FILE}:{line}: {path}: ")


def test_all_errors_are_reported_not_just_the_first() -> None:
    found = issues(
        """\
        receivers:
          - name: oncall
            slack: {channel: C1}
          - name: oncall
            console: {format: xml}
        routes:
          - match: {kinds: [drfit_detected]}
            receivers: [oncall, nobody]
        policy: {grace: soon}
        """
    )
    assert [(i.line, i.path) for i in found] == [
        (4, "receivers[1].name"),
        (5, "receivers[1].console.format"),
        (7, "routes[0].match.kinds[0]"),
        (8, "routes[0].receivers[1]"),
        (9, "policy.grace"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("routes:\n  - receivers: [console\n", 3, "invalid YAML"),
        ("policy:\n  grace: 30s\n   group_wait: 1m\n", 3, "mapping values are not allowed"),
        ("receivers:\n\t- name: x\n", 2, "invalid YAML"),
        ("a: b\n---\nc: d\n", 2, "expected a single document"),
        ("routes: [x, *nothing]\n", 1, "found undefined alias"),
        ("routes: []\n\x1f\n", 2, "unacceptable character #x001f"),
    ],
)
def test_yaml_syntax_error_has_file_and_line(text: str, line: int, fragment: str) -> None:
    issue = only(text)
    assert (issue.file, issue.line, issue.path) == (FILE, line, "")
    assert fragment in issue.message
    assert str(issue).startswith(f"{FILE}:{line}: invalid YAML")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    issue = only(text)
    assert (issue.line, issue.path) == (1, "")
    assert "must be a mapping of keys" in issue.message


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing configured yet\n", "---\n", "~\n"])
def test_empty_file_gives_the_default(text: str) -> None:
    assert load_config(text, FILE) == default_config()


def test_default_sends_everything_to_the_console_as_text_with_60s_grace() -> None:
    config = default_config()
    assert [(r.name, r.type) for r in config.receivers] == [("console", "console")]
    receiver = config.receivers[0]
    assert receiver.console is not None
    assert receiver.console.format == "text"
    assert [(r.match, r.receivers) for r in config.routes] == [(None, ("console",))]
    assert config.policy.grace == timedelta(seconds=60)


def test_a_file_with_only_clusters_still_delivers_to_the_console() -> None:
    config = load_config("clusters:\n  - {name: prod, in_cluster: true}\n", FILE)
    assert [r.receivers for r in config.routes] == [("console",)]
    assert config.clusters[0].name == "prod"


def test_routes_may_name_the_builtin_console_only_when_no_receivers_are_defined() -> None:
    config = load_config("routes:\n  - receivers: [console]\n", FILE)
    assert config.receivers[0].name == "console"


def test_yaml_1_2_scalars_stay_text() -> None:
    config = load_config(
        textwrap.dedent(
            """\
            clusters:
              - {name: "no", context: on}
            receivers:
              - {name: "yes", slack: {channel: off}}
            routes:
              - receivers: ["yes"]
                quiet_hours: {start: 22:00, end: 7:30}
            """
        ),
        FILE,
    )
    assert config.clusters[0].context == "on"
    receiver = config.receivers[0]
    assert receiver.slack is not None and receiver.slack.channel == "off"
    quiet = config.routes[0].quiet_hours
    assert quiet is not None and (quiet.start, quiet.end) == (time(22, 0), time(7, 30))


def test_a_full_file_loads_into_the_model() -> None:
    config = load_config(
        textwrap.dedent(
            """\
            clusters:
              - {name: prod, kubeconfig: /etc/k, context: prod-admin,
                 argocd_url: https://argocd.example.com}
            argocd_api:
              - {cluster: prod, url: https://argocd.example.com, project: sre,
                 selector: team=payments}
            receivers:
              - {name: oncall, slack: {channel: C0123456}}
              - {name: pm, teams: {webhook_file: /run/secrets/teams, payload: card}}
              - {name: stdout, console: {format: jsonl}}
            routes:
              - match:
                  tool: [argocd, flux]
                  cluster: prod*
                  labels: {team: pay*}
                  kinds: [drift_detected, deploy_failed]
                  min_severity: warning
                receivers: [oncall]
                mention: ["@sre-oncall"]
                continue: true
                grace: 1h30m
              - receivers: [stdout, pm]
            policy: {grace: 2m, group_wait: 10s, group_interval: 1m, repeat: 0,
                     flap: {flips: 0}}
            rbac: {operators: {users: [U0123], groups: [S0456]}}
            slack: {mode: http, command: /deploys, api_url: "http://127.0.0.1:9999/api"}
            teams: {outgoing_webhook_secret_env: TEAMS_OUTGOING_TOKEN}
            server: {port: 9000, flux_webhook_token_env: FLUX_HMAC}
            """
        ),
        FILE,
    )
    route = config.routes[0]
    assert route.match is not None
    assert route.match.tool == ("argocd", "flux")
    assert route.match.cluster == ("prod*",)
    assert route.match.kinds == (EventKind.DRIFT_DETECTED, EventKind.DEPLOY_FAILED)
    assert route.match.min_severity is Severity.WARNING
    assert route.continue_ is True
    assert route.grace == timedelta(hours=1, minutes=30)
    assert config.policy.repeat == timedelta(0)
    assert config.policy.flap.flips == 0
    assert config.argocd_api[0].token_env == "ARGOCD_TOKEN"
    assert config.slack.api_url == "http://127.0.0.1:9999/api/"
    assert config.server.port == 9000
    assert config.rbac.may_operate("U0123")
    assert config.rbac.may_operate("U9", ("S0456",))
    assert not config.rbac.may_operate("U9")
    assert config.rbac.may_view("U9")


def test_warnings_for_unused_receivers_and_unreachable_routes() -> None:
    loaded = check_config(
        textwrap.dedent(
            """\
            receivers:
              - {name: a, console: {}}
              - {name: spare, console: {}}
            routes:
              - receivers: [a]
              - match: {cluster: prod}
                receivers: [a]
            """
        ),
        FILE,
    )
    assert [str(w) for w in loaded.warnings] == [
        "routes.yaml:3: receivers[1].name: receiver 'spare' is used by no route",
        "routes.yaml:6: routes[1]: unreachable: routes[0] has no match and no continue, "
        "so it takes every event first",
    ]


def test_x_keys_hold_anchors_for_reuse() -> None:
    config = load_config(
        textwrap.dedent(
            """\
            x-prod: &prod {cluster: prod, tool: argocd}
            receivers: [{name: a, console: {}}]
            routes:
              - match: {<<: *prod, kinds: [deploy_failed]}
                receivers: [a]
            """
        ),
        FILE,
    )
    match = config.routes[0].match
    assert match is not None
    assert (match.cluster, match.tool) == (("prod",), ("argocd",))
    assert match.kinds == (EventKind.DEPLOY_FAILED,)


def test_config_file_convenience(tmp_path: Path) -> None:
    path = tmp_path / "driftbot.yaml"
    path.write_text("policy: {grace: 2m}\n", encoding="utf-8")
    assert load_config_file(path).policy.grace == timedelta(minutes=2)
    assert load_config_file(None) == default_config()
    assert check_config_file(None).warnings == ()


def test_config_file_errors_carry_the_path(tmp_path: Path) -> None:
    path = tmp_path / "driftbot.yaml"
    path.write_text("policy: {grace: 2 m}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value).startswith(f"{path}:1: policy.grace: invalid duration")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config_file(missing)
    assert caught.value.errors == [
        ConfigIssue(str(missing), 0, "", "cannot read: No such file or directory")
    ]
    assert str(caught.value) == f"{missing}: cannot read: No such file or directory"


def test_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"receivers:\n  - name: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert "cannot read" in str(caught.value)


# --- untrusted input: whatever the file holds, the loader answers with a Config or ConfigError --

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(["30s", "5m", "prod*", "drift_detected", "console", "[", "critical"]),
)
_keys = st.sampled_from(
    [
        "clusters",
        "receivers",
        "routes",
        "policy",
        "match",
        "name",
        "kinds",
        "grace",
        "slack",
        "console",
        "teams",
        "receivers",
        "continue",
        "labels",
        "channel",
        "format",
        "server",
        "port",
        "digests",
        "schedule",
        "rbac",
        "x",
    ]
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=20,
)


def _outcome(text: str) -> Config | list[ConfigIssue]:
    try:
        return load_config(text, FILE)
    except ConfigError as exc:
        assert exc.errors
        for issue in exc.errors:
            assert issue.file == FILE and issue.line >= 1 and issue.message
        return exc.errors


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_any_structure_gives_a_config_or_located_errors(data: dict[str, object]) -> None:
    result = _outcome(yaml.safe_dump(data))
    assert isinstance(result, Config | list)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_config_or_located_errors(text: str) -> None:
    result = _outcome(text)
    assert isinstance(result, Config | list)


def test_a_route_by_namespace_that_argo_cd_apps_never_match_is_explained() -> None:
    loaded = check_config(
        textwrap.dedent(
            """\
            receivers:
              - {name: a, console: {}}
            routes:
              - match: {namespace: shop}
                receivers: [a]
              - match: {namespace: shop, tool: flux}
                receivers: [a]
              - match: {namespace: argocd}
                receivers: [a]
              - match: {destination_namespace: shop}
                receivers: [a]
            """
        ),
        FILE,
    )
    assert [str(w) for w in loaded.warnings] == [
        "routes.yaml:4: routes[0].match.namespace: namespace shop matches the namespace an "
        "object lives in; Argo CD Applications usually live in argocd, so Argo CD apps will not "
        "match: to match the namespace an app deploys into, use destination_namespace (or add "
        "tool: flux if only Flux is meant)"
    ]


def test_flux_ui_url_one_template_or_one_per_kind() -> None:
    config = check_config(
        textwrap.dedent(
            """\
            clusters:
              - name: staging
                flux_ui_url: "https://capacitor.example.com/#/{kind_lower}/{namespace}/{name}"
              - name: edge
                flux_ui_url:
                  HelmRelease: "https://weave.example.com/helm_release?name={name}"
            """
        ),
        FILE,
    ).config
    staging, edge = config.clusters
    assert staging.flux_ui_template("HelmRelease") == (
        "https://capacitor.example.com/#/{kind_lower}/{namespace}/{name}"
    )
    assert (
        edge.flux_ui_template("HelmRelease") == "https://weave.example.com/helm_release?name={name}"
    )
    assert edge.flux_ui_template("Kustomization") == ""
