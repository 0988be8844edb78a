from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from core.model import EventKind, GitOpsEvent, ResourceRef, Severity
from formatters.group import EventGroup
from formatters.slack import (
    render_slack,
    render_slack_group,
    render_slack_recovery_reply,
    render_slack_resolved,
)
from formatters.slack_actions import parse_action_value
from tests.fakes.slack_api import MAX_MESSAGE_BLOCKS, validate_blocks
from tests.formatters.blockkit import assert_valid_slack, live_tokens, slack_problems
from tests.formatters.builders import (
    ARGOCD_URL,
    COMMIT_URL,
    NOW,
    OLD_SHA,
    argocd_state,
    event,
    flux_state,
    helmrelease_state,
    recovery,
)
from tests.formatters.cases import CASE_IDS, HEADLINES, first_line

HOSTILE = "<!channel> <@U123> <https://evil|x> <!subteam^S1> & <#C1>"


def _texts(message: dict[str, Any]) -> str:
    return "\n".join(str(node) for node in _walk(message) if isinstance(node, str))


def _walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [x for v in node.values() for x in _walk(v)]
    if isinstance(node, list):
        return [x for v in node for x in _walk(v)]
    return [node]


def _action_ids(message: dict[str, Any]) -> list[str]:
    return [
        element["action_id"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


@pytest.mark.parametrize(("case", "ev", "expected"), HEADLINES, ids=CASE_IDS)
def test_headline_opens_the_message(case: str, ev: GitOpsEvent, expected: str) -> None:
    message = render_slack(ev)
    assert_valid_slack(message)
    first = message["blocks"][0]["text"]["text"]
    assert f"*{first_line(case, expected)}*" in first
    assert message["text"] == first_line(case, expected)


def test_the_validator_catches_what_slack_refuses() -> None:
    broken = {
        "text": "",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
            {"type": "header", "text": {"type": "mrkdwn", "text": "h"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11},
            {
                "type": "actions",
                "block_id": "b" * 256,
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "t" * 76},
                        "action_id": "a",
                        "value": "v" * 2001,
                    },
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "t"},
                        "action_id": "a",
                    },
                ],
            },
        ]
        * 11,
    }
    problems = slack_problems(broken)
    for expected in (
        "text fallback",
        "over 50",
        "over 3000",
        "11 fields",
        "not allowed",
        "11 context elements",
        "over 75",
        "button value",
        "over 255",
        "duplicate action_id",
        "over 12000",
    ):
        assert any(expected in p for p in problems), expected


def test_details_fields_and_buttons() -> None:
    ev = event(EventKind.DEPLOY_FAILED, previous_revision=OLD_SHA, actor="alice@example.com")
    ev = replace(ev, commit_subject="Fix checkout timeout", commit_author="Jane Doe")
    message = render_slack(ev)
    assert_valid_slack(message)
    assert validate_blocks(message["blocks"], MAX_MESSAGE_BLOCKS) == []
    head = message["blocks"][0]["text"]["text"]
    assert head == (
        ":red_circle: *Needs action · guestbook on prod: deploy of ea87599 failed*\n"
        "> one or more objects failed to apply (dry run)"
    )
    fields = [f["text"] for f in message["blocks"][1]["fields"]]
    assert fields == [
        "*Where*\nnamespace test-lla on prod",
        f"*Revision*\n<{COMMIT_URL}|ea87599 (still running 731f7ea)>",
        "*Commit*\nFix checkout timeout (by Jane Doe)",
        "*Initiated by*\nalice@example.com",
        "*Problem began*\n<!date^1795167600^{date_short_pretty} at {time}|2026-11-20 09:40 UTC>",
    ]
    resources = message["blocks"][2]["text"]["text"]
    assert resources.startswith("*Out of sync (2)*\n• Service/test-lla/test-lla")
    context = message["blocks"][3]
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == (
        "Application argocd/guestbook (Argo CD), project default"
    )
    all_text = str(message)
    assert all_text.count("one or more objects failed to apply") == 1  # said once
    actions = message["blocks"][-1]["elements"]
    assert actions[0]["text"]["text"] == "Open in Argo CD"
    assert actions[0]["url"] == ARGOCD_URL
    assert actions[1]["text"]["text"] == "View commit"
    assert actions[1]["url"] == COMMIT_URL
    assert _action_ids(message) == [
        "driftbot_open",
        "driftbot_open_commit",
        "driftbot_ack",
        "driftbot_mute_1h",
        "driftbot_mute_4h",
        "driftbot_mute_24h",
    ]
    target = parse_action_value(actions[2]["value"])
    assert target.event_id == ev.id
    assert target.key == ev.key


