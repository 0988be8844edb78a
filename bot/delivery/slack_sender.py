"""Delivers rendered Slack messages without losing them: paced, retried, and classified.

The Block Kit renderer produces message dicts (`text`, `blocks`, ...); this module posts or
updates them through slack_sdk's AsyncWebClient. It paces every call through a `RateLimiter`,
waits out HTTP 429s for exactly their `Retry-After` and sends the same message again, retries
5xx answers, time-outs and broken connections with exponential backoff and jitter, and stops at
once on errors that no retry can fix (a missing channel, a revoked token, blocks Slack refuses).
Whatever does not get through comes back as a `SendResult` the outbox can act on: `fatal`
messages are set aside, the others are kept and tried again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.rate_limit import RateLimiter
from bot.delivery.retry import DeliveryStats, Failure, RetryStage, retry_after
from bot.ops.metrics import DeliveryMetrics

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
UPDATE_KEY = "chat.update"
"""Limiter key for chat.update, which Slack limits per workspace (Tier 3), not per channel."""

RETRYABLE_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
"""Slack error codes worth another try. Any other error code is fatal: Slack gives the same
answer to the same request (channel_not_found, not_in_channel, is_archived, invalid_auth,
not_authed, account_inactive, token_revoked, missing_scope, invalid_blocks, msg_too_long,
no_text, message_not_found, cant_update_message, ...)."""

WORKSPACE_RATE_LIMIT_ERROR = "rate_limited"
"""The 429 error code for the app posting too much to the workspace; "ratelimited" is the
per-channel (or per-method) one."""


def make_client(
    token: str,
    api_url: str = DEFAULT_API_URL,
    *,
    timeout: float = 30.0,
    session: aiohttp.ClientSession | None = None,
) -> AsyncWebClient:
    """An AsyncWebClient for `api_url` (the `slack.api_url` setting) that does not retry.

    slack_sdk's default retry handler would retry connection errors on its own, sleeping for
    real; SlackSender does all retrying, so the client gets no handlers. Without `session`
    slack_sdk opens a session (a connection, a TLS handshake) per call; `keep_alive_session`
    makes one to share. slack_sdk applies `timeout` only to sessions it makes itself, so a
    shared session carries its own.
    """
    return AsyncWebClient(
        token=token,
        base_url=api_url,
        timeout=timeout,  # type: ignore[arg-type]  # slack_sdk hands it to aiohttp as a float
        session=session,
        retry_handlers=[],
    )


def keep_alive_session(timeout: float = 30.0) -> aiohttp.ClientSession:
    """One HTTP session for a workspace's calls (call inside the running loop)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))


@dataclass(frozen=True)
class SendResult:
    ok: bool
    channel: str
    ts: str | None = None
    error: str | None = None
    fatal: bool = False
    attempts: int = 0
    retry_after: float | None = None
    """Not delivered and not fatal: the seconds Slack asked to wait (its last 429's
    Retry-After), None when it asked for none."""


