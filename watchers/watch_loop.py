"""The skeleton both watchers stand on: the Kubernetes list -> watch -> relist of
watchers/kube_watch.py and the Argo CD API list -> stream -> re-list of watchers/argocd_api.py.

A `WatchLoop` runs in a named task and goes round forever (until cancelled): one `_cycle` (list
when it must, then follow the stream), and after any failure its own `_recover` (what to log,
whether to relist, how long to wait). The stream is read by `read_lines`: whole lines, bounded,
each within an inactivity deadline when the watcher has one. Log lines say where they come from
(`ContextLog`), and a callback's failure is told apart from the stream's (`CallbackFailed`).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, MutableMapping
from typing import Any, ClassVar, NoReturn

import aiohttp


class CallbackFailed(Exception):
    """on_list or on_event raised: the caller's view may be incomplete, so relist."""


class ContextLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with the cluster and what is watched, and passes the adapter's
    extras (cluster, resource or URL) as structured fields."""

    def __init__(self, logger: logging.Logger, extra: dict[str, Any], label: str) -> None:
        super().__init__(logger, extra)
        self.label = label

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"[{extra.get('cluster')}] {self.label}: {msg}", kwargs


async def read_lines(
    response: aiohttp.ClientResponse,
    *,
    max_line_bytes: int,
    too_long: Callable[[], Exception],
    inactivity: float | None = None,
    silent: Callable[[], Exception] | None = None,
) -> AsyncGenerator[bytes, None]:
    """The complete, non-empty lines of a streamed response. A line longer than
    `max_line_bytes` raises `too_long()`; with `inactivity`, each line must arrive within that
    many seconds of the one before, else (as for any time-out of the read) `silent()`."""
    loop = asyncio.get_running_loop()
    buffer = bytearray()
    deadline = None if inactivity is None else loop.time() + inactivity
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await response.content.readany()
        except TimeoutError as exc:
            if silent is None:
                raise
            raise silent() from exc
        if not chunk:
            if buffer.strip():
                yield bytes(buffer)
            return
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if line.strip():
                yield line
                if inactivity is not None:
                    deadline = loop.time() + inactivity
        if len(buffer) > max_line_bytes:
            raise too_long()


class WatchLoop(ABC):
    """A loop in a named task: `start()` runs it (idempotent), `stop()` cancels it and waits
    until it has closed its connection. `run()` never raises but for its cancellation."""

    loop_kind: ClassVar[str]
    """How log lines name the loop: "watch loop", "stream loop"."""

    _task: asyncio.Task[None] | None = None
    _log: ContextLog

    @property
    @abstractmethod
    def task_name(self) -> str: ...

    def start(self) -> asyncio.Task[None]:
        """Run the loop in a named task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=self.task_name)
            self._task.add_done_callback(self._report_end)
        return self._task

    async def stop(self) -> None:
        """Cancel the loop and wait until it has closed its connection."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # wait() rather than await: the loop's CancelledError is expected, ours must propagate.
        await asyncio.wait([task])

    def _report_end(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log.error("%s ended", self.loop_kind, exc_info=task.exception())

    async def run(self) -> NoReturn:
        """List, follow, recover; forever (until cancelled)."""
        while True:
            try:
                await self._cycle()
            except Exception as exc:
                await self._recover(exc)

    @abstractmethod
    async def _cycle(self) -> None:
        """List when the loop must, then follow the stream until it ends or fails."""

    @abstractmethod
    async def _recover(self, exc: Exception) -> None:
        """After `exc` ended a cycle: count it, log it, decide whether to relist, wait."""
