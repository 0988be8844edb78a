"""The service itself: the Slack app and the Teams outgoing webhook, the HTTP server with its
Flux webhook settings, and the status page with its sign-in."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from config.schema.fields import (
    Duration,
    EnvName,
    Name,
    SlashCommand,
    Strict,
    Text,
    Url,
)


def _api_url(value: str) -> str:
    return value if value.endswith("/") else value + "/"


class SlackConfig(Strict):
    mode: Literal["socket", "http"] = "socket"
    command: SlashCommand = "/gitops"
    api_url: Annotated[Url, AfterValidator(_api_url)] = "https://slack.com/api/"
    """Slack Web API base URL; change it only for a proxy or a test server."""
    scope_channels: bool = False
    """When true, a chat question asked in a channel that a Slack receiver posts to is answered
    only about the clusters and namespaces of the routes that deliver to that channel."""


class TeamsConfig(Strict):
    outgoing_webhook_secret_env: EnvName | None = None
    """Environment variable holding the (base64) security token of a Teams outgoing webhook;
    set it to answer @mention questions at /webhooks/teams."""


class FluxWebhookCluster(Strict):
    """A cluster whose notification-controller may post to /webhooks/flux besides those of
    `clusters`; with `token_env`, its own generic-hmac token, the only one its events may be
    signed with."""

    name: Name
    token_env: EnvName | None = None


def _network(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an address or network like 10.0.0.0/8, got {value!r}")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or network (like 10.0.0.7 or 10.0.0.0/8)"
        ) from None


Network = Annotated[str, BeforeValidator(_network)]


def _header_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        raise ValueError(f"{value!r} is not an HTTP header name (letters, digits and '-')")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]


class BasicAuthConfig(Strict):
    """Users and their bcrypt hashes, one `user:hash` a line (the format of `htpasswd -B`),
    from a secret: an environment variable or a mounted file."""

    users_env: EnvName | None = None
    users_file: Text | None = None

    @model_validator(mode="after")
    def _one_source(self) -> BasicAuthConfig:
        if (self.users_env is None) == (self.users_file is None):
            raise ValueError(
                "basic needs exactly one of users_env (an environment variable holding "
                "'user:bcrypt-hash' lines) or users_file (a file holding them)"
            )
        return self


class ProxyAuthConfig(Strict):
    """A proxy in front (oauth2-proxy, an ingress) has signed the reader in and names them in
    a header; the header is believed only from `trusted` addresses."""

    trusted: Annotated[tuple[Network, ...], Field(min_length=1)]
    """The proxy's addresses or networks (10.0.0.7, 10.42.0.0/16); requests from anywhere
    else are refused."""
    user_header: HeaderName = "X-Forwarded-User"
    groups_header: HeaderName | None = "X-Forwarded-Groups"
    """Comma-separated groups of the reader, for `rbac.grants`; None: groups are not read."""


class StatusConfig(Strict):
    """The status page (`/status`), its badges and its JSON (`/api/v1/apps`)."""

    enabled: bool = True
    auth: Literal["none", "basic", "proxy"] = "none"
    """`none`: anyone who reaches the port reads the page (a cluster-internal Service);
    `basic`: users and bcrypt hashes from a secret; `proxy`: a trusted proxy names the reader."""
    basic: BasicAuthConfig | None = None
    proxy: ProxyAuthConfig | None = None
    public_badges: bool = False
    """Badges (`/badge/...svg`) readable without signing in, while the page is not."""

    @model_validator(mode="after")
    def _auth_settings(self) -> StatusConfig:
        if self.auth == "basic" and self.basic is None:
            raise ValueError("auth: basic needs basic: {users_env: NAME} or {users_file: PATH}")
        if self.auth == "proxy" and self.proxy is None:
            raise ValueError("auth: proxy needs proxy: {trusted: [the proxy's addresses]}")
        return self


class ServerConfig(Strict):
    host: Text = "0.0.0.0"
    """The address to listen on; all interfaces by default, as a container must."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    read_timeout: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=10)
    """How long a client may take to send a request's headers, and then its body."""
    flux_webhook_token_env: EnvName | None = None
    """Environment variable holding the generic-hmac token of the Flux Provider."""
    flux_webhook_accept_unsigned: bool = False
    """Take unsigned Flux events (the `generic` provider) for clusters without a token."""
    flux_webhook_clusters: tuple[FluxWebhookCluster, ...] = ()

    @model_validator(mode="after")
    def _one_entry_per_cluster(self) -> ServerConfig:
        names = [c.name for c in self.flux_webhook_clusters]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"flux_webhook_clusters names {', '.join(twice)} more than once")
        return self

    shutdown_timeout: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=20)
    """On SIGTERM, how long the outbox may keep sending after the watches stop; what is still
    unsent then stays queued for the next start. Keep it below the pod's
    terminationGracePeriodSeconds (30 s in the chart)."""
    public_url: Url | None = None
    """Where people reach this server (https://driftbot.example.com): alerts, digests and chat
    answers link to the status page under it."""
    status: StatusConfig = StatusConfig()

    @property
    def page_url(self) -> str:
        """The address alerts, digests and chat answers link the status page under:
        `public_url` while the page is served, else "" (no link)."""
        return (self.public_url or "").rstrip("/") if self.status.enabled else ""
