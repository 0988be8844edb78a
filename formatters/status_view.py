"""What the status page shows, decided from data: apps in words, environments worst first,
one verdict line per environment, and the words of an app's badge. Pure: decides only.

The HTML (formatters/status_html.py), the SVG (formatters/status_svg.py) and the JSON of
`/api/v1/apps` (formatters/status_json.py) are all drawn from these values, so the page, the
badge and a script reading the JSON never disagree about an app. An app's last 7 days are
decided in formatters/status_timeline.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.model import (
    FLUX_SOURCE_KINDS,
    AppKey,
    AppState,
    EventKind,
    GitOpsEvent,
    Health,
    HistoryEntry,
    SyncStatus,
)
from core.summary import Condition, condition
from formatters import forge, phrases
from formatters import status_words as say
from formatters.escape import one_line
from formatters.revision import short_revision
from formatters.status_paths import app_path, cluster_path

STATUSES: tuple[str, ...] = (
    "failing", "degraded", "drifted", "pending", "progressing", "paused", "unknown", "ok",
)  # fmt: skip
"""Worst first: the order of the app list."""
_RANK = {s: i for i, s in enumerate(STATUSES)}
PROBLEMS = frozenset({"failing", "degraded", "drifted"})
_SOURCE_KINDS = frozenset(FLUX_SOURCE_KINDS)
_FAILED_PHASES = frozenset({"Failed", "Error"})


def status_of(state: AppState) -> str:
    """One of STATUSES for `state` (pure)."""
    cond = condition(state)
    if cond is Condition.FAILING:
        failed_op = state.operation is not None and state.operation.phase in _FAILED_PHASES
        unhealthy = state.health in (Health.DEGRADED, Health.MISSING)
        if unhealthy and not failed_op and state.ready is not False:
            return "degraded"
        return "failing"
    return {
        Condition.DRIFTED: "drifted",
        Condition.PENDING: "pending",
        Condition.PROGRESSING: "progressing",
        Condition.PAUSED: "paused",
        Condition.UNKNOWN: "unknown",
    }.get(cond, "ok")


@dataclass(frozen=True, slots=True)
class Deploy:
    revision: str
    by: str
    at: datetime | None
    commit_url: str = ""
    """The deployed commit's page on its forge, when the repository is on a known forge."""


@dataclass(frozen=True, slots=True)
class AppView:
    """One app as the page shows it; values are raw (the renderer escapes them)."""

    key: AppKey
    status: str
    since: datetime | None
    problem: str
    """The short phrase of a verdict line ("podinfo failed to deploy 6.6.1"); empty when fine."""
    last_deploy: Deploy | None
    revision: str
    desired_revision: str
    chart: str
    chart_version: str
    sync: str
    health: str
    message: str
    url: str
    alerts: tuple[GitOpsEvent, ...]

    @property
    def words(self) -> str:
        return say.STATE_WORDS[self.status]

    @property
    def rank(self) -> int:
        return _RANK[self.status]

    @property
    def is_problem(self) -> bool:
        return self.status in PROBLEMS

    @property
    def path(self) -> str:
        return app_path(self.key.cluster, self.key.namespace, self.key.name)


@dataclass(frozen=True, slots=True)
class ClusterView:
    name: str
    apps: tuple[AppView, ...]
    verdict: str

    @property
    def problems(self) -> tuple[AppView, ...]:
        return tuple(a for a in self.apps if a.is_problem)

    @property
    def worst(self) -> str:
        return self.apps[0].status if self.apps else "unknown"

    @property
    def path(self) -> str:
        return cluster_path(self.name)


def shown(state: AppState) -> bool:
    """Is `state` an app the page lists? Live apps; a Flux source only while it is in trouble
    (a PM cares about the apps, and about a source only when it stops deploys)."""
    if state.deleted:
        return False
    return state.kind not in _SOURCE_KINDS or status_of(state) != "ok"


def version_words(version: str) -> str:
    """A chart version as people say it: `6.6.1+0cc9a8446c95` -> `6.6.1` (build metadata is
    for machines)."""
    return version.split("+", 1)[0] if version[:1].isdigit() else version


def _last_deploy(state: AppState) -> Deploy | None:
    entry: HistoryEntry | None = next(
        (h for h in state.history if h.status.lower() not in ("failed", "pending-upgrade")), None
    )
    if entry is not None:
        revision = version_words(entry.chart_version) or entry.revision
        commit = forge.commit_url(state.repo_url, entry.revision)
        return Deploy(revision, entry.initiated_by, entry.deployed_at, commit)
    if state.revision and not state.history:
        commit = forge.commit_url(state.repo_url, state.revision)
        return Deploy(version_words(state.chart_version) or state.revision, "", None, commit)
    return None