def test_health_alert_says_why_with_the_unhealthy_resources() -> None:
    sick = tuple(
        ResourceRef("Pod", "test-lla", f"guestbook-ui-{i}", "Degraded", "CrashLoopBackOff")
        for i in range(5)
    )
    first = ResourceRef(
        "Deployment",
        "test-lla",
        "guestbook-ui",
        "Degraded",
        'Deployment "guestbook-ui" exceeded its progress deadline',
    )
    ev = event(EventKind.HEALTH_DEGRADED, resources=(first, *sick), resource_count=6, message="")
    message = render_slack(ev)
    assert_valid_slack(message)
    head = message["blocks"][0]["text"]["text"]
    assert head.splitlines() == [
        ":red_circle: *Needs action · guestbook on prod is unhealthy*",
        '> Deployment/test-lla/guestbook-ui is degraded: Deployment "guestbook-ui" exceeded '
        "its progress deadline",
        "> Pod/test-lla/guestbook-ui-0 is degraded: CrashLoopBackOff",
        "> Pod/test-lla/guestbook-ui-1 is degraded: CrashLoopBackOff",
        "> and 3 more",
    ]
    assert "Out of sync" not in str(message)
    health_message = event(EventKind.HEALTH_DEGRADED, message="1 of 3 pods crash")
    assert "> 1 of 3 pods crash" in render_slack(health_message)["blocks"][0]["text"]["text"]


def test_every_time_is_in_the_readers_time_zone() -> None:
    original = event(EventKind.DRIFT_DETECTED)
    message = render_slack_resolved(original, recovery(EventKind.DRIFT_RESOLVED))
    times = [f["text"] for f in message["blocks"][1]["fields"] if "<!date^" in f["text"]]
    assert [t.split("\n")[0] for t in times] == ["*Problem began*", "*Resolved at*"]
    assert "UTC" not in str(message).replace("UTC>", "")  # UTC only as the fallback


def test_no_open_button_without_a_usable_url() -> None:
    ev = event(EventKind.DEPLOY_FAILED, argocd_state(url="not a url"))
    assert "driftbot_open" not in _action_ids(render_slack(ev))


