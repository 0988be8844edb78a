"""deploy/slack-app-manifest.yaml: the scopes, command, interactivity and Socket Mode driftbot
needs, and the command its config expects by default."""

from __future__ import annotations

import re
from typing import Any

import yaml

from config.schema import SlackConfig
from tests.deploy.tools import DEPLOY, ROOT

SCOPES = {
    "chat:write",
    "chat:write.public",
    "commands",
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


METHOD_SCOPES: dict[str, set[str]] = {
    "chat_postMessage": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_update": {"chat:write"},
    "conversations_history": {"channels:history", "groups:history"},
    "conversations_replies": {"channels:history", "groups:history"},
    "usergroups_users_list": {"usergroups:read"},
    "views_publish": set(),
    "views_open": set(),
}
"""The bot scopes each Web API method driftbot calls needs (Slack's method reference; the
history methods need the scope of the channel type: public or private)."""

NOT_A_METHOD = {"chat:write.public", "commands"}
"""Scopes no method call needs: posting to public channels without an invitation, and the
slash command itself."""

_CALL = re.compile(
    r"\.((?:chat|conversations|users|usergroups|views|reactions|files|team|bots|pins|dnd)"
    r"_[A-Za-z_]+)\("
)


def _methods_called() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        found |= set(_CALL.findall(path.read_text()))
    return found


def test_every_scope_is_needed_by_a_method_driftbot_calls_and_no_call_lacks_one() -> None:
    called = _methods_called()
    assert called, "the pattern found no Web API call in bot/"
    unknown = called - set(METHOD_SCOPES)
    assert not unknown, f"add these methods and their scopes to METHOD_SCOPES: {sorted(unknown)}"
    needed = set().union(*(METHOD_SCOPES[m] for m in called))
    granted = set(manifest()["oauth_config"]["scopes"]["bot"])
    assert needed <= granted, f"scopes the code needs but the manifest lacks: {needed - granted}"
    assert granted - needed == NOT_A_METHOD, "the manifest asks for a scope nothing uses"
    assert not any(m.startswith("users_") for m in called)
    assert "users:read" not in granted
