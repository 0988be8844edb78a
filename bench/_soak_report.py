"""What the soak is asked to do and what it counted (bench/_soak.py runs it): the options of a
run, the faults it may inject with their weights, and the report with its verdicts (lost,
duplicated, RSS flat after warm-up) and the summary bench/soak.py prints.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

CLUSTERS = ("prod", "staging")
CHANNELS = {"alpha": "C0SOAKALPHA", "beta": "C0SOAKBETA", "gamma": "C0SOAKGAMMA"}
KUBE_FAULTS = {"drop": 3.0, "410": 1.0, "500": 2.0, "restart": 1.0, "hang": 0.5}
SLACK_FAULTS = {"429": 2.0, "slack-500": 2.0, "slack-drop": 1.0, "stall": 0.5}


@dataclass(frozen=True)
class SoakOptions:
    seconds: float = 120.0
    rate: float = 1.0
    """Changes per second, over all objects."""
    seed: int = 1
    apps: int = 60
    """Objects per cluster: half Argo CD Applications, the rest Flux objects."""
    kill_every: float = 30.0
    """Mean seconds between SIGKILLs (0: never)."""
    kill_until: float = 0.5
    """Kills happen in this first fraction of the run."""
    kill_while_starting: float = 0.2
    """The chance that a restarted process is killed again while it starts (and lists)."""
    fault_every: float = 5.0
    """Mean seconds between injected faults (0: none)."""
    kube_faults: tuple[str, ...] = tuple(KUBE_FAULTS)
    slack_faults: tuple[str, ...] = tuple(SLACK_FAULTS)
    slack_stall: float = 35.0
    """How long a stalled Slack call is held: past the client's 30 s time-out by default."""
    guard: float = 5.0
    """Seconds before a blind window's fault from which changes count as inside it."""
    report_every: float = 30.0
    sample_every: float = 2.0
    drain_timeout: float = 240.0
    workdir: Path | None = None
    fork: bool = False
    """Fork each service process from a server with the imports done (see ServiceProcess)."""


@dataclass
class SoakReport:
    options: SoakOptions
    workdir: Path
    changes: int = 0
    skipped: int = 0
    """Ticks with no object free to change (all changed once in a blind window)."""
    kills: int = 0
    starts: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    expected: Counter[tuple[str, str]] = field(default_factory=Counter)
    delivered: Counter[tuple[str, str]] = field(default_factory=Counter)
    id_duplicates: int = 0
    pending_rows: int = -1
    failed_rows: int = -1
    rss: list[tuple[float, int, float]] = field(default_factory=list)
    """(seconds since the start, process incarnation, RSS in MiB)."""
    exit_code: int | None = None

    @property
    def events_in(self) -> int:
        return sum(self.expected.values())

    @property
    def events_out(self) -> int:
        return sum(self.delivered.values())

    @property
    def lost(self) -> int:
        return sum((self.expected - self.delivered).values())

    @property
    def duplicated(self) -> int:
        return sum((self.delivered - self.expected).values())

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.id_duplicates == 0

    def memory(self) -> tuple[bool | None, str]:
        """Is RSS flat after warm-up? Read from the last process (it runs the longest without
        a kill): the mean of its last third of samples against its second third."""
        if not self.rss:
            return None, "RSS: no samples"
        last = self.rss[-1][1]
        samples = [(t, mib) for t, inc, mib in self.rss if inc == last]
        if len(samples) < 9:
            return None, f"RSS: too few samples of the last process ({len(samples)}) to judge"
        third = len(samples) // 3
        second = [m for _, m in samples[third : 2 * third]]
        final = [m for _, m in samples[len(samples) - third :]]
        a, b = sum(second) / len(second), sum(final) / len(final)
        growth = b - a
        flat = growth <= max(2.0, 0.05 * a)
        span = samples[-1][0] - samples[0][0]
        return flat, (
            f"RSS {'flat' if flat else 'GROWING'} after warm-up (last process, {span:.0f} s, "
            f"{len(samples)} samples): second third mean {a:.1f} MiB, last third mean {b:.1f} "
            f"MiB, {growth:+.1f} MiB ({100 * growth / a:+.1f} %; flat means within "
            f"max(2 MiB, 5 %)); peak {max(m for _, m in samples):.1f} MiB"
        )

    def summary(self) -> list[str]:
        o = self.options
        pending = "unknown" if self.pending_rows < 0 else str(self.pending_rows)
        failed = "unknown" if self.failed_rows < 0 else str(self.failed_rows)
        lines = [
            f"soak: {o.seconds:.0f} s at {o.rate:g} changes/s, seed {o.seed}, "
            f"{2 * o.apps} objects on {len(CLUSTERS)} clusters; work files in {self.workdir}",
            f"changes made: {self.changes} ({self.skipped} ticks skipped: nothing free to "
            f"change in a blind window)",
            f"service processes: {self.starts} started, {self.kills} killed with SIGKILL; the "
            f"last stopped with SIGTERM, exit code {self.exit_code}",
            "faults: " + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"),
            f"events in (posts the changes call for): {self.events_in}",
            f"events out (posts the fake Slack accepted): {self.events_out}",
            f"lost: {self.lost}   duplicated: {self.duplicated}   "
            f"(notification ids posted twice to a channel: {self.id_duplicates}; outbox rows "
            f"left pending: {pending}, failed: {failed})",
        ]
        for kind, counter in (
            ("lost", self.expected - self.delivered),
            ("duplicated", self.delivered - self.expected),
        ):
            for (channel, text), n in sorted(counter.items())[:10]:
                lines.append(f"  {kind}: {n} x {channel}: {text}")
        lines.append(self.memory()[1])
        return lines
