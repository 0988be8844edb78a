"""The service's environment: where the config file and the store are, and the chat secrets.

Variables carry the prefix `DRIFTBOT_` (nested keys with `__`: `DRIFTBOT_SERVER__PORT`), except
the Slack secrets, which keep the names Slack's own tools use. Secrets are `SecretStr`: they
show as `**********` in repr, logs and tracebacks; call `.get_secret_value()` where a client
needs them.
"""

from __future__ import annotations

import platform
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.durations import parse_duration
from config.loader import ConfigError, ConfigIssue
from config.schema import Config


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Overrides the config file's server.port when set."""
    host: Annotated[str, Field(min_length=1)] | None = None
    """Overrides the config file's server.host when set."""


Seconds = Annotated[timedelta, BeforeValidator(parse_duration)]


class LeaderElectionSettings(BaseModel):
    """One active replica among several: the one holding a coordination.k8s.io/v1 Lease.

    The Lease lives in the pod's own cluster (the in-cluster service account) when the process
    runs in a pod, else in the first cluster of the config file. `namespace` None: the pod's
    namespace (its service account's), or `default` outside a pod. The timings are client-go's
    defaults; `lease_duration` is whole seconds (the Lease stores an integer) and must exceed
    `renew_deadline`, which must exceed `retry_period`. See docs/operations.md, "Two replicas with
    a Lease".
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    lease_name: Annotated[str, Field(min_length=1, max_length=253)] = "driftbot"
    namespace: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    identity: Annotated[str, Field(min_length=1)] = Field(default_factory=platform.node)
    """This replica's name in the Lease's holderIdentity (the pod name in the Helm chart)."""
    lease_duration: Seconds = timedelta(seconds=15)
    """How long a standby waits after the last renewal before it takes the Lease over."""
    renew_deadline: Seconds = timedelta(seconds=10)
    """How long the leader keeps leading without a successful renewal."""
    retry_period: Seconds = timedelta(seconds=2)
    """How often the leader renews and a standby tries to acquire."""

    @model_validator(mode="after")
    def _ordered(self) -> LeaderElectionSettings:
        seconds = self.lease_duration.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ValueError("lease_duration must be whole seconds, at least 1s")
        if not self.lease_duration > self.renew_deadline > self.retry_period > timedelta(0):
            raise ValueError(
                "leader election timings must satisfy "
                "lease_duration > renew_deadline > retry_period > 0"
            )
        return self


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
    """The store (SQLite file); None: the default location (bot.store.store.default_state_path)."""
    store_dsn: SecretStr | None = None
    """A PostgreSQL store shared by replicas (postgresql://user:password@host:port/database);
    when set it wins over `state`. Secret: it can hold a password."""
    server: ServerSettings = ServerSettings()
    leader_election: LeaderElectionSettings = LeaderElectionSettings()
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
    """The config with the environment's overrides applied (the server's port and host)."""
    overrides = settings.server.model_dump(exclude_none=True)
    if not overrides:
        return config
    server = config.server.model_copy(update=overrides)
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
