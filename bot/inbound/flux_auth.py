"""Who may post to /webhooks/flux, and for which cluster: the tokens and names the config gives.

notification-controller's generic-hmac signature covers the body only, not the address, so
the cluster a request names (`?cluster=`, `X-Driftbot-Cluster`) is checked on its own:

- the name must be one of the config's `clusters` or `server.flux_webhook_clusters` (with
  neither, only the implicit cluster `default`, by not naming one); anything else is 400;
- a cluster listed in `flux_webhook_clusters` with a `token_env` accepts only signatures made
  with that token, so a body captured from one cluster cannot be replayed as another's; the
  other clusters share `server.flux_webhook_token_env`;
- a cluster with no token at all takes unsigned events only when the config says so in words
  (`server.flux_webhook_accept_unsigned: true`); otherwise they are refused (401).

`FluxAuth.from_config` decides all of this once per config (at start and at every reload),
reading the tokens from the environment: a variable that is named but unset or empty is an
error, never a silent switch to unsigned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from config.schema import Config

__all__ = [
    "CLUSTER_NAME",
    "DEFAULT_CLUSTER",
    "MAX_CLUSTER_NAME",
    "FluxAuth",
    "WebhookConfigError",
    "token_from_env",
]

DEFAULT_CLUSTER = "default"
MAX_CLUSTER_NAME = 253
CLUSTER_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_CLUSTER_NAME - 1}}}")
"""A cluster name as the config's `clusters` take it: no spaces, no control characters."""


class WebhookConfigError(Exception):
    """The config names a token variable that is not set."""


def _token(environ: Mapping[str, str], name: str, key: str) -> bytes:
    value = environ.get(name, "")
    if not value:
        raise WebhookConfigError(
            f"{key} names {name}, but that environment variable is not set (it must hold the "
            "token of the Flux generic-hmac Provider)"
        )
    return value.encode()


def token_from_env(config: Config, environ: Mapping[str, str]) -> bytes | None:
    """The shared generic-hmac token, or None when the config names no variable."""
    name = config.server.flux_webhook_token_env
    return None if name is None else _token(environ, name, "server.flux_webhook_token_env")


@dataclass(frozen=True)
class FluxAuth:
    """The clusters that may post and the token each one's events must be signed with."""

    clusters: tuple[str, ...] = (DEFAULT_CLUSTER,)
    """Every name accepted, the default (a request that names none) first."""
    shared: bytes | None = None
    own: Mapping[str, bytes] = field(default_factory=dict)
    accept_unsigned: bool = False

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str]) -> FluxAuth:
        """The rules of `config`; WebhookConfigError when a named token variable is unset."""
        server = config.server
        own = {
            entry.name: _token(
                environ, entry.token_env, f"server.flux_webhook_clusters[{entry.name}].token_env"
            )
            for entry in server.flux_webhook_clusters
            if entry.token_env is not None
        }
        names = [c.name for c in config.clusters] + [c.name for c in server.flux_webhook_clusters]
        return cls(
            clusters=tuple(dict.fromkeys(names)) or (DEFAULT_CLUSTER,),
            shared=token_from_env(config, environ),
            own=own,
            accept_unsigned=server.flux_webhook_accept_unsigned,
        )

    @property
    def default(self) -> str:
        return self.clusters[0]

    def token_for(self, cluster: str) -> bytes | None:
        """The token `cluster`'s events must be signed with; None: none applies."""
        return self.own.get(cluster, self.shared)

    @property
    def unsigned(self) -> tuple[str, ...]:
        """The clusters whose events are taken without a signature."""
        if not self.accept_unsigned:
            return ()
        return tuple(c for c in self.clusters if self.token_for(c) is None)

    @property
    def refuses_all(self) -> bool:
        """No cluster has a token and unsigned events are not accepted."""
        return not self.accept_unsigned and all(self.token_for(c) is None for c in self.clusters)

    def describe(self) -> str:
        """One phrase for the startup log."""
        if self.refuses_all:
            return (
                "refuses every request (no token: set server.flux_webhook_token_env, or "
                "server.flux_webhook_accept_unsigned: true)"
            )
        signed = [c for c in self.clusters if self.token_for(c) is not None]
        parts = []
        if signed:
            parts.append(f"signed (generic-hmac) for {', '.join(signed)}")
        if self.unsigned:
            parts.append(f"UNSIGNED (generic) for {', '.join(self.unsigned)}")
        return "; ".join(parts)
