"""The soak at CI size: `driftbot run` processes against the fake Kubernetes API servers and the
fake Slack for a few seconds, with changes and faults of every kind but the slow ones; then the
same with SIGKILLs and restarts.

This is bench/soak.py's machinery (bench/_soak.py) at a small size. It runs real processes on
real time, so it cannot use virtual time: it waits on the processes and the fakes instead. A
watch that hangs is left out (the watcher gives up on it only after its two-minute inactivity
timeout), and a stalled Slack call is held for a second rather than past the client's time-out.

With faults alone, and with kills, nothing is lost and nothing is posted twice: a notification
is written to the outbox in the same transaction as the policy state that says it was sent, so
a kill keeps both or neither, and the outbox sends each message once (the fake Slack keeps
channel history, so a message in flight at a kill is found there rather than posted again).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench._soak import KUBE_FAULTS, SLACK_FAULTS, SoakOptions, SoakReport, run_soak

SHORT = SoakOptions(
    seconds=8,
    rate=2.5,
    seed=3,
    apps=16,
    kill_every=0,
    fault_every=0.8,
    kube_faults=tuple(f for f in KUBE_FAULTS if f != "hang"),
    slack_faults=tuple(SLACK_FAULTS),
    slack_stall=1.0,
    guard=3.0,
    report_every=4.0,
    drain_timeout=35.0,
    fork=True,
)


async def _soak(options: SoakOptions) -> tuple[SoakReport, str]:
    lines: list[str] = []
    report = await run_soak(options, lines.append)
    return report, "\n".join([*lines, *report.summary()])


async def test_a_short_soak_with_faults_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    report, summary = await _soak(replace(SHORT, workdir=tmp_path))
    assert report.starts == 1 and report.kills == 0, summary
    assert sum(report.faults.values()) >= 4, summary
    assert report.events_in >= 10, summary
    assert report.lost == 0, summary
    assert report.duplicated == 0, summary
    assert report.id_duplicates == 0, summary
    assert report.pending_rows == 0 and report.failed_rows == 0, summary
    assert report.exit_code == 0, summary


async def test_a_short_soak_with_kills_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    options = replace(
        SHORT, seed=4, kill_every=2.5, kill_until=0.75, kill_while_starting=0.0, workdir=tmp_path
    )
    report, summary = await _soak(options)
    assert report.kills >= 1, summary
    assert report.starts == report.kills + 1, summary
    assert report.events_in >= 10, summary
    assert report.lost == 0, summary
    assert report.id_duplicates == 0, summary
    assert report.duplicated == 0, summary
    assert report.pending_rows == 0 and report.failed_rows == 0, summary
    assert report.exit_code == 0, summary
