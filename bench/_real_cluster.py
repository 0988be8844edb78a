"""A real kube-apiserver with the Argo CD and Flux CRDs, filled fast, and processes measured
from outside: what the benches that run against a real API server share.

The API server and etcd are the ones the tests start (`tests.deploy.envtest.api_server`, the
envtest binaries of ../shared/envtest). The CRDs are the upstream ones of tests/fixtures/crds.
Objects are written with many requests in flight (one aiohttp session, the admin client
certificate): created, then their status written where the CRD has a /status subresource
(Flux; Argo CD's Application CRD has none, so its status is part of the object, as Argo CD
itself writes it). A consumer under test runs as a process of its own, and its CPU time
(user + system of all its threads, /proc/PID/stat) and memory (VmRSS, VmHWM of
/proc/PID/status) are read from outside, so wall time on a loaded machine does not enter the
comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.deploy.envtest import NO_ASSETS, ApiServer, api_server, find_assets  # noqa: E402

CRDS = ROOT / "tests" / "fixtures" / "crds"
_TICK = os.sysconf("SC_CLK_TCK")
_KEEP_META = ("name", "namespace", "labels", "annotations")


@contextlib.contextmanager
def real_api_server() -> Iterator[ApiServer]:
    """etcd and kube-apiserver from KUBEBUILDER_ASSETS (or ../shared/envtest/install.sh)."""
    binaries = find_assets()
    if binaries is None:
        sys.exit(NO_ASSETS)
    with api_server(binaries) as server:
        yield server


def uptime() -> str:
    """The machine's load averages, as `uptime` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (the peak) of a live process, in MiB."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for row in status:
            if row.startswith(("VmRSS:", "VmHWM:")):
                out[row.split(":")[0]] = int(row.split()[1]) / 1024
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def collection(obj: dict[str, Any]) -> str:
    """The URL path of the collection an object is created in."""
    plural = obj["kind"].lower() + "s"
    namespace = obj["metadata"]["namespace"]
    return f"/apis/{obj['apiVersion']}/namespaces/{namespace}/{plural}"


def for_create(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a client creates it: no resourceVersion, uid or other server fields."""
    meta = {k: v for k, v in obj["metadata"].items() if k in _KEEP_META}
    return {**obj, "metadata": meta}


class Cluster:
    """Writes to the API server with up to `parallel` requests in flight."""

    def __init__(self, server: ApiServer, parallel: int = 48) -> None:
        self.server = server
        context = ssl.create_default_context(cafile=str(server.ca))
        context.load_cert_chain(str(server.client_cert), str(server.client_key))
        self._session = aiohttp.ClientSession(
            base_url=server.url,
            connector=aiohttp.TCPConnector(ssl=context, limit=parallel),
        )
        self._gate = asyncio.Semaphore(parallel)
        self.requests = 0

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> Cluster:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def call(
        self, method: str, path: str, body: Any, content_type: str = "application/json"
    ) -> dict[str, Any]:
        async with self._gate:
            for attempt in range(20):
                async with self._session.request(
                    method, path, data=orjson.dumps(body), headers={"Content-Type": content_type}
                ) as answer:
                    text = await answer.read()
                    if answer.status == 429 or answer.status >= 500:
                        await asyncio.sleep(0.05 * (attempt + 1))  # the real server asks to wait
                        continue
                    if answer.status >= 300:
                        raise RuntimeError(f"{method} {path}: {answer.status} {text[:400]!r}")
                    self.requests += 1
                    result: dict[str, Any] = orjson.loads(text)
                    return result
        raise RuntimeError(f"{method} {path}: still refused after 20 attempts")

    async def get(self, path: str) -> dict[str, Any]:
        async with self._gate, self._session.get(path) as answer:
            answer.raise_for_status()
            result: dict[str, Any] = orjson.loads(await answer.read())
            return result

    async def install_crds(self, paths: Iterable[Path] | None = None) -> None:
        """Create the CRDs and wait until each is Established."""
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        names = []
        for path in paths or sorted(CRDS.glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            await self.call("POST", base, crd)
            names.append(crd["metadata"]["name"])
        for name in names:
            while True:
                got = await self.get(f"{base}/{name}")
                conditions = (got.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                await asyncio.sleep(0.1)  # a real server establishing the CRD

    async def namespaces(self, names: Iterable[str]) -> None:
        await asyncio.gather(
            *(
                self.call("POST", "/api/v1/namespaces", {"metadata": {"name": n}})
                for n in sorted(set(names))
            )
        )

    async def create(self, obj: dict[str, Any]) -> None:
        """Create an object, then write its status through /status where the CRD has one."""
        created = await self.call("POST", collection(obj), for_create(obj))
        if "status" in obj and created.get("status") != obj["status"]:
            await self.write_status(obj, obj["status"])

    async def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        """A merge patch of `status`: on /status for Flux kinds, on the object for Argo CD."""
        path = f"{collection(obj)}/{obj['metadata']['name']}"
        if obj["kind"] != "Application":
            path += "/status"
        await self.call("PATCH", path, {"status": status}, "application/merge-patch+json")

    async def create_all(self, objects: Iterable[dict[str, Any]]) -> float:
        """Create every object (namespaces first); returns the seconds it took."""
        objects = list(objects)
        started = time.monotonic()
        await self.namespaces(o["metadata"]["namespace"] for o in objects)
        await asyncio.gather(*(self.create(o) for o in objects))
        return time.monotonic() - started


async def wait_ready(port: int, process: asyncio.subprocess.Process, within: float) -> float:
    """Poll `driftbot run`'s /readyz until 200; returns time.monotonic() at the first 200."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"driftbot run exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/readyz") as answer:
                    if answer.status == 200:
                        return time.monotonic()
            await asyncio.sleep(0.02)  # polling a real process
    raise RuntimeError(f"driftbot run was not ready within {within} s")


async def wait_quiet(pid: int, window: float = 1.0, windows: int = 3, below: float = 0.02) -> float:
    """Wait until a process has used less than `below` CPU-s in each of `windows` windows in a
    row: it has handled everything it was sent. Returns its CPU seconds then."""
    quiet, last = 0, cpu_seconds(pid)
    while quiet < windows:
        await asyncio.sleep(window)  # sampling a real process's CPU time
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last < below else 0
        last = now
    return last


def driftbot_config(kubeconfig: Path, port: int, policy: dict[str, Any]) -> bytes:
    """`driftbot run`'s config: one cluster, every notification as a JSON line on stdout."""
    return orjson.dumps(
        {
            "clusters": [{"name": "bench", "kubeconfig": str(kubeconfig)}],
            "receivers": [{"name": "out", "console": {"format": "jsonl"}}],
            "routes": [{"receivers": ["out"]}],
            "policy": policy,
            "server": {"host": "127.0.0.1", "port": port},
        }
    )


async def start_driftbot(
    config: Path, state: Path, stdout: Path, stderr: Path
) -> asyncio.subprocess.Process:
    """`driftbot run` from the checkout (`python -m bot.app.cli run`), output to files."""
    with stdout.open("ab") as out, stderr.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.app.cli", "run", "--config", str(config),
            "--state", str(state), cwd=ROOT, stdout=out, stderr=err,
        )  # fmt: skip


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        await process.wait()


