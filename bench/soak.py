"""Soak: `driftbot run` for N minutes against the fake Kubernetes API and the fake Slack, with a
steady rate of changes, random faults and SIGKILLs; is anything lost, duplicated, or leaking?

Prints progress every `--report-every` seconds and, at the end: events in (the posts the changes
call for, from an in-process replay of the same changes with the same config), events out (the
posts the fake Slack accepted), lost, duplicated, and RSS over time with a verdict on whether it
is flat after warm-up. Exits 1 when anything was lost or duplicated.

How it works, and what a "blind window" is: bench/_soak.py. Run:

    python3 tasks.py bench bench/soak.py --minutes 30
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._soak import KUBE_FAULTS, SLACK_FAULTS, SoakOptions, SoakReport, run_soak


def _say(line: str) -> None:
    print(line, flush=True)


def rss_table(report: SoakReport, rows: int = 12) -> list[str]:
    """RSS over time, a row per equal slice of the run (the last sample of each)."""
    if not report.rss:
        return []
    span = report.rss[-1][0] or 1.0
    picked: dict[int, tuple[float, int, float]] = {}
    for sample in report.rss:
        picked[min(rows - 1, int(sample[0] / span * rows))] = sample
    lines = ["RSS over time (seconds, process, MiB):"]
    lines += [f"  {t:7.0f} s  process {inc:3d}  {mib:7.1f}" for t, inc, mib in picked.values()]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=1.0, help="changes per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--apps", type=int, default=60, help="objects per cluster (two clusters)")
    parser.add_argument(
        "--kill-every",
        type=float,
        default=30.0,
        help="mean seconds between SIGKILLs of the service (0: none)",
    )
    parser.add_argument(
        "--kill-until",
        type=float,
        default=0.5,
        help="kills happen in this first fraction of the run",
    )
    parser.add_argument(
        "--kill-while-starting",
        type=float,
        default=0.2,
        help="chance that a restarted service is killed again while it starts and lists",
    )
    parser.add_argument(
        "--fault-every",
        type=float,
        default=5.0,
        help="mean seconds between injected faults (0: none)",
    )
    parser.add_argument(
        "--kube-faults", default=",".join(KUBE_FAULTS), help=f"of {', '.join(KUBE_FAULTS)}"
    )
    parser.add_argument(
        "--slack-faults", default=",".join(SLACK_FAULTS), help=f"of {', '.join(SLACK_FAULTS)}"
    )
    parser.add_argument("--report-every", type=float, default=30.0)
    parser.add_argument(
        "--fork",
        action="store_true",
        help="fork each service process from a server that has imported driftbot once "
        "(restarts in a fraction of a second; the code is read once, at the start)",
    )
    parser.add_argument("--workdir", type=Path, help="where the state, logs and changes go")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    options = SoakOptions(
        seconds=seconds,
        rate=args.rate,
        seed=args.seed,
        apps=args.apps,
        kill_every=args.kill_every,
        kill_until=args.kill_until,
        kill_while_starting=args.kill_while_starting,
        fault_every=args.fault_every,
        kube_faults=tuple(f for f in args.kube_faults.split(",") if f),
        slack_faults=tuple(f for f in args.slack_faults.split(",") if f),
        report_every=min(args.report_every, max(5.0, seconds / 4)),
        workdir=args.workdir,
        fork=args.fork,
    )
    report = asyncio.run(run_soak(options, _say))
    for line in [*rss_table(report), *report.summary()]:
        print(line)
    print("verdict: " + ("OK, nothing lost or duplicated" if report.ok else "FAILED"))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
