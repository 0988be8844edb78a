"""The soak at CI size: `driftbot run` processes against the fake Kubernetes API servers and the
fake Slack for a few seconds, with changes, faults of every kind but the slow ones, and SIGKILLs
with restarts; nothing is lost and nothing is posted twice.

This is bench/soak.py's machinery (bench/_soak.py) at a small size. It runs real processes on
real time, so it cannot use virtual time: it waits on the processes and the fakes instead. A
watch that hangs is left out (the watcher gives up on it only after its two-minute inactivity
timeout), and a stalled Slack call is held for a second rather than past the client's time-out.
A restarted process is not killed again while it is still reading its first lists: a kill there
can announce again what that list announced (docs/reliability.md, "Outside the outbox"); the
soak script does it on purpose.
"""

from __future__ import annotations

from pathlib import Path

from bench._soak import KUBE_FAULTS, SLACK_FAULTS, SoakOptions, run_soak


async def test_a_short_soak_with_faults_and_kills_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    report = await run_soak(
        SoakOptions(
            seconds=8,
            rate=2.5,
            seed=3,
            apps=16,
            kill_every=2.5,
            kill_until=0.75,
            kill_while_starting=0.0,
            fault_every=0.8,
            kube_faults=tuple(f for f in KUBE_FAULTS if f != "hang"),
            slack_faults=tuple(SLACK_FAULTS),
            slack_stall=1.0,
            guard=3.0,
            report_every=4.0,
            drain_timeout=35.0,
            workdir=tmp_path,
            fork=True,
        ),
        lines.append,
    )
    summary = "\n".join([*lines, *report.summary()])
    assert report.kills >= 1, summary
    assert report.starts == report.kills + 1, summary
    assert sum(report.faults.values()) >= 4, summary
    assert report.events_in >= 10, summary
    assert report.lost == 0, summary
    assert report.duplicated == 0, summary
    assert report.id_duplicates == 0, summary
    assert report.pending_rows == 0 and report.failed_rows == 0, summary
    assert report.exit_code == 0, summary
