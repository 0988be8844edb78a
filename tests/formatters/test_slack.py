from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from core.model import EventKind, GitOpsEvent, ResourceRef, Severity
from formatters.group import EventGroup
from formatters.slack import render_slack, render_slack_group, render_slack_resolved
from formatters.slack_actions import parse_action_value
from tests.fakes.slack_api import MAX_MESSAGE_BLOCKS, validate_blocks
from tests.formatters.blockkit import assert_valid_slack, live_tokens, slack_problems
from tests.formatters.builders import (
    ARGOCD_URL,
    NOW,
    OLD_SHA,
    argocd_state,
    event,
    flux_state,
    recovery,
)
from tests.formatters.cases import CASE_IDS, HEADLINES

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
    assert f"*{expected}*" in first
    assert message["text"] == expected


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
    fields = [f["text"] for f in message["blocks"][1]["fields"]]
    assert "*Revision*\nea8759964626a583667a2bfd08f334ec2070040a" in fields
    assert f"*Previous revision*\n{OLD_SHA}" in fields
    assert "*Initiated by*\nalice@example.com" in fields
    assert "*Since*\n2026-11-20 09:40 UTC" in fields
    assert "*Commit*\nFix checkout timeout (by Jane Doe)" in fields
    resources = message["blocks"][2]["text"]["text"]
    assert resources.startswith("*Out of sync (2)*\n• Service/test-lla/test-lla")
    quote = message["blocks"][3]["text"]["text"]
    assert quote == "*Controller message*\n> one or more objects failed to apply (dry run)"
    assert "`" not in quote
    actions = message["blocks"][-1]["elements"]
    assert actions[0]["text"]["text"] == "Open in Argo CD"
    assert actions[0]["url"] == ARGOCD_URL
    assert _action_ids(message) == [
        "driftbot_open",
        "driftbot_ack",
        "driftbot_mute_1h",
        "driftbot_mute_4h",
        "driftbot_mute_24h",
    ]
    target = parse_action_value(actions[1]["value"])
    assert target.event_id == ev.id
    assert target.key == ev.key


def test_no_open_button_without_a_usable_url() -> None:
    ev = event(EventKind.DEPLOY_FAILED, argocd_state(url="not a url"))
    assert "driftbot_open" not in _action_ids(render_slack(ev))


def test_flux_link_is_not_called_argo_cd() -> None:
    ev = event(EventKind.DEPLOY_FAILED, flux_state(url="https://flux.example.com/apps"))
    button = render_slack(ev)["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Open in dashboard"


def test_info_events_get_no_acknowledge_button() -> None:
    ids = _action_ids(render_slack(event(EventKind.DEPLOY_SUCCEEDED)))
    assert "driftbot_ack" not in ids
    assert "driftbot_mute_1h" in ids


def test_message_is_a_quote_without_code_fences() -> None:
    ev = event(EventKind.DEPLOY_FAILED, message="line one\n```\nline > three")
    quote = render_slack(ev)["blocks"][3]["text"]["text"]
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
    assert [t for t in live_tokens(message) if not t.startswith("<!date")] == expected * 2


def test_no_mentions_below_the_threshold() -> None:
    ev = event(EventKind.DRIFT_DETECTED)
    assert live_tokens(render_slack(ev, mention=["U0123ABC"])) == [
        t for t in live_tokens(render_slack(ev)) if t.startswith("<!date")
    ]
    warned = render_slack(ev, mention=["U0123ABC"], mention_severity=Severity.WARNING)
    assert "<@U0123ABC>" in warned["text"]


def test_a_hostile_mention_entry_cannot_ping() -> None:
    message = render_slack(event(EventKind.DEPLOY_FAILED), mention=["<!channel|x> y", "<#C1>"])
    assert [t for t in live_tokens(message) if not t.startswith("<!date")] == []


def test_resolved_update_is_green_with_duration_and_no_ack() -> None:
    original = event(EventKind.DRIFT_DETECTED)
    message = render_slack_resolved(original, recovery(EventKind.DRIFT_RESOLVED))
    assert_valid_slack(message)
    head = message["blocks"][0]["text"]["text"]
    assert head == (
        ":large_green_circle: *Resolved after 14 min: guestbook on prod matches Git again*\n"
        "~guestbook on prod no longer matches Git~"
    )
    assert message["text"] == "Resolved after 14 min: guestbook on prod matches Git again"
    assert _action_ids(message) == ["driftbot_open"]
    fields = [f["text"] for f in message["blocks"][1]["fields"]]
    assert "*Resolved after*\n14 min" in fields


def test_resolved_duration_falls_back_to_the_original_alert_time() -> None:
    original = event(EventKind.HEALTH_DEGRADED)
    fixed = event(EventKind.HEALTH_RECOVERED, at=NOW + timedelta(minutes=3))
    assert "Resolved after 3 min" in render_slack_resolved(original, fixed)["text"]


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
    assert message["blocks"][3]["text"]["text"].endswith("…")


def test_storm_lists_apps_with_links_and_cuts_the_rest() -> None:
    members = [
        event(EventKind.DRIFT_DETECTED, flux_state(name=f"app-{i:03d}", url=f"https://ui/{i}"))
        for i in range(400)
    ]
    message = render_slack_group(EventGroup.of(members))
    assert_valid_slack(message)
    assert message["text"] == "400 apps drifted on prod after revision main@67e2c98"
    listing = message["blocks"][1]["text"]["text"].splitlines()
    assert listing[0] == "• <https://ui/0|app-000>"
    shown = len(listing) - 1
    assert listing[-1] == f"and {400 - shown} more"
