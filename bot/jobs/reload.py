"""Hot reload of the config file: a change to routes, receivers, policy, digests or RBAC takes
effect without a restart.

The file is polled every few seconds (its mtime, size and a hash of its content: no inotify
dependency, and a ConfigMap's symlink swap is seen like any write); SIGHUP asks for a reload at
once, even of an unchanged file (a webhook file or secret may have changed). The new file is
checked like `driftbot check-config` does:

- valid: the pipeline takes the new config and its receivers at once (receivers whose settings
  did not change are kept as they are, with their queues; removed and changed ones are closed,
  new ones built); listeners (the scheduler's digests, the Slack app's RBAC, command and API
  URL, the Teams and Flux webhooks' tokens and clusters) are told; audited as `config_reload`;
- invalid, its receivers cannot be built, or a check refuses it (a token variable that is named
  but not set): every error is logged as `file:line: key: message`, the config in force stays,
  and it is audited as `config_rejected`.

Clusters, Argo CD API streams, the server's host and port and the Slack mode are read at start
only: a change to them is logged (and audited) as needing a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.delivery.receivers import Receiver
from bot.pipeline.gate import PipelineGate
from bot.pipeline.runner import Pipeline
from config.loader import ConfigError, check_config_file
from config.schema import Config

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
BuildReceivers = Callable[[Config], Mapping[str, Receiver]]
"""Builds the receivers of a config (only those the config lists); may raise with a reason."""
Listener = Callable[[Config], Awaitable[None] | None]

ACTOR = "config"
RELOADED = "config_reload"
REJECTED = "config_rejected"
RESTART_ONLY = ("clusters", "argocd_api", "server.host", "server.port", "slack.mode")
"""What a running service read once (its watches, its socket, its Slack connection)."""
Check = Callable[[Config], None]
"""Refuses a new config by raising ValueError (or a subclass) with a sentence."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What tells one version of the file from another."""

    mtime_ns: int
    size: int
    digest: str


