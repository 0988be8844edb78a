from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from core.model import EventKind, GitOpsEvent, ResourceRef
from formatters.group import EventGroup
from formatters.teams import render_teams, render_teams_group, render_teams_resolved
from tests.formatters.adaptive_card import (
    assert_valid_teams,
    card_of,
    card_texts,
    teams_problems,
)
from tests.formatters.builders import (
    ARGOCD_URL,
    COMMIT_URL,
    NOW,
    argocd_state,
    event,
    flux_state,
    recovery,
)
from tests.formatters.cases import CASE_IDS, HEADLINES, first_line


@pytest.mark.parametrize(("case", "ev", "expected"), HEADLINES, ids=CASE_IDS)
def test_headline_is_the_first_text_block(case: str, ev: GitOpsEvent, expected: str) -> None:
    payload = render_teams(ev)
    assert_valid_teams(payload)
    first = card_of(payload)["body"][0]
    assert first["text"] == first_line(case, expected)
    assert first["weight"] == "Bolder"
    assert first["wrap"] is True


def test_envelope_and_bare_card() -> None:
    ev = event(EventKind.DEPLOY_FAILED)
    payload = render_teams(ev)
    assert payload["type"] == "message"
    assert payload["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert payload["attachments"][0]["contentUrl"] is None
    card = render_teams(ev, payload="card")
    assert card == payload["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert_valid_teams(card, shape="card")


def test_the_validator_catches_what_teams_refuses() -> None:
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Image"}]}
    problems = teams_problems({"type": "message", "attachments": [{"content": card}]})
    for expected in ("contentType", "contentUrl", "version", "$schema", "Image"):
        assert any(expected in p for p in problems), expected
    big = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "é" * 15_000}]}
    assert any("over 28000" in p for p in teams_problems(big, shape="card"))


def _facts(card: dict[str, Any]) -> dict[str, str]:
    factset = next(b for b in card["body"] if b["type"] == "FactSet")
    return {f["title"]: f["value"] for f in factset["facts"]}


def test_facts_resources_message_and_link() -> None:
    ev = event(EventKind.DEPLOY_FAILED, actor="alice@example.com")
    card = card_of(render_teams(ev))
    assert card["body"][0]["text"] == "Needs action · guestbook on prod: deploy of ea87599 failed"
    facts = _facts(card)
    assert facts["Where"] == "namespace test-lla on prod"
    assert facts["Revision"] == "ea87599"
    assert facts["Initiated by"] == "alice@example.com"
    assert facts["Problem began"] == "2026-11-20 09:40 UTC"
    assert facts["Object"] == "Application argocd/guestbook (Argo CD), project default"
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert texts[1:3] == ["**Why**", "one or more objects failed to apply (dry run)"]
    assert "**Out of sync (2)**" in texts
    assert "- Service/test-lla/test-lla\r- Deployment/test-lla/test-lla" in texts
    assert "\n".join(texts).count("one or more objects failed to apply") == 1
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open in Argo CD", "url": ARGOCD_URL},
        {"type": "Action.OpenUrl", "title": "View commit", "url": COMMIT_URL},
    ]


def test_colors_follow_severity() -> None:
    colors = {
        kind: card_of(render_teams(event(kind)))["body"][0]["color"]
        for kind in (EventKind.DEPLOY_FAILED, EventKind.DRIFT_DETECTED, EventKind.DRIFT_RESOLVED)
    }
    assert colors == {
        EventKind.DEPLOY_FAILED: "Attention",
        EventKind.DRIFT_DETECTED: "Warning",
        EventKind.DRIFT_RESOLVED: "Good",
    }


def test_markdown_from_the_cluster_is_escaped() -> None:
    hostile = "[click](https://evil) **x** _y_ `z` # <at>Bob</at>"
    ev = event(
        EventKind.DEPLOY_FAILED,
        argocd_state(name=hostile, out_of_sync_resources=(ResourceRef("Secret", "ns", hostile),)),
        message=hostile,
        actor=hostile,
    )
    ev = replace(ev, commit_subject=hostile)
    texts = card_texts(render_teams(ev))
    joined = "\n".join(texts)
    assert "[click](" not in joined
    assert "\\[click\\](https://evil) \\*\\*x\\*\\* \\_y\\_ \\`z\\` \\# \\<at\\>" in joined
    assert "<at>" not in joined
    assert _facts(card_of(render_teams(ev)))["Commit"].startswith("\\[click\\]")


def test_resolved_is_a_new_card_naming_the_original() -> None:
    original = event(EventKind.DRIFT_DETECTED, message="Deployment/test-lla/guestbook changed")
    payload = render_teams_resolved(original, recovery(EventKind.DRIFT_RESOLVED))
    assert_valid_teams(payload)
    body = card_of(payload)["body"]
    assert body[0]["text"] == "Resolved · guestbook on prod matches Git again (after 14 min)"
    assert body[0]["color"] == "Good"
    assert body[1]["text"] == (
        "Earlier alert: guestbook on prod no longer matches Git (2026-11-20 09:40 UTC)"
    )
    assert body[3]["text"] == "Deployment/test-lla/guestbook changed"  # the reason stays
    facts = _facts(card_of(payload))
    assert (facts["Problem began"], facts["Resolved at"]) == (
        "2026-11-20 09:40 UTC",
        "2026-11-20 09:54 UTC",
    )


def test_huge_event_fits_28_kb() -> None:
    refs = tuple(ResourceRef("ConfigMap", "shop", f"config-{i:04d}" * 5) for i in range(500))
    ev = event(
        EventKind.DEPLOY_FAILED,
        argocd_state(out_of_sync_resources=refs, out_of_sync_count=500, name="é" * 5000),
        message="ü*[x]<" * 10_000,
    )
    payload = render_teams(ev)
    assert_valid_teams(payload)
    assert len(json.dumps(payload).encode()) <= 28_000
    texts = [b["text"] for b in card_of(payload)["body"] if b["type"] == "TextBlock"]
    assert any(t.endswith("- and 450 more") for t in texts)


def test_storm() -> None:
    members = [
        event(
            EventKind.DRIFT_DETECTED,
            flux_state(name=f"app-{i}", url=f"https://ui.example.com/{i}"),
            at=NOW + timedelta(seconds=i),
        )
        for i in range(370)
    ]
    payload = render_teams_group(EventGroup.of(members))
    assert_valid_teams(payload)
    body = card_of(payload)["body"]
    assert body[0]["text"] == (
        "Needs attention · 370 apps drifted on prod after revision main@67e2c98"
    )
    facts = {f["title"]: f["value"] for f in body[1]["facts"]}
    assert facts == {
        "Cluster": "prod",
        "Revision": "main@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9",
        "Tool": "Flux",
        "Apps": "370",
        "Since": "2026-11-20 09:40 UTC",
    }
    lines = body[2]["text"].split("\r")
    assert lines[0] == "- [app-0](https://ui.example.com/0)"
    assert lines[-1] == "- and 270 more"
