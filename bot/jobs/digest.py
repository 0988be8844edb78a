"""Digests: what to tell in one, where it comes from, and how it reaches its receivers.

What happened comes from the audit log, where the pipeline records every notification with the
events it told of; what still needs attention comes from the policy's open alerts and the apps'
current states. A digest covers the time since the previous digest of the same name (recorded
in the audit log as action `digest`), or, for the first one, since the schedule's previous
time. `collect_digest` decides (pure); `gather_digest`, `deliver_digest` and `run_digest` do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.delivery.receivers import ConsoleReceiver, Receiver
from bot.store.store import AuditEntry, Store
from config.routing import Subject, check_match, subject_of, subject_of_state
from config.schema import DigestConfig, Match
from core.codec import CodecError, event_from_dict
from core.model import (
    AppKey,
    AppState,
    EventKind,
    GitOpsEvent,
    Health,
)
from core.policy import PolicyState
from core.summary import Condition, condition
from formatters.digest import (
    ClusterDigest,
    Digest,
    Problem,
    StillOpen,
    render_digest_slack,
    render_digest_teams,
    render_digest_text,
)

logger = logging.getLogger(__name__)

ANNOUNCE = "announce"
DIGEST = "digest"
DEPLOY_KINDS = frozenset({EventKind.DEPLOY_SUCCEEDED})
ROLLBACK_KINDS = frozenset({EventKind.ROLLBACK_SUCCEEDED})
DRIFT_KINDS = frozenset({EventKind.DRIFT_DETECTED})
PROBLEM_KINDS = frozenset(
    {
        EventKind.DEPLOY_FAILED,
        EventKind.HEALTH_DEGRADED,
        EventKind.ROLLBACK_FAILED,
        EventKind.SOURCE_FAILED,
    }
)
PAGE = 500
"""Audit entries read at a time while looking back to the start of a digest's period."""


def digest_name(config: DigestConfig, index: int) -> str:
    """The digest's own name, or `digests[i]`: how its runs are recorded."""
    return config.name or f"digests[{index}]"


# --- deciding ------------------------------------------------------------------------------------


def announced_events(entries: Iterable[AuditEntry]) -> list[tuple[GitOpsEvent, GitOpsEvent | None]]:
    """The events the notifications in `entries` told of (oldest first, each once), with the
    problem a recovery resolved when the notification named it. Reminders are left out; an
    unreadable event is logged and skipped."""
    seen: set[str] = set()
    out: list[tuple[GitOpsEvent, GitOpsEvent | None]] = []
    for entry in sorted(entries, key=lambda e: e.id):
        if entry.action != ANNOUNCE:
            continue
        original = _event(entry.detail.get("original"), entry)
        for data in entry.detail.get("events") or ():
            event = _event(data, entry)
            if event is None or event.id in seen:
                continue
            seen.add(event.id)
            out.append((event, original if original and event.resolves == original.id else None))
    return out


def _event(data: Any, entry: AuditEntry) -> GitOpsEvent | None:
    if data is None:
        return None
    try:
        return event_from_dict(data)
    except (CodecError, TypeError, ValueError) as exc:
        logger.warning("audit entry %d: unreadable event skipped: %s", entry.id, exc)
        return None


def _matches(match: Match | None, subject: Subject) -> bool:
    return check_match(match, subject).outcome == "match"


_STATE_KIND = {
    Condition.DRIFTED: EventKind.DRIFT_DETECTED,
    Condition.PENDING: EventKind.OUT_OF_SYNC,
}


def _state_kind(state: AppState, cond: Condition) -> EventKind:
    """The event kind a state that is not right stands for, for a digest's `match`."""
    if cond in _STATE_KIND:
        return _STATE_KIND[cond]
    return (
        EventKind.HEALTH_DEGRADED
        if state.health in (Health.DEGRADED, Health.MISSING)
        else EventKind.DEPLOY_FAILED
    )


