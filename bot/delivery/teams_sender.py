"""Posts Adaptive Cards to Microsoft Teams Workflows webhooks: paced, retried, classified.

A Workflows (Power Automate) webhook URL is a secret: its query string carries the signature
that lets anyone holding it post to the channel. It lives in a `WebhookUrl`, whose repr, str
and log form show only the scheme, host and first path segment; errors name the receiver,
never the URL. aiohttp exceptions that carry the URL are reduced to their type name.

Teams throttles a webhook that gets more than 4 requests a second, so every post goes through
a `RateLimiter` keyed by webhook at 4 per second with no burst. HTTP 429 is waited out for its
`Retry-After` (the webhook is paused, and the same card is sent again); 5xx answers, 408,
time-outs and broken connections are retried with exponential backoff; any other 4xx (400 bad
card, 401/403 bad signature, 404 deleted workflow, 413 too large) is fatal: logged once per
receiver and error, counted, and not retried. A 2xx (Workflows answer 202) only means the
request was queued: the flow may still fail later, and that cannot be seen from here.

The retry loop, its policy and the counters are shared with Slack's sender (bot.delivery.retry):
the sender is given its `RetryStage`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from bot.delivery.rate_limit import Rate, RateLimiter
from bot.delivery.retry import DeliveryStats, Failure, RetryStage
from bot.delivery.retry import retry_after as retry_after_seconds
from bot.ops.metrics import DeliveryMetrics
from config.schema import TeamsReceiver

logger = logging.getLogger(__name__)

TEAMS_WEBHOOK_RATE = Rate(per_second=4.0, burst=1)
"""Teams throttles a webhook beyond 4 requests a second; no burst, so no one-second window
ever holds more than 4."""

MAX_ERROR_CODE = 80

UNNAMED = "unnamed"
"""The metrics' receiver label of a post made without a receiver name."""


class TeamsConfigError(Exception):
    """A Teams receiver's webhook URL cannot be read; the message names where it was looked
    for, never its value."""


