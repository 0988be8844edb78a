"""POST /webhooks/flux: Flux notification-controller's `generic` and `generic-hmac` providers.

A request is checked in this order (who may post for which cluster: bot/inbound/flux_auth.py):

1. the body is read whole, in however many pieces it arrives, up to `max_body` (1 MiB: else
   413) and within `server.read_timeout` (else 408);
2. the cluster: `?cluster=NAME` on the Provider's address, else the `X-Driftbot-Cluster` header
   (a Provider can add headers from its Secret), else the config's first cluster. A name that
   is not a cluster name (control characters, spaces, over 253 characters) or not one of the
   config's `clusters` / `server.flux_webhook_clusters` is 400;
3. the signature: `X-Signature: <hash>=<hex HMAC of the raw body>`, as generic-hmac sends it
   (sha256 today; sha224, sha384 and sha512 too), with the cluster's token. A cluster without
   a token takes unsigned requests only with `server.flux_webhook_accept_unsigned: true`.
   Missing or wrong: 401, nothing is processed;
4. the body: malformed JSON, a body that is not a Flux event, or an event about a kind driftbot
   does not read (not Kustomization, HelmRelease or a source kind) is 400 with the reason;
   otherwise 202, and the event went through the pipeline.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.inbound.flux_auth import (
    CLUSTER_NAME,
    MAX_CLUSTER_NAME,
    FluxAuth,
    WebhookConfigError,
    token_from_env,
)
from bot.ops.http import problem
from bot.ops.webhook import SignedWebhook
from bot.pipeline.outcome import Taken
from bot.pipeline.sources import Clock, utc_now

__all__ = [
    "CLUSTER_HEADER",
    "FLUX_WEBHOOK_PATH",
    "MAX_BODY",
    "SIGNATURE_HEADER",
    "FluxAuth",
    "FluxWebhook",
    "WebhookConfigError",
    "sign",
    "token_from_env",
    "verify_signature",
]

logger = logging.getLogger(__name__)

FLUX_WEBHOOK_PATH = "/webhooks/flux"
SIGNATURE_HEADER = "X-Signature"
CLUSTER_HEADER = "X-Driftbot-Cluster"
MAX_BODY = 1 << 20

_HASHES: Mapping[str, Callable[[], Any]] = {
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

Notify = Callable[[Any, str, datetime], Awaitable[Taken]]


def sign(body: bytes, token: bytes, algorithm: str = "sha256") -> str:
    """The X-Signature value notification-controller sends for `body`."""
    return f"{algorithm}={hmac.new(token, body, _HASHES[algorithm]).hexdigest()}"


def verify_signature(header: str | None, body: bytes, token: bytes) -> bool:
    """Whether `header` is a valid X-Signature of `body` under `token` (constant-time)."""
    if not header:
        return False
    algorithm, sep, given = header.strip().partition("=")
    digest = _HASHES.get(algorithm.strip().lower())
    if not sep or digest is None:
        return False
    expected = hmac.new(token, body, digest).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


class FluxWebhook(SignedWebhook[str]):
    """The request handler; `notify` is Pipeline.notify (or the service's gate in front of it).
    `auth` may be replaced while serving (a config reload)."""

    accepted_status = 202

    def __init__(
        self,
        notify: Notify,
        *,
        auth: FluxAuth,
        clock: Clock = utc_now,
        max_body: int = MAX_BODY,
        read_timeout: float | None = None,
    ) -> None:
        super().__init__(max_body=max_body, read_timeout=read_timeout)
        self._notify = notify
        self.auth = auth
        self._clock = clock

    def check(self, request: web.Request, body: bytes) -> str | web.Response:
        """The cluster the event is for, once its name, its presence in the config and the
        signature with its token hold."""
        auth = self.auth
        named = request.query.get("cluster") or request.headers.get(CLUSTER_HEADER) or ""
        if named and not CLUSTER_NAME.fullmatch(named):
            logger.warning("refused a Flux webhook from %s: invalid cluster name", request.remote)
            return problem(
                400,
                "invalid cluster name: letters, digits, '-', '.' and '_', starting with a "
                f"letter or digit, at most {MAX_CLUSTER_NAME} characters",
            )
        cluster = named or auth.default
        if cluster not in auth.clusters:
            logger.warning(
                "refused a Flux webhook from %s: unknown cluster %s", request.remote, cluster
            )
            return problem(
                400,
                f"unknown cluster {cluster!r}: it is in neither clusters nor "
                "server.flux_webhook_clusters",
            )
        token = auth.token_for(cluster)
        if token is None and not auth.accept_unsigned:
            logger.warning(
                "refused a Flux webhook from %s for cluster %s: no token is configured and "
                "unsigned events are not accepted",
                request.remote,
                cluster,
            )
            return problem(
                401,
                "unsigned Flux events are refused: configure a generic-hmac token "
                "(server.flux_webhook_token_env)",
            )
        if token is not None and not verify_signature(
            request.headers.get(SIGNATURE_HEADER), body, token
        ):
            logger.warning(
                "refused a Flux webhook from %s for cluster %s: %s",
                request.remote,
                cluster,
                "no X-Signature header"
                if SIGNATURE_HEADER not in request.headers
                else "bad X-Signature",
            )
            return problem(401, "missing or invalid X-Signature")
        return cluster

    async def take(self, payload: Any, checked: str) -> web.Response:
        cluster = checked
        taken = await self._notify(payload, cluster, self._clock())
        if taken.rejected:
            reason = taken.reason or str(taken)
            logger.warning("refused a Flux webhook for cluster %s: %s", cluster, reason)
            return problem(400, f"not a Flux event driftbot reads: {reason}")
        return web.json_response({"accepted": True, "cluster": cluster}, status=202)