def collect_digest(
    config: DigestConfig,
    name: str,
    entries: Iterable[AuditEntry],
    states: Iterable[AppState],
    policy_state: PolicyState,
    since: datetime,
    until: datetime,
) -> Digest:
    """The digest of the period `since`..`until` (pure): deploys, rollbacks, drifts and other
    problems announced in it (with whether and when each was fixed), and every app that needs
    attention at `until`, per cluster; all filtered by the digest's `match`."""
    match = config.match
    told = [
        (e, original)
        for e, original in announced_events(entries)
        if since <= e.occurred_at <= until and _matches(match, subject_of(e))
    ]
    fixes: dict[str, GitOpsEvent] = {e.resolves: e for e, _ in told if e.resolves}
    clusters: dict[str, dict[str, list[Any]]] = {}

    def part(cluster: str, section: str) -> list[Any]:
        return clusters.setdefault(cluster, {}).setdefault(section, [])

    told_ids = {e.id for e, _ in told}
    for event, original in told:
        if event.kind in DEPLOY_KINDS:
            part(event.cluster, "deploys").append(event)
        elif event.kind in ROLLBACK_KINDS:
            part(event.cluster, "rollbacks").append(event)
        if event.kind in DRIFT_KINDS:
            part(event.cluster, "drifts").append(Problem(event, fixes.get(event.id)))
        elif event.kind in PROBLEM_KINDS:
            part(event.cluster, "problems").append(Problem(event, fixes.get(event.id)))
        elif original is not None and original.id not in told_ids:
            # A problem from before the period, fixed in it.
            section = "drifts" if original.kind in DRIFT_KINDS else "problems"
            if original.kind in DRIFT_KINDS | PROBLEM_KINDS:
                part(event.cluster, section).append(Problem(original, event))

    for item in still_open(states, policy_state, match):
        part(item.cluster, "still_open").append(item)

    return Digest(
        name=name,
        since=since,
        until=until,
        timezone=config.timezone,
        clusters=tuple(
            ClusterDigest(
                cluster=cluster,
                deploys=tuple(parts.get("deploys", ())),
                rollbacks=tuple(parts.get("rollbacks", ())),
                drifts=tuple(parts.get("drifts", ())),
                problems=tuple(parts.get("problems", ())),
                still_open=tuple(parts.get("still_open", ())),
            )
            for cluster, parts in sorted(clusters.items())
        ),
    )


def still_open(
    states: Iterable[AppState], policy_state: PolicyState, match: Match | None = None
) -> list[StillOpen]:
    """Apps that need attention: each open alert (once per app and kind, whatever the route),
    then each app whose state is failing, drifted or waiting for a deploy without an open
    alert saying so (pure)."""
    items: dict[tuple[AppKey, str], StillOpen] = {}
    for alert in sorted(policy_state.open.values(), key=lambda a: a.event.occurred_at):
        event = alert.event
        key = (event.key, event.kind.value)
        if key in items or not _matches(match, subject_of(event)):
            continue
        items[key] = StillOpen(
            cluster=event.cluster,
            namespace=event.namespace,
            name=event.name,
            state="drifted" if event.kind in DRIFT_KINDS else "failing",
            since=event.occurred_at,
            alert=event,
            acked_by=alert.acked_by,
        )
    alerted = {key for key, _ in items}
    for state in sorted(states, key=lambda s: (s.cluster, s.namespace, s.name, s.kind)):
        if state.deleted or state.key in alerted:
            continue
        cond = condition(state)
        if cond not in (Condition.FAILING, Condition.DRIFTED, Condition.PENDING):
            continue
        kind = _state_kind(state, cond)
        if not _matches(match, subject_of_state(state, kind)):
            continue
        items[(state.key, cond.value)] = StillOpen(
            cluster=state.cluster,
            namespace=state.namespace,
            name=state.name,
            state=cond.value,
            target=state.desired_revision if cond is Condition.PENDING else "",
        )
    return list(items.values())


# --- doing ---------------------------------------------------------------------------------------


async def entries_since(store: Store, since: datetime, page: int = PAGE) -> list[AuditEntry]:
    """Every audit entry written at or after `since` (by the clock of the writer), newest
    first; reads more and more of the newest entries until it reaches one older."""
    limit = page
    while True:
        entries = await store.audit_log(None, limit)
        if len(entries) < limit or entries[-1].at < since:
            return [e for e in entries if e.at >= since]
        limit *= 4


