"""What the inbound webhooks (Flux, Teams) share at the HTTP edge: the body read under a cap,
and errors answered as a small JSON body."""

from __future__ import annotations

from aiohttp import web


def problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def read_capped(request: web.Request, max_body: int) -> bytes | web.Response:
    """The raw body (signatures are over these exact bytes), or a 413 answer when it is larger
    than `max_body`: refused from Content-Length before reading, or after reading one byte more."""
    too_large = problem(413, f"body larger than {max_body} bytes")
    if request.content_length is not None and request.content_length > max_body:
        return too_large
    body = await request.content.read(max_body + 1)
    return too_large if len(body) > max_body else body
