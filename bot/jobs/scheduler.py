"""The service's clockwork, on APScheduler's AsyncIOScheduler: named jobs that let time pass.

- `policy-tick` (every ~10 s, unless the caller already lets time pass in the pipeline): the
  pipeline's `advance(now)`, where the policy releases problems whose grace ran out, sends
  groups that are due and decides reminders; this module decides nothing about alerts itself;
- `mute-expiry` (every minute): expired mutes are dropped from the policy state (and audited);
  nothing is announced;
- `resync` (every 10 min, when the service gives a hook): a full re-list of the sources, for
  streams that may have dropped events;
- `digest:<name>`: one job per `digests[]` entry, on its cron schedule in its time zone.

Digest schedules are standard five-field cron, which differs from APScheduler 3 twice: day of
week counts from Sunday = 0 (and 7) where APScheduler counts from Monday = 0, and when both day
of month and day of week are restricted cron fires on either (APScheduler on both).
`cron_trigger` translates both.

Every job is guarded: an error is logged with the job's name and counted in `errors`, and the
job runs again at its next time. `shutdown()` stops the scheduler and lets jobs still running
finish. Job bodies are `run_job(name)`, which tests call directly on virtual time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.jobs.digest import digest_name, run_digest
from bot.pipeline.gate import PipelineGate
from config.cron import cron_fields
from config.schema import DigestConfig
from core.mutes import Mute
from core.policy import PolicyState

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

TICK = "policy-tick"
MUTES = "mute-expiry"
RESYNC = "resync"
DIGEST_PREFIX = "digest:"

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
"""Standard cron day-of-week names by number (0 = Sunday; 7 is Sunday too)."""
_APS_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""APScheduler 3's day-of-week order (0 = Monday)."""
_ITEM = re.compile(r"(?P<range>\*|(?P<a>\w+)(?:-(?P<b>\w+))?)(?:/(?P<step>\d+))?")


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- cron, translated ----------------------------------------------------------------------------


def _day_number(token: str) -> int:
    lowered = token.lower()
    if lowered in _CRON_DAYS:
        return _CRON_DAYS.index(lowered)
    return int(token)


def cron_days(field: str) -> set[int]:
    """The days (0 = Sunday … 6 = Saturday) a standard cron day-of-week field names."""
    days: set[int] = set()
    for item in field.split(","):
        found = _ITEM.fullmatch(item)
        if found is None:
            raise ValueError(f"bad day of week {item!r}")
        step = int(found["step"] or 1)
        if found["a"] is None:
            start, end = 0, 6
        else:
            start = _day_number(found["a"])
            end = _day_number(found["b"]) if found["b"] else (7 if found["step"] else start)
        days.update(n % 7 for n in range(start, end + 1, step))
    return days


def aps_day_of_week(field: str) -> str:
    """A standard cron day-of-week field as APScheduler 3 reads it: `1-5` -> `mon,tue,wed,thu,
    fri`, `0` and `7` -> `sun`; `*` stays `*`."""
    if field == "*":
        return "*"
    days = cron_days(field)
    return ",".join(name for name in _APS_DAYS if _CRON_DAYS.index(name) in days)


def cron_trigger(expression: str, timezone: str = "UTC") -> BaseTrigger:
    """The trigger of a five-field cron schedule in `timezone` (checked with check_cron)."""
    fields = cron_fields(expression)
    zone = ZoneInfo(timezone)
    common = {
        "minute": fields["minute"],
        "hour": fields["hour"],
        "month": fields["month"],
        "second": "0",
        "timezone": zone,
    }
    day, dow = fields["day"], fields["day_of_week"]
    if day.startswith("*") or dow.startswith("*"):
        # As in cron: a field starting with * does not restrict; the other one does alone.
        return CronTrigger(day=day, day_of_week=aps_day_of_week(dow), **common)
    return OrTrigger(
        [
            CronTrigger(day=day, day_of_week="*", **common),
            CronTrigger(day="*", day_of_week=aps_day_of_week(dow), **common),
        ]
    )


def previous_fire_time(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The trigger's last time at or before `now`, looking back up to a year; None if none."""
    for back in (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=366)):
        start = now - back
        last: datetime | None = None
        fire = trigger.get_next_fire_time(None, start)
        while fire is not None and fire <= now:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if last is not None:
            return last
    return None


def period_start(trigger: BaseTrigger, now: datetime) -> datetime:
    """Where a digest run at `now` starts when no earlier run is recorded: the schedule's time
    before the one being run now (a day before `now` if there is none)."""
    current = previous_fire_time(trigger, now)
    earlier = None if current is None else previous_fire_time(trigger, current - _INSTANT)
    return earlier or now - timedelta(days=1)


_INSTANT = timedelta(microseconds=1)


# --- mutes ---------------------------------------------------------------------------------------


def drop_expired_mutes(state: PolicyState, now: datetime) -> tuple[PolicyState, list[Mute]]:
    """`state` without the mutes that have ended by `now`, and those mutes (pure)."""
    expired = [m for m in state.mutes.values() if not m.active(now)]
    if not expired:
        return state, []
    mutes = state.mutes.remove(*(m.target for m in expired))
    return dataclasses.replace(state, mutes=mutes), expired


