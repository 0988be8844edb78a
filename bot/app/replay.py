"""`driftbot replay` and `driftbot demo`: a recorded stream through the whole pipeline.

The clock is each line's `at`. Bad lines are reported with their number on stderr and skipped;
the run goes on. At the end of the stream, problems still within their grace are taken to
persist and are announced.

Lines are read as `driftbot run` reads a watch: decoded from bytes into the typed views
(`watchers.decode.recorded`), and an update that changes nothing the pipeline reads (Argo CD's
refresh, Flux's reconcile) stops before it (`UnchangedLines`, the watchers' fast path); what is
written out is what the full parse of every line wrote.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.app.errors import CliError
from bot.delivery.receivers import ConsoleReceiver, Receiver
from bot.delivery.retry import RetryPolicy, RetryStage
from bot.pipeline.outcome import STALE, Outcome, Taken
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from bot.store.write_behind import WriteBehindStore
from config.schema import Config
from watchers.decode.base import ObjectView, as_mapping
from watchers.decode.events import Event
from watchers.decode.lines import identity
from watchers.decode.recorded import read_recorded
from watchers.decode.unchanged import HeldViews
from watchers.normalize import Rejected, normalize_object
from watchers.replay import ReplayError, ReplayLine, read_replay

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.delivery.slack_sender import SlackSender
    from bot.delivery.teams_receiver import TeamsOptions

logger = logging.getLogger(__name__)

__all__ = [
    "CliError",
    "ReplaySummary",
    "UnchangedLines",
    "build_receivers",
    "replay_file",
    "replay_lines",
]


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    lines: int
    skipped: int
    sent: int
    unchanged: int = 0
    """Updates that changed nothing the pipeline reads, not handed to it."""


@dataclass(frozen=True)
class SlackOptions:
    """How Slack receivers get their time and their network; the defaults are real ones.

    `monotonic`/`sleep` pace and wait (rate limits, Retry-After, backoff); `clock` stamps the
    outbox. Tests pass a virtual clock for all three.
    """

    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    timeout: float = 30.0
    close_timeout: float | None = 20.0
    """Seconds `close()` keeps sending before it leaves the rest queued for the next start;
    None: until nothing more can be sent now (what replay uses)."""
    retry: RetryPolicy | None = None
    """The one retry policy of every Slack receiver's chain (default `RetryPolicy()`)."""


def build_receivers(
    config: Config,
    output: str | None,
    stream: TextIO | None = None,
    *,
    store: Store | None = None,
    environ: Mapping[str, str] | None = None,
    slack: SlackOptions | None = None,
    teams: TeamsOptions | None = None,
) -> dict[str, Receiver]:
    """Receivers named in the config. `output` (text|jsonl), when given, sets the format of
    every console receiver.

    Slack receivers need `store` (their outbox) and the bot token in `SLACK_BOT_TOKEN` (from
    `environ`, default the process environment); they share one sender, so one rate limit, per
    workspace, and post to `slack.api_url`. Without a store they are skipped with a warning.
    Teams receivers too need `store`; their webhook URLs are read from `environ` or files.
    """
    env = os.environ if environ is None else environ
    # Slack's and Teams' modules (slack_sdk, the outbox workers) load only when a receiver of
    # theirs is configured: a console-only service never imports them.
    receivers: dict[str, Receiver] = {}
    teams_receivers: dict[str, Receiver] | None = None
    sender: SlackSender | None = None
    client: AsyncWebClient | None = None
    options = slack or SlackOptions()
    for rc in config.receivers:
        if rc.console is not None:
            fmt = output or rc.console.format
            receivers[rc.name] = ConsoleReceiver(rc.name, fmt, stream)
        elif rc.slack is not None and store is not None:
            from bot.delivery.rate_limit import RateLimiter
            from bot.delivery.slack_receiver import SlackReceiver
            from bot.delivery.slack_sender import SlackSender, keep_alive_session, make_client

            if sender is None or client is None:
                token = env.get("SLACK_BOT_TOKEN", "").strip()
                if not token:
                    raise CliError(
                        f"receiver {rc.name!r} posts to Slack: set SLACK_BOT_TOKEN to the bot "
                        "token (xoxb-...)"
                    )
                session = keep_alive_session(options.timeout)
                client = make_client(
                    token, config.slack.api_url, timeout=options.timeout, session=session
                )
                limiter = RateLimiter(clock=options.monotonic, sleep=options.sleep)
                retry = RetryStage("slack", limiter, sleep=options.sleep, policy=options.retry)
                sender = SlackSender(client, retry, session=session)
            receiver = SlackReceiver(
                rc.name,
                rc.slack.channel,
                sender,
                store,
                client=client,
                clock=options.clock,
                sleep=options.sleep,
                retry=options.retry,
                close_timeout=options.close_timeout,
                actions=config.actions.enabled,
                public_url=config.server.page_url,
            )
            receiver.start()  # what an earlier run left in the outbox goes out first
            receivers[rc.name] = receiver
        elif rc.teams is not None and store is not None:
            from bot.delivery.teams_receiver import TeamsReceiver, build_teams_receivers
            from bot.delivery.teams_sender import TeamsConfigError

            if teams_receivers is None:
                try:
                    teams_receivers = build_teams_receivers(config, store, env, teams)
                except TeamsConfigError as exc:
                    raise CliError(str(exc)) from None
            card_receiver = teams_receivers[rc.name]
            if isinstance(card_receiver, TeamsReceiver):
                card_receiver.start()  # what an earlier run left in the outbox goes out first
            receivers[rc.name] = card_receiver
        else:
            logger.warning(
                "receiver %r (%s) cannot be delivered to by this build; its notifications "
                "are skipped",
                rc.name,
                rc.type,
            )
    return receivers


