"""Log lines: JSON objects with the context of the object they are about, readable text, and
secrets masked in every part of a record (message, arguments, context, traceback)."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.ops.logs import (
    MASK,
    SecretFilter,
    about,
    add_secrets,
    configure_logging,
    reset_logging,
    secret_variants,
    secrets_from,
)
from config.schema import Config

TOKEN = "xoxb-1234-5678-SeCrEtToKeN"
SIG = "Zx9SigValueOfTheWorkflowWebhook0123456789ab"
WEBHOOK = f"https://prod.westeurope.logic.azure.com/workflows/abc/invoke?api-version=1&sig={SIG}"


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    reset_logging()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_and_the_object(out: io.StringIO) -> None:
    configure_logging("json", "DEBUG", stream=out)
    log = logging.getLogger("bot.pipeline.runner")
    log.warning("%s rejected", "checkout", extra=about("prod", "shop", "checkout"))
    log.debug("plain line")
    first, second = _lines(out)
    assert first["level"] == "WARNING"
    assert first["logger"] == "bot.pipeline.runner"
    assert first["message"] == "checkout rejected"
    assert (first["cluster"], first["namespace"], first["name"]) == ("prod", "shop", "checkout")
    assert str(first["time"]).endswith("Z") and "T" in str(first["time"])
    assert second["message"] == "plain line" and "cluster" not in second


def test_json_line_holds_the_traceback_as_one_field(out: io.StringIO) -> None:
    configure_logging("json", "INFO", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("bot.delivery.outbox").exception(
            "sending failed", extra={"receiver": "oncall"}
        )
    [line] = _lines(out)
    assert line["receiver"] == "oncall"
    assert "ValueError: boom" in str(line["exception"])
    assert len(out.getvalue().splitlines()) == 1


def test_text_lines_are_readable_with_the_context_at_the_end(out: io.StringIO) -> None:
    configure_logging("text", "INFO", stream=out)
    logging.getLogger("watchers.kube_watch").info(
        "relisting", extra=about("prod", "argocd", "guestbook")
    )
    logging.getLogger("bot").debug("not shown at INFO")
    assert out.getvalue() == (
        "INFO watchers.kube_watch: relisting [cluster=prod namespace=argocd name=guestbook]\n"
    )


def test_configuring_again_replaces_the_handler(out: io.StringIO) -> None:
    configure_logging("text", "INFO", stream=out)
    configure_logging("json", "INFO", stream=out)
    logging.getLogger("bot").info("once")
    assert len(out.getvalue().splitlines()) == 1


def test_secrets_are_masked_in_message_args_context_and_traceback(out: io.StringIO) -> None:
    configure_logging("json", "DEBUG", secrets=[TOKEN, WEBHOOK, SIG], stream=out)
    log = logging.getLogger("bot.delivery.slack_sender")
    log.info("token is " + TOKEN)
    log.info("posting to %s", WEBHOOK)
    log.info("url-encoded %s and base64 %s", quote(WEBHOOK, safe=""), _b64(TOKEN))
    log.info("context", extra={"receiver": f"oncall {SIG}"})
    try:
        raise RuntimeError(f"failed with {TOKEN}")
    except RuntimeError:
        log.exception("call failed")
    text = out.getvalue()
    for secret in (TOKEN, WEBHOOK, SIG, quote(WEBHOOK, safe=""), _b64(TOKEN)):
        assert secret not in text
    assert text.count(MASK) >= 6
    assert "RuntimeError" in text


def test_secrets_reach_no_handler_configured_by_someone_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    configure_logging("json", "INFO", secrets=[TOKEN])
    try:
        logging.getLogger("bot").info("token %s", TOKEN)
    finally:
        for handler in logging.getLogger().handlers:
            for f in [f for f in handler.filters if isinstance(f, SecretFilter)]:
                handler.removeFilter(f)
    assert TOKEN not in caplog.text and MASK in caplog.text


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("secret", "forms"),
    [
        ("abc", set()),
        ("a b/c", {"a b/c", "a%20b%2Fc", "a+b%2Fc", "a%20b/c", "YSBiL2M=", "YSBiL2M"}),
    ],
)
def test_secret_variants(secret: str, forms: set[str]) -> None:
    assert secret_variants(secret) == forms


@given(st.text(min_size=4, max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_a_secret_never_survives_the_filter(secret: str, before: str, after: str) -> None:
    redactor = SecretFilter([secret])
    record = logging.LogRecord("t", logging.INFO, "", 0, "%s%s%s", (before, secret, after), None)
    assert redactor.filter(record)
    assert secret not in record.getMessage()


def test_secrets_from_the_environment_and_the_config() -> None:
    config = Config.model_validate(
        {
            "receivers": [{"name": "pm", "teams": {"webhook_env": "TEAMS_PM"}}],
            "routes": [{"receivers": ["pm"]}],
            "argocd_api": [{"cluster": "prod", "url": "https://argocd.example.com"}],
            "server": {"flux_webhook_token_env": "FLUX_TOKEN"},
            "teams": {"outgoing_webhook_secret_env": "TEAMS_KEY"},
        }
    )
    environ = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": "signing-secret-1",
        "TEAMS_PM": WEBHOOK,
        "ARGOCD_TOKEN": "argocd-bearer-token",
        "FLUX_TOKEN": "flux-hmac-token",
        "TEAMS_KEY": _b64("teams outgoing key"),
        "DRIFTBOT_STORE_DSN": "postgresql://driftbot:dsn-pass-word@db:5432/driftbot",
        "UNRELATED": "not a secret",
    }
    found = secrets_from(config, environ)
    for secret in (
        TOKEN,
        "signing-secret-1",
        WEBHOOK,
        SIG,
        "argocd-bearer-token",
        "flux-hmac-token",
        _b64("teams outgoing key"),
        "teams outgoing key",
        "dsn-pass-word",
    ):
        assert secret in found, secret
    assert "not a secret" not in found


def test_secrets_named_later_are_masked_from_then_on(out: io.StringIO) -> None:
    configure_logging("text", "INFO", secrets=[TOKEN], stream=out)
    add_secrets(["argocd-bearer-token"])
    logging.getLogger("bot").info("%s and %s", TOKEN, "argocd-bearer-token")
    assert out.getvalue() == f"INFO bot: {MASK} and {MASK}\n"


def test_any_variable_named_like_a_secret_is_one() -> None:
    environ = {
        "GITHUB_TOKEN": "ghp_abcdef",
        "MY_DB_DSN": "postgresql://u:pw1234@h/db",
        "HOME": "/r",
    }
    found = secrets_from(None, environ)
    assert {"ghp_abcdef", "pw1234"} <= set(found)
    assert "/r" not in found


FORGED = "ERROR bot.app.server: forged"


@given(st.text(max_size=60), st.text(max_size=60))
def test_a_text_record_is_one_line_whatever_its_message_and_fields_hold(
    message: str, field: str
) -> None:
    out = io.StringIO()
    configure_logging("text", "INFO", stream=out)
    try:
        logging.getLogger("bot").warning("got %s", message, extra={"cluster": field})
    finally:
        reset_logging()
    assert len(out.getvalue().splitlines()) == 1


def test_no_value_can_forge_a_line_in_the_text_format(out: io.StringIO) -> None:
    configure_logging("text", "INFO", stream=out)
    log = logging.getLogger("bot.inbound.flux")
    log.warning("refused cluster %s", f"prod\n{FORGED}\r\x1b[2K\u2028", extra={"r": f"x\n{FORGED}"})
    try:
        raise ValueError(f"bad\n{FORGED}")
    except ValueError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    assert not any(line.startswith(FORGED) for line in lines)
    assert lines[0] == (
        "WARNING bot.inbound.flux: refused cluster prod\\nERROR bot.app.server: forged\\r\\x1b[2K"
        "\\u2028 [r=x\\nERROR bot.app.server: forged]"
    )
    assert lines[1] == "ERROR bot.inbound.flux: failed"
    assert all(line.startswith("    ") for line in lines[2:])
    assert "    ERROR bot.app.server: forged" in lines
