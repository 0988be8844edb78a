"""The store as `driftbot run` uses it: app states and the policy state written in batches, and
a store that fails (file locked, disk full, database down) survived without losing anything.

A watch event would otherwise cost one transaction for its app state and one for the policy
state. `WriteBehindStore` keeps those writes in memory, coalesced per app, and writes them in
`flush()`: the service flushes every second, at `max_pending` app states, and on close, so a
clean shutdown loses nothing. Reads see the pending writes. It works over either backend (it is
a `Store`, and the backend is chosen when it is opened).

Messages a receiver queues ("written before sending", `outbox_add_many`) and the audit entries
of what the policy decided (`audit(..., with_policy=True)`: a notification announced, an alert
closed) wait in memory too, and a flush writes them, the policy state that says they were sent
and the app states in one transaction: a crash keeps all or none, so a restart never announces
a change a second time, nor audits it twice (the service flushes right after every input that
sent something, so they wait only for the rest of that input; the audit log shows an entry
once its flush is done). A crash loses at most what came since the last flush, which the next
start sees again in its lists and decides once.

When the store fails:

- `flush()` does not raise a StoreError: it keeps everything it could not write, counts the
  failure (`store_failures`, with every other failed store call) and logs ONE warning when an
  outage begins, with the store's own one-sentence reason and what is kept in memory; the next
  flush tries again, and the first that succeeds logs once that the store works again. Later
  writes of the same app replace the pending ones (the newest state wins).
- A receiver queueing a notification is not refused: its messages stay in memory, in order,
  with their placeholder ids (negative: not yet in the store), and are written by the next
  flush that succeeds, with the policy state that says they were sent. That commit wakes the
  workers watching those receivers (`outbox_watch`), so they are sent at once. What is kept in
  memory is lost only if the process dies before the store works again; `close()` then raises
  a StoreError saying what could not be saved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.store.audit import AuditRow
from bot.store.backend import Backend
from bot.store.store import OutboxItem, Store, StoreError
from core.model import AppKey, AppState
from core.policy import PolicyState

__all__ = ["WriteBehindStore"]

logger = logging.getLogger(__name__)


class WriteBehindStore(Store):
    """The store with app states, the policy state and queued messages written in batches by
    `flush()`; see the module docstring."""

    max_pending = 5000

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._pending_states: dict[AppKey, AppState] = {}
        self._pending_policy: PolicyState | None = None
        self._pending_outbox: list[tuple[str, list[dict[str, Any]], datetime]] = []
        self._pending_audit: list[AuditRow] = []
        self._placeholder = 0
        self._flushing = asyncio.Lock()
        self.flushes = 0
        """Flushes that wrote everything pending."""
        self.failing: StoreError | None = None
        """The error of the outage in progress, None while the store works."""
        self.fenced = False
        """Set when this process stopped leading: the outbox is the new leader's to send."""

    def fence(self) -> None:
        """Hand out no more outbox items (this process no longer leads); writes go on."""
        self.fenced = True

    @property
    def pending(self) -> tuple[int, bool, int]:
        """What is not written yet: app states, whether a policy state, queued messages."""
        messages = sum(len(payloads) for _, payloads, _ in self._pending_outbox)
        return len(self._pending_states), self._pending_policy is not None, messages

    # -- writes kept in memory ------------------------------------------------------------------

    async def put_states(self, states: Iterable[AppState]) -> None:
        for state in states:
            self._pending_states[state.key] = state
        if len(self._pending_states) >= self.max_pending and self.failing is None:
            await self.flush()

    async def save_policy(self, state: PolicyState) -> None:
        self._pending_policy = state

    async def get_state(self, key: AppKey) -> AppState | None:
        pending = self._pending_states.get(key)
        return pending if pending is not None else await super().get_state(key)

    async def all_states(self) -> dict[AppKey, AppState]:
        return {**await super().all_states(), **self._pending_states}

    async def stored_states(self) -> dict[AppKey, AppState | str]:
        return {**await super().stored_states(), **self._pending_states}

    async def outbox_add_many(
        self, receiver: str, payloads: Iterable[Mapping[str, Any]], at: datetime | None = None
    ) -> list[int]:
        """Queue messages for the next flush (with the policy state), in order; their
        placeholder ids are negative: not yet in the store."""
        kept = [dict(p) for p in payloads]
        self._pending_outbox.append((receiver, kept, at or datetime.now(UTC)))
        ids = list(range(-self._placeholder - 1, -self._placeholder - len(kept) - 1, -1))
        self._placeholder += len(kept)
        return ids

    def _keep_audit(self, row: AuditRow) -> bool:
        """An entry about the policy state waits for the flush that writes that state (one
        transaction with it, in order); the audit log shows it once that flush is done."""
        self._pending_audit.append(row)
        return True

    async def outbox_depths(self) -> dict[str, int]:
        """The store's count per receiver plus the messages kept in memory for it."""
        depths = await super().outbox_depths()
        for receiver, payloads, _ in self._pending_outbox:
            depths[receiver] = depths.get(receiver, 0) + len(payloads)
        return depths

    async def outbox_queue(self, receiver: str, limit: int = 100) -> list[OutboxItem]:
        if self.fenced:
            return []
        return await super().outbox_queue(receiver, limit)

    # -- flush ----------------------------------------------------------------------------------

    async def flush(self) -> bool:
        """Write what is pending (queued messages, the policy state and the app states) in one
        transaction; True when all of it is written. A store
        failure keeps it all for the next flush (see the module docstring); any other error is
        raised, the rest kept."""
        async with self._flushing:
            try:
                await self._write_pending()
            except StoreError as exc:
                self._failed(exc)
                return False
        if self.failing is not None:
            logger.warning(
                "the state store %s works again: what was kept in memory is saved",
                self.where,
            )
            self.failing = None
        self.flushes += 1
        return True

    async def _write_pending(self) -> None:
        queued = list(self._pending_outbox)
        audits = list(self._pending_audit)
        policy_state, self._pending_policy = self._pending_policy, None
        states, self._pending_states = self._pending_states, {}
        try:
            if queued or policy_state is not None or states or audits:
                await super().commit(queued, policy_state, list(states.values()), audits)
                del self._pending_outbox[: len(queued)]
                del self._pending_audit[: len(audits)]
                policy_state, states = None, {}
        except BaseException:
            # Keep what was not written for the next flush; newer writes win.
            self._pending_states = {**states, **self._pending_states}
            if self._pending_policy is None:
                self._pending_policy = policy_state
            raise

    def _reason(self) -> str:
        cause = None if self.failing is None else self.failing.__cause__
        if cause is not None and isinstance(cause, self.backend.errors):
            return self.backend.why(cause)
        return "it keeps failing"

    def _failed(self, exc: StoreError) -> None:
        if self.failing is None:
            states, policy, messages = self.pending
            logger.warning(
                "%s Keeping %d app states%s and %d queued messages in memory; every flush "
                "tries again.",
                exc,
                states,
                ", the policy state" if policy else "",
                messages,
            )
        self.failing = exc

    async def close(self) -> None:
        """Flush, then close; StoreError if something could not be saved (it is lost)."""
        try:
            if not await self.flush():
                states, policy, messages = self.pending
                audits = len(self._pending_audit)
                raise StoreError(
                    f"The state store {self.where} could not save {states} app states"
                    f"{', the policy state' if policy else ''}"
                    f"{f', {audits} audit entries' if audits else ''} and {messages} queued "
                    f"messages before closing, so they are lost: {self._reason()}."
                )
        finally:
            await super().close()
