"""Where the messages go: receivers, each a Slack channel, a Teams webhook or the console."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from config.schema.fields import (
    EnvName,
    Name,
    Strict,
    Text,
)


class SlackReceiver(Strict):
    channel: Text
    """Channel ID (C0123456, preferred: survives renames) or name."""


class TeamsReceiver(Strict):
    webhook_env: EnvName | None = None
    webhook_file: Text | None = None
    payload: Literal["envelope", "card"] = "envelope"
    """`envelope`: the message envelope with an attachment (Workflows "post to a channel when a
    webhook request is received"); `card`: the bare Adaptive Card."""

    @model_validator(mode="after")
    def _one_source(self) -> TeamsReceiver:
        if (self.webhook_env is None) == (self.webhook_file is None):
            raise ValueError(
                "a teams receiver needs exactly one of webhook_env (an environment variable "
                "holding the webhook URL) or webhook_file (a file holding it)"
            )
        return self


class ConsoleReceiver(Strict):
    format: Literal["text", "jsonl"] = "text"


class ReceiverConfig(Strict):
    name: Name
    slack: SlackReceiver | None = None
    teams: TeamsReceiver | None = None
    console: ConsoleReceiver | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReceiverConfig:
        kinds = [k for k in ("slack", "teams", "console") if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else "none"
            raise ValueError(
                f"receiver {self.name!r} needs exactly one of slack, teams, console; found {found}"
            )
        return self

    @property
    def type(self) -> Literal["slack", "teams", "console"]:
        if self.slack is not None:
            return "slack"
        if self.teams is not None:
            return "teams"
        return "console"
