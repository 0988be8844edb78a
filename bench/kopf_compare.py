"""driftbot against what a user would otherwise write: a kopf operator with a drift handler.

Run: python3 tasks.py bench bench/kopf_compare.py [--objects 1000]
(kopf is a bench-only dependency: the `bench` extra, which `python3 tasks.py` installs.)

One fake Kubernetes API server (the tests' fake, with the discovery, PATCH and Event POST an
operator framework needs: bench/_kube_fake.py) serves N Argo CD Applications built on the
upstream fixture (grown to a production-sized resource tree, bench/common.py). Each consumer
runs in a subprocess of its own, so its memory is its own:

- kopf: an `@kopf.on.field` handler on `status.sync.status` of argoproj.io/v1alpha1
  applications that records every app it sees OutOfSync: the few lines a team would write.
  Peering is off (standalone) and Events are not posted; kopf keeps its last-handled state
  in an annotation, as it does by default, so every handled change costs it a PATCH (and the
  MODIFIED event that PATCH causes).
- driftbot: the service (`bot.app.service.open_service`: watches of every resource it knows, the
  pipeline, the write-behind store, a console receiver writing to /dev/null), grace 0 and
  group_wait 0, so every drift is detected and sent.

Once a consumer has synced (kopf: its handler has seen every app once and its PATCHes have
stopped; driftbot: every watch has listed), every app is made OutOfSync at once, and the clock
runs until the consumer has recorded the last of them (kopf: the handler saw it OutOfSync;
driftbot: the pipeline detected the drift). Printed: events/s and peak RSS (VmHWM) of each,
and the ratios. The issue's goal: driftbot at least 3x kopf's throughput, with less memory.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import importlib.abc
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Each consumer process imports only what it runs: the driver's modules (the fake server,
# the builders) are imported inside the driver's functions, so they weigh on no one's RSS.


GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "applications"
NAMESPACES = 10


def _memory() -> dict[str, float]:
    """VmRSS and VmHWM (peak) of this process, in MiB."""
    out: dict[str, float] = {}
    with open("/proc/self/status") as status:
        for row in status:
            if row.startswith(("VmRSS:", "VmHWM:")):
                out[row.split(":")[0]] = int(row.split()[1]) / 1024
    return out


def _say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def _until(done: Callable[[], bool], within: float = 900.0, step: float = 0.005) -> None:
    async with asyncio.timeout(within):
        while True:
            if done():
                return
            await asyncio.sleep(step)


# -- the consumers, each in a process of its own ------------------------------------------------


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
    """The operator a user would write; reports when synced, when every drift is recorded."""
    sys.meta_path.insert(0, _NotInstalled())
    import kopf

    _say(phase="imported", **_memory())
    seen: set[str] = set()
    drifted: list[tuple[str | None, str]] = []
    stop = asyncio.Event()

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True
        settings.posting.enabled = False

    @kopf.on.field(GROUP, VERSION, PLURAL, field="status.sync.status")
    def drift(new: Any, name: str, namespace: str | None, **_: Any) -> None:
        if new == "OutOfSync":
            drifted.append((namespace, name))
            if len(drifted) == objects:
                _say(phase="done", at=time.monotonic(), **_memory())
                stop.set()
        elif len(seen) < objects:
            seen.add(name)
            if len(seen) == objects:
                _say(phase="synced", at=time.monotonic(), **_memory())

    async def main() -> None:
        await kopf.operator(clusterwide=True, standalone=True, stop_flag=stop)

    asyncio.run(main())
    _say(phase="exit", recorded=len(drifted), **_memory())


def run_driftbot(objects: int, kubeconfig: str) -> None:
    """`driftbot run`'s service with a console receiver to /dev/null."""
    from bot.app.service import open_service
    from config.schema import Config

    _say(phase="imported", **_memory())
    config = Config.model_validate(
        {
            "clusters": [{"name": "bench", "kubeconfig": kubeconfig}],
            "receivers": [{"name": "null", "console": {"format": "jsonl"}}],
            "routes": [{"receivers": ["null"]}],
            "policy": {"grace": "0s", "group_wait": "0s"},
        }
    )

    async def main() -> None:
        with (
            tempfile.TemporaryDirectory() as tmp,
            open(os.devnull, "w") as devnull,  # noqa: ASYNC230 - opening /dev/null
        ):
            async with open_service(config, Path(tmp) / "state.sqlite", stream=devnull) as service:
                await _until(lambda: not service.not_ready())
                _say(phase="synced", at=time.monotonic(), **_memory())
                detected = service.pipeline.detected
                await _until(lambda: detected[("drift_detected", "argocd")] >= objects)
                _say(phase="done", at=time.monotonic(), **_memory())
                sent = service.pipeline.stats["sent"]
        _say(phase="exit", recorded=detected[("drift_detected", "argocd")], sent=sent, **_memory())

    asyncio.run(main())