async def last_digest_at(store: Store, name: str, page: int = PAGE) -> datetime | None:
    """When the digest `name` last covered up to, from the audit log; None if never."""
    limit = page
    while True:
        entries = await store.audit_log(None, limit)
        for entry in entries:
            if entry.action == DIGEST and entry.detail.get("name") == name:
                until = entry.detail.get("until")
                return datetime.fromisoformat(until) if isinstance(until, str) else entry.at
        if len(entries) < limit:
            return None
        limit *= 4


class Fleet(Protocol):
    """What the pipeline holds, as a digest reads it."""

    @property
    def states(self) -> Mapping[AppKey, AppState]: ...

    @property
    def policy_state(self) -> PolicyState: ...


async def gather_digest(
    store: Store,
    fleet: Fleet,
    config: DigestConfig,
    name: str,
    until: datetime,
    first_since: datetime,
) -> Digest:
    """The digest up to `until`, from the previous one's end (or `first_since`)."""
    since = await last_digest_at(store, name) or first_since
    # Events are filed when announced, which is at or after they occurred: look back a little.
    entries = await entries_since(store, since - timedelta(hours=1))
    return collect_digest(
        config, name, entries, fleet.states.values(), fleet.policy_state, since, until
    )


@dataclass(frozen=True, slots=True)
class DigestDelivery:
    receiver: str
    outcome: str
    """`ok`, or `failed: why`."""


async def deliver_digest(
    digest: Digest,
    names: Sequence[str],
    receivers: Mapping[str, Receiver],
    now: datetime,
) -> list[DigestDelivery]:
    """Send `digest` to the receivers `names`: console as text, Slack and Teams through their
    outbox (durable once the store commits it, sent in order by the receiver's worker)."""
    out: list[DigestDelivery] = []
    ident = f"digest:{digest.name}:{digest.until.isoformat()}"
    for name in names:
        receiver = receivers.get(name)
        try:
            if receiver is None:
                raise LookupError("receiver not configured")
            if not isinstance(receiver, ConsoleReceiver):
                # Loaded here: a service without Slack or Teams receivers never imports them.
                from bot.delivery.slack_receiver import SlackReceiver
                from bot.delivery.teams_receiver import TeamsReceiver
            if isinstance(receiver, ConsoleReceiver):
                receiver.stream.write(render_digest_text(digest) + "\n")
                receiver.stream.flush()
            elif isinstance(receiver, SlackReceiver):
                message = render_digest_slack(digest, receiver.public_url)
                payload = {
                    "op": "post",
                    "notification": ident,
                    "message": message,
                    "thread_of": ident,
                }
                await receiver.queue([payload], now)
            elif isinstance(receiver, TeamsReceiver):
                card = render_digest_teams(digest, receiver.payload, receiver.public_url)
                payload = {"op": "post", "notification": ident, "card": card}
                await receiver.queue([payload], now)
            else:
                raise TypeError(f"{type(receiver).__name__} cannot take a digest")
        except Exception as exc:
            logger.exception("digest %r: receiver %r failed", digest.name, name)
            out.append(DigestDelivery(name, f"failed: {type(exc).__name__}: {exc}"[:300]))
            continue
        out.append(DigestDelivery(name, "ok"))
    return out


async def run_digest(
    store: Store,
    fleet: Fleet,
    receivers: Mapping[str, Receiver],
    config: DigestConfig,
    name: str,
    now: datetime,
    first_since: datetime,
) -> Digest:
    """Gather, deliver and record one digest (the record is where the next one starts)."""
    digest = await gather_digest(store, fleet, config, name, now, first_since)
    deliveries = await deliver_digest(digest, config.receivers, receivers, now)
    detail = {
        "name": name,
        "since": digest.since.isoformat(),
        "until": digest.until.isoformat(),
        "receivers": {d.receiver: d.outcome for d in deliveries},
        "quiet": digest.quiet,
    }
    await store.audit("driftbot", DIGEST, None, detail, at=now)
    return digest
