"""The slash command: parsing (table and property tests), which apps a question is about,
channel scoping, and every command's answer through CommandRunner with a real store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.chat.commands import (
    ALL,
    OPERATOR_VERBS,
    VERBS,
    Ack,
    Asker,
    Audit,
    CommandRunner,
    Drift,
    Help,
    History,
    Mute,
    Mutes,
    Routes,
    Selector,
    Status,
    Unmute,
    Usage,
    Versions,
    channel_scope,
    needs_operator,
    parse_command,
    parse_selector,
    problems_since,
    select,
)
from bot.store.store import Store
from config.schema import Config
from core.model import AppKey, AppState, EventKind
from core.policy import Held, OpenAlert, PolicyState
from formatters import chat_phrases as say
from formatters.chat import answer_usage
from tests.bot.chat_support import MemoryControls, fleet
from tests.fakes.slack_api import validate_blocks
from tests.formatters.builders import NOW, event

# --- parsing -------------------------------------------------------------------------------------

app = Selector("app", "checkout")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("help", Help()),
        ("  HELP  ", Help()),
        ("status", Status(ALL)),
        ("status checkout", Status(app)),
        ("status shop/checkout", Status(Selector("app", "checkout", namespace="shop"))),
        (
            "status prod/shop/checkout",
            Status(Selector("app", "checkout", namespace="shop", cluster="prod")),
        ),
        ("status cluster:prod", Status(Selector("cluster", "prod"))),
        ("status env:staging", Status(Selector("env", "staging"))),
        ("status ns:shop", Status(Selector("namespace", "shop"))),
        ("status check*", Status(Selector("app", "check*"))),
        ("drift", Drift(ALL)),
        ("drift cluster:prod", Drift(Selector("cluster", "prod"))),
        ("history checkout", History(app)),
        ("versions checkout", Versions(app)),
        ("audit checkout", Audit(app)),
        ("routes", Routes(None)),
        ("routes checkout", Routes(app)),
        ("mute checkout 4h", Mute(app, timedelta(hours=4), "")),
        (
            "mute cluster:prod 1h30m load test on prod",
            Mute(Selector("cluster", "prod"), timedelta(hours=1, minutes=30), "load test on prod"),
        ),
        ("unmute checkout", Unmute(app)),
        ("mutes", Mutes()),
        ("ack checkout", Ack(app)),
        ("ack shop&#47;checkout", Ack(Selector("app", "checkout", namespace="shop"))),
    ],
)
def test_commands_are_parsed(text: str, expected: object) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "says", "about"),
    [
        ("stauts", "did you mean `status`?", None),
        ("deploy checkout", "I do not know the command `deploy`", None),
        ("history", "`history` needs an app name", "history"),
        ("history a b", "I did not understand `b`", "history"),
        ("status a b", "takes one value at most", "status"),
        ("mutes now", "takes nothing more", "mutes"),
        ("mute checkout", "needs a target and a duration", "mute"),
        ("mute checkout soon", "`soon` is not a duration", "mute"),
        ("mute checkout 30", "`30` is not a duration", "mute"),
        ("mute checkout 90d", "from 1 minute to 30 days", "mute"),
        ("mute checkout 10s", "from 1 minute to 30 days", "mute"),
        ("status foo:bar", "start it with cluster:, env: or ns:", "status"),
        ("status a/b/c/d", "at most cluster/namespace/app", "status"),
        ("status <!channel>", "`&lt;!channel&gt;` is not something I can look up", "status"),
        ("status a//b", "is not something I can look up", "status"),
        ("x" * 1001, "longer than I can read", None),
    ],
)
def test_what_is_not_understood_says_why(text: str, says: str, about: str | None) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, Usage)
    assert says in parsed.problem
    assert parsed.about == about


def test_user_text_in_a_usage_answer_cannot_ping_or_format() -> None:
    parsed = parse_command("<!here> `x`")
    assert isinstance(parsed, Usage)
    assert "<!here>" not in parsed.problem
    assert "&lt;!here&gt;" in parsed.problem


@given(st.text(max_size=1200))
def test_any_text_is_a_command_or_usage_never_an_exception(text: str) -> None:
    parsed = parse_command(text)
    if isinstance(parsed, Usage):
        answer = answer_usage("/gitops", parsed.problem, parsed.about)
        assert validate_blocks(answer["blocks"], 50) == []
        assert "<!" not in json.dumps(answer)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["status", "mute", "ack", "history", "routes", "drift", "mutes"]),
            st.text(alphabet="abc-*/:?.4hmd<>&`", min_size=1, max_size=12),
        ),
        max_size=5,
    )
)
def test_word_salad_of_real_verbs_never_raises(words: list[str]) -> None:
    parse_command(" ".join(words))


def test_every_verb_has_a_help_line_and_an_example_that_parses_to_it() -> None:
    helped = {usage.split()[0] for usage, _ in say.HELP_LINES} | {"help"}
    assert set(VERBS) == helped
    assert set(VERBS) == set(say.EXAMPLES)
    assert set(VERBS) >= OPERATOR_VERBS
    for verb, example in say.EXAMPLES.items():
        parsed = parse_command(example)
        assert not isinstance(parsed, Usage), example
        assert parsed.verb == verb
        assert needs_operator(parsed) == (verb in OPERATOR_VERBS)


def test_a_selector_reads_back_as_typed() -> None:
    for text in ("checkout", "shop/checkout", "prod/shop/checkout", "cluster:prod"):
        assert parse_selector(text).text == text
    assert parse_selector("ns:shop").text == "namespace:shop"
    with pytest.raises(ValueError, match="not something I can look up"):
        parse_selector("a b")


# --- which apps ----------------------------------------------------------------------------------


def names(states: list[AppState]) -> set[tuple[str, str]]:
    return {(s.cluster, s.name) for s in states}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("checkout", {("prod", "checkout"), ("staging", "checkout")}),
        ("shop/checkout", {("prod", "checkout"), ("staging", "checkout")}),
        ("staging/shop/checkout", {("staging", "checkout")}),
        ("cluster:staging", {("staging", "checkout"), ("staging", "guestbook")}),
        ("staging", {("staging", "checkout"), ("staging", "guestbook")}),
        ("ns:flux-system", {("prod", "apps")}),
        ("pay*", {("prod", "payments")}),
        ("nothing", set()),
    ],
)
def test_selectors_pick_apps(selector: str, expected: set[tuple[str, str]]) -> None:
    assert names(select(fleet().values(), parse_selector(selector))) == expected


def test_env_matches_a_label_as_well_as_a_cluster() -> None:
    states = list(fleet().values())
    states[0] = replace(states[0], labels={"env": "qa"})
    assert names(select(states, parse_selector("env:qa"))) == {("prod", "guestbook")}


def test_deleted_apps_are_not_selected() -> None:
    states = [replace(s, deleted=s.name == "payments") for s in fleet().values()]
    assert ("prod", "payments") not in names(select(states, ALL))


def scoped_config(scope: bool = True) -> Config:
    return Config.model_validate(
        {
            "receivers": [
                {"name": "shop", "slack": {"channel": "C0SHOP"}},
                {"name": "platform", "slack": {"channel": "platform-alerts"}},
                {"name": "stdout", "console": {}},
            ],
            "routes": [
                {"match": {"namespace": "shop", "cluster": "prod"}, "receivers": ["shop"]},
                {"match": {"cluster": "staging"}, "receivers": ["shop"], "continue": True},
                {"receivers": ["platform", "stdout"]},
            ],
            "slack": {"scope_channels": scope},
        }
    )


@pytest.mark.parametrize(
    ("channel", "channel_name", "expected"),
    [
        (
            "C0SHOP",
            "shop",
            {
                ("prod", "checkout"),
                ("prod", "payments"),
                ("staging", "checkout"),
                ("staging", "guestbook"),
            },
        ),
        ("C0PLATFORM", "platform-alerts", None),  # the catch-all route: everything
        ("C0OTHER", "random", None),  # no receiver posts here: not scoped
    ],
)
def test_a_channel_sees_the_clusters_and_namespaces_its_routes_cover(
    channel: str, channel_name: str, expected: set[tuple[str, str]] | None
) -> None:
    scope = channel_scope(scoped_config(), channel, channel_name)
    if expected is None:
        assert scope is None or all(scope.covers(s) for s in fleet().values())
        return
    assert scope is not None
    assert names([s for s in fleet().values() if scope.covers(s)]) == expected


def test_channels_are_not_scoped_unless_the_config_says_so() -> None:
    assert channel_scope(scoped_config(scope=False), "C0SHOP", "shop") is None


def test_problems_since_takes_the_oldest_open_or_held_problem() -> None:
    states = fleet()
    checkout = next(s for s in states.values() if s.name == "checkout")
    early = event(EventKind.DRIFT_DETECTED, checkout, NOW - timedelta(hours=3))
    later = event(EventKind.HEALTH_DEGRADED, checkout, NOW - timedelta(hours=1))
    policy = PolicyState.of(
        held=[Held(later, NOW + timedelta(minutes=1))], open=[OpenAlert(early, NOW)]
    )
    assert problems_since(policy) == {checkout.key: NOW - timedelta(hours=3)}


# --- answers -------------------------------------------------------------------------------------


@dataclass
class Holder:
    states: dict[AppKey, AppState]
    policy_state: PolicyState
    projects: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)


@dataclass
class Setup:
    runner: CommandRunner
    store: Store
    controls: MemoryControls
    holder: Holder

    async def ask(self, text: str, user: str = "U0OPS", channel: str = "C0ANY") -> str:
        answer = await self.runner.run(text, Asker(user, (), channel, "any"))
        assert validate_blocks(answer["blocks"], 50) == [], answer
        assert answer["text"]
        return json.dumps(answer["blocks"], ensure_ascii=False)


def config(**extra: Any) -> Config:
    return Config.model_validate(
        {
            "receivers": [{"name": "oncall", "slack": {"channel": "C0ONCALL"}}],
            "routes": [
                {"match": {"cluster": "prod", "kinds": ["drift_detected"]}, "receivers": ["oncall"]}
            ],
            "rbac": {"operators": {"users": ["U0OPS"]}},
            **extra,
        }
    )


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    states = fleet()
    checkout = next(s for s in states.values() if s.name == "checkout" and s.cluster == "prod")
    drift = event(EventKind.DRIFT_DETECTED, checkout, NOW - timedelta(minutes=42))
    holder = Holder(states, PolicyState.of(open=[OpenAlert(drift, NOW - timedelta(minutes=41))]))
    controls = MemoryControls({checkout.key: 1})
    async with await Store.open(tmp_path / "state.sqlite") as store:
        runner = CommandRunner(config(), holder, store, controls, lambda: NOW)
        yield Setup(runner, store, controls, holder)


def epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


async def test_status_is_per_cluster_worst_first_in_plain_words(setup: Setup) -> None:
    shown = await setup.ask("status")
    assert "GitOps status" in shown
    assert ":red_circle: *prod*: 2 of 4 apps need attention" in shown
    assert ":large_orange_circle: *staging*: all 2 apps are fine; 1 deploying or waiting" in shown
    assert shown.index("payments is failing") < shown.index("checkout no longer matches Git")
    assert f"(since <!date^{epoch(NOW - timedelta(minutes=42))}" in shown
    assert "_1 failing, 1 drifted, 2 fine_" in shown


async def test_status_of_a_cluster_by_its_bare_name(setup: Setup) -> None:
    shown = await setup.ask("status staging")
    assert "*staging*" in shown and "*prod*" not in shown


async def test_status_of_an_app_is_detailed(setup: Setup) -> None:
    shown = await setup.ask("status prod/shop/payments")
    assert "payments is failing" in shown
    assert "Controller message" in shown
    assert "&lt;!channel&gt; crash loop &amp; back-off" in shown
    assert "<!channel>" not in shown
    assert "*Health*\\ndegraded" in shown


async def test_status_of_an_app_in_two_clusters_shows_both_and_its_link(setup: Setup) -> None:
    shown = await setup.ask("status checkout")
    assert "checkout no longer matches Git" in shown and "checkout matches Git and is" in shown
    assert "<https://argocd.example.com/applications/argocd/checkout|Open in Argo CD>" in shown
    assert "Out of sync: `Service/test-lla/test-lla`" in shown
    assert "drift detected" in shown  # the open alert


async def test_status_of_something_unknown_suggests_names(setup: Setup) -> None:
    shown = await setup.ask("status chekout")
    assert "I found nothing matching `chekout`. Did you mean `checkout`?" in shown


async def test_drift_lists_what_is_out_of_sync_and_since_when(setup: Setup) -> None:
    shown = await setup.ask("drift")
    assert "checkout on prod: no longer matches Git (2 resources) (since" in shown
    assert "payments" not in shown


async def test_drift_when_nothing_drifted(setup: Setup) -> None:
    shown = await setup.ask("drift cluster:staging")
    assert "Everything matches Git." in shown


async def test_versions_flags_a_mismatch_between_clusters(setup: Setup) -> None:
    shown = await setup.ask("versions checkout")
    assert "The clusters do not run the same version: revisions and chart versions differ" in shown
    assert "*prod* (shop): `ea87599`, chart 1.4.0" in shown
    assert "*staging* (shop): `0cc9a84`, chart 1.5.0" in shown


async def test_versions_the_same_everywhere(setup: Setup) -> None:
    assert "Every cluster runs the same version" in await setup.ask("versions guestbook")
    for key, state in list(setup.holder.states.items()):
        if state.name == "guestbook" and state.cluster == "staging":
            setup.holder.states[key] = replace(state, revision="abc1234")
    shown = await setup.ask("versions guestbook")
    assert "The clusters do not run the same version: revisions differ" in shown


async def test_history_shows_deploys_and_what_was_recorded(setup: Setup) -> None:
    await setup.ask("ack prod/shop/checkout")
    shown = await setup.ask("history checkout")
    assert "`ea87599` by alice@example.com" in shown
    assert "`731f7ea` automatically" in shown
    assert "Recorded by driftbot" in shown
    assert "<@U0OPS> acknowledged" in shown


async def test_audit_of_an_app_with_nothing_recorded(setup: Setup) -> None:
    assert "Nothing recorded for checkout yet." in await setup.ask("audit checkout")


async def test_mute_unmute_and_mutes(setup: Setup) -> None:
    shown = await setup.ask("mute prod/shop/checkout 4h release <b>")
    assert "Muted `prod/shop/checkout` until" in shown
    assert "(release &lt;b&gt;)" in shown
    assert setup.controls.muted["prod/shop/checkout"].until == NOW + timedelta(hours=4)
    listed = await setup.ask("mutes")
    assert "`prod/shop/checkout`: until" in listed and "by <@U0OPS>" in listed
    audit = await setup.ask("audit checkout")
    assert "<@U0OPS> muted (target prod/shop/checkout" in audit
    assert "is no longer muted" in await setup.ask("unmute prod/shop/checkout")
    assert "was not muted" in await setup.ask("unmute prod/shop/checkout")
    assert "Nothing is muted." in await setup.ask("mutes")
    actions = [e.action for e in await setup.store.audit_log()]
    assert actions == ["unmute", "unmute", "mute"]


async def test_ack_acknowledges_open_alerts_and_is_audited(setup: Setup) -> None:
    shown = await setup.ask("ack checkout")
    assert "Acknowledged 1 open alert of `checkout`" in shown
    assert {k.cluster for k, _, _ in setup.controls.acked} == {"prod", "staging"}
    [entry] = await setup.store.audit_log()
    assert (entry.action, entry.app and entry.app.cluster) == ("ack", "prod")
    assert "has no open alerts" in await setup.ask("ack checkout")


async def test_operator_commands_are_refused_to_others_and_audited(setup: Setup) -> None:
    for text in ("mute checkout 1h", "unmute checkout", "ack checkout"):
        assert "Sorry, only operators may" in await setup.ask(text, user="U0DEV")
    assert setup.controls.muted == {} and setup.controls.acked == []
    entries = await setup.store.audit_log()
    assert [(e.actor, e.action, e.detail["command"]) for e in entries] == [
        ("U0DEV", "denied", "ack"),
        ("U0DEV", "denied", "unmute"),
        ("U0DEV", "denied", "mute"),
    ]


async def test_routes_explains_where_an_app_alerts_go(setup: Setup) -> None:
    shown = await setup.ask("routes checkout")
    assert "*drift_detected* on prod: result: sent to oncall (by routes[0])" in shown
    assert "*deploy_failed* on prod: result: no route takes this event" in shown
    listed = await setup.ask("routes")
    assert "0. `cluster=prod kinds=drift_detected` → <#C0ONCALL>" in listed


async def test_routes_shows_where_an_annotation_sends_an_apps_alerts(tmp_path: Path) -> None:
    states = fleet()
    checkout = next(s for s in states.values() if s.name == "checkout" and s.cluster == "prod")
    written = {"notifications.argoproj.io/subscribe.on-sync-failed.slack": "shop-alerts"}
    states[checkout.key] = replace(checkout, annotations=written, project="shop")
    project = {"driftbot.dev/notify.drift_detected": "teams:pm"}
    holder = Holder(states, PolicyState(), {("prod", "shop"): project})
    settings = Config.model_validate(
        {
            "receivers": [
                {"name": "oncall", "slack": {"channel": "C0ONCALL"}},
                {"name": "pm", "teams": {"webhook_env": "TEAMS_PM_WEBHOOK"}},
            ],
            "routes": [
                {"match": {"cluster": "prod", "kinds": ["drift_detected"]}, "receivers": ["oncall"]}
            ],
            "routing": {"annotations": True, "allow": ["slack:shop-alerts", "teams:pm"]},
        }
    )
    async with await Store.open(tmp_path / "state.sqlite") as store:
        runner = CommandRunner(settings, holder, store, MemoryControls({}), lambda: NOW)
        shown = await Setup(runner, store, MemoryControls({}), holder).ask("routes checkout")
    key = "notifications.argoproj.io/subscribe.on-sync-failed.slack"
    assert (
        "*deploy_failed* on prod: result: sent to slack-shop-alerts (by annotation "
        f"{key}: 'shop-alerts' on Application shop/checkout)"
    ) in shown
    assert (
        "*drift_detected* on prod: result: sent to oncall, pm (by routes[0], annotation "
        "driftbot.dev/notify.drift_detected: 'teams:pm' on AppProject shop)"
    ) in shown


async def test_help_lists_every_command(setup: Setup) -> None:
    shown = await setup.ask("help")
    for verb in ("status", "drift", "history", "versions", "audit", "routes", "mute", "ack"):
        assert f"`/gitops {verb}" in shown


async def test_a_scoped_channel_only_sees_its_apps(setup: Setup) -> None:
    setup.runner.config = scoped_config()
    shown = await setup.ask("status", channel="C0SHOP")
    assert "guestbook matches" not in shown
    assert "*prod*: 2 of 2 apps need attention" in shown
    everything = await setup.ask("status", channel="C0OTHER")
    assert "*prod*: 2 of 4 apps need attention" in everything


async def test_a_failure_while_answering_is_an_apology_not_a_stack_trace(setup: Setup) -> None:
    await setup.store.close()  # the store is gone: every read fails
    shown = await setup.ask("audit checkout")
    assert "something went wrong" in shown
    assert "Traceback" not in shown
