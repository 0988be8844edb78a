"""A PostgreSQL server for the tests, and a fresh database per test: the `postgres_dsn` fixture.

`postgres_dsn` (function scope) is the DSN (`postgresql://…`) of a new, empty database, dropped
after the test. The server behind it is found once per test session:

1. `DRIFTBOT_TEST_POSTGRES_DSN`: a DSN of a running server whose user may create databases;
2. else PostgreSQL's binaries (`pg_config --bindir`, /usr/lib/postgresql/*/bin): a throw-away
   cluster (initdb, pg_ctl) in a temporary directory, listening on a free loopback port, with
   durability off (fsync) since nothing in it outlives the session; as root it runs as the
   `postgres` user, since initdb refuses root;
3. else the tests that need it are skipped, saying why, or fail when `CI` is set, so that CI
   never passes without having run them (`.ci/postgres` installs the binaries).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

__all__ = ["PostgresServer", "postgres_dsn", "postgres_server", "store_location"]

ENV_DSN = "DRIFTBOT_TEST_POSTGRES_DSN"
_names = itertools.count(1)
_INITDB_OPTIONS = ["-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C"]


@dataclass(frozen=True)
class PostgresServer:
    """A server the tests may create databases on; `admin_dsn` names its `postgres` database."""

    admin_dsn: str

    def dsn_of(self, database: str) -> str:
        parts = urlsplit(self.admin_dsn)
        return urlunsplit(parts._replace(path=f"/{database}"))


def find_bindir() -> Path | None:
    """The directory of initdb and pg_ctl, or None."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root, and runuser is missing to run PostgreSQL as postgres")
    return [runuser, "-u", "postgres", "--", *argv]


@contextlib.contextmanager
def _local_server(bindir: Path) -> Iterator[PostgresServer]:
    """A cluster of its own in a temporary directory, stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="driftbot-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    run = dict(capture_output=True, text=True, timeout=120, check=True)
    try:
        subprocess.run(
            _as_server_user(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", *_INITDB_OPTIONS]
            ),
            **run,  # type: ignore[call-overload]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        subprocess.run(
            _as_server_user(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "start"]
            ),
            **run,  # type: ignore[call-overload]
        )
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:]
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"cannot start PostgreSQL from {bindir}: {detail}") from None
    try:
        yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is needed in CI: {reason} (run .ci/postgres first)")
    pytest.skip(f"no PostgreSQL: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (see the module docstring)."""
    given = os.environ.get(ENV_DSN, "").strip()
    if given:
        yield PostgresServer(given)
        return
    bindir = find_bindir()
    if bindir is None:
        _unavailable(f"no initdb/pg_ctl found and {ENV_DSN} is not set")
    assert bindir is not None
    try:
        server = _local_server(bindir)
        started = server.__enter__()
    except RuntimeError as exc:
        _unavailable(str(exc))
        raise
    try:
        yield started
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
async def postgres_dsn(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The DSN of a new, empty database on the session's server, dropped after the test."""
    name = f"driftbot_test_{os.getpid()}_{next(_names)}"
    admin = await asyncpg.connect(postgres_server.admin_dsn, timeout=30)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield postgres_server.dsn_of(name)
    finally:
        admin = await asyncpg.connect(postgres_server.admin_dsn, timeout=30)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a test's store is, once per backend: a SQLite file, then a PostgreSQL database
    (the latter skipped, or failed in CI, without a server)."""
    if request.param == "sqlite":
        return tmp_path / "s.sqlite"
    dsn = request.getfixturevalue("postgres_dsn")
    assert isinstance(dsn, str)
    return dsn
