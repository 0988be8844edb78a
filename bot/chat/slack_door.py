"""The door of /slack/events in HTTP mode: what is checked before Bolt sees a request.

1. The signature, as Slack signs (`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}` with the
   signing secret), and the timestamp: digits only, within five minutes of now. Anything else
   is 401 (slack_sdk's own check raises on a timestamp that is not a number: that was a 500).
2. Replays: a signed request is valid for five minutes, so the signature of every request let
   in is remembered until its timestamp is five minutes old; the same signature again is
   refused (401), and a mute or an ack is never done twice by sending a captured request again.
3. Slack's own retries: an Events API delivery Slack retries (`X-Slack-Retry-Num`) whose
   `event_id` was already let in is answered 200 with `X-Slack-No-Retry: 1` and not done again.

Memory is bounded: each table keeps at most `limit` live entries (a live entry cannot be
forgotten without opening the door to its replay), so when one is full of live entries a new
request is answered 503 (Slack retries later) rather than let in unremembered.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import orjson

__all__ = ["WINDOW", "Door", "Remembered", "Verdict", "sign"]

WINDOW = 300.0
"""Seconds a signed Slack request is valid either side of its timestamp."""
EVENT_RETRIES_WITHIN = 900.0
"""Seconds a delivered event id is remembered: Slack retries at once, after 1 and 5 minutes."""
LIMIT = 20_000
"""Live entries per table: 66 signed requests a second for five minutes."""
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Slack-Signature Slack sends with `body` at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Remembered:
    """Keys with an expiry, at most `limit` live ones; expired ones are dropped as time passes."""

    limit: int = LIMIT
    clock: Callable[[], float] = time.time
    _expiry: dict[str, float] = field(default_factory=dict)
    _queue: list[tuple[float, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, key: str) -> bool:
        self._expire()
        return key in self._expiry

    def add(self, key: str, until: float) -> bool:
        """Remember `key` until `until`; False (and nothing remembered) when full."""
        self._expire()
        if key not in self._expiry and len(self._expiry) >= self.limit:
            return False
        self._expiry[key] = max(until, self._expiry.get(key, until))
        heapq.heappush(self._queue, (self._expiry[key], key))
        return True

    def _expire(self) -> None:
        now = self.clock()
        while self._queue and self._queue[0][0] < now:
            until, key = heapq.heappop(self._queue)
            if self._expiry.get(key) == until:
                del self._expiry[key]


@dataclass(frozen=True)
class Verdict:
    """What to answer instead of letting the request in; `status` None: let it in."""

    status: int | None = None
    reason: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


LET_IN = Verdict()


class Door:
    """Checks one request (its raw body and headers) at a time; see the module docstring."""

    def __init__(
        self,
        signing_secret: str,
        *,
        clock: Callable[[], float] = time.time,
        limit: int = LIMIT,
    ) -> None:
        self._secret = signing_secret
        self._clock = clock
        self.requests = Remembered(limit, clock)
        self.events = Remembered(limit, clock)
        self.replays = 0
        self.retries = 0

    def check(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        timestamp = headers.get("X-Slack-Request-Timestamp", "").strip()
        signature = headers.get("X-Slack-Signature", "").strip()
        if not timestamp or not signature:
            return Verdict(401, "no X-Slack-Request-Timestamp or X-Slack-Signature")
        if not _TIMESTAMP.fullmatch(timestamp):
            return Verdict(401, "X-Slack-Request-Timestamp is not a Unix time")
        sent = int(timestamp)
        if abs(self._clock() - sent) > WINDOW:
            return Verdict(401, "request older (or newer) than five minutes")
        if not hmac.compare_digest(sign(self._secret, timestamp, body), signature):
            return Verdict(401, "bad X-Slack-Signature")
        retry = "X-Slack-Retry-Num" in headers
        if signature in self.requests:
            if retry:
                return self._done_already()
            self.replays += 1
            return Verdict(401, "a request already taken, sent again (replay)")
        event_id = _event_id(body)
        if retry and event_id and event_id in self.events:
            return self._done_already()
        if not self.requests.add(signature, sent + WINDOW):
            return Verdict(503, "too many signed requests in five minutes", {"Retry-After": "60"})
        if event_id and not self.events.add(event_id, self._clock() + EVENT_RETRIES_WITHIN):
            return Verdict(503, "too many events in fifteen minutes", {"Retry-After": "60"})
        return LET_IN

    def _done_already(self) -> Verdict:
        self.retries += 1
        return Verdict(200, "a retry of work already done", {"X-Slack-No-Retry": "1"})


def _event_id(body: bytes) -> str:
    """The `event_id` of an Events API delivery (a JSON body); "" for anything else."""
    if not body.startswith(b"{"):
        return ""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    event_id = data.get("event_id") if isinstance(data, dict) else None
    return event_id if isinstance(event_id, str) else ""
