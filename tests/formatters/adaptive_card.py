"""A validator for the Teams payloads driftbot renders: Adaptive Card 1.4, envelope, 28 KB."""

from __future__ import annotations

import json
from typing import Any

MAX_BYTES = 28_000
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_ELEMENTS = {"TextBlock", "FactSet"}


def teams_problems(payload: Any, *, shape: str = "envelope") -> list[str]:
    """Every way `payload` would be refused or mis-rendered by Teams (empty when valid)."""
    problems: list[str] = []
    for name, encoded in (
        ("ascii JSON", json.dumps(payload, ensure_ascii=True).encode()),
        ("utf-8 JSON", json.dumps(payload, ensure_ascii=False).encode()),
    ):
        if len(encoded) > MAX_BYTES:
            problems.append(f"{name} is {len(encoded)} bytes, over {MAX_BYTES}")
    card = payload
    if shape == "envelope":
        if not isinstance(payload, dict) or payload.get("type") != "message":
            return [*problems, "envelope must be a message"]
        attachments = payload.get("attachments")
        if not isinstance(attachments, list) or len(attachments) != 1:
            return [*problems, "envelope needs exactly one attachment"]
        attachment = attachments[0]
        if attachment.get("contentType") != CONTENT_TYPE:
            problems.append("attachment contentType is not an adaptive card")
        if "contentUrl" not in attachment or attachment["contentUrl"] is not None:
            problems.append("attachment contentUrl must be null")
        card = attachment.get("content")
    return problems + card_problems(card)


def card_problems(card: Any) -> list[str]:
    if not isinstance(card, dict):
        return ["card must be an object"]
    problems: list[str] = []
    if card.get("type") != "AdaptiveCard":
        problems.append("type must be AdaptiveCard")
    if card.get("version") != "1.4":
        problems.append("version must be 1.4")
    if card.get("$schema") != "http://adaptivecards.io/schemas/adaptive-card.json":
        problems.append("$schema missing")
    body = card.get("body")
    if not isinstance(body, list) or not body:
        return [*problems, "body must be a non-empty list"]
    for index, element in enumerate(body):
        at = f"/body/{index}"
        kind = element.get("type") if isinstance(element, dict) else None
        if kind not in _ELEMENTS:
            problems.append(f"unexpected element {kind!r} [{at}]")
        elif kind == "TextBlock":
            text = element.get("text")
            if not isinstance(text, str) or not text.strip():
                problems.append(f"TextBlock text empty [{at}]")
            if element.get("wrap") is not True:
                problems.append(f"TextBlock must wrap [{at}]")
        else:
            facts = element.get("facts")
            if not isinstance(facts, list) or not facts:
                problems.append(f"FactSet needs facts [{at}]")
                continue
            for j, fact in enumerate(facts):
                if not isinstance(fact.get("title"), str) or not fact.get("title"):
                    problems.append(f"fact title empty [{at}/facts/{j}]")
                if not isinstance(fact.get("value"), str) or not fact["value"].strip():
                    problems.append(f"fact value empty [{at}/facts/{j}]")
    for index, action in enumerate(card.get("actions", [])):
        if action.get("type") != "Action.OpenUrl" or not action.get("title"):
            problems.append(f"unexpected action [/actions/{index}]")
        elif not str(action.get("url", "")).startswith(("http://", "https://")):
            problems.append(f"action url not http(s) [/actions/{index}]")
    return problems


def card_of(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("type") == "message":
        content: dict[str, Any] = payload["attachments"][0]["content"]
        return content
    return payload


def card_texts(payload: dict[str, Any]) -> list[str]:
    """Every string Teams renders as markdown: TextBlocks and fact titles and values."""
    texts: list[str] = []
    for element in card_of(payload)["body"]:
        if element["type"] == "TextBlock":
            texts.append(element["text"])
        else:
            for fact in element["facts"]:
                texts += [fact["title"], fact["value"]]
    return texts


def assert_valid_teams(payload: Any, *, shape: str = "envelope") -> None:
    problems = teams_problems(payload, shape=shape)
    assert not problems, problems