def fingerprint(path: Path) -> Fingerprint | None:
    """The file's fingerprint, or None if it cannot be read (gone, or being replaced)."""
    try:
        stat = path.stat()
        content = path.read_bytes()
    except OSError:
        return None
    return Fingerprint(stat.st_mtime_ns, stat.st_size, hashlib.sha256(content).hexdigest())


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What one reload did: `applied`, or not with its `errors` (ConfigIssues or a reason)."""

    applied: bool
    errors: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()


class ReceiverBuildError(Exception):
    """The receivers of a new config cannot be built; the old ones are back in place."""


class ConfigReloader:
    """Watches one config file and swaps a valid new config into the pipeline.

    The swap goes through `gate` (the service's, through which every other input goes), so
    it never lands in the middle of an observation. `start()` polls every `interval`
    seconds; `stop()` ends it. `reload(force)` is one check, for SIGHUP and for tests.
    """

    def __init__(
        self,
        path: Path,
        pipeline: Pipeline,
        build: BuildReceivers,
        *,
        gate: PipelineGate | None = None,
        clock: Clock = _utc_now,
        sleep: Sleep = asyncio.sleep,
        interval: float = 5.0,
        adjust: Callable[[Config], Config] | None = None,
    ) -> None:
        self.path = Path(path)
        self.adjust = adjust
        """Applied to every config read (the environment's overrides of the file)."""
        self.checks: list[Check] = []
        """Run before a config is applied; one that raises refuses it."""
        self.pipeline = pipeline
        self.build = build
        self.gate = gate or PipelineGate(pipeline)
        self.clock = clock
        self.sleep = sleep
        self.interval = interval
        self.listeners: list[Listener] = []
        self.seen = fingerprint(self.path)
        """The version of the file in force (or last refused: it is not retried until it
        changes again)."""
        self.reloads = 0
        self.rejections = 0
        self._busy = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._signal_tasks: set[asyncio.Task[ReloadResult | None]] = set()
        self._signals: list[signal.Signals] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="config-reload")

    def install_sighup(self) -> bool:
        """Reload on SIGHUP (False where signals cannot be handled, e.g. off the main thread)."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):
            return False
        self._signals.append(signal.SIGHUP)
        return True

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        self._signals = []
        tasks = [t for t in (self._task, *self._signal_tasks) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _on_sighup(self) -> None:
        logger.info("SIGHUP: reloading %s", self.path)
        task = asyncio.create_task(self.reload(force=True), name="config-reload-sighup")
        self._signal_tasks.add(task)
        task.add_done_callback(self._signal_tasks.discard)

    async def _poll(self) -> None:
        while True:
            await self.sleep(self.interval)
            try:
                await self.reload()
            except Exception:
                logger.exception("checking %s for changes failed; trying again", self.path)

    # -- one reload -----------------------------------------------------------------------------

    async def reload(self, force: bool = False) -> ReloadResult | None:
        """Check the file; if it changed (or `force`), apply or refuse it. None: unchanged."""
        async with self._busy:
            current = fingerprint(self.path)
            if not force and current == self.seen:
                return None
            if current is None and not force:
                # Gone for a moment (an editor's save, a ConfigMap update): look again later.
                return None
            self.seen = current
            try:
                loaded = check_config_file(self.path)
            except ConfigError as exc:
                return await self._refuse([str(issue) for issue in exc.errors])
            for warning in loaded.warnings:
                logger.warning("%s", warning)
            config = loaded.config if self.adjust is None else self.adjust(loaded.config)
            refusals = self._check(config)
            if refusals:
                return await self._refuse([f"{self.path}: {r}" for r in refusals])
            try:
                result = await self._apply(config)
            except ReceiverBuildError as exc:
                return await self._refuse([f"{self.path}: receivers: {exc}"])
            await self._audit(RELOADED, _applied_detail(self.path, config, result))
            self.reloads += 1
            logger.info(
                "config %s reloaded: %d routes, receivers added %s, removed %s, changed %s",
                self.path,
                len(config.routes),
                list(result.added) or "none",
                list(result.removed) or "none",
                list(result.changed) or "none",
            )
            for section in result.restart_needed:
                logger.warning(
                    "config %s: %s changed; that takes effect at the next restart",
                    self.path,
                    section,
                )
            await self._tell(config)
            return result

    def _check(self, config: Config) -> list[str]:
        refusals = []
        for check in self.checks:
            try:
                check(config)
            except ValueError as exc:
                refusals.append(str(exc))
        return refusals

    async def _refuse(self, errors: list[str]) -> ReloadResult:
        self.rejections += 1
        logger.error(
            "config %s refused (%d errors); the config in force stays", self.path, len(errors)
        )
        for error in errors:
            logger.error("%s", error)
        await self._audit(REJECTED, {"file": str(self.path), "errors": errors})
        return ReloadResult(applied=False, errors=tuple(errors))

    async def _apply(self, new: Config) -> ReloadResult:
        """Swap `new` in through the gate; receivers rebuilt only where they changed."""
        old, added, removed, changed = await self.gate.reconfigure(lambda: self._swap(new))
        restart = tuple(s for s in RESTART_ONLY if _value(old, s) != _value(new, s))
        return ReloadResult(
            applied=True,
            added=tuple(added),
            removed=tuple(removed),
            changed=tuple(changed),
            restart_needed=restart,
        )

    async def _swap(self, new: Config) -> tuple[Config, list[str], list[str], list[str]]:
        """Put `new` and its receivers in place of the config in force: that config, and the
        receivers added, removed and changed."""
        old = self.pipeline.config
        held = self.pipeline.receivers
        before = {r.name: r for r in old.receivers}
        after = {r.name: r for r in new.receivers}
        kept = [n for n, r in after.items() if before.get(n) == r and n in held]
        removed = [n for n in before if n not in after]
        changed = [n for n in after if n in before and before[n] != after[n]]
        added = [n for n in after if n not in before]
        rebuild = [n for n in after if n not in kept]
        retiring = [held[n] for n in (*removed, *changed) if n in held]
        for receiver in retiring:
            await _close(receiver)
        try:
            fresh = dict(self.build(_with_receivers(new, rebuild))) if rebuild else {}
        except Exception as exc:
            restore = [n for n in (*removed, *changed) if n in held]
            back = dict(self.build(_with_receivers(old, restore))) if restore else {}
            self.pipeline.reconfigure(old, {**held, **back})
            raise ReceiverBuildError(str(exc) or type(exc).__name__) from exc
        receivers = {n: held[n] for n in kept}
        receivers.update(fresh)
        self.pipeline.reconfigure(new, receivers)
        await self.pipeline.close_gone(self.clock())
        return old, added, removed, changed

    async def _tell(self, config: Config) -> None:
        for listener in self.listeners:
            try:
                outcome = listener(config)
                if outcome is not None:
                    await outcome
            except Exception:
                logger.exception("a part of the service could not take the reloaded config")

    async def _audit(self, action: str, detail: Mapping[str, Any]) -> None:
        try:
            await self.pipeline.store.audit(ACTOR, action, None, detail, at=self.clock())
        except Exception:
            logger.exception("could not record %s in the audit log", action)


def _value(config: Config, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _with_receivers(config: Config, names: list[str]) -> Config:
    keep = set(names)
    return config.model_copy(
        update={"receivers": tuple(r for r in config.receivers if r.name in keep)}
    )


async def _close(receiver: Receiver) -> None:
    try:
        await receiver.close()
    except Exception:
        logger.exception("closing receiver %r failed", getattr(receiver, "name", "?"))


def _applied_detail(path: Path, config: Config, result: ReloadResult) -> dict[str, Any]:
    return {
        "file": str(path),
        "routes": len(config.routes),
        "receivers": [r.name for r in config.receivers],
        "added": list(result.added),
        "removed": list(result.removed),
        "changed": list(result.changed),
        "digests": len(config.digests),
        "restart_needed": list(result.restart_needed),
    }
