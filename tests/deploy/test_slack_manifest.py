"""deploy/slack-app-manifest.yaml: the scopes, command, interactivity and Socket Mode driftbot
needs, and the command its config expects by default."""

from __future__ import annotations

from typing import Any

import yaml

from config.schema import SlackConfig
from tests.deploy.tools import DEPLOY

SCOPES = {
    "chat:write",
    "chat:write.public",
    "commands",
    "users:read",
    "usergroups:read",
    "channels:history",
    "groups:history",
}


def manifest() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "slack-app-manifest.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_asks_for_exactly_the_bot_scopes_driftbot_uses() -> None:
    scopes = manifest()["oauth_config"]["scopes"]
    assert set(scopes["bot"]) == SCOPES
    assert len(scopes["bot"]) == len(SCOPES)
    assert "user" not in scopes, "driftbot acts as its bot user only"


def test_slash_command_is_the_configs_default() -> None:
    commands = manifest()["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [SlackConfig().command] == ["/gitops"]
    assert all(c["description"] and len(c["description"]) <= 100 for c in commands)


def test_socket_mode_interactivity_and_app_home() -> None:
    data = manifest()
    settings = data["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert "request_url" not in settings["interactivity"], "Socket Mode needs no public URL"
    assert data["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert data["display_information"]["name"] == data["features"]["bot_user"]["display_name"]
