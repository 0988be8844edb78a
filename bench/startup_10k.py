"""Start-up of `driftbot run` with 10,000 existing apps on a real kube-apiserver: ready time,
and the alerts sent for what was already there (0 expected).

Run: python3 tasks.py bench bench/startup_10k.py [--apps 10000]
(needs the envtest binaries: KUBEBUILDER_ASSETS, or ../shared/envtest/install.sh)

The API server is filled as in bench/memory_10k.py. `driftbot run` then starts twice on one
state file: a first start on an empty store, and a restart on the store that start left.
Each is timed from spawning the process to the first 200 of its /readyz (every watch has
listed; imports, config, store and the list all count), with its CPU seconds then (read from
/proc, not wall time: the machine is shared). Grace is 2 s; 5 s after the process has gone
quiet, the notifications it wrote (jsonl on stdout) are counted. The goal: ready within 5 s,
0 alerts.
"""

from __future__ import annotations

import argparse
import asyncio

from _real_cluster import filled_server_run  # type: ignore[import-not-found]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    options = parser.parse_args()
    run = asyncio.run(filled_server_run(options.apps, ["first start", "restart"], settle=5.0))
    print(f"apps: {run['apps']}, written in {run['fill_s']:.1f} s ({run['requests']} requests)")
    for start in run["starts"]:
        print(
            f"{start['label']}: ready in {start['ready_s']:.2f} s "
            f"({start['cpu_ready']:.2f} CPU-s), alerts sent {start['alerts']}; "
            f"RSS at ready {start['rss_ready']:.1f} MiB, after the list (quiet) "
            f"{start['rss_quiet']:.1f} MiB, peak {start['peak']:.1f} MiB; {start['uptime']}"
        )


if __name__ == "__main__":
    main()
