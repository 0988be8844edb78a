"""What `/metrics` serves: every family driftbot exports, all named `driftbot_*`.

Two kinds of families live here:

- read at scrape time (`ServiceCollector`): counters the service's parts already keep (the
  pipeline's detections and policy decisions, each watch's lists and reconnects, the Flux
  webhook, the store's failures) and the outbox depth per receiver, read from the store just
  before a scrape (`ServiceCollector.refresh`), so nothing is counted twice;
- counted where it happens (`DeliveryMetrics`, one per process, `METRICS`): what the chat
  senders see (sent, failed, 429s, per receiver), the end-to-end delivery latency and
  whether this instance leads.

Labels are bounded and never secret: cluster, receiver name, event kind, tool, reason,
resource, outcome; never an app name, a URL or a token.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.policy import Action

__all__ = [
    "LATENCY_BUCKETS",
    "METRICS",
    "DeliveryMetrics",
    "ServiceCollector",
]

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Seconds from a change seen to its message accepted: grace windows (60 s by default) and
group waits are part of it, so the buckets reach an hour."""

MAX_PENDING_CHANGES = 20_000
"""Notifications whose observation time is kept until their delivery (the oldest go first)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeliveryMetrics(Collector):
    """Counted by the chat senders as they work; one instance per process (`METRICS`).

    `changes_seen` is told, when a notification is handed to the receivers, when the change
    it tells of was observed; `accepted` observes the latency when the chat service takes it.
    """

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self.clock = clock
        self.sent = Counter(
            "driftbot_notifications_sent",
            "Messages the chat service accepted, per receiver",
            ["receiver"],
            registry=None,
        )
        self.failed = Counter(
            "driftbot_notifications_failed",
            "Messages not delivered, per receiver: fatal (refused for good) or not (kept and "
            "tried again later)",
            ["receiver", "fatal"],
            registry=None,
        )
        self.rate_limited = Counter(
            "driftbot_rate_limited",
            "HTTP 429 answers waited out, per chat service and receiver",
            ["service", "receiver"],
            registry=None,
        )
        self.latency = Histogram(
            "driftbot_delivery_latency_seconds",
            "Seconds from a change observed to its message accepted by Slack or Teams",
            ["receiver"],
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.leader = Gauge(
            "driftbot_leader",
            "1 while this instance does the work (leads, or runs without leader election)",
            registry=None,
        )
        self.leader.set(1)
        self._seen: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        """(receiver, notification id) -> when the change it tells of was observed."""

    def collect(self) -> Iterator[Metric]:
        for family in (self.sent, self.failed, self.rate_limited, self.latency, self.leader):
            yield from family.collect()

    def set_leader(self, leading: bool) -> None:
        """For leader election: 1 while this instance leads, 0 while it stands by."""
        self.leader.set(1 if leading else 0)

    def changes_seen(
        self, receivers: Iterable[str], notifications: Iterable[str], observed_at: datetime
    ) -> None:
        """Notifications (ids as the receivers plan them) for `receivers`, telling of a change
        observed at `observed_at`; the first acceptance of each, per receiver, is timed."""
        names = list(receivers)
        for notification in notifications:
            for receiver in names:
                key = (receiver, notification)
                if notification and key not in self._seen:
                    self._seen[key] = observed_at
        while len(self._seen) > MAX_PENDING_CHANGES:
            self._seen.popitem(last=False)

    def accepted(self, service: str, receiver: str, notification: str | None = None) -> None:
        """A message of `receiver` was accepted by `service` (slack|teams)."""
        self.sent.labels(receiver).inc()
        observed = self._seen.pop((receiver, notification), None) if notification else None
        if observed is not None:
            seconds = (self.clock() - observed).total_seconds()
            self.latency.labels(receiver).observe(max(0.0, seconds))

    def refused(self, receiver: str, *, fatal: bool) -> None:
        self.failed.labels(receiver, "true" if fatal else "false").inc()

    def throttled(self, service: str, receiver: str) -> None:
        """A 429 from `service` (slack|teams) for `receiver`."""
        self.rate_limited.labels(service, receiver).inc()


METRICS = DeliveryMetrics()
"""The process's delivery metrics: the senders count here unless given another instance."""


class _Counters(Protocol):
    relists: int
    reconnects: int
    events: int
    errors: int


