"""driftbot against what a user would otherwise write, on a real kube-apiserver: CPU seconds
and peak memory of a kopf operator with drift and health handlers, and of `driftbot run`.

Run: python3 tasks.py bench bench/kopf_compare.py [--objects 1000] [--changes 5]
     [--only kopf|driftbot] [--profile FILE]
(`--profile`: py-spy, installed in the virtualenv by hand, samples the consumer during the
changes and writes collapsed stacks to FILE.)
(kopf is a bench-only dependency: the `bench` extra, which `python3 tasks.py` installs; the
API server is the envtest one: KUBEBUILDER_ASSETS, or ../shared/envtest/install.sh.)

For each consumer a fresh kube-apiserver and etcd (bench/_real_cluster.py) get Argo CD's
Application CRD and N Applications built on the upstream fixture (grown to a production-sized
resource tree, bench/common.py), in ten namespaces. Each consumer runs in a process of its
own, and its CPU time (user + system, all threads) and memory are read from /proc, not from
wall time: the machine is shared.

- kopf: `@kopf.on.field` handlers on `status.sync.status` and `status.health.status` of
  argoproj.io/v1alpha1 applications that record what they see: the few lines a team would
  write. Peering is off (standalone), Events are not posted, and kopf runs as if installed
  alone (the Kubernetes client libraries hidden: it logs in with its own kubeconfig reader).
  kopf keeps its last-handled state in an annotation, as it does by default, so every handled
  change costs it a PATCH (and the MODIFIED event that PATCH causes).
- driftbot: `driftbot run` (`python -m bot.app.cli run`: its watchers, typed decoding, the
  no-op fast path, the pipeline, the write-behind store), a console receiver writing jsonl to
  a file, grace 0 and group_wait 0.

Once a consumer is synced (kopf: its handler saw every app and it has been quiet; driftbot:
/readyz answers 200 and it has been quiet), each app gets `--changes` status changes, in
rounds of one change to every app with many requests in flight: out of sync, synced,
degraded, healthy, out of sync, and so on. When the consumer has used less than 0.02 CPU-s a
second for 3 s in a row, its CPU seconds and peak RSS (VmHWM) are taken. The goals: driftbot
at least 10x less CPU than kopf for the changes, and a lower peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.abc
import importlib.util
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# Each consumer process imports only what it runs: the driver's modules (the API server
# starter, the builders) are imported inside the driver's functions.

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "applications"
NAMESPACES = 10


def _say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


# -- kopf, in a process of its own ---------------------------------------------------------------


class _NotInstalled(importlib.abc.MetaPathFinder):
    """Kubernetes client libraries as absent: kopf installed alone has none of them (it would
    borrow their login and import them, all of kubernetes_asyncio's generated client included);
    it then logs in with its own kubeconfig reader."""

    HIDDEN = ("kubernetes", "kubernetes_asyncio", "pykube")

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.split(".")[0] in self.HIDDEN:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def run_kopf(objects: int) -> None:
    """The operator a user would write; says when synced, and what it saw when told to stop."""
    sys.meta_path.insert(0, _NotInstalled())
    import kopf

    seen: set[str] = set()
    calls = {"sync": 0, "health": 0}

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True
        settings.posting.enabled = False

    @kopf.on.field(GROUP, VERSION, PLURAL, field="status.sync.status")
    def drift(new: Any, name: str, **_: Any) -> None:
        calls["sync"] += 1
        if len(seen) < objects:
            seen.add(name)
            if len(seen) == objects:
                _say(phase="synced")

    @kopf.on.field(GROUP, VERSION, PLURAL, field="status.health.status")
    def health(new: Any, **_: Any) -> None:
        calls["health"] += 1

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wait_for_stop() -> None:
            sys.stdin.readline()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=wait_for_stop, daemon=True).start()
        await kopf.operator(clusterwide=True, standalone=True, stop_flag=stop)

    asyncio.run(main())
    _say(phase="exit", handled=calls)


# -- the driver: the API server, the changes, the figures ----------------------------------------


def _apps(count: int, changes: int) -> list[list[dict[str, Any]]]:
    """Per Application of production size: its first state, then `changes` more."""
    from common import _grow  # type: ignore[import-not-found]

    from tests.builders_argocd import argocd_app

    name = "PLACEHOLDER"
    synced = _grow(argocd_app(name))
    cycle = [
        _grow(argocd_app(name, sync="OutOfSync", out_of_sync=[("Deployment", "default", name)])),
        synced,
        _grow(argocd_app(name, health="Degraded")),
        synced,
    ]
    template = [json.dumps(synced)] + [json.dumps(cycle[i % 4]) for i in range(changes)]
    out = []
    for i in range(count):
        app, namespace = f"app-{i:05d}", f"team-{i % NAMESPACES}"
        states = []
        for text in template:
            obj = json.loads(text.replace(name, app))
            obj["metadata"]["namespace"] = namespace
            states.append(obj)
        out.append(states)
    return out


async def _profiler(pid: int, profile: Path | None) -> asyncio.subprocess.Process | None:
    """py-spy sampling the consumer while the changes are made (collapsed stacks to a file);
    it slows the consumer down, so the CPU figures of a profiled run are not the bench's."""
    if profile is None:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    return await asyncio.create_subprocess_exec(
        str(spy), "record", "--format", "raw", "--rate", "250",
        "-o", str(profile), "--pid", str(pid), stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _stop_profiler(spy: asyncio.subprocess.Process | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        await spy.wait()


async def measure(
    consumer: str, apps: list[list[dict[str, Any]]], profile: Path | None = None
) -> dict[str, Any]:
    import _real_cluster as real  # type: ignore[import-not-found]
    from _service_proc import phase_message  # type: ignore[import-not-found]

    crd = real.CRDS / "argoproj.io_applications.yaml"
    with real.real_api_server() as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with real.Cluster(server) as cluster:
            await cluster.install_crds([crd])
            await cluster.create_all(states[0] for states in apps)
            spawned = time.monotonic()
            if consumer == "kopf":
                process = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--child", "kopf", "--objects", str(len(apps)),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    env={**os.environ, "KUBECONFIG": str(server.kubeconfig)},
                )  # fmt: skip
                assert process.stdout is not None
                await phase_message(process.stdout, "the consumer")
            else:
                port = real.free_port()
                counters = ("driftbot_watch_events", "driftbot_events")
                config = work / "driftbot.json"
                policy = {"grace": "0s", "group_wait": "0s"}
                config.write_bytes(real.driftbot_config(server.kubeconfig, port, policy))
                process = await real.start_driftbot(
                    config, work / "state.sqlite", work / "out.jsonl", work / "err.log"
                )
                await real.wait_ready(port, process, within=600)
            try:
                synced_at = time.monotonic() - spawned
                cpu_synced = await real.wait_quiet(process.pid)
                rss_synced = real.memory_mib(process.pid)["VmRSS"]
                api_before = sum(real.cpu_seconds(pid) for pid in server.pids)
                requests_before = cluster.requests
                spy = await _profiler(process.pid, profile)
                written = time.monotonic()
                for change in range(1, len(apps[0])):
                    await asyncio.gather(
                        *(cluster.write_status(s[change], s[change]["status"]) for s in apps)
                    )
                written = time.monotonic() - written
                cpu_done = await real.wait_quiet(process.pid)
                await _stop_profiler(spy)
                memory = real.memory_mib(process.pid)
                api_cpu = sum(real.cpu_seconds(pid) for pid in server.pids) - api_before
                load = real.uptime()
            finally:
                if consumer == "kopf":
                    assert process.stdin is not None and process.stdout is not None
                    process.stdin.write(b"stop\n")
                    await process.stdin.drain()
                    handled = (await phase_message(process.stdout, "the consumer"))["handled"]
                    await process.wait()
                else:
                    handled = await real.metrics(port, counters)
                    await real.stop(process)
                    notes = (work / "out.jsonl").read_bytes().splitlines()
                    handled["notifications"] = len(notes)
    return {
        "consumer": consumer,
        "synced_s": synced_at,
        "cpu_synced": cpu_synced,
        "cpu_changes": cpu_done - cpu_synced,
        "cpu_total": cpu_done,
        "rss_synced": rss_synced,
        "rss_done": memory["VmRSS"],
        "peak": memory["VmHWM"],
        "handled": handled,
        "write_s": written,
        "changes": len(apps) * (len(apps[0]) - 1),
        "api_cpu": api_cpu,
        "writes": cluster.requests - requests_before,
        "uptime": load,
    }


async def main(objects: int, changes: int, only: str | None, profile: Path | None) -> None:
    apps = _apps(objects, changes)
    consumers = (only,) if only else ("kopf", "driftbot")
    results = [await measure(consumer, apps, profile) for consumer in consumers]
    print(
        f"real kube-apiserver; Argo CD Applications: {objects} (about 15 KB each), "
        f"{changes} status changes each ({objects * changes} in all)"
    )
    for r in results:
        print(
            f"{r['consumer']:>8}: changes {r['cpu_changes']:.2f} CPU-s, whole run "
            f"{r['cpu_total']:.2f} CPU-s (start + list {r['cpu_synced']:.2f}); "
            f"peak RSS {r['peak']:.1f} MiB (synced {r['rss_synced']:.1f}, "
            f"end {r['rss_done']:.1f}); handled {r['handled']}; "
            f"kube-apiserver+etcd {r['api_cpu']:.2f} CPU-s from the first write to quiet; "
            f"{r['uptime']}"
        )
    if len(results) < 2:
        return
    kopf, bot = results
    print(
        f"kopf/driftbot CPU for the changes: x{kopf['cpu_changes'] / bot['cpu_changes']:.1f} "
        f"(goal >= 10), whole run x{kopf['cpu_total'] / bot['cpu_total']:.1f}; "
        f"driftbot/kopf peak RSS x{bot['peak'] / kopf['peak']:.2f} (goal < 1)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--only", choices=("kopf", "driftbot"), help="run one consumer")
    parser.add_argument(
        "--profile", type=Path, help="py-spy (collapsed stacks) of the consumer during the changes"
    )
    parser.add_argument("--child", choices=("kopf",), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child == "kopf":
        run_kopf(options.objects)
    elif importlib.util.find_spec("kopf") is None:
        sys.exit("kopf is not installed: run this with python3 tasks.py bench (the bench extra)")
    else:
        asyncio.run(main(options.objects, options.changes, options.only, options.profile))
