"""Settings from the environment: prefix, nesting, Slack secrets that never show."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from config.loader import ConfigError
from config.schema import Config
from config.settings import Settings, apply_settings, load_settings

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-abcdefsecret",
    "SLACK_APP_TOKEN": "xapp-1-A0-3333-appsecret",
    "SLACK_SIGNING_SECRET": "8f742231b10e8888abcdsigning",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DRIFTBOT_") or name in SECRETS:
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.config is None
    assert settings.state is None
    assert settings.server.port is None
    assert settings.log_format == "text"
    assert settings.slack_bot_token is None


def test_reads_prefixed_and_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTBOT_CONFIG", "/etc/driftbot/config.yaml")
    monkeypatch.setenv("DRIFTBOT_STATE", "/var/lib/driftbot/state.db")
    monkeypatch.setenv("DRIFTBOT_SERVER__PORT", "9090")
    monkeypatch.setenv("DRIFTBOT_LOG_FORMAT", "json")
    settings = load_settings()
    assert settings.config == Path("/etc/driftbot/config.yaml")
    assert settings.state == Path("/var/lib/driftbot/state.db")
    assert settings.server.port == 9090
    assert settings.log_format == "json"


def test_slack_secrets_are_unprefixed_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DRIFTBOT_SLACK_BOT_TOKEN", "xoxb-wrong")
    settings = load_settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == SECRETS["SLACK_BOT_TOKEN"]
    assert settings.slack_app_token is not None
    assert settings.slack_app_token.get_secret_value() == SECRETS["SLACK_APP_TOKEN"]
    assert settings.slack_signing_secret is not None
    assert settings.slack_signing_secret.get_secret_value() == SECRETS["SLACK_SIGNING_SECRET"]
    with caplog.at_level(logging.INFO):
        logging.getLogger("driftbot.test").info("settings: %s %r", settings, settings)
    shown = " ".join([repr(settings), str(settings), settings.model_dump_json(), caplog.text])
    for value in SECRETS.values():
        assert value not in shown
    assert "**********" in repr(settings)


def test_bad_variables_are_named_without_their_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTBOT_SERVER__PORT", "eighty")
    monkeypatch.setenv("DRIFTBOT_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    paths = [issue.path for issue in caught.value.errors]
    assert paths == ["DRIFTBOT_SERVER__PORT", "DRIFTBOT_LOG_FORMAT"]
    assert all(issue.file == "environment" for issue in caught.value.errors)
    assert str(caught.value).startswith("environment: DRIFTBOT_SERVER__PORT: ")


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTBOT_CONFIG", "")
    monkeypatch.setenv("DRIFTBOT_SERVER__PORT", "")
    settings = load_settings()
    assert settings.config is None
    assert settings.server.port is None


def test_port_from_the_environment_overrides_the_file() -> None:
    config = Config.model_validate({"server": {"port": 8081}})
    assert apply_settings(config, Settings()).server.port == 8081
    overridden = apply_settings(config, Settings.model_validate({"server": {"port": 9999}}))
    assert overridden.server.port == 9999
    assert config.server.port == 8081
