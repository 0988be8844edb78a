"""POST /webhooks/teams: signed Teams outgoing-webhook calls in, Adaptive Card answers out.

Requests are signed as Teams signs them (HMAC-SHA256 of the raw body, keyed with the
base64-decoded security token) and sent over real HTTP to the aiohttp route; the answers come
from a real Pipeline holding the chat fleet's app states.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from bot.chat.teams_inbound import (
    MAX_BODY,
    SLACK_ONLY,
    TEAMS_WEBHOOK_PATH,
    TOO_SLOW,
    TeamsInboundError,
    TeamsQuestions,
    add_teams_route,
    decode_token,
    question_of,
    secret_from_env,
    sign,
    verify,
)
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.schema import Config
from core.model import SyncStatus
from formatters import chat
from formatters import escape as esc
from formatters.teams import MAX_PAYLOAD_BYTES, payload_size
from formatters.teams_answer import card_from_answer, teams_markdown
from tests.bot.chat_support import fleet
from tests.formatters.adaptive_card import card_of, card_problems, card_texts
from tests.formatters.builders import NOW, argocd_state

TOKEN = base64.b64encode(b"teams outgoing webhook security token, 32+ bytes").decode()
KEY = base64.b64decode(TOKEN)
CONFIG = Config.model_validate({"teams": {"outgoing_webhook_secret_env": "TEAMS_HMAC"}})


def activity(text: str) -> dict[str, Any]:
    """An outgoing webhook activity as Teams sends it (Bot Framework message schema)."""
    return {
        "type": "message",
        "id": "1700000000000",
        "timestamp": "2026-11-20T09:40:00.000Z",
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "channelId": "msteams",
        "from": {
            "id": "29:1XyZ-user",
            "name": "Priya Manager",
            "aadObjectId": "6b1e4c1a-0000-4000-8000-000000000001",
        },
        "conversation": {
            "isGroup": True,
            "id": "19:abc123@thread.skype;messageid=1700000000000",
            "name": None,
            "conversationType": "channel",
        },
        "recipient": None,
        "textFormat": "plain",
        "text": text,
        "attachments": [
            {"contentType": "text/html", "content": f"<div>{text}</div>"},
        ],
        "entities": [{"type": "clientInfo", "locale": "en-US", "country": "US"}],
        "channelData": {
            "teamsChannelId": "19:abc123@thread.skype",
            "teamsTeamId": "19:team@thread.skype",
            "channel": {"id": "19:abc123@thread.skype"},
            "team": {"id": "19:team@thread.skype"},
            "tenant": {"id": "72f988bf-0000-4000-8000-000000000000"},
        },
        "locale": "en-US",
    }


def body_of(text: str) -> bytes:
    return json.dumps(activity(text)).encode()


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Pipeline]:
    store = await Store.open(tmp_path / "state.sqlite")
    pipeline = Pipeline(store, CONFIG, {})
    await pipeline.load()
    pipeline.states = fleet()
    yield pipeline
    await store.close()


@pytest.fixture
async def served(pipeline: Pipeline) -> AsyncIterator[tuple[TestClient[Any, Any], TeamsQuestions]]:
    app = web.Application()
    handler = add_teams_route(app, KEY, CONFIG, lambda: pipeline, clock=lambda: NOW)
    async with TestClient(TestServer(app)) as http:
        yield http, handler


async def ask(
    http: TestClient[Any, Any], body: bytes, auth: str | None = "sign"
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if auth == "sign":
        headers["Authorization"] = sign(body, KEY)
    elif auth is not None:
        headers["Authorization"] = auth
    response = await http.post(TEAMS_WEBHOOK_PATH, data=body, headers=headers)
    if response.content_type == "application/json":
        return response.status, await response.json()
    return response.status, await response.text()


def answer_text(reply: dict[str, Any]) -> str:
    assert reply["type"] == "message"
    assert reply["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = card_of(reply)
    assert card_problems(card) == []
    assert payload_size(reply) <= MAX_PAYLOAD_BYTES
    return "\n".join(card_texts(reply))


# --- the signature -------------------------------------------------------------------------------


def test_the_signature_is_keyed_with_the_decoded_token() -> None:
    body = body_of("<at>driftbot</at> status")
    expected = base64.b64encode(hmac.new(KEY, body, hashlib.sha256).digest()).decode()
    assert sign(body, KEY) == f"HMAC {expected}"
    assert verify(f"HMAC {expected}", body, KEY)
    keyed_with_text = base64.b64encode(
        hmac.new(TOKEN.encode(), body, hashlib.sha256).digest()
    ).decode()
    assert not verify(f"HMAC {keyed_with_text}", body, KEY)


@pytest.mark.parametrize(
    "header",
    [None, "", "HMAC", "HMAC ", "Bearer abc", "hmac " + "A" * 44, "HMAC not-base64!!"],
)
def test_malformed_authorization_headers_do_not_verify(header: str | None) -> None:
    assert not verify(header, b"{}", KEY)


def test_the_token_comes_from_the_named_variable() -> None:
    assert secret_from_env(CONFIG, {"TEAMS_HMAC": f" {TOKEN}\n"}) == KEY
    assert secret_from_env(Config(), {"TEAMS_HMAC": TOKEN}) is None
    with pytest.raises(TeamsInboundError, match="TEAMS_HMAC, but that environment variable"):
        secret_from_env(CONFIG, {})
    with pytest.raises(TeamsInboundError, match=r"TEAMS_HMAC: .* not base64") as caught:
        secret_from_env(CONFIG, {"TEAMS_HMAC": "not base64 at all!"})
    assert "not base64 at all" not in str(caught.value)
    with pytest.raises(TeamsInboundError):
        decode_token("====")


async def test_missing_forged_and_tampered_signatures_get_401_and_no_answer(
    served: tuple[TestClient[Any, Any], TeamsQuestions],
) -> None:
    http, handler = served
    body = body_of("<at>driftbot</at> status")
    forged = "HMAC " + base64.b64encode(hmac.new(b"guess", body, "sha256").digest()).decode()
    tampered = body.replace(b"status", b"drift ")

    assert (await ask(http, body, auth=None))[0] == 401
    assert (await ask(http, body, auth=forged))[0] == 401
    assert (await ask(http, tampered, auth=sign(body, KEY)))[0] == 401
    assert (await ask(http, body, auth="HMAC " + sign(body, KEY)[5:][::-1]))[0] == 401
    assert handler.accepted == 0 and handler.refused == 4

    status, reply = await ask(http, body)
    assert status == 200 and handler.accepted == 1
    assert "GitOps status" in answer_text(reply)


async def test_oversized_and_malformed_bodies(
    served: tuple[TestClient[Any, Any], TeamsQuestions],
) -> None:
    http, _ = served
    big = b'{"text": "' + b"x" * MAX_BODY + b'"}'
    assert (await ask(http, big))[0] == 413
    assert (await ask(http, b"{not json"))[0] == 400
    assert (await ask(http, b"[1, 2]"))[0] == 400
    assert (await ask(http, b"{not json", auth=None))[0] == 401  # signature first


# --- the answers ---------------------------------------------------------------------------------


async def test_status_answers_green_or_red_per_cluster(
    served: tuple[TestClient[Any, Any], TeamsQuestions],
) -> None:
    http, _ = served
    status, reply = await ask(http, body_of("<at>driftbot</at>&nbsp;status"))
    text = answer_text(reply)
    assert status == 200
    assert "**GitOps status**" not in text  # the header is a Bolder TextBlock, not markdown
    assert card_of(reply)["body"][0] == {
        "type": "TextBlock",
        "text": "GitOps status",
        "wrap": True,
        "weight": "Bolder",
        "size": "Medium",
    }
    assert "🔴" in text and "**prod**" in text and "staging" in text
    assert "checkout no longer matches Git" in text
    assert "<!date^" not in text and ":red_circle:" not in text


async def test_with_a_public_url_answers_link_to_the_status_page(pipeline: Pipeline) -> None:
    config = CONFIG.model_copy(
        update={"server": Config.model_validate({"server": {"public_url": PUBLIC}}).server}
    )
    app = web.Application()
    add_teams_route(app, KEY, config, lambda: pipeline, clock=lambda: NOW)
    async with TestClient(TestServer(app)) as http:
        _, fleet_reply = await ask(http, body_of("<at>driftbot</at> status"))
        _, app_reply = await ask(http, body_of("<at>driftbot</at> status checkout"))
    assert "**[prod](https://driftbot.example.com/status/prod)**" in answer_text(fleet_reply)
    assert "[Status page](https://driftbot.example.com/status/prod/shop/checkout)" in (
        answer_text(app_reply)
    )


PUBLIC = "https://driftbot.example.com"


async def test_drift_lists_what_does_not_match_git(
    served: tuple[TestClient[Any, Any], TeamsQuestions],
) -> None:
    http, _ = served
    _, reply = await ask(http, body_of("<at>driftbot</at> drift"))
    text = answer_text(reply)
    assert "Out of sync now" in text
    assert "checkout on prod: no longer matches Git (2 resources)" in text
    assert "guestbook" not in text


async def test_history_and_versions_of_an_app(
    served: tuple[TestClient[Any, Any], TeamsQuestions],
) -> None:
    http, _ = served
    _, history = await ask(http, body_of("<at>driftbot</at> history checkout"))
    _, versions = await ask(http, body_of("<at>driftbot</at> versions checkout"))

    history_text = answer_text(history)
    assert "History of checkout" in history_text
    assert "ea87599" in history_text and "alice@example.com" in history_text
    versions_text = answer_text(versions)
    assert "Versions of checkout" in versions_text
    assert "⚠️ The clusters do not run the same version" in versions_text
    assert "1.4.0" in versions_text and "1.5.0" in versions_text


async def test_help_usage_and_slack_only_verbs(
    served: tuple[TestClient[Any, Any], TeamsQuestions],
) -> None:
    http, _ = served
    _, helped = await ask(http, body_of("<at>driftbot</at>"))
    _, muted = await ask(http, body_of("<at>driftbot</at> mute checkout 1h"))
    _, unknown = await ask(http, body_of("<at>driftbot</at> statsu"))
    _, missing = await ask(http, body_of("<at>Drift Bot</at> history"))

    help_text = answer_text(helped)
    assert "@driftbot history APP" in help_text and "mute TARGET" not in help_text
    assert answer_text(muted) == teams_markdown(SLACK_ONLY.format(verb="mute"))
    assert "did you mean status" in answer_text(unknown).replace("`", "")
    missing_text = answer_text(missing)
    assert "@Drift Bot help" in missing_text


async def test_calls_before_the_pipeline_runs_get_503() -> None:
    app = web.Application()
    handler = add_teams_route(app, KEY, CONFIG, lambda: None, clock=lambda: NOW)
    async with TestClient(TestServer(app)) as http:
        assert (await ask(http, body_of("<at>driftbot</at> status")))[0] == 503
        assert (await ask(http, body_of("<at>driftbot</at> status"), auth=None))[0] == 401
    assert handler.accepted == 0


async def test_a_slow_answer_is_an_apology_within_the_time(pipeline: Pipeline) -> None:
    handler = TeamsQuestions(KEY, CONFIG, lambda: pipeline, clock=lambda: NOW, reply_within=0)
    app = web.Application()
    app.router.add_post(TEAMS_WEBHOOK_PATH, handler.handle)
    async with TestClient(TestServer(app)) as http:
        status, reply = await ask(http, body_of("<at>driftbot</at> history checkout"))
    assert status == 200
    assert answer_text(reply) == teams_markdown(TOO_SLOW)


async def test_markup_from_the_cluster_stays_text(pipeline: Pipeline) -> None:
    evil = argocd_state(
        name="checkout",
        namespace="shop",
        sync=SyncStatus.OUT_OF_SYNC,
        revision="[click](https://evil.example) **bold** <!channel>",
    )
    pipeline.states = {evil.key: evil}
    handler = TeamsQuestions(KEY, CONFIG, lambda: pipeline, clock=lambda: NOW)

    reply = card_from_answer(await handler.answer(activity("<at>driftbot</at> status checkout")))

    text = answer_text(reply)
    assert "](https://evil.example)" not in text.replace("\\]", "")
    assert "\\[click\\]" in text and "\\*\\*bold\\*\\*" in text


def test_a_huge_answer_is_cut_to_fit_teams() -> None:
    """As big as Block Kit allows: 50 blocks, sections of 2,900 characters (non-ASCII)."""
    header = {"type": "header", "text": {"type": "plain_text", "text": "GitOps status"}}
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "• " + "é" * 2900}}
    answer = {"text": "GitOps status", "blocks": [header] + [section] * 49}
    assert payload_size(answer) > MAX_PAYLOAD_BYTES

    reply = card_from_answer(answer)

    text = answer_text(reply)
    assert "GitOps status" in text
    assert card_of(reply)["body"][-1]["text"].startswith("…and more than a Teams message")


@pytest.mark.parametrize(
    ("text", "question", "name"),
    [
        ("<at>driftbot</at> status prod", "status prod", "driftbot"),
        ("<at>Drift Bot</at>&nbsp;history&nbsp;checkout\n", "history checkout", "Drift Bot"),
        ("<p><at>driftbot</at> drift</p>", "drift", "driftbot"),
        ("versions checkout", "versions checkout", "driftbot"),
        ("<at>a</at> <at>b</at> drift", "drift", "a"),
    ],
)
def test_the_question_is_the_text_after_the_mention(text: str, question: str, name: str) -> None:
    assert question_of(activity(text)) == (question, name)


def test_slack_mrkdwn_becomes_teams_markdown() -> None:
    mrkdwn = (
        ":red_circle: *prod*: 1 of 2 apps need attention &amp; more\n"
        "• <https://argocd.example.com/x|Open in Argo CD> since "
        "<!date^1763631600^{date_short_pretty} {time}|2026-11-20 09:40 UTC>\n"
        "_2 failing_ `ea87599` my_app_name <@U0123ABC>"
    )
    assert teams_markdown(mrkdwn) == (
        "🔴 **prod**: 1 of 2 apps need attention & more\n\n"
        "• [Open in Argo CD](https://argocd.example.com/x) since 2026-11-20 09:40 UTC\n\n"
        "_2 failing_ ea87599 my\\_app\\_name @U0123ABC"
    )


@given(st.text(max_size=300))
def test_any_question_gets_a_valid_card(text: str) -> None:
    question, _ = question_of(activity(f"<at>driftbot</at> {text}"))
    answer = chat.answer_text(chat.escaped(question, 200)) if question else chat.answer_text("-")
    reply = card_from_answer(answer)
    assert card_problems(card_of(reply)) == []
    assert payload_size(reply) <= MAX_PAYLOAD_BYTES


def unescaped(char: str, text: str) -> bool:
    """Whether `char` occurs in `text` without an odd run of backslashes before it."""
    for match in re.finditer(rf"(\\*){re.escape(char)}", text):
        if len(match.group(1)) % 2 == 0:
            return True
    return False


@given(st.text(max_size=500))
def test_untrusted_text_never_becomes_a_link_or_a_tag(text: str) -> None:
    converted = teams_markdown(esc.slack(text))
    assert not unescaped("[", converted)
    assert not unescaped("<", converted)


async def test_every_verb_on_any_fleet_gets_a_valid_answer(pipeline: Pipeline) -> None:
    pipeline.states = {
        **fleet(),
        **{
            s.key: s
            for s in (
                replace(argocd_state(name="checkout", cluster=f"edge-{i}"), observed_at=NOW)
                for i in range(30)
            )
        },
    }
    handler = TeamsQuestions(KEY, CONFIG, lambda: pipeline, clock=lambda: NOW)
    for question in (
        "status",
        "status prod",
        "status checkout",
        "status cluster:staging",
        "drift",
        "history checkout",
        "versions checkout",
        "versions nothing-here",
        "help",
    ):
        reply = card_from_answer(await handler.answer(activity(f"<at>driftbot</at> {question}")))
        assert answer_text(reply), question


async def test_an_action_asked_in_teams_is_answered_with_where_to_do_it(
    served: tuple[TestClient[Any, Any], TeamsQuestions],
) -> None:
    http, _ = served
    for text in ("rollback checkout", "reconcile apps --with-source", "sync checkout"):
        status, answer = await ask(http, body_of(f"<at>driftbot</at> {text}"))
        said = answer_text(answer)
        assert status == 200
        assert "happens in Slack, with a confirmation" in said and "flux CLI" in said
