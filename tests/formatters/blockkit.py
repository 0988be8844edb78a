"""A Block Kit validator for the messages driftbot renders: every limit Slack enforces.

`slack_problems` lists what Slack would refuse (empty when the message is valid); tests assert
on it, so a renderer change that breaks a limit fails loudly with the JSON pointer.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ID = 255
MAX_MESSAGE_CHARS = 12000
MAX_TEXT = 40000

_TOKEN = re.compile(r"<[^<>]*>")


def slack_problems(message: Any) -> list[str]:
    """Every way `message` breaks a Block Kit limit, as `what [at]` strings."""
    if not isinstance(message, dict):
        return ["message must be an object"]
    problems: list[str] = []
    size = len(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
    if size > MAX_MESSAGE_CHARS:
        problems.append(f"message is {size} chars, over {MAX_MESSAGE_CHARS}")
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("text fallback missing or blank")
    elif len(text) > MAX_TEXT:
        problems.append("text fallback too long")
    blocks = message.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [*problems, "blocks must be a non-empty list"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks, over {MAX_BLOCKS}")
    block_ids: list[str] = []
    action_ids: list[str] = []
    for index, block in enumerate(blocks):
        problems += _block(block, f"/blocks/{index}", block_ids, action_ids)
    if len(set(block_ids)) != len(block_ids):
        problems.append(f"duplicate block_id in {block_ids}")
    if len(set(action_ids)) != len(action_ids):
        problems.append(f"duplicate action_id in {action_ids}")
    return problems


def _block(block: Any, at: str, block_ids: list[str], action_ids: list[str]) -> list[str]:
    if not isinstance(block, dict):
        return [f"block must be an object [{at}]"]
    problems: list[str] = []
    if "block_id" in block:
        problems += _id(block["block_id"], f"{at}/block_id")
        block_ids.append(str(block["block_id"]))
    kind = block.get("type")
    if kind == "section":
        if "text" not in block and not block.get("fields"):
            problems.append(f"section needs text or fields [{at}]")
        if "text" in block:
            problems += _text(block["text"], MAX_SECTION_TEXT, f"{at}/text")
        fields = block.get("fields", [])
        if len(fields) > MAX_FIELDS:
            problems.append(f"{len(fields)} fields, over {MAX_FIELDS} [{at}/fields]")
        for j, field in enumerate(fields):
            problems += _text(field, MAX_FIELD_TEXT, f"{at}/fields/{j}")
    elif kind == "header":
        problems += _text(block.get("text"), MAX_HEADER_TEXT, f"{at}/text", plain_only=True)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            return [*problems, f"context needs elements [{at}]"]
        if len(elements) > MAX_CONTEXT_ELEMENTS:
            problems.append(f"{len(elements)} context elements [{at}]")
        for j, element in enumerate(elements):
            problems += _text(element, MAX_SECTION_TEXT, f"{at}/elements/{j}")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            return [*problems, f"actions needs elements [{at}]"]
        if len(elements) > MAX_ACTIONS_ELEMENTS:
            problems.append(f"{len(elements)} actions [{at}]")
        for j, element in enumerate(elements):
            problems += _button(element, f"{at}/elements/{j}", action_ids)
    elif kind != "divider":
        problems.append(f"unexpected block type {kind!r} [{at}]")
    return problems


def _button(element: Any, at: str, action_ids: list[str]) -> list[str]:
    if not isinstance(element, dict) or element.get("type") != "button":
        return [f"expected a button [{at}]"]
    problems = _text(element.get("text"), MAX_BUTTON_TEXT, f"{at}/text", plain_only=True)
    action_id = element.get("action_id")
    problems += _id(action_id, f"{at}/action_id")
    action_ids.append(str(action_id))
    value = element.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE):
        problems.append(f"button value over {MAX_BUTTON_VALUE} [{at}/value]")
    url = element.get("url")
    if url is not None and (
        not isinstance(url, str)
        or len(url) > MAX_URL
        or not url.startswith(("http://", "https://"))
    ):
        problems.append(f"bad button url [{at}/url]")
    return problems


def _text(obj: Any, limit: int, at: str, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"text object expected [{at}]"]
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        return [f"text type {obj.get('type')!r} not allowed [{at}]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        return [f"text is empty [{at}]"]
    if len(text) > limit:
        return [f"text is {len(text)} chars, over {limit} [{at}]"]
    return []


def _id(value: Any, at: str) -> list[str]:
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        return [f"id missing or over {MAX_ID} chars [{at}]"]
    return []


def mrkdwn_texts(message: dict[str, Any]) -> list[str]:
    """Every string Slack parses for mentions and links: the fallback and all mrkdwn texts."""
    texts = [message.get("text", "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                texts.append(node.get("text", ""))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(message.get("blocks", []))
    return texts


def live_tokens(message: dict[str, Any]) -> list[str]:
    """Every `<…>` control sequence (mention, link, date) Slack would act on."""
    return [token for text in mrkdwn_texts(message) for token in _TOKEN.findall(text)]


def assert_valid_slack(message: Any) -> None:
    problems = slack_problems(message)
    assert not problems, problems