def _problem(state: AppState, status: str, alerts: Sequence[GitOpsEvent]) -> str:
    app = one_line(state.name) or phrases.UNNAMED
    if status == "drifted":
        return say.PROBLEM_DRIFTED.format(app=app)
    if status == "degraded":
        return say.PROBLEM_DEGRADED.format(app=app)
    if status != "failing":
        return ""
    kinds = {a.kind for a in alerts}
    if state.kind in _SOURCE_KINDS or EventKind.SOURCE_FAILED in kinds:
        return say.PROBLEM_SOURCE.format(app=app)
    failed = next((a for a in alerts if a.kind is EventKind.DEPLOY_FAILED), None)
    op_failed = state.operation is not None and state.operation.phase in _FAILED_PHASES
    if failed is not None or op_failed or state.ready is False:
        target = version_words(
            (
                (failed.chart_version or short_revision(failed.revision))
                if failed is not None
                else ""
            )
            or state.chart_version
            or short_revision(state.desired_revision or state.revision)
        )
        return say.PROBLEM_FAILED.format(app=app, rev=f" {target}" if target else "")
    return say.PROBLEM_FAILING.format(app=app)


def app_view(
    state: AppState,
    since: Mapping[AppKey, datetime],
    alerts: Mapping[AppKey, Sequence[GitOpsEvent]],
) -> AppView:
    status = status_of(state)
    own = tuple(alerts.get(state.key, ()))
    return AppView(
        key=state.key,
        status=status,
        since=since.get(state.key) if status != "ok" else None,
        problem=_problem(state, status, own),
        last_deploy=_last_deploy(state),
        revision=state.revision,
        desired_revision=state.desired_revision,
        chart=state.chart,
        chart_version=state.chart_version,
        sync=state.sync.value,
        health=state.health.value,
        message=state.message,
        url=state.url,
        alerts=own,
    )


def _order(app: AppView) -> tuple[int, float, str, str]:
    began = -app.since.timestamp() if app.since is not None else 0.0
    return (app.rank, -began, app.key.name, app.key.namespace)


def verdict(cluster: str, apps: Sequence[AppView], now: datetime) -> str:
    """`staging: 2 problems — podinfo failed to deploy 6.6.1 (14 min), redis differs from Git
    (3 min)`, or `prod: all 4 apps in sync` (pure)."""
    if not apps:
        return say.VERDICT_EMPTY.format(cluster=cluster)
    problems = [a for a in apps if a.is_problem]
    if problems:
        parts = []
        for app in problems:
            text = app.problem
            if app.since is not None:
                text += " " + say.FOR.format(duration=phrases.duration(now - app.since))
            parts.append(text)
        head = say.VERDICT_BAD.format(
            cluster=cluster,
            n=len(problems),
            problems=say.plural(len(problems), "problem", "problems"),
        )
        return f"{head} — {', '.join(parts)}"
    notes = _notes(apps)
    if notes:
        return say.VERDICT_BUSY.format(cluster=cluster, notes=notes)
    return say.VERDICT_GOOD.format(
        cluster=cluster, n=len(apps), apps=say.plural(len(apps), "app", "apps")
    )


def _notes(apps: Sequence[AppView]) -> str:
    counts: dict[str, int] = {}
    for app in apps:
        if app.status in say.NOTE_WORDS:
            counts[app.status] = counts.get(app.status, 0) + 1
    return ", ".join(
        f"{n} {say.NOTE_WORDS[status][0 if n == 1 else 1]}"
        for status, n in sorted(counts.items(), key=lambda kv: _RANK[kv[0]])
    )


def fleet(
    states: Iterable[AppState],
    since: Mapping[AppKey, datetime],
    alerts: Mapping[AppKey, Sequence[GitOpsEvent]],
    now: datetime,
) -> list[ClusterView]:
    """Every environment with its apps, both worst first (pure)."""
    by_cluster: dict[str, list[AppView]] = {}
    for state in states:
        if shown(state):
            by_cluster.setdefault(state.cluster, []).append(app_view(state, since, alerts))
    views = []
    for cluster, apps in by_cluster.items():
        apps.sort(key=_order)
        views.append(ClusterView(cluster, tuple(apps), verdict(cluster, apps, now)))
    return sorted(views, key=lambda c: (-len(c.problems), _RANK[c.worst], c.name))


SYNC_WORDS = say.BADGE_SYNC
HEALTH_WORDS: dict[str, str] = {
    "ok": "healthy",
    "failing": "failing",
    "degraded": "degraded",
    "drifted": "healthy",
    "pending": "healthy",
    "progressing": "deploying",
    "paused": "suspended",
    "unknown": "unknown",
}


def badge_words(app: AppView) -> tuple[str, str]:
    """(sync, health) in words, as the badge shows them."""
    sync = SYNC_WORDS.get(app.sync, "unknown")
    if app.status == "drifted" or (app.status == "pending" and app.sync != SyncStatus.SYNCED):
        sync = SYNC_WORDS["out_of_sync"]
    elif app.sync == SyncStatus.UNKNOWN.value and app.status == "ok":
        sync = SYNC_WORDS["synced"]
    return sync, HEALTH_WORDS[app.status]
