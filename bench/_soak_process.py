"""`driftbot run` as a child process of the soak (bench/_soak.py): started, SIGKILLed, stopped
as Kubernetes stops a pod, asked whether it is ready, and its RSS read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

import aiohttp

from bench._soak_fork import ForkServer
from tests.fakes.slack_api import VALID_TOKEN

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for row in status:
                if row.startswith("VmRSS:"):
                    return int(row.split()[1]) / 1024
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """`driftbot run` as a child process, its stderr appended to `log`: started from scratch
    (`python -m bot.app.cli run`), or forked from a `ForkServer` that has the imports done (quick
    restarts for short runs; each is still a process of its own, killed for real)."""

    def __init__(
        self, config_path: Path, state_path: Path, log: Path, port: int, *, fork: bool = False
    ) -> None:
        self.config_path = config_path
        self.state_path = state_path
        self.log = log
        self.port = port
        self.fork = fork
        self.incarnation = 0
        self.pid = 0
        self._wait: Callable[[], Awaitable[int]] | None = None
        self._code: int | None = None
        self._server: ForkServer | None = None
        self._log_file: IO[bytes] | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTBOT_", "SLACK_"))}
        self.env = {
            **env,
            "SLACK_BOT_TOKEN": VALID_TOKEN,
            "SLACK_SIGNING_SECRET": "soak-signing-secret",
            "PYTHONPATH": str(ROOT),
        }

    @property
    def running(self) -> bool:
        return self._wait is not None and self._code is None

    async def start(self) -> None:
        args = ["run", "--config", str(self.config_path), "--state", str(self.state_path)]
        self._code = None
        if self.fork:
            if self._server is None:
                self._log_file = self.log.open("ab")
                self._server = await ForkServer(self.env, stderr=self._log_file).__aenter__()
            child = await self._server.spawn(args)
            self.pid, self._wait = child.pid, child.wait
        else:
            with self.log.open("ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot.app.cli",
                    *args,
                    cwd=ROOT,
                    env=self.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log,
                )
            self.pid, self._wait = proc.pid, proc.wait
        self.incarnation += 1

    async def _ended(self) -> int:
        assert self._wait is not None
        self._code = await self._wait()
        return self._code

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        await self._ended()

    async def stop(self, within: float = 60.0) -> int:
        """SIGTERM, as Kubernetes stops a pod; SIGKILL if it does not end within `within`."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self._ended(), within)
            except TimeoutError:
                await self.kill()
        return -1 if self._code is None else self._code

    async def close(self) -> None:
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
            self._server = None
        if self._log_file is not None:
            self._log_file.close()

    async def ready(self, session: aiohttp.ClientSession) -> bool:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                return response.status == 200
        return False