class SlackSender:
    """Posts and updates messages; one instance per Slack workspace (token)."""

    def __init__(
        self,
        client: AsyncWebClient,
        retry: RetryStage,
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        """`retry` paces and retries every call (its limiter is the workspace's)."""
        self._client = client
        self._locks: dict[str, asyncio.Lock] = {}
        self._reported: set[tuple[str, str]] = set()
        self._retry = retry
        self.stats: DeliveryStats = retry.stats
        self.metrics: DeliveryMetrics = retry.metrics
        self._session = session
        """The client's HTTP session, kept alive across calls (one TLS handshake with
        slack.com, not one per message); closed when the last receiver using it lets go."""
        self._holders = 0

    def hold(self) -> None:
        """A receiver uses this sender (and its session) until it calls `release`."""
        self._holders += 1

    async def release(self) -> None:
        """A receiver is done: the last one out closes the HTTP session."""
        self._holders -= 1
        if self._holders <= 0 and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def limiter(self) -> RateLimiter:
        return self._retry.limiter

    async def post(
        self,
        channel: str,
        message: Mapping[str, Any],
        thread_ts: str | None = None,
        *,
        receiver: str | None = None,
    ) -> SendResult:
        """chat.postMessage; `message` holds the renderer's fields (text, blocks, ...).

        Calls for one channel go out one at a time in the order they were made, so a channel
        reads in the order events happened even while a 429 is being waited out.
        """
        args = {**message, "channel": channel}
        if thread_ts is not None:
            args["thread_ts"] = thread_ts

        async def call() -> Any:
            return await self._client.chat_postMessage(**args)

        notification = _notification_of(message)
        return await self._send(channel, channel, call, receiver or channel, notification)

    async def update(
        self,
        channel: str,
        ts: str,
        message: Mapping[str, Any],
        *,
        receiver: str | None = None,
        notification: str | None = None,
    ) -> SendResult:
        """chat.update of the message `ts` in `channel` with the renderer's new fields;
        `notification` (the id of the notification it tells of) times its delivery."""
        args = {**message, "channel": channel, "ts": ts}

        async def call() -> Any:
            return await self._client.chat_update(**args)

        return await self._send(channel, UPDATE_KEY, call, receiver or channel, notification)

    async def _send(
        self,
        channel: str,
        limit_key: str,
        call: Callable[[], Awaitable[Any]],
        receiver: str,
        notification: str | None = None,
    ) -> SendResult:
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            result = await self._attempts(channel, limit_key, call, receiver)
        if result.ok:
            self.metrics.accepted("slack", receiver, notification)
        else:
            self.metrics.refused(receiver, fatal=result.fatal)
        return result

    async def _attempts(
        self,
        channel: str,
        limit_key: str,
        call: Callable[[], Awaitable[Any]],
        receiver: str,
    ) -> SendResult:
        async def once() -> Any:
            try:
                return await call()
            except SlackApiError as exc:
                return _classify_api_error(exc)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Failure(error=_describe(exc), retryable=True)

        ended = await self._retry.run(limit_key, once, receiver=receiver, where=channel)
        if ended.failure is None:
            response = ended.answer
            ts = response.get("ts") if response is not None else None
            return SendResult(ok=True, channel=channel, ts=ts, attempts=ended.attempts)
        if ended.fatal:
            return self._fatal(channel, receiver, ended.failure, ended.attempts)
        return self._give_up(channel, receiver, ended.failure, ended.attempts)

    def _fatal(self, channel: str, receiver: str, failure: Failure, attempts: int) -> SendResult:
        if (receiver, failure.error) not in self._reported:
            self._reported.add((receiver, failure.error))
            logger.error(
                "Slack refused a message for %s (channel %s): %s; not retrying, and not "
                "logging this error for this receiver again",
                receiver,
                channel,
                failure.error,
                extra={"receiver": receiver},
            )
        return SendResult(
            ok=False, channel=channel, error=failure.error, fatal=True, attempts=attempts
        )

    def _give_up(self, channel: str, receiver: str, failure: Failure, attempts: int) -> SendResult:
        logger.warning(
            "Slack message for %s (channel %s) not delivered after %d attempts: %s; kept for "
            "a later try",
            receiver,
            channel,
            attempts,
            failure.error,
            extra={"receiver": receiver},
        )
        return SendResult(
            ok=False,
            channel=channel,
            error=failure.error,
            fatal=False,
            attempts=attempts,
            retry_after=failure.retry_after,
        )


def _notification_of(message: Mapping[str, Any]) -> str | None:
    """The notification id a post names in its message metadata, if it does."""
    metadata = message.get("metadata")
    payload = metadata.get("event_payload") if isinstance(metadata, Mapping) else None
    notification = payload.get("notification") if isinstance(payload, Mapping) else None
    return notification if isinstance(notification, str) else None


def _classify_api_error(exc: SlackApiError) -> Failure:
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if status == 429:
        code = error if isinstance(error, str) else "ratelimited"
        headers = getattr(response, "headers", None) or {}
        return Failure(
            error=code,
            retryable=True,
            retry_after=retry_after(headers),
            workspace=code == WORKSPACE_RATE_LIMIT_ERROR,
        )
    if status >= 500:
        return Failure(error=error if isinstance(error, str) else f"http_{status}", retryable=True)
    if not isinstance(error, str):
        return Failure(error=f"http_{status}", retryable=status == 408)
    return Failure(error=error, retryable=error in RETRYABLE_ERRORS)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"connection_error:{type(exc).__name__}"