class ServiceCollector(Collector):
    """Families read from the running service at scrape time (see the module docstring).

    `service` is a `bot.app.service.Service`, `webhook` a `bot.inbound.flux.FluxWebhook`; both
    are read through their attributes only, so this module imports neither.
    """

    def __init__(self, service: Any, webhook: Any = None) -> None:
        self._service = service
        self._webhook = webhook
        self.depths: dict[str, int] = {}
        """Pending outbox items per receiver, as of the last `refresh`."""

    async def refresh(self) -> None:
        """Read the outbox depth per receiver in one query (`Store.outbox_depths`, which counts
        what a store outage keeps in memory too): every receiver that has an outbox (Slack,
        Teams) is shown, 0 when nothing waits, and so is any other receiver with messages
        waiting (one removed from the config, whose messages wait for its return)."""
        pipeline = self._service.pipeline
        depths = {
            name: 0
            for name, receiver in pipeline.receivers.items()
            if getattr(receiver, "worker", None) is not None
        }
        try:
            depths.update(await pipeline.store.outbox_depths())
        except Exception:
            logger.exception("reading the outbox depth for /metrics failed")
            return
        self.depths = depths

    def collect(self) -> Iterator[Metric]:
        pipeline = self._service.pipeline
        stats = pipeline.stats

        events = CounterMetricFamily(
            "driftbot_events", "GitOps events detected", labels=["kind", "tool"]
        )
        for (kind, tool), count in sorted(pipeline.detected.items()):
            events.add_metric([kind, tool], count)
        yield events

        yield CounterMetricFamily(
            "driftbot_notifications",
            "Notifications the policy decided to send (each to every receiver of its route)",
            value=stats["sent"],
        )
        yield CounterMetricFamily(
            "driftbot_reminders", "Reminders of open problems sent", value=stats["reminded"]
        )
        yield CounterMetricFamily(
            "driftbot_rejected", "Inputs the normalizers refused", value=stats["rejected"]
        )
        suppressions = CounterMetricFamily(
            "driftbot_suppressions", "Events the policy kept quiet, by reason", labels=["reason"]
        )
        held = CounterMetricFamily(
            "driftbot_holds", "Events the policy held back, by reason", labels=["reason"]
        )
        families = {Action.SUPPRESS: suppressions, Action.HOLD: held}
        for (action, reason), count in sorted(pipeline.decided.items()):
            family = families.get(action)
            if family is not None:
                family.add_metric([reason.value], count)
        yield suppressions
        yield held

        yield from self._watches()

        depth = GaugeMetricFamily(
            "driftbot_outbox_depth",
            "Messages waiting in the outbox, per receiver (as of this scrape)",
            labels=["receiver"],
        )
        for name, count in sorted(self.depths.items()):
            depth.add_metric([name], count)
        yield depth

        failures = getattr(pipeline.store, "store_failures", None)
        store_errors = CounterMetricFamily(
            "driftbot_store_errors",
            "Reads and writes of the state store that failed (the store's `store_failures`)",
        )
        store_errors.add_metric([], failures if isinstance(failures, int | float) else 0)
        yield store_errors

        if self._webhook is not None:
            webhooks = CounterMetricFamily(
                "driftbot_flux_webhooks", "Flux webhook requests", labels=["outcome"]
            )
            webhooks.add_metric(["accepted"], self._webhook.accepted)
            webhooks.add_metric(["refused"], self._webhook.refused)
            yield webhooks

    def _watches(self) -> Iterator[Metric]:
        names = ["cluster", "resource"]
        relists = CounterMetricFamily(
            "driftbot_watch_relists", "Relists after the first", labels=names
        )
        reconnects = CounterMetricFamily(
            "driftbot_watch_reconnects", "Watches resumed from a resourceVersion", labels=names
        )
        received = CounterMetricFamily(
            "driftbot_watch_events", "Watch events received", labels=names
        )
        errors = CounterMetricFamily("driftbot_watch_errors", "Watch failures", labels=names)
        synced = GaugeMetricFamily(
            "driftbot_source_ready", "1 once the source has listed", labels=names
        )
        for resource in self._service.resources:
            where = [resource.cluster, resource.watched.name]
            counters: _Counters = resource.watcher.counters
            relists.add_metric(where, counters.relists)
            reconnects.add_metric(where, counters.reconnects)
            received.add_metric(where, counters.events)
            errors.add_metric(where, counters.errors)
            synced.add_metric(where, 1.0 if resource.ready else 0.0)
        for source in self._service.extra_sources:
            where = [str(getattr(source, "cluster", "")), source.task_name]
            source_counters: Any = getattr(source, "counters", None)
            if source_counters is not None:
                relists.add_metric(where, getattr(source_counters, "relists", 0))
                reconnects.add_metric(where, getattr(source_counters, "reconnects", 0))
                received.add_metric(where, getattr(source_counters, "events", 0))
                errors.add_metric(where, getattr(source_counters, "errors", 0))
            synced.add_metric(where, 1.0 if source.synced.is_set() else 0.0)
        yield from (relists, reconnects, received, errors, synced)

        ignored = CounterMetricFamily(
            "driftbot_events_ignored",
            "Kubernetes Events about objects other than Argo CD's and Flux's",
            labels=["cluster"],
        )
        for cluster, count in sorted(self._service.ignored_events.items()):
            ignored.add_metric([cluster], count)
        yield ignored
