"""Memory of `driftbot run` with 10,000 apps on a real kube-apiserver, after the initial list.

Run: python3 tasks.py bench bench/memory_10k.py [--apps 10000]
(needs the envtest binaries: KUBEBUILDER_ASSETS, or ../shared/envtest/install.sh)

A real kube-apiserver and etcd (bench/_real_cluster.py) get the Argo CD and Flux CRDs and the
apps of bench/common.py (60 % Argo CD Applications of production size, 25 % Kustomizations,
15 % HelmReleases), written with many requests in flight. Then `driftbot run` starts as a
process of its own (console receiver, jsonl) and lists them through its watchers (typed
decoding, page by page). Read from outside (/proc/PID/status): VmRSS when /readyz first
answers 200, once the process has been quiet for 3 s (initial list handled and the
write-behind store flushed), and its peak (VmHWM). The goal: at most 100 MB after the list.
"""

from __future__ import annotations

import argparse
import asyncio

from _real_cluster import filled_server_run  # type: ignore[import-not-found]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    options = parser.parse_args()
    run = asyncio.run(filled_server_run(options.apps, ["first start"], settle=3.0))
    print(f"apps: {run['apps']}, written in {run['fill_s']:.1f} s ({run['requests']} requests)")
    for start in run["starts"]:
        print(
            f"{start['label']}: RSS at ready {start['rss_ready']:.1f} MiB, after the list "
            f"(quiet) {start['rss_quiet']:.1f} MiB = {start['rss_quiet'] * 1.048576:.1f} MB, "
            f"peak {start['peak']:.1f} MiB; CPU {start['cpu_quiet']:.2f} s; "
            f"alerts {start['alerts']}; {start['uptime']}"
        )


if __name__ == "__main__":
    main()
