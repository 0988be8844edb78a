"""What every fake server shares: an aiohttp app served on a free 127.0.0.1 port for the time
of a test (`async with FakeX() as fake:`), and stopped with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self

from aiohttp import web

STREAMING: dict[str, Any] = {
    "shutdown_timeout": 1.0,
    "access_log": None,
    "handler_cancellation": True,
}
"""Runner options of a fake that streams (watches): like the real server, it notices a client
that went away and ends its stream."""


class LoopbackServer:
    """A fake server's life: `start()` builds its app and calls `serve`; `close()` lets go of
    anything still waiting and calls `stop_serving`."""

    _runner: web.AppRunner | None = None

    async def serve(self, app: web.Application, path: str = "", **runner_options: Any) -> str:
        """Serve `app` on a free loopback port: its URL, `http://127.0.0.1:PORT` and `path`."""
        self._runner = web.AppRunner(app, **runner_options)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}{path}"

    async def stop_serving(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def start(self) -> object:
        raise NotImplementedError

    async def close(self) -> None:
        await self.stop_serving()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


@asynccontextmanager
async def on_loopback(app: web.Application, **runner_options: Any) -> AsyncIterator[str]:
    """`app` served on a free loopback port for the time of the block: its base URL."""
    server = LoopbackServer()
    url = await server.serve(app, **runner_options)
    try:
        yield url
    finally:
        await server.stop_serving()
