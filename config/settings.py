"""The service's environment: where the config file and the store are, and the chat secrets.

Variables carry the prefix `DRIFTBOT_` (nested keys with `__`: `DRIFTBOT_SERVER__PORT`), except
the Slack secrets, which keep the names Slack's own tools use. Secrets are `SecretStr`: they
show as `**********` in repr, logs and tracebacks; call `.get_secret_value()` where a client
needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.loader import ConfigError, ConfigIssue
from config.schema import Config


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Overrides the config file's server.port when set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DRIFTBOT_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    config: Path | None = None
    """The YAML config file; None: built-in defaults (everything to the console)."""
    state: Path | None = None
    """The store (SQLite file); None: the default location (bot.store.default_state_path)."""
    server: ServerSettings = ServerSettings()
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )


def apply_settings(config: Config, settings: Settings) -> Config:
    """The config with the environment's overrides applied (today: the server port)."""
    if settings.server.port is None:
        return config
    server = config.server.model_copy(update={"port": settings.server.port})
    return config.model_copy(update={"server": server})


def _env_name(loc: tuple[str | int, ...]) -> str:
    if loc and loc[0] in _UNPREFIXED:
        return str(loc[0]).upper()
    return "DRIFTBOT_" + "__".join(str(p).upper() for p in loc)


_UNPREFIXED = (
    "slack_bot_token",
    "slack_app_token",
    "slack_signing_secret",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
)


def load_settings() -> Settings:
    """Settings from the environment, or ConfigError naming each bad variable (never its value,
    which may be a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(
            [
                ConfigIssue("environment", 0, _env_name(tuple(e["loc"])), e["msg"])
                for e in exc.errors(include_url=False)
            ]
        ) from None
