"""Chat answers and the App Home view: clusters worst first,
escaping of everything from a cluster, and Block Kit limits whatever the input."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from config.schema import Config
from core.model import (
    AppState,
    EventKind,
    Health,
    HistoryEntry,
    SyncStatus,
    Tool,
)
from core.summary import summarize
from formatters import chat
from formatters.chat import (
    BLOCK_NOTE,
    MuteInfo,
    answer_apps,
    answer_drift,
    answer_history,
    answer_mutes,
    answer_status,
    answer_versions,
    home_view,
    with_note,
)
from formatters.slack import render_slack
from tests.fakes.slack_api import validate_blocks
from tests.formatters.builders import NOW, SHA, argocd_state, event, flux_state, helmrelease_state

LIVE_TOKEN = re.compile(r"<(?!!date\^|@U|#C|https://)[^>]*>")
"""A `<...>` Slack would act on that driftbot did not put there itself."""


def assert_safe(answer: dict[str, Any], max_blocks: int = 50) -> None:
    assert validate_blocks(answer["blocks"], max_blocks) == []
    text = json.dumps(answer, ensure_ascii=False)
    assert "<!channel>" not in text and "<!here>" not in text
    assert not LIVE_TOKEN.search(json.dumps(answer["blocks"], ensure_ascii=False))


ok = {"sync": SyncStatus.SYNCED, "health": Health.HEALTHY}


def test_clusters_are_ordered_worst_first() -> None:
    states = [
        argocd_state(cluster="dev", name="a", **ok),
        argocd_state(cluster="staging", name="b", sync=SyncStatus.OUT_OF_SYNC),
        argocd_state(cluster="prod", name="c", health=Health.DEGRADED),
        argocd_state(cluster="prod", name="d", **ok),
        argocd_state(cluster="qa", name="e", health=Health.PROGRESSING, sync=SyncStatus.SYNCED),
    ]
    summaries = summarize(states)
    assert [s.cluster for s in summaries] == ["prod", "staging", "qa", "dev"]
    assert [chat.cluster_icon(s) for s in summaries] == [
        chat.ICON_RED,
        chat.ICON_RED,
        chat.ICON_ORANGE,
        chat.ICON_GREEN,
    ]
    prod = summaries[0]
    assert (prod.total, prod.synced, prod.drifted, prod.failing) == (2, 1, 0, 1)


def test_status_answer_for_a_green_fleet() -> None:
    answer = answer_status([argocd_state(**ok), flux_state(ready=True)], NOW)
    shown = json.dumps(answer)
    assert ":large_green_circle: *prod*: all 2 apps match Git and are healthy" in shown
    assert answer["text"].startswith("GitOps status: ")


def test_status_answer_when_nothing_is_watched() -> None:
    assert "I do not see any apps yet." in json.dumps(answer_status([], NOW))


def test_a_name_or_message_from_a_cluster_cannot_ping_or_link() -> None:
    evil = argocd_state(
        name="<!channel>",
        cluster="prod&<@U123>",
        health=Health.DEGRADED,
        message="<https://evil.example|click> <!here> & more",
        url="https://argocd.example.com/x|<!channel>",
    )
    for answer in (
        answer_status([evil], NOW),
        answer_apps([evil], NOW, what="x"),
        answer_drift([replace(evil, sync=SyncStatus.OUT_OF_SYNC, health=Health.HEALTHY)], NOW),
        answer_versions("x", [evil]),
    ):
        assert_safe(answer)
        assert "prod&amp;&lt;@U123&gt;" in json.dumps(answer)


def test_an_app_link_is_shown_only_for_a_plain_http_url() -> None:
    shown = json.dumps(answer_apps([argocd_state()], NOW, what="guestbook"))
    assert "<https://argocd.example.com/applications/argocd/guestbook|Open in Argo CD>" in shown
    odd = json.dumps(answer_apps([argocd_state(url="javascript:alert(1)")], NOW, what="g"))
    assert "Open in Argo CD" not in odd


PUBLIC = "https://driftbot.example.com"


def test_with_a_public_url_status_answers_link_to_the_status_page() -> None:
    fleet = [argocd_state(**ok), flux_state(ready=True, cluster="eu west", name="a/b")]
    shown = json.dumps(answer_status(fleet, NOW, public_url=PUBLIC + "/"))
    assert "*<https://driftbot.example.com/status/prod|prod>*: all 1 app" in shown
    assert "*<https://driftbot.example.com/status/eu%20west|eu west>*" in shown
    apps = answer_apps(fleet, NOW, what="x", public_url=PUBLIC)
    assert_safe(apps)
    assert (
        "<https://argocd.example.com/applications/argocd/guestbook|Open in Argo CD> · "
        "<https://driftbot.example.com/status/prod/argocd/guestbook|Status page>"
    ) in json.dumps(apps, ensure_ascii=False)
    assert "<https://driftbot.example.com/status/eu%20west/flux-system/a%2Fb|Status page>" in (
        json.dumps(apps)
    )
    assert "driftbot.example.com" not in json.dumps(answer_status(fleet, NOW))
    assert "driftbot.example.com" not in json.dumps(answer_apps(fleet, NOW, what="x"))


def test_drift_says_since_when_oldest_first() -> None:
    older = argocd_state(name="old", sync=SyncStatus.OUT_OF_SYNC)
    newer = argocd_state(name="new", sync=SyncStatus.OUT_OF_SYNC)
    since = {older.key: NOW - timedelta(hours=5), newer.key: NOW - timedelta(minutes=5)}
    shown = json.dumps(answer_drift([newer, older], NOW, since))
    assert shown.index("old on prod") < shown.index("new on prod")
    assert f"(since <!date^{int((NOW - timedelta(hours=5)).timestamp())}" in shown


def test_pending_deploys_name_the_waiting_revision() -> None:
    state = argocd_state(sync=SyncStatus.OUT_OF_SYNC, desired_revision="b" * 40)
    assert "`bbbbbbb` waiting to be deployed" in json.dumps(answer_drift([state], NOW))


def test_history_lists_deploys_newest_first_with_who() -> None:
    state = helmrelease_state(
        history=(
            HistoryEntry("6.6.1", NOW, "", "3", "6.6.1", "deployed"),
            HistoryEntry("6.6.0", NOW - timedelta(days=1), "", "2", "6.6.0", "superseded"),
        )
    )
    shown = json.dumps(answer_history("podinfo", [state], []))
    assert shown.index("6.6.1") < shown.index("6.6.0")
    assert "chart 6.6.1 (deployed)" in shown


def test_mutes_list_soonest_expiry_first() -> None:
    mutes = [
        MuteInfo("cluster:prod", NOW + timedelta(hours=4), "U0A", "maintenance"),
        MuteInfo("checkout", NOW + timedelta(hours=1), "U0B", ""),
    ]
    shown = json.dumps(answer_mutes(mutes))
    assert shown.index("`checkout`") < shown.index("`cluster:prod`")
    assert "by <@U0A> (maintenance)" in shown


def test_with_note_replaces_the_note_and_drops_a_button() -> None:
    alert = render_slack(event(EventKind.DRIFT_DETECTED, argocd_state()))
    once = with_note(alert["blocks"], "first", drop_actions=["driftbot_ack"])
    twice = with_note(once, "second")
    notes = [b for b in twice if b.get("block_id") == BLOCK_NOTE]
    assert [n["elements"][0]["text"] for n in notes] == ["second"]
    ids = [e["action_id"] for b in twice if b["type"] == "actions" for e in b["elements"]]
    assert "driftbot_ack" not in ids and "driftbot_mute_1h" in ids
    assert validate_blocks(twice, 50) == []


def test_a_huge_fleet_stays_within_block_kit_limits() -> None:
    states = [
        argocd_state(
            cluster=f"cluster-{c:03d}",
            name=f"app-{a:04d}-" + "x" * 200,
            sync=SyncStatus.OUT_OF_SYNC,
            health=Health.DEGRADED if a % 2 else Health.HEALTHY,
        )
        for c in range(80)
        for a in range(30)
    ]
    assert_safe(answer_status(states, NOW))
    assert_safe(answer_drift(states, NOW))
    assert_safe(answer_apps(states, NOW, what="app-*"))
    assert_safe(answer_versions("app", states))
    view = home_view(summarize(states), NOW, "/gitops")
    assert validate_blocks(view["blocks"], 100) == []
    assert "and 32 more clusters" in json.dumps(view)


untrusted = st.text(max_size=300)
states = st.builds(
    AppState,
    tool=st.sampled_from(list(Tool)),
    cluster=untrusted,
    namespace=untrusted,
    kind=st.sampled_from(["Application", "Kustomization", "HelmRelease"]),
    name=untrusted,
    observed_at=st.just(NOW),
    sync=st.sampled_from(list(SyncStatus)),
    health=st.sampled_from(list(Health)),
    ready=st.sampled_from([None, True, False]),
    ready_reason=st.sampled_from(["", "BuildFailed", "Progressing"]),
    revision=untrusted,
    desired_revision=untrusted,
    chart_version=untrusted,
    message=st.text(max_size=5000),
    url=untrusted,
    history=st.lists(
        st.builds(HistoryEntry, revision=untrusted, initiated_by=untrusted), max_size=5
    ).map(tuple),
)


@given(st.lists(states, max_size=12))
def test_any_states_give_valid_escaped_answers(fleet: list[AppState]) -> None:
    assert_safe(answer_status(fleet, NOW))
    assert_safe(answer_status(fleet, NOW, public_url=PUBLIC))
    assert_safe(answer_apps(fleet, NOW, what="x", public_url=PUBLIC))
    assert_safe(answer_drift(fleet, NOW))
    assert_safe(answer_apps(fleet, NOW, what="x"))
    assert_safe(answer_versions("x", fleet))
    assert_safe(answer_history("x", fleet, []))
    view = home_view(summarize(fleet), NOW, "/gitops")
    assert validate_blocks(view["blocks"], 100) == []


@given(
    st.lists(
        st.builds(MuteInfo, target=untrusted, until=st.just(NOW), who=untrusted, reason=untrusted),
        max_size=40,
    )
)
def test_any_mutes_give_a_valid_answer(mutes: list[MuteInfo]) -> None:
    assert_safe(answer_mutes(mutes))


def test_shas_are_shown_short() -> None:
    assert f"`{SHA[:7]}`" in json.dumps(answer_versions("guestbook", [argocd_state()]))


def test_the_routes_list_shows_a_named_routes_name_and_an_unnamed_routes_place() -> None:
    config = Config.model_validate(
        {
            "receivers": [{"name": "oncall", "console": {}}, {"name": "pm", "console": {}}],
            "routes": [
                {"name": "prod-drift", "match": {"cluster": "prod"}, "receivers": ["oncall"]},
                {"receivers": ["pm"]},
            ],
        }
    )
    shown = json.dumps(chat.answer_routes(None, [], config), ensure_ascii=False)
    assert "0. *prod-drift*: `cluster=prod` → oncall" in shown
    assert "1. `(no match: every event)` → pm" in shown
