"""A real `driftbot run` on loopback for the attack tests: its config file, its port, what it
logs, and the ways an outsider talks to it (HTTP requests, raw socket writes, SIGHUP)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from tests.bot.run_process import start_driftbot_run
from tests.bot.test_server import _free_port

HOST = "127.0.0.1"


class LiveRun:
    """`async with LiveRun(tmp_path, config, env) as run:` starts the process, waits until it
    is ready, and on exit stops it with SIGTERM (`code` is its exit status)."""

    def __init__(self, tmp_path: Path, config: dict[str, Any], env: dict[str, str]) -> None:
        self.config_file = tmp_path / "driftbot.yaml"
        self.state = tmp_path / "state.sqlite"
        self.config = config
        self.env = env
        self.port = _free_port()
        self.logged: list[str] = []
        self.stdout = b""
        self.code: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Future[Any]] = []
        self._http: aiohttp.ClientSession | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def stderr(self) -> str:
        return "".join(self.logged)

    async def __aenter__(self) -> LiveRun:
        self.config_file.write_text(yaml.safe_dump(self.config))
        env = {
            **os.environ,
            "DRIFTBOT_SERVER__PORT": str(self.port),
            "DRIFTBOT_SERVER__HOST": HOST,
            "DRIFTBOT_LOG_FORMAT": "text",
            **self.env,
        }
        self._proc = await start_driftbot_run(self.config_file, self.state, env)
        self._readers = [
            asyncio.ensure_future(self._read_stderr()),
            asyncio.ensure_future(self._read_stdout()),
        ]
        self._http = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(40):
                while True:
                    if self._proc.returncode is not None:
                        raise AssertionError(f"driftbot run exited: {self.stderr[-2000:]}")
                    try:
                        async with self._http.get(self.base + "/readyz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.05)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        if self._http is not None:
            await self._http.close()
        if proc is None:
            return
        try:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                async with asyncio.timeout(40):
                    self.code = await proc.wait()
            await asyncio.gather(*self._readers)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for line in self._proc.stderr:
            self.logged.append(line.decode(errors="replace"))

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        self.stdout = await self._proc.stdout.read()

    async def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """POST `body`; the status and the answer (JSON when it is JSON)."""
        assert self._http is not None
        async with self._http.post(self.base + path, data=body, headers=headers or {}) as r:
            text = await r.read()
        try:
            return r.status, orjson.loads(text)
        except orjson.JSONDecodeError:
            return r.status, text.decode(errors="replace")

    async def until_logged(self, text: str, within: float = 20) -> str:
        """The first line logged that holds `text` (waiting for it)."""
        async with asyncio.timeout(within):
            while True:
                for line in self.logged:
                    if text in line:
                        return line
                await asyncio.sleep(0.02)

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Write a new config file and send SIGHUP."""
        assert self._proc is not None
        self.config = config
        self.config_file.write_text(yaml.safe_dump(config))
        self._proc.send_signal(signal.SIGHUP)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(HOST, self.port)


def request_head(path: str, length: int, headers: dict[str, str]) -> bytes:
    """An HTTP/1.1 POST's request line and headers, as bytes on the wire."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_status(reader: asyncio.StreamReader) -> int:
    """The status code of the answer on a raw connection."""
    line = await reader.readline()
    return int(line.split()[1])
