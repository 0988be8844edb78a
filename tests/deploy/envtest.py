"""A real kube-apiserver and etcd for the tests where a fake could mislead (RBAC, here), started
the way controller-runtime's envtest starts them (../shared/envtest/README.md).

The binaries come from `KUBEBUILDER_ASSETS`, else from `../shared/envtest/install.sh` when it is
there. Without either the caller's test is skipped with the reason, except in CI (`CI=true`),
where a missing API server is a failure. Certificates are made with openssl: a serving
certificate for 127.0.0.1, a service-account signer, and an admin client certificate in
`system:masters`; authorization is RBAC, so every other identity has only what a Role grants.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.deploy.tools import ROOT

INSTALL = ROOT.parent / "shared" / "envtest" / "install.sh"


NO_ASSETS = "no kube-apiserver: set KUBEBUILDER_ASSETS (../shared/envtest/install.sh prints it)"


def find_assets() -> Path | None:
    """The folder holding kube-apiserver and etcd, if there is one (benches use this too)."""
    named = os.environ.get("KUBEBUILDER_ASSETS")
    if not named and INSTALL.exists():
        done = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            named = done.stdout.strip()
    if named and (Path(named) / "kube-apiserver").exists():
        return Path(named)
    return None


def assets() -> Path:
    """The folder holding kube-apiserver and etcd, or a skip (a failure in CI) saying why."""
    found = find_assets()
    if found is not None:
        return found
    why = NO_ASSETS
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _ca(key: Path, crt: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,digitalSignature",
        "-keyout", str(key), "-out", str(crt),
    )  # fmt: skip


def _leaf(ca_key: Path, ca_crt: Path, key: Path, crt: Path, subject: str, ext: str) -> None:
    request = _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", subject, "-keyout", str(key),
    )  # fmt: skip
    extensions = key.with_suffix(".ext")
    extensions.write_text(ext + "\n")
    _openssl(
        "x509", "-req", "-CA", str(ca_crt), "-CAkey", str(ca_key), "-set_serial",
        "0x" + os.urandom(16).hex(), "-days", "2", "-extfile", str(extensions),
        "-out", str(crt), stdin=request,
    )  # fmt: skip


@dataclass(frozen=True)
class ApiServer:
    url: str
    ca: Path
    kubeconfig: Path
    """An admin kubeconfig (client certificate in system:masters)."""
    client_cert: Path
    client_key: Path
    """The admin's client certificate and key, for clients that take no kubeconfig."""
    pids: tuple[int, ...] = ()
    """etcd's and kube-apiserver's process ids (benches read their CPU and memory)."""


def _wait(url: str, ca: Path | None, deadline: float, process: subprocess.Popen[bytes]) -> None:
    """Poll a starting process's health URL (a real process: there is no virtual time here)."""
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{process.args[0]} exited with {process.returncode}"
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2, context=context) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)  # waiting for a real process to come up, not for time to pass
    raise AssertionError(f"{url} did not come up")


@contextlib.contextmanager
def api_server(binaries: Path | None = None) -> Iterator[ApiServer]:
    """etcd and kube-apiserver on free loopback ports; both stopped and removed at the end.

    `binaries` is the folder of the two executables; by default `assets()` finds it (or skips).
    """
    binaries = binaries or assets()
    with tempfile.TemporaryDirectory(prefix="driftbot-envtest-") as tmp:
        work = Path(tmp)
        certs = work / "cert"
        certs.mkdir()
        _ca(work / "ca.key", work / "ca.crt", "serving-ca")
        _leaf(
            work / "ca.key",
            work / "ca.crt",
            certs / "apiserver.key",
            certs / "apiserver.crt",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        )
        _ca(certs / "sa-signer.key", certs / "sa-signer.crt", "sa-signer")
        _ca(work / "client-ca.key", certs / "client-ca.crt", "client-ca")
        _leaf(
            work / "client-ca.key",
            certs / "client-ca.crt",
            work / "admin.key",
            work / "admin.crt",
            "/O=system:masters/CN=admin",
            "extendedKeyUsage=clientAuth",
        )
        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        api_url = f"https://127.0.0.1:{api_port}"
        processes: list[subprocess.Popen[bytes]] = []
        try:
            with open(work / "etcd.log", "wb") as log:
                etcd = subprocess.Popen(
                    [
                        str(binaries / "etcd"), f"--data-dir={work / 'etcd'}",
                        f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                        f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                        f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                        "--unsafe-no-fsync=true",
                    ],
                    stdout=log, stderr=log,
                )  # fmt: skip
            processes.append(etcd)
            _wait(f"{etcd_url}/health", None, time.monotonic() + 30, etcd)
            with open(work / "kube-apiserver.log", "wb") as log:
                api = subprocess.Popen(
                    [
                        str(binaries / "kube-apiserver"), "--allow-privileged=true",
                        "--authorization-mode=RBAC", "--bind-address=127.0.0.1",
                        "--advertise-address=127.0.0.1", f"--cert-dir={certs}",
                        f"--client-ca-file={certs / 'client-ca.crt'}",
                        "--disable-admission-plugins=ServiceAccount",
                        f"--etcd-servers={etcd_url}", f"--secure-port={api_port}",
                        f"--service-account-issuer={api_url}/",
                        f"--service-account-key-file={certs / 'sa-signer.crt'}",
                        f"--service-account-signing-key-file={certs / 'sa-signer.key'}",
                        "--service-cluster-ip-range=10.0.0.0/24",
                    ],
                    stdout=log, stderr=log,
                )  # fmt: skip
            processes.append(api)
            _wait(f"{api_url}/readyz", work / "ca.crt", time.monotonic() + 60, api)
            kubeconfig = work / "kubeconfig"
            kubeconfig.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [
                            {
                                "name": "envtest",
                                "cluster": {
                                    "server": api_url,
                                    "certificate-authority": str(work / "ca.crt"),
                                },
                            }
                        ],
                        "users": [
                            {
                                "name": "admin",
                                "user": {
                                    "client-certificate": str(work / "admin.crt"),
                                    "client-key": str(work / "admin.key"),
                                },
                            }
                        ],
                        "contexts": [
                            {"name": "envtest", "context": {"cluster": "envtest", "user": "admin"}}
                        ],
                        "current-context": "envtest",
                    }
                )
            )
            yield ApiServer(
                api_url,
                work / "ca.crt",
                kubeconfig,
                work / "admin.crt",
                work / "admin.key",
                tuple(process.pid for process in processes),
            )
        finally:
            for process in reversed(processes):
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
