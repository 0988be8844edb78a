"""A fork server for `driftbot` commands: the imports are paid once, each command is a process.

Starting `python -m bot.app.cli` costs seconds of imports on a busy machine; a test that kills and
restarts the service ten times would spend most of its time importing. This server imports the
CLI once, then forks a child per command it is sent: each child is a real process of its own
(its own pid, memory and file descriptors; it can be sent SIGKILL), running `bot.app.cli.main`.

Protocol, one JSON value per line. In: `["replay", "FILE", "--state", ...]` (the arguments of
one command). Out: `{"ready": true}` once, then `{"started": PID}` for each command, and
`{"exited": PID, "code": N}` when a child ends (N negative: killed by signal -N). Children write
nothing to the protocol stream (their stdout is /dev/null); their stderr is the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _child(argv: list[str]) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    code = 1
    try:
        from bot.app.cli import main

        code = main(argv)
    finally:
        sys.stderr.flush()
        os._exit(code)


def _say(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve() -> None:
    import bot.app.cli  # noqa: F401 - the point: imported once, before any fork

    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ)
    children: set[int] = set()
    _say({"ready": True})
    open_input = True
    while open_input or children:
        if open_input and selector.select(timeout=0.02):
            line = sys.stdin.readline()
            if not line:
                open_input = False
                selector.unregister(sys.stdin)
            elif line.strip():
                pid = os.fork()
                if pid == 0:
                    _child(json.loads(line))
                children.add(pid)
                _say({"started": pid})
        elif not open_input:
            time.sleep(0.02)
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                _say({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


class Child:
    """One command's process, forked by the server."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def kill(self) -> None:
        """SIGKILL, unless it has already ended."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)

    def _end(self, code: int) -> None:
        self.returncode = code
        if not self._ended.done():
            self._ended.set_result(code)


class ForkServer:
    """The server as a child of this (asyncio) process: `spawn` runs a driftbot command."""

    def __init__(self, env: Mapping[str, str], stderr: IO[Any] | int | None = None) -> None:
        self._env = dict(env)
        self._stderr = stderr
        self._proc: asyncio.subprocess.Process | None = None
        self._started: asyncio.Queue[int] = asyncio.Queue()
        self._children: dict[int, Child] = {}
        self._ended: dict[int, int] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ForkServer:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench._soak_fork",
            cwd=ROOT,
            env=self._env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
        )
        assert self._proc.stdout is not None
        line = await self._proc.stdout.readline()
        if json.loads(line or b"{}").get("ready") is not True:
            raise RuntimeError("the driftbot fork server did not start")
        self._reader = asyncio.create_task(self._read(), name="fork-server-reader")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for child in self._children.values():
            child.kill()
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def spawn(self, argv: list[str]) -> Child:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(argv).encode() + b"\n")
        await self._proc.stdin.drain()
        child = Child(await self._started.get())
        self._children[child.pid] = child
        if child.pid in self._ended:
            child._end(self._ended.pop(child.pid))
        return child

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            message = json.loads(line)
            if "started" in message:
                self._started.put_nowait(int(message["started"]))
            elif "exited" in message:
                pid, code = int(message["exited"]), int(message["code"])
                if pid in self._children:
                    self._children[pid]._end(code)
                else:
                    self._ended[pid] = code


if __name__ == "__main__":
    serve()
