"""What the inbound endpoints (Flux, Teams, Slack) share at the HTTP edge: the body read whole
under a cap and a deadline, and errors answered as a small JSON body."""

from __future__ import annotations

import asyncio

from aiohttp import web


def problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _closing(response: web.Response) -> web.Response:
    """An answer after which the connection is closed: the rest of the body is not read."""
    response.force_close()
    return response


async def read_capped(
    request: web.Request, max_body: int, within: float | None = None
) -> bytes | web.Response:
    """The raw body (signatures are over these exact bytes), however many pieces it arrives
    in; or a 413 answer when it is larger than `max_body` (refused from Content-Length before
    reading, or as soon as one byte more has arrived), or a 408 answer when it has not arrived
    whole within `within` seconds. A compressed body is capped after decompression."""
    if request.content_length is not None and request.content_length > max_body:
        return _closing(problem(413, f"body larger than {max_body} bytes"))
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(within):
            while True:
                chunk = await request.content.read(max_body + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > max_body:
                    return _closing(problem(413, f"body larger than {max_body} bytes"))
    except TimeoutError:
        return _closing(problem(408, f"the body did not arrive within {within:g} s"))
    return b"".join(chunks)
