"""The fake Slack Web API answers like Slack: checked with the real slack_sdk client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import (
    VALID_TOKEN,
    FakeSlackApi,
    Fault,
    VirtualClock,
    validate_blocks,
)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def slack(clock: VirtualClock) -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi(
        clock=clock, missing_channels=("C0GONE",), not_member_channels=("C0NOTIN",)
    ) as fake:
        yield fake


def client_for(slack: FakeSlackApi, token: str | None = VALID_TOKEN) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=slack.url, retry_handlers=[])


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(**over: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": "Ack"}, **over}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def fields(count: int, length: int = 10) -> dict[str, Any]:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * length}] * count}


def context(count: int) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * count}


def actions(element: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": [element]}


# Each limit at its edge (accepted) and one past it (refused), as Slack documents them.
LIMIT_CASES = [
    ("50 blocks", [{"type": "divider"}] * 50, None),
    ("51 blocks", [{"type": "divider"}] * 51, "invalid_blocks"),
    ("section text 3000", [section("s" * 3000)], None),
    ("section text 3001", [section("s" * 3001)], "invalid_blocks"),
    ("10 fields", [fields(10)], None),
    ("11 fields", [fields(11)], "invalid_blocks"),
    ("field of 2000", [fields(1, 2000)], None),
    ("field of 2001", [fields(1, 2001)], "invalid_blocks"),
    ("header 150", [header("h" * 150)], None),
    ("header 151", [header("h" * 151)], "invalid_blocks"),
    (
        "header in mrkdwn",
        [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}],
        "invalid_blocks",
    ),
    ("context 10 elements", [context(10)], None),
    ("context 11 elements", [context(11)], "invalid_blocks"),
    ("button text 75", [actions(button(text={"type": "plain_text", "text": "b" * 75}))], None),
    (
        "button text 76",
        [actions(button(text={"type": "plain_text", "text": "b" * 76}))],
        "invalid_blocks",
    ),
    ("button value 2000", [actions(button(value="v" * 2000))], None),
    ("button value 2001", [actions(button(value="v" * 2001))], "invalid_blocks"),
    ("action_id 255", [actions(button(action_id="a" * 255))], None),
    ("action_id 256", [actions(button(action_id="a" * 256))], "invalid_blocks"),
    ("block_id 255", [{"type": "divider", "block_id": "b" * 255}], None),
    ("block_id 256", [{"type": "divider", "block_id": "b" * 256}], "invalid_blocks"),
    ("unknown block type", [{"type": "marquee"}], "invalid_blocks"),
    ("section without text", [{"type": "section"}], "invalid_blocks"),
]


@pytest.mark.parametrize(
    ("blocks", "expected_error"),
    [pytest.param(blocks, err, id=name) for name, blocks, err in LIMIT_CASES],
)
async def test_block_kit_limits(
    slack: FakeSlackApi, blocks: list[dict[str, Any]], expected_error: str | None
) -> None:
    call = client_for(slack).chat_postMessage(channel="C0ONE", text="fallback", blocks=blocks)
    if expected_error is None:
        response = await call
        assert response["ok"] and response["message"]["blocks"] == blocks
    else:
        error = await slack_error(call)
        assert error.response["error"] == expected_error
        assert error.response["errors"]  # Slack says which block broke which rule
        assert slack.messages("C0ONE") == []


async def test_text_over_40000_characters_is_msg_too_long(slack: FakeSlackApi) -> None:
    client = client_for(slack)
    assert (await client.chat_postMessage(channel="C0ONE", text="t" * 40_000))["ok"]
    error = await slack_error(client.chat_postMessage(channel="C0ONE", text="t" * 40_001))
    assert error.response["error"] == "msg_too_long"


async def test_a_too_fast_second_message_gets_429_with_retry_after(
    slack: FakeSlackApi, clock: VirtualClock
) -> None:
    slack.channel_rate = (1.0, 1)
    client = client_for(slack)
    assert (await client.chat_postMessage(channel="C0ONE", text="one"))["ok"]

    error = await slack_error(client.chat_postMessage(channel="C0ONE", text="two"))
    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert error.response.headers["Retry-After"] == "1"

    assert (await client.chat_postMessage(channel="C0TWO", text="elsewhere"))["ok"]
    clock.advance(1.0)
    assert (await client.chat_postMessage(channel="C0ONE", text="two"))["ok"]
    assert [m["text"] for m in slack.messages("C0ONE")] == ["one", "two"]
    assert slack.rate_limited == 1


async def test_a_small_burst_is_allowed_then_refused(slack: FakeSlackApi) -> None:
    client = client_for(slack)  # default: one a second, burst of 3
    for i in range(3):
        assert (await client.chat_postMessage(channel="C0ONE", text=f"m{i}"))["ok"]
    error = await slack_error(client.chat_postMessage(channel="C0ONE", text="m3"))
    assert error.response.status_code == 429


async def test_workspace_cap_answers_rate_limited(slack: FakeSlackApi, clock: VirtualClock) -> None:
    slack.workspace_rate = (1.0, 2)
    client = client_for(slack)
    assert (await client.chat_postMessage(channel="C0ONE", text="a"))["ok"]
    assert (await client.chat_postMessage(channel="C0TWO", text="b"))["ok"]
    error = await slack_error(client.chat_postMessage(channel="C0THREE", text="c"))
    assert error.response.status_code == 429
    assert error.response["error"] == "rate_limited"
    clock.advance(1.0)
    assert (await client.chat_postMessage(channel="C0THREE", text="c"))["ok"]


async def test_each_message_gets_its_own_ts(slack: FakeSlackApi) -> None:
    client = client_for(slack)
    stamps = [
        (await client.chat_postMessage(channel=ch, text="x"))["ts"]
        for ch in ("C0ONE", "C0TWO", "C0ONE")
    ]
    assert len(set(stamps)) == 3


async def test_update_needs_an_existing_ts(slack: FakeSlackApi) -> None:
    client = client_for(slack)
    posted = await client.chat_postMessage(channel="C0ONE", text="before")
    updated = await client.chat_update(channel="C0ONE", ts=posted["ts"], text="after")
    assert updated["ts"] == posted["ts"]
    assert slack.message("C0ONE", posted["ts"])["text"] == "after"

    error = await slack_error(client.chat_update(channel="C0TWO", ts=posted["ts"], text="x"))
    assert error.response["error"] == "message_not_found"


@pytest.mark.parametrize(
    ("token", "expected_error"),
    [("xoxb-wrong", "invalid_auth"), (None, "not_authed")],
)
async def test_bad_token_is_refused(
    slack: FakeSlackApi, token: str | None, expected_error: str
) -> None:
    error = await slack_error(client_for(slack, token).chat_postMessage(channel="C0ONE", text="x"))
    assert error.response["error"] == expected_error
    assert slack.calls[-1].token == token


async def test_configured_channels_refuse_posts(slack: FakeSlackApi) -> None:
    client = client_for(slack)
    gone = await slack_error(client.chat_postMessage(channel="C0GONE", text="x"))
    not_in = await slack_error(client.chat_postMessage(channel="C0NOTIN", text="x"))
    assert (gone.response["error"], not_in.response["error"]) == (
        "channel_not_found",
        "not_in_channel",
    )

    info = await client.conversations_info(channel="C0NOTIN")
    assert info["channel"]["is_member"] is False
    missing = await slack_error(client.conversations_info(channel="C0GONE"))
    assert missing.response["error"] == "channel_not_found"


async def test_form_encoded_bodies_are_understood(slack: FakeSlackApi) -> None:
    blocks = [section("from a form")]
    response = await client_for(slack).api_call(
        "chat.postMessage",
        data={"channel": "C0ONE", "text": "form", "blocks": json.dumps(blocks)},
    )
    assert response["message"]["blocks"] == blocks
    assert slack.calls[-1].params["channel"] == "C0ONE"


async def test_other_methods(slack: FakeSlackApi) -> None:
    client = client_for(slack)
    auth = await client.auth_test()
    assert auth["user_id"] and auth["team_id"]

    ephemeral = await client.chat_postEphemeral(channel="C0ONE", user="U0ALICE", text="only you")
    assert ephemeral["message_ts"]
    assert slack.ephemeral[0]["user"] == "U0ALICE"

    view = {"type": "home", "blocks": [header("driftbot")]}
    published = await client.views_publish(user_id="U0ALICE", view=view)
    assert published["view"]["id"]
    assert slack.view("U0ALICE") is not None
    bad_view = {"type": "home", "blocks": [header("h" * 151)]}
    error = await slack_error(client.views_publish(user_id="U0ALICE", view=bad_view))
    assert error.response["error"] == "invalid_blocks"

    assert [c.method for c in slack.calls] == [
        "auth.test",
        "chat.postEphemeral",
        "views.publish",
        "views.publish",
    ]


async def test_injected_faults_hit_the_next_calls_then_stop(slack: FakeSlackApi) -> None:
    client = client_for(slack)
    slack.inject(Fault.SERVER_ERROR, times=2, method="chat.postMessage")

    assert (await client.auth_test())["ok"]  # another method is not affected
    for _ in range(2):
        error = await slack_error(client.chat_postMessage(channel="C0ONE", text="x"))
        assert error.response.status_code == 500
    assert (await client.chat_postMessage(channel="C0ONE", text="x"))["ok"]

    slack.inject(Fault.DROP)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.chat_postMessage(channel="C0ONE", text="x")
    assert [c.fault for c in slack.calls][-1] is Fault.DROP


async def test_a_held_call_times_the_client_out(slack: FakeSlackApi) -> None:
    client = AsyncWebClient(token=VALID_TOKEN, base_url=slack.url, retry_handlers=[], timeout=0.1)  # type: ignore[arg-type]
    slack.inject(Fault.TIMEOUT)
    with pytest.raises(TimeoutError):
        await client.chat_postMessage(channel="C0ONE", text="x")
    assert slack.messages("C0ONE") == []


@given(count=st.integers(min_value=0, max_value=60), length=st.integers(min_value=1, max_value=200))
def test_validate_blocks_accepts_exactly_what_is_within_the_limits(count: int, length: int) -> None:
    blocks = [header("h" * length)] * count
    errors = validate_blocks(blocks, max_blocks=50)
    assert (errors == []) == (count <= 50 and (count == 0 or length <= 150))
