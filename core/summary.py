"""What an app's state means in one word, and each cluster's apps counted by it (pure).

`status`, the App Home tab, the daily digest and the status page all sum the fleet up the same
way: an app is failing, drifted, pending, progressing, paused, unknown or ok (worst first), and
a cluster is worse than another when more of its apps fail, then drift.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from core.model import AppState, Health, SyncStatus


class Condition(StrEnum):
    """What an app's state means for the people reading `status`, worst first."""

    FAILING = "failing"
    DRIFTED = "drifted"
    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    UNKNOWN = "unknown"
    OK = "ok"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def bad(self) -> bool:
        return self in (Condition.FAILING, Condition.DRIFTED)


_RANK = {c: i for i, c in enumerate(Condition)}
_FAILED_PHASES = frozenset({"Failed", "Error"})
_FLUX_BUSY = frozenset({"Progressing", "ProgressingWithRetry", "DependencyNotReady"})


def condition(state: AppState) -> Condition:
    """The one word that sums up `state` (pure)."""
    if state.health in (Health.DEGRADED, Health.MISSING):
        return Condition.FAILING
    if state.operation is not None and state.operation.phase in _FAILED_PHASES:
        return Condition.FAILING
    if state.ready is False and not state.suspended and state.ready_reason not in _FLUX_BUSY:
        return Condition.FAILING
    comparison = state.condition("ComparisonError")
    if state.sync is SyncStatus.UNKNOWN and comparison is not None:
        return Condition.FAILING
    if state.sync is SyncStatus.OUT_OF_SYNC:
        pending = state.desired_revision and state.desired_revision != state.revision
        return Condition.PENDING if pending else Condition.DRIFTED
    if state.suspended:
        return Condition.PAUSED
    running = state.operation is not None and state.operation.phase == "Running"
    if state.health is Health.PROGRESSING or running or state.ready_reason in _FLUX_BUSY:
        return Condition.PROGRESSING
    if state.health is Health.HEALTHY or state.ready is True:
        return Condition.OK
    if state.sync is SyncStatus.SYNCED and state.health is Health.UNKNOWN and state.ready is None:
        return Condition.OK if state.tool.value == "flux" else Condition.UNKNOWN
    return Condition.UNKNOWN


def worst_first(state: AppState) -> tuple[int, str, str, str]:
    """Sort key: the worse condition first, then by name, namespace and kind."""
    return (condition(state).rank, state.name, state.namespace, state.kind)


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """One cluster's apps by condition; `problems` are those not fine, worst first."""

    cluster: str
    total: int
    counts: tuple[tuple[Condition, int], ...]
    problems: tuple[AppState, ...]
    synced: int
    """In sync with Git and not failing (so synced, drifted and failing never overlap)."""

    def count(self, cond: Condition) -> int:
        return dict(self.counts).get(cond, 0)

    @property
    def bad(self) -> int:
        return self.count(Condition.FAILING) + self.count(Condition.DRIFTED)

    @property
    def drifted(self) -> int:
        return self.count(Condition.DRIFTED) + self.count(Condition.PENDING)

    @property
    def failing(self) -> int:
        return self.count(Condition.FAILING)

    def fingerprint(self) -> tuple[str, int, int, int, int]:
        return (self.cluster, self.total, self.synced, self.drifted, self.failing)


def live(states: Iterable[AppState]) -> list[AppState]:
    """The states of apps that still exist."""
    return [s for s in states if not s.deleted]


def summarize(states: Iterable[AppState]) -> list[ClusterSummary]:
    """Per cluster, worst first: most failing, then most drifted, then by name (pure)."""
    by_cluster: dict[str, list[AppState]] = {}
    for state in live(states):
        by_cluster.setdefault(state.cluster, []).append(state)
    summaries = []
    for cluster, members in by_cluster.items():
        conds = Counter(condition(s) for s in members)
        problems = sorted((s for s in members if condition(s) is not Condition.OK), key=worst_first)
        summaries.append(
            ClusterSummary(
                cluster=cluster,
                total=len(members),
                counts=tuple(sorted(conds.items(), key=lambda kv: kv[0].rank)),
                problems=tuple(problems),
                synced=sum(
                    1
                    for s in members
                    if s.sync is SyncStatus.SYNCED
                    and condition(s) not in (Condition.FAILING, Condition.DRIFTED)
                ),
            )
        )
    return sorted(
        summaries,
        key=lambda s: (-s.failing, -s.bad, -len(s.problems), s.cluster),
    )