def test_flux_link_is_not_called_argo_cd() -> None:
    ev = event(EventKind.DEPLOY_FAILED, flux_state(url="https://flux.example.com/apps"))
    button = render_slack(ev)["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Open in Flux UI"


def test_info_events_get_no_acknowledge_button() -> None:
    ids = _action_ids(render_slack(event(EventKind.DEPLOY_SUCCEEDED)))
    assert "driftbot_ack" not in ids
    assert "driftbot_mute_1h" in ids


def test_message_is_a_quote_without_code_fences() -> None:
    ev = event(EventKind.DEPLOY_FAILED, message="line one\n```\nline > three")
    quote = render_slack(ev)["blocks"][0]["text"]["text"]
    assert quote.splitlines()[1:] == ["> line one", "> `\u200b`\u200b`", "> line &gt; three"]


@pytest.mark.parametrize(
    "field",
    [
        "name",
        "cluster",
        "namespace",
        "message",
        "revision",
        "project",
        "resources",
        "actor",
        "commit",
    ],
)
def test_control_sequences_from_the_cluster_are_harmless(field: str) -> None:
    changes: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    if field == "resources":
        changes["out_of_sync_resources"] = (ResourceRef("Secret", "<!here>", HOSTILE),)
    elif field == "actor":
        kwargs["actor"] = HOSTILE
    elif field == "commit":
        pass
    elif field == "revision":
        kwargs["previous_revision"] = HOSTILE
        changes["revision"] = HOSTILE
    else:
        changes[field] = HOSTILE
    ev = event(EventKind.DEPLOY_FAILED, argocd_state(**changes), **kwargs)
    if field == "commit":
        ev = replace(ev, commit_subject=HOSTILE, commit_author="<!everyone>")
    assert "&lt;!channel&gt;" in _texts(render_slack(ev))
    for message in (
        render_slack(ev),
        render_slack_resolved(ev, recovery(EventKind.DEPLOY_SUCCEEDED, argocd_state(**changes))),
        render_slack_group(EventGroup.of([ev, event(EventKind.DEPLOY_FAILED, flux_state())])),
    ):
        assert_valid_slack(message)
        assert all(token.startswith(("<!date^", "<https://")) for token in live_tokens(message))


def test_mentions_for_critical_events() -> None:
    ev = event(EventKind.DEPLOY_FAILED)
    assert ev.severity is Severity.CRITICAL
    message = render_slack(
        ev, mention=["U0123ABC", "S0456DEF", "@here", "@channel", "<@W999>", "@sre-oncall"]
    )
    assert_valid_slack(message)
    expected = ["<@U0123ABC>", "<!subteam^S0456DEF>", "<!here>", "<!channel>", "<@W999>"]
    first_line = message["blocks"][0]["text"]["text"].splitlines()[0]
    assert first_line == " ".join([*expected, "@sre-oncall"])
    assert message["text"].startswith(" ".join(expected))
    ours = ("<!date", f"<{COMMIT_URL}|")
    assert [t for t in live_tokens(message) if not t.startswith(ours)] == expected * 2


def test_no_mentions_below_the_threshold() -> None:
    ev = event(EventKind.DRIFT_DETECTED)
    assert live_tokens(render_slack(ev, mention=["U0123ABC"])) == live_tokens(render_slack(ev))
    assert all(t.startswith(("<!date", "<https://")) for t in live_tokens(render_slack(ev)))
    warned = render_slack(ev, mention=["U0123ABC"], mention_severity=Severity.WARNING)
    assert "<@U0123ABC>" in warned["text"]


def test_a_hostile_mention_entry_cannot_ping() -> None:
    message = render_slack(event(EventKind.DEPLOY_FAILED), mention=["<!channel|x> y", "<#C1>"])
    ours = ("<!date", f"<{COMMIT_URL}|")
    assert [t for t in live_tokens(message) if not t.startswith(ours)] == []


def test_resolved_update_is_green_with_duration_and_no_ack() -> None:
    original = event(EventKind.DRIFT_DETECTED, message="Deployment/test-lla/guestbook changed")
    message = render_slack_resolved(original, recovery(EventKind.DRIFT_RESOLVED))
    assert_valid_slack(message)
    head = message["blocks"][0]["text"]["text"]
    assert head == (
        ":large_green_circle: *Resolved · guestbook on prod matches Git again (after 14 min)*\n"
        "~guestbook on prod no longer matches Git~\n"
        "> Deployment/test-lla/guestbook changed"
    )
    assert message["text"] == "Resolved · guestbook on prod matches Git again (after 14 min)"
    assert _action_ids(message) == ["driftbot_open", "driftbot_open_commit"]


def test_a_rollback_edit_is_not_resolved_and_keeps_the_failure() -> None:
    failed = event(
        EventKind.DEPLOY_FAILED,
        helmrelease_state(),
        message="Helm upgrade failed for release podinfo/podinfo with chart "
        "podinfo@6.6.1+0cc9a8446c95: context deadline exceeded",
    )
    rollback = event(
        EventKind.ROLLBACK_SUCCEEDED,
        helmrelease_state(revision="6.6.0+cdd538a0167e", chart_version="6.6.0+cdd538a0167e"),
        previous_revision="6.6.1+0cc9a8446c95",
        previous_chart_version="6.6.1+0cc9a8446c95",
        at=NOW + timedelta(minutes=1),
    )
    message = render_slack_resolved(failed, rollback)
    assert_valid_slack(message)
    assert message["blocks"][0]["text"]["text"] == (
        ":large_orange_circle: *Needs attention · podinfo on staging: upgrade to 6.6.1 failed "
        "and was rolled back to 6.6.0*\n"
        "> Helm upgrade failed for release podinfo/podinfo with chart "
        "podinfo@6.6.1+0cc9a8446c95: context deadline exceeded"
    )
    fields = [f["text"].split("\n") for f in message["blocks"][1]["fields"]]
    assert [f[0] for f in fields] == [
        "*Where*",
        "*Chart version*",
        "*Problem began*",
        "*Rolled back at*",
    ]
    assert fields[1][1] == "6.6.0+cdd538a0167e (was 6.6.1+0cc9a8446c95)"  # one fact, once
    assert "Resolved" not in str(message)


def test_resolved_duration_falls_back_to_the_original_alert_time() -> None:
    original = event(EventKind.HEALTH_DEGRADED)
    fixed = event(EventKind.HEALTH_RECOVERED, at=NOW + timedelta(minutes=3))
    assert "(after 3 min)" in render_slack_resolved(original, fixed)["text"]


def test_huge_event_stays_valid() -> None:
    refs = tuple(ResourceRef("ConfigMap", "shop", f"config-{i:04d}" * 3) for i in range(500))
    ev = event(
        EventKind.DEPLOY_FAILED,
        argocd_state(out_of_sync_resources=refs, out_of_sync_count=500),
        message="x<y & z " * 6400,
    )
    assert len(ev.message) >= 50_000
    message = render_slack(ev, mention=["U1"] * 100)
    assert_valid_slack(message)
    assert validate_blocks(message["blocks"], MAX_MESSAGE_BLOCKS) == []
    resources = message["blocks"][2]["text"]["text"]
    assert resources.startswith("*Out of sync (500)*")
    assert resources.splitlines()[-1].startswith("and ") and resources.endswith(" more")
    assert message["blocks"][0]["text"]["text"].endswith("…")  # the reason, cut


def test_storm_lists_apps_with_links_and_cuts_the_rest() -> None:
    members = [
        event(EventKind.DRIFT_DETECTED, flux_state(name=f"app-{i:03d}", url=f"https://ui/{i}"))
        for i in range(400)
    ]
    message = render_slack_group(EventGroup.of(members))
    assert_valid_slack(message)
    assert message["text"] == (
        "Needs attention · 400 apps drifted on prod after revision main@67e2c98"
    )
    listing = message["blocks"][1]["text"]["text"].splitlines()
    assert listing[0] == "• <https://ui/0|app-000>"
    shown = len(listing) - 1
    assert listing[-1] == f"and {400 - shown} more"


def test_a_recovery_reply_is_its_headline_and_when_only() -> None:
    """The edited alert above it holds every fact: the reply in its thread repeats none."""
    problem = event(EventKind.DRIFT_DETECTED, flux_state(name="redis"))
    back = recovery(EventKind.DRIFT_RESOLVED, flux_state(name="redis"))
    reply = render_slack_recovery_reply(problem, back)
    assert_valid_slack(reply)
    assert reply["text"].startswith("Resolved · redis on prod matches Git again")
    assert [b["type"] for b in reply["blocks"]] == ["section", "context"]
    edited = render_slack_resolved(problem, back)
    fields = [
        f["text"] for b in edited["blocks"] if b["type"] == "section" for f in b.get("fields", [])
    ]
    assert fields, "the edited alert carries the facts"
    said = str(reply["blocks"])
    assert not [f for f in fields if f in said]