def redact(url: str) -> str:
    """`https://host/first-segment/…`: enough to tell webhooks apart in logs, nothing that
    lets anyone post."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<unparsable url>"
    if not parts.scheme or not host:
        return "<unparsable url>"
    first = next((p for p in parts.path.split("/") if p), "")
    tail = "/…" if parts.path.strip("/") != first or parts.query else ""
    return f"{parts.scheme}://{host}/{first}{tail}" if first else f"{parts.scheme}://{host}{tail}"


class WebhookUrl:
    """A webhook URL kept out of reprs, logs and errors; `reveal()` is for the request only."""

    __slots__ = ("_url", "key", "redacted")

    def __init__(self, url: str) -> None:
        self._url = url
        self.redacted = redact(url)
        self.key = hashlib.sha256(url.encode()).hexdigest()[:16]
        """Identifies the webhook (rate limit, ordering) without holding the URL."""

    def reveal(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"WebhookUrl({self.redacted!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookUrl) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)


def load_webhook(name: str, receiver: TeamsReceiver, environ: Mapping[str, str]) -> WebhookUrl:
    """The webhook URL of receiver `name`, from its environment variable or its file."""
    if receiver.webhook_env is not None:
        where = f"environment variable {receiver.webhook_env}"
        value = environ.get(receiver.webhook_env, "")
    else:
        assert receiver.webhook_file is not None
        where = f"file {receiver.webhook_file}"
        try:
            value = Path(receiver.webhook_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise TeamsConfigError(
                f"receiver {name!r} posts to Teams: cannot read {where}: {why}"
            ) from None
    value = value.strip()
    if not value:
        raise TeamsConfigError(
            f"receiver {name!r} posts to Teams: {where} is empty or not set (it must hold the "
            "Workflows webhook URL)"
        )
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value
    except ValueError:
        ok = False
    if not ok:
        raise TeamsConfigError(
            f"receiver {name!r} posts to Teams: {where} does not hold an http(s) URL (it must "
            "hold the Workflows webhook URL, https://...)"
        )
    return WebhookUrl(value)


@dataclass(frozen=True)
class TeamsResult:
    ok: bool
    status: int = 0
    """The last HTTP status (0: no answer)."""
    error: str | None = None
    fatal: bool = False
    attempts: int = 0
    retry_after: float | None = None
    """Not delivered and not fatal: the seconds Teams asked to wait (its last 429's
    Retry-After), None when it asked for none."""


class TeamsSender:
    """Posts to any number of webhooks; share one instance so each webhook has one limit."""

    def __init__(self, retry: RetryStage, *, timeout: float = 30.0) -> None:
        """`retry` paces and retries every post (its limiter keys by webhook)."""
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._reported: set[tuple[str, str]] = set()
        self._retry = retry
        self.stats: DeliveryStats = retry.stats
        self.metrics: DeliveryMetrics = retry.metrics

    @property
    def limiter(self) -> RateLimiter:
        return self._retry.limiter

    async def close(self) -> None:
        """Close the HTTP session; a later post opens a new one."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def post(
        self,
        webhook: WebhookUrl,
        payload: Mapping[str, Any],
        *,
        receiver: str = "",
        notification: str | None = None,
    ) -> TeamsResult:
        """POST `payload` (an envelope or a bare card) as JSON. Posts to one webhook go out
        one at a time in the order they were made, waiting out 429s in between.
        `notification` (the id of the notification the card tells of) times its delivery."""
        body = orjson.dumps(payload)
        lock = self._locks.setdefault(webhook.key, asyncio.Lock())
        async with lock:
            result = await self._attempts(webhook, body, receiver or webhook.redacted)
        if result.ok:
            self.metrics.accepted("teams", receiver or UNNAMED, notification)
        else:
            self.metrics.refused(receiver or UNNAMED, fatal=result.fatal)
        return result

    async def _attempts(self, webhook: WebhookUrl, body: bytes, receiver: str) -> TeamsResult:
        async def once() -> Failure | int:
            return await self._post_once(webhook, body) or 202

        ended = await self._retry.run(
            webhook.key,
            once,
            receiver=receiver,
            where=f"webhook {webhook.redacted}",
            counted_as=receiver if receiver != webhook.redacted else UNNAMED,
        )
        if ended.failure is None:
            return TeamsResult(ok=True, status=202, attempts=ended.attempts)
        if ended.fatal:
            return self._fatal(webhook, receiver, ended.failure, ended.attempts)
        return self._give_up(webhook, receiver, ended.failure, ended.attempts)

    async def _post_once(self, webhook: WebhookUrl, body: bytes) -> Failure | None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                webhook.reveal(),
                data=body,
                headers={"Content-Type": "application/json"},
                allow_redirects=False,
            ) as response:
                text = await response.read()
                return _classify(response.status, response.headers, text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # str(exc) may hold the URL: only the type is kept.
            error = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            return Failure(error=f"connection_error:{error}", retryable=True)

    def _fatal(
        self, webhook: WebhookUrl, receiver: str, failure: Failure, attempts: int
    ) -> TeamsResult:
        if (receiver, failure.error) not in self._reported:
            self._reported.add((receiver, failure.error))
            logger.error(
                "Teams refused a card for %s (webhook %s): %s; not retrying, and not logging "
                "this error for this receiver again",
                receiver,
                webhook.redacted,
                failure.error,
                extra={"receiver": receiver},
            )
        return TeamsResult(
            ok=False, status=failure.status, error=failure.error, fatal=True, attempts=attempts
        )

    def _give_up(
        self, webhook: WebhookUrl, receiver: str, failure: Failure, attempts: int
    ) -> TeamsResult:
        logger.warning(
            "Teams card for %s (webhook %s) not delivered after %d attempts: %s; kept for a "
            "later try",
            receiver,
            webhook.redacted,
            attempts,
            failure.error,
            extra={"receiver": receiver},
        )
        return TeamsResult(
            ok=False,
            status=failure.status,
            error=failure.error,
            fatal=False,
            attempts=attempts,
            retry_after=failure.retry_after,
        )


def _classify(status: int, headers: Mapping[str, Any], body: bytes) -> Failure | None:
    """None for a 2xx; else what went wrong and whether to try again (decides only)."""
    if 200 <= status < 300:
        return None
    error = f"http_{status}"
    code = _error_code(body)
    if code:
        error += f":{code}"
    if status == 429:
        return Failure(error, True, retry_after=retry_after_seconds(headers), status=status)
    return Failure(error, status >= 500 or status == 408, status=status)


def _error_code(body: bytes) -> str:
    """The `error.code` of a Power Automate error body, if it has one (never its message,
    which may quote the request)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if not isinstance(code, str):
        return ""
    return "".join(c for c in code if c.isalnum() or c in "_.-")[:MAX_ERROR_CODE]
