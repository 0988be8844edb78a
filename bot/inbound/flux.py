"""POST /webhooks/flux: Flux notification-controller's `generic` and `generic-hmac` providers.

With a token configured (`server.flux_webhook_token_env` names the environment variable that
holds it, the same `token` as in the Provider's Secret), every request must carry
`X-Signature: <hash>=<hex HMAC of the raw body>`, as notification-controller's generic-hmac
provider sends it (sha256 today; sha224, sha384 and sha512 are accepted too). Without a token,
requests are taken unsigned (the `generic` provider): expose the endpoint only inside the
cluster then.

Answers: 202 accepted (the body went through the pipeline); 400 malformed JSON, a body that
is not a Flux event, or an unknown cluster; 401 signature missing or wrong (nothing is
processed); 413 body over `max_body` (1 MiB).

The cluster: `?cluster=NAME` on the Provider's address, else the `X-Driftbot-Cluster` header
(a Provider can add headers from its Secret), else the first cluster of the config.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from bot.ops.http import problem, read_capped
from bot.pipeline.sources import Clock, utc_now
from config.schema import Config

__all__ = [
    "CLUSTER_HEADER",
    "FLUX_WEBHOOK_PATH",
    "MAX_BODY",
    "SIGNATURE_HEADER",
    "FluxWebhook",
    "sign",
    "token_from_env",
    "verify_signature",
]

logger = logging.getLogger(__name__)

FLUX_WEBHOOK_PATH = "/webhooks/flux"
SIGNATURE_HEADER = "X-Signature"
CLUSTER_HEADER = "X-Driftbot-Cluster"
MAX_BODY = 1 << 20
DEFAULT_CLUSTER = "default"

_HASHES: Mapping[str, Callable[[], Any]] = {
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

Notify = Callable[[Any, str, datetime], Awaitable[str]]


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


class WebhookConfigError(Exception):
    """The config names a token variable that is not set."""


def token_from_env(config: Config, environ: Mapping[str, str]) -> bytes | None:
    """The generic-hmac token, or None when the config names no variable. A variable that is
    named but unset or empty is an error: the endpoint must not silently accept unsigned
    requests."""
    name = config.server.flux_webhook_token_env
    if name is None:
        return None
    value = environ.get(name, "")
    if not value:
        raise WebhookConfigError(
            f"server.flux_webhook_token_env names {name}, but that environment variable is "
            "not set (it must hold the token of the Flux generic-hmac Provider)"
        )
    return value.encode()


class FluxWebhook:
    """The request handler; `notify` is Pipeline.notify (or the service's gate in front of it)."""

    def __init__(
        self,
        notify: Notify,
        *,
        token: bytes | None,
        clusters: Sequence[str] = (),
        clock: Clock = utc_now,
        max_body: int = MAX_BODY,
    ) -> None:
        self._notify = notify
        self._token = token
        self._clusters = tuple(clusters)
        self._clock = clock
        self._max_body = max_body
        self.accepted = 0
        self.refused = 0

    async def handle(self, request: web.Request) -> web.Response:
        response = await self._handle(request)
        if response.status == 202:
            self.accepted += 1
        else:
            self.refused += 1
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        body = await read_capped(request, self._max_body)
        if isinstance(body, web.Response):
            return body
        if self._token is not None and not verify_signature(
            request.headers.get(SIGNATURE_HEADER), body, self._token
        ):
            logger.warning(
                "refused a Flux webhook from %s: %s",
                request.remote,
                "no X-Signature header"
                if SIGNATURE_HEADER not in request.headers
                else "bad X-Signature",
            )
            return problem(401, "missing or invalid X-Signature")
        cluster = request.query.get("cluster") or request.headers.get(CLUSTER_HEADER) or ""
        if not cluster:
            cluster = self._clusters[0] if self._clusters else DEFAULT_CLUSTER
        elif self._clusters and cluster not in self._clusters:
            return problem(
                400, f"unknown cluster {cluster!r} (configured: {', '.join(self._clusters)})"
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return problem(400, f"body is not JSON: {exc}")
        outcome = await self._notify(payload, cluster, self._clock())
        if outcome.startswith("rejected"):
            reason = outcome.partition(": ")[2] or outcome
            logger.warning("refused a Flux webhook for cluster %s: %s", cluster, reason)
            return problem(400, f"not a Flux event: {reason}")
        return web.json_response({"accepted": True, "cluster": cluster}, status=202)
