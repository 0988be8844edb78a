"""Which events go where, and how quietly: route matches, quiet hours, the routes, the alert
policy's defaults and flap damping, and the scheduled digests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field

from config.cron import check_cron
from config.schema.fields import (
    WEEKDAYS,
    ClockTime,
    Duration,
    Glob,
    Globs,
    Kind,
    Level,
    Name,
    Strict,
    Text,
    TimeZone,
    Tools,
    Weekday,
)
from core.grouping import GroupField
from core.model import Severity


class Match(Strict):
    """All given conditions must hold; a condition left out matches anything."""

    tool: Tools | None = None
    cluster: Globs | None = None
    namespace: Globs | None = None
    """The namespace of the object itself (an Argo CD Application's is usually `argocd`)."""
    destination_namespace: Globs | None = None
    """The namespace the app deploys into: an Argo CD Application's spec.destination.namespace;
    for Flux, spec.targetNamespace, else the object's own namespace."""
    object_kind: Globs | None = None
    """The kind of the watched object: `Application`, `Kustomization`, `HelmRelease`, ..."""
    name: Globs | None = None
    destination_cluster: Globs | None = None
    """Where an Argo CD app deploys: spec.destination.name, else its server URL; `in-cluster`
    for the cluster Argo CD runs in (and for every Flux object)."""
    source: Globs | None = None
    """The name of the Flux source an object reads (its own name for a source kind)."""
    labels: dict[str, Glob] | None = None
    annotations: dict[str, Glob] | None = None
    project: Globs | None = None
    kinds: tuple[Kind, ...] | None = None
    min_severity: Level | None = None


class QuietHours(Strict):
    """A daily window in which only events at or above `min_severity` are sent right away."""

    start: ClockTime
    end: ClockTime
    timezone: TimeZone = "UTC"
    days: tuple[Weekday, ...] | None = None
    """Days on which the window starts; all days when left out."""
    min_severity: Level = Severity.CRITICAL

    def active(self, now: datetime) -> bool:
        """Is `now` (timezone-aware) inside the window? Decides only; the clock is passed in.

        A window that crosses midnight (22:00-07:00) belongs to the day it starts on; a window
        whose start equals its end lasts the whole day.
        """
        if now.tzinfo is None:
            raise ValueError("quiet hours need a timezone-aware time")
        local = now.astimezone(ZoneInfo(self.timezone))
        clock = local.time().replace(tzinfo=None)
        day = local.weekday()
        if self.start == self.end:
            inside = True
        elif self.start < self.end:
            inside = self.start <= clock < self.end
        elif clock >= self.start:
            inside = True
        elif clock < self.end:
            inside, day = True, (day - 1) % 7
        else:
            inside = False
        return inside and (self.days is None or WEEKDAYS[day] in self.days)


class RouteConfig(Strict):
    """A rule: events that pass `match` go to `receivers`, with this route's policy settings."""

    match: Match | None = None
    receivers: tuple[Name, ...]
    """Receiver names; an empty list drops the matched events (and stops matching)."""
    mention: tuple[Text, ...] = ()
    continue_: bool = Field(False, alias="continue")
    grace: Duration | None = None
    group_by: tuple[GroupField, ...] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat: Duration | None = None
    quiet_hours: QuietHours | None = None
    name: Name | None = None
    """How explain, chat and the audit log name the route; `routes[N]` (its place) if unset."""


class FlapPolicy(Strict):
    """An app that changes state more than `flips` times within `window` is reported once as
    flapping; `flips: 0` turns damping off."""

    flips: Annotated[int, Field(ge=0)] = 4
    window: Duration = timedelta(minutes=15)


class PolicyConfig(Strict):
    grace: Duration = timedelta(seconds=60)
    group_by: tuple[GroupField, ...] = ("cluster", "kind")
    group_wait: Duration = timedelta(seconds=30)
    group_interval: Duration = timedelta(minutes=5)
    repeat: Duration = timedelta(hours=4)
    """Reminder interval for unresolved problems; 0 = no reminders."""
    quiet_hours: QuietHours | None = None
    flap: FlapPolicy = FlapPolicy()


class DigestConfig(Strict):
    """A scheduled summary: what happened since the last digest and what is still open."""

    name: Name | None = None
    receivers: Annotated[tuple[Name, ...], Field(min_length=1)]
    schedule: Annotated[str, AfterValidator(check_cron)]
    timezone: TimeZone = "UTC"
    match: Match | None = None


class RoutingConfig(Strict):
    """Routing at run time from annotations on the watched objects (opt-in)."""

    annotations: bool = False
    """Argo CD Notifications' `subscribe` annotations (of an Application and its AppProject)
    and driftbot's `driftbot.dev/notify` add routes for their app."""
    allow: tuple[Text, ...] = ()
    """Where annotations may send: `slack:<channel>`, `teams:<receiver>`, `<receiver>`."""
    default_triggers: tuple[Text, ...] = ()
    """The Argo CD triggers of a `subscribe.<service>` annotation that names none (as the
    ConfigMap's `defaultTriggers`); empty: such a subscription sends nothing, as in Argo CD."""