def fleet(apps: int) -> list[dict[str, Any]]:
    """The 10,000-app benches' apps (bench/common.py: 60 % Argo CD at production size, 25 %
    Kustomizations, 15 % HelmReleases), each in its first, healthy state."""
    from common import PLACEHOLDER, _states, kind_of, name_of  # type: ignore[import-not-found]

    states = {kind: texts[0] for kind, texts in _states().items()}
    placeholder = PLACEHOLDER.encode()
    return [
        orjson.loads(states[kind_of(i)].replace(placeholder, name_of(i).encode()))
        for i in range(apps)
    ]


async def measure_start(
    server: ApiServer, work: Path, state: Path, label: str, settle: float
) -> dict[str, Any]:
    """Start `driftbot run` on `state`: seconds from spawn to /readyz 200, CPU and RSS when
    ready and once quiet, notifications written after `settle` more seconds; then stop it."""
    port = free_port()
    config = work / f"{label}.json"
    config.write_bytes(
        driftbot_config(server.kubeconfig, port, {"grace": "2s", "group_wait": "0s"})
    )
    out, err = work / f"{label}.out", work / f"{label}.err"
    spawned = time.monotonic()
    process = await start_driftbot(config, state, out, err)
    try:
        ready_at = await wait_ready(port, process, within=600)
        ready = {"cpu": cpu_seconds(process.pid), **memory_mib(process.pid)}
        cpu_quiet = await wait_quiet(process.pid)
        quiet = memory_mib(process.pid)
        await asyncio.sleep(settle)  # pending problems are let out after the 2 s grace
        cpu_end = cpu_seconds(process.pid)
        end = memory_mib(process.pid)
    finally:
        await stop(process)
    alerts = sum(1 for line in out.read_bytes().splitlines() if line.strip())
    return {
        "label": label,
        "ready_s": ready_at - spawned,
        "cpu_ready": ready["cpu"],
        "rss_ready": ready["VmRSS"],
        "cpu_quiet": cpu_quiet,
        "rss_quiet": quiet["VmRSS"],
        "cpu_end": cpu_end,
        "rss_end": end["VmRSS"],
        "peak": end["VmHWM"],
        "alerts": alerts,
        "uptime": uptime(),
    }


async def filled_server_run(apps: int, starts: list[str], settle: float) -> dict[str, Any]:
    """A real API server with `apps` apps; `driftbot run` started once per label, one state."""
    import tempfile

    out: dict[str, Any] = {"apps": apps, "starts": []}
    with real_api_server() as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with Cluster(server) as cluster:
            await cluster.install_crds()
            out["fill_s"] = await cluster.create_all(fleet(apps))
            out["requests"] = cluster.requests
        out["uptime_filled"] = uptime()
        for label in starts:
            out["starts"].append(
                await measure_start(server, work, work / "state.sqlite", label, settle)
            )
    return out


async def metrics(port: int, names: Iterable[str]) -> dict[str, float]:
    """Each named counter of `driftbot run`'s /metrics (without `_total`), summed over its
    labels."""
    wanted = set(names)
    out = dict.fromkeys(wanted, 0.0)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as answer,
    ):
        for line in (await answer.text()).splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0].removesuffix("_total")
            if name in wanted:
                out[name] += float(line.rsplit(" ", 1)[1])
    return out