class UnchangedLines:
    """The watchers' "nothing relevant changed" fast path (`HeldViews`), for recorded lines.

    A MODIFIED line whose object's relevant view is the one the pipeline holds is not handed
    to it (only time is let pass to the line's): the pipeline would have made the same app
    state of it but for its time, and detected nothing. One thing of it would have stayed: the
    app state's time, against which the pipeline calls a later line stale (older than the
    state it holds). So the time of each such line is kept, and a later line of the object
    older than it is called stale here, as the pipeline would have called it. Events (hints,
    not states) always go through."""

    def __init__(self) -> None:
        self._held: dict[str, HeldViews] = {}
        self._moved: dict[tuple[str, tuple[str, str, str]], datetime] = {}
        """(cluster, object) -> the latest time of its lines not handed on since the last."""

    @property
    def skipped(self) -> int:
        """Lines not handed to the pipeline because nothing relevant changed."""
        return sum(views.skipped for views in self._held.values())

    async def observe(self, pipeline: Pipeline, line: ReplayLine) -> Taken | None:
        """What became of `line` in the pipeline; None when it was not handed on."""
        obj, cluster = line.payload, line.cluster
        if not isinstance(obj, ObjectView):
            return await pipeline.observe(obj, cluster, line.type, line.at)
        if isinstance(obj, Event):
            return await pipeline.observe(as_mapping(obj), cluster, line.type, line.at)
        views = self._held.get(cluster)
        if views is None:
            views = self._held[cluster] = HeldViews()
        change = views.change(line.type, obj)
        if change is None:
            await pipeline.advance(line.at)
            kind, namespace, name, _ = identity(obj)
            moved = (cluster, (kind, namespace, name))
            last = self._moved.get(moved)
            if last is None or last < line.at:
                self._moved[moved] = line.at
            return None
        moved = (cluster, change.key)
        last = self._moved.get(moved)
        if last is not None and line.at < last:
            views.settle(change, taken=False)
            if not isinstance(normalize_object(change.obj, cluster, line.at), Rejected):
                await pipeline.advance(line.at)
                return STALE
            # the pipeline rejects it before it looks at times: let it say so
        taken = await pipeline.observe(change.obj, cluster, line.type, line.at)
        views.settle(change, taken=taken.outcome is Outcome.OBSERVED)
        if taken.outcome is Outcome.OBSERVED:
            self._moved.pop(moved, None)
        return taken


async def replay_lines(
    lines: Iterable[str | bytes], source: str, pipeline: Pipeline, *, typed: bool = True
) -> ReplaySummary:
    """Feed recorded lines through `pipeline`; bad lines are logged with `source:line`.

    `typed`: lines decoded into the typed views, updates that change nothing relevant stopped
    before the pipeline (see the module docstring); False: every line parsed in full and
    handed on, as before the views (the same output; tests compare the two).

    With a write-behind store (what `replay_stream` opens, as `driftbot run` does), app states
    and the policy state are written in batches, and a line that sent something is followed by
    a flush, as in `run`: a notification is committed with the policy state that says it was
    sent, so a replay killed and run again never announces it twice."""
    count = skipped = 0
    before = pipeline.stats["sent"]
    store = pipeline.store
    behind = store if isinstance(store, WriteBehindStore) else None
    unchanged = UnchangedLines()
    for item in read_recorded(lines) if typed else read_replay(lines):
        count += 1
        if isinstance(item, ReplayError):
            skipped += 1
            logger.warning("%s:%d: %s; line skipped", source, item.lineno, item.reason)
            continue
        sent = pipeline.stats["sent"] + pipeline.stats["reminded"]
        taken: Taken | None
        if item.type == "NOTIFICATION":
            taken = await pipeline.notify(item.payload, item.cluster, item.at)
        elif typed:
            taken = await unchanged.observe(pipeline, item)
        else:
            taken = await pipeline.observe(item.payload, item.cluster, item.type, item.at)
        if taken is not None and taken.rejected:
            skipped += 1
            logger.warning("%s:%d: %s; line skipped", source, item.lineno, taken)
        if behind is not None and pipeline.stats["sent"] + pipeline.stats["reminded"] != sent:
            await behind.flush()
    await pipeline.finish()
    return ReplaySummary(count, skipped, pipeline.stats["sent"] - before, unchanged.skipped)


def replay_file(
    path: Path,
    config: Config,
    state_path: Path,
    output: str | None,
    stream: TextIO | None = None,
) -> ReplaySummary:
    """Replay the recorded stream in `path` with the store at `state_path` (runs its own loop)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        return asyncio.run(replay_stream(handle, str(path), config, state_path, output, stream))


async def replay_stream(
    lines: Iterable[str | bytes],
    source: str,
    config: Config,
    state_path: Path,
    output: str | None,
    stream: TextIO | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    slack: SlackOptions | None = None,
    teams: TeamsOptions | None = None,
) -> ReplaySummary:
    """Replay `lines` with the store at `state_path`, delivering to every receiver of `config`
    (Slack and Teams included); returns once what could be sent is sent."""
    if teams is None and any(rc.teams is not None for rc in config.receivers):
        from bot.delivery.teams_receiver import TeamsOptions

        teams = TeamsOptions(close_timeout=None)
    store = await WriteBehindStore.open(state_path)
    try:
        receivers = build_receivers(
            config,
            output,
            stream,
            store=store,
            environ=environ,
            slack=slack or SlackOptions(close_timeout=None),
            teams=teams,
        )
        pipeline = Pipeline(store, config, receivers)
        await pipeline.load()
        try:
            return await replay_lines(lines, source, pipeline)
        finally:
            await pipeline.close()
    finally:
        await store.close()