def pipeline_hooks(
    gate: PipelineGate, resync: Callable[[], Awaitable[None]] | None = None
) -> Hooks:
    """The jobs' hooks for the pipeline behind `gate`: the clock and the expiry of mutes go
    through it, so a job never interleaves with an observation."""
    pipeline = gate.pipeline
    store = pipeline.store

    async def expire_mutes(now: datetime) -> int:
        expired = await gate.change_policy(lambda state: drop_expired_mutes(state, now))
        for mute in expired:
            detail = {
                "target": mute.target,
                "until": mute.until.isoformat(),
                "reason": mute.reason,
                "muted_by": mute.who,
            }
            await store.audit("driftbot", "mute_expired", None, detail, at=now)
        return len(expired)

    async def digest(config: DigestConfig, name: str, now: datetime, since: datetime) -> object:
        return await run_digest(store, pipeline, pipeline.receivers, config, name, now, since)

    return Hooks(gate.advance, expire_mutes, digest, resync)


# --- the scheduler -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hooks:
    """What the jobs do, given by the service.

    `advance(now)`: the pipeline's clock (through its gate); `expire_mutes(now)`: drop ended
    mutes, returns how many; `run_digest(config, name, now, first_since)`: gather, deliver and
    record one digest; `resync()`: re-list every source (None: no resync job).
    """

    advance: Callable[[datetime], Awaitable[None]]
    expire_mutes: Callable[[datetime], Awaitable[int]]
    run_digest: Callable[[DigestConfig, str, datetime, datetime], Awaitable[object]]
    resync: Callable[[], Awaitable[None]] | None = None


class Scheduler:
    """The named jobs on an AsyncIOScheduler; `start(digests)`, `set_digests`, `shutdown`."""

    def __init__(
        self,
        hooks: Hooks,
        *,
        clock: Clock = _utc_now,
        tick_seconds: float | None = 10.0,
        mute_seconds: float = 60.0,
        resync_seconds: float = 600.0,
    ) -> None:
        self.hooks = hooks
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.mute_seconds = mute_seconds
        self.resync_seconds = resync_seconds
        self.aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        self.runs: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        """Failed runs per job name."""
        self._digests: dict[str, tuple[DigestConfig, BaseTrigger]] = {}
        self._running: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, digests: Sequence[DigestConfig] = ()) -> None:
        """Add the jobs and start (in the running event loop)."""
        if self.tick_seconds is not None:
            self._every(TICK, self.tick_seconds)
        self._every(MUTES, self.mute_seconds)
        if self.hooks.resync is not None:
            self._every(RESYNC, self.resync_seconds)
        self.set_digests(digests)
        if not self.aps.running:
            self.aps.start()

    def set_digests(self, digests: Sequence[DigestConfig]) -> None:
        """Replace the digest jobs with those of `digests` (a config reload)."""
        for name in list(self._digests):
            job = self.aps.get_job(DIGEST_PREFIX + name)
            if job is not None:
                job.remove()
        self._digests = {}
        for index, config in enumerate(digests):
            name = digest_name(config, index)
            trigger = cron_trigger(config.schedule, config.timezone)
            self._digests[name] = (config, trigger)
            self.aps.add_job(
                self.run_job,
                trigger,
                args=[DIGEST_PREFIX + name],
                id=DIGEST_PREFIX + name,
                name=DIGEST_PREFIX + name,
                replace_existing=True,
            )

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop firing jobs and let those running finish (cancelled after `grace` seconds: a
        job cancelled in the middle of a store write would leave it half done)."""
        if self.aps.running:
            self.aps.shutdown(wait=False)
            # AsyncIOScheduler stops in a callback of the loop: let it run.
            await asyncio.sleep(0)
        running, self._running = set(self._running), set()
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    def _every(self, name: str, seconds: float) -> None:
        self.aps.add_job(
            self.run_job,
            IntervalTrigger(seconds=seconds, timezone=UTC),
            args=[name],
            id=name,
            name=name,
            replace_existing=True,
        )

    # -- for /metrics and tests -----------------------------------------------------------------

    def jobs(self) -> dict[str, Job]:
        return {job.id: job for job in self.aps.get_jobs()}

    def trigger_of(self, digest: str) -> BaseTrigger:
        return self._digests[digest][1]

    # -- the jobs -------------------------------------------------------------------------------

    async def run_job(self, name: str) -> bool:
        """Run the job `name` once at the clock's now; False (logged, counted) if it failed."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        now = self.clock()
        try:
            await self._run(name, now)
        except Exception:
            self.errors[name] += 1
            logger.exception("scheduled job %s failed; it runs again at its next time", name)
            return False
        finally:
            if task is not None:
                self._running.discard(task)
        self.runs[name] += 1
        return True

    async def _run(self, name: str, now: datetime) -> None:
        if name == TICK:
            await self.hooks.advance(now)
        elif name == MUTES:
            count = await self.hooks.expire_mutes(now)
            if count:
                logger.info("%d mutes expired", count)
        elif name == RESYNC:
            if self.hooks.resync is not None:
                await self.hooks.resync()
        elif name.startswith(DIGEST_PREFIX):
            digest = name.removeprefix(DIGEST_PREFIX)
            config, trigger = self._digests[digest]
            await self.hooks.run_digest(config, digest, now, period_start(trigger, now))
        else:
            raise LookupError(f"no scheduled job named {name!r}")