# -- the driver: the fake server, the burst, the figures ----------------------------------------


def _apps(count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(synced, out of sync) states of `count` Applications of production size."""
    from bench.common import _grow
    from tests.builders_argocd import argocd_app

    synced = _grow(argocd_app("PLACEHOLDER"))
    drifted = _grow(
        argocd_app(
            "PLACEHOLDER", sync="OutOfSync", out_of_sync=[("Deployment", "default", "PLACEHOLDER")]
        )
    )
    template = (json.dumps(synced), json.dumps(drifted))
    out = []
    for i in range(count):
        name, namespace = f"app-{i:05d}", f"team-{i % NAMESPACES}"
        pair = []
        for text in template:
            obj = json.loads(text.replace("PLACEHOLDER", name))
            obj["metadata"]["namespace"] = namespace
            pair.append(obj)
        out.append((pair[0], pair[1]))
    return out


async def _lines(stream: asyncio.StreamReader) -> dict[str, Any]:
    while True:
        raw = await stream.readline()
        if not raw:
            raise RuntimeError("the consumer exited early (see its stderr above)")
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if isinstance(message, dict) and "phase" in message:
            return message


async def measure(
    consumer: str, apps: list[tuple[dict[str, Any], dict[str, Any]]]
) -> dict[str, Any]:
    from bench._kube_fake import OperatorFakeKubeAPI, fast_copies

    fast_copies()
    api = OperatorFakeKubeAPI(versions={GROUP: VERSION})
    async with api:
        api.install_crd(GROUP, PLURAL, kind="Application")
        for synced, _ in apps:
            api.put(copy.deepcopy(synced))
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = api.write_kubeconfig(Path(tmp) / "kubeconfig")
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--child",
                consumer,
                "--objects",
                str(len(apps)),
                "--kubeconfig",
                str(kubeconfig),
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            )
            assert child.stdout is not None
            started = time.monotonic()
            imported = await _lines(child.stdout)
            synced_msg = await _lines(child.stdout)
            # kopf writes its last-handled state to every object it handled: wait until quiet.
            quiet_since, patches = time.monotonic(), api.patches
            while time.monotonic() - quiet_since < 1.0:
                await asyncio.sleep(0.1)
                if api.patches != patches:
                    quiet_since, patches = time.monotonic(), api.patches
            sync_seconds = time.monotonic() - started
            patches_before, requests_before = api.patches, len(api.requests)
            for _, drifted in apps:
                api.put(drifted)
            burst_at = time.monotonic()
            done = await _lines(child.stdout)
            final = await _lines(child.stdout)
            await child.wait()
    seconds = done["at"] - burst_at
    return {
        "consumer": consumer,
        "events": len(apps),
        "seconds": seconds,
        "rate": len(apps) / seconds,
        "sync_seconds": sync_seconds,
        "rss_imported": imported["VmRSS"],
        "rss_synced": synced_msg["VmRSS"],
        "peak": final["VmHWM"],
        "recorded": final["recorded"],
        "patches_sync": patches_before,
        "patches_burst": api.patches - patches_before,
        "requests_burst": len(api.requests) - requests_before,
        "unserved": dict(api.unserved),
    }


async def main(objects: int) -> None:
    apps = _apps(objects)
    results = [await measure(consumer, apps) for consumer in ("kopf", "driftbot")]
    print(f"Argo CD Applications: {objects} (about 15 KB each), one drift each, all at once")
    print(f"cores: {os.cpu_count()}, load average (1 min): {os.getloadavg()[0]:.2f}")
    for r in results:
        print(
            f"{r['consumer']:>8}: {r['rate']:,.0f} events/s ({r['recorded']} drifts recorded, "
            f"last after {r['seconds']:.2f} s); peak RSS {r['peak']:.1f} MiB "
            f"(after imports: {r['rss_imported']:.1f} MiB, synced: {r['rss_synced']:.1f} MiB, "
            f"sync took {r['sync_seconds']:.1f} s); "
            f"PATCHes: {r['patches_sync']} at sync, {r['patches_burst']} in the burst"
        )
        if r["unserved"]:
            print(f"          requests the fake did not serve: {r['unserved']}")
    kopf, bot = results
    print(
        f"driftbot/kopf: throughput x{bot['rate'] / kopf['rate']:.2f} (goal: >= 3), "
        f"peak RSS x{bot['peak'] / kopf['peak']:.2f} (goal: < 1)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--child", choices=("kopf", "driftbot"), help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child == "kopf":
        run_kopf(options.objects)
    elif options.child == "driftbot":
        run_driftbot(options.objects, options.kubeconfig)
    elif importlib.util.find_spec("kopf") is None:
        sys.exit("kopf is not installed: run this with python3 tasks.py bench (the bench extra)")
    else:
        asyncio.run(main(options.objects))
