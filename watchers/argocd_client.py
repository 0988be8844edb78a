"""The Argo CD API server as a client sees it: its base URL and token (from the environment,
never logged), requests under a time limit with the server's own error message, and the errors
it answers with (401 and 403 apart, and grpc-gateway's error lines mapped to HTTP statuses).
The loop that keeps its Applications in view is watchers/argocd_api.py.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import yarl

from config.schema import ArgoCDApiConfig

API_VERSION = "argoproj.io/v1alpha1"
KIND = "Application"

RawApp = dict[str, Any]
Query = list[tuple[str, str]]

_GRPC_TO_HTTP = {3: 400, 5: 404, 7: 403, 14: 503, 16: 401}
"""gRPC codes an error line may carry instead of an HTTP status (grpc-gateway)."""


class ArgoCDApiError(Exception):
    """The API server answered with an error status, an error line, or something unreadable."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


class MissingToken(ValueError):
    """The environment variable that should hold the API token is unset or empty."""


class Unauthorized(ArgoCDApiError):
    """401 or 403: the token is missing, expired, revoked, or lacks the RBAC to list apps."""


def error_from(status: int, body: bytes) -> ArgoCDApiError:
    """The error for a failed request, with the server's message (runtimeError body) if any."""
    message = ""
    with contextlib.suppress(orjson.JSONDecodeError):
        parsed = orjson.loads(body or b"")
        if isinstance(parsed, dict):
            text = parsed.get("message") or parsed.get("error")
            message = text if isinstance(text, str) else ""
    if not message:
        message = body.decode("utf-8", "replace").strip()
    message = message[:300] or "no message"
    error_class = Unauthorized if status in (401, 403) else ArgoCDApiError
    return error_class(status, message)


def error_from_line(error: object) -> ArgoCDApiError:
    """The error an `{"error": {...}}` stream line reports (grpc-gateway v1 or v2 shape)."""
    fields = error if isinstance(error, Mapping) else {}
    status = fields.get("http_code")
    if not isinstance(status, int):
        code = fields.get("grpc_code", fields.get("code"))
        status = _GRPC_TO_HTTP.get(code, 500) if isinstance(code, int) else 500
    message = fields.get("message")
    text = message[:300] if isinstance(message, str) and message else "error in the stream"
    error_class = Unauthorized if status in (401, 403) else ArgoCDApiError
    return error_class(status, text)


def as_application(app: RawApp) -> RawApp:
    """The app with the `apiVersion` and `kind` the API server may leave out (in place)."""
    if not isinstance(app.get("apiVersion"), str):
        app["apiVersion"] = API_VERSION
    if not isinstance(app.get("kind"), str):
        app["kind"] = KIND
    return app


class ArgoCDApi:
    """The HTTP side of one Argo CD API server: its URL, the bearer token, one session.

    The token goes only into the Authorization header: it is in no log line, message or repr.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        cluster: str,
        token_env: str = "",
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | bool | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.cluster = cluster
        self.token_env = token_env
        """The environment variable the token came from, to name it in error messages."""
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._session = session
        self._own_session = session is None
        self._ssl = ssl_context

    @classmethod
    def from_config(
        cls,
        config: ArgoCDApiConfig,
        *,
        environ: Mapping[str, str] = os.environ,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | bool | None = None,
    ) -> ArgoCDApi:
        """The API of an `argocd_api` config entry; MissingToken if its token_env is unset."""
        token = environ.get(config.token_env, "").strip()
        if not token:
            raise MissingToken(
                f"argocd_api for cluster {config.cluster!r}: environment variable "
                f"{config.token_env} is not set (it must hold an Argo CD API token)"
            )
        return cls(
            config.url,
            token,
            cluster=config.cluster,
            token_env=config.token_env,
            session=session,
            ssl_context=ssl_context,
        )

    def __repr__(self) -> str:
        return f"ArgoCDApi(cluster={self.cluster!r}, url={self.url!r})"

    def url_for(self, *segments: str) -> yarl.URL:
        """The URL of a path below the server's base URL; each segment is quoted whole."""
        path = "/".join(quote(segment, safe="") for segment in segments)
        return yarl.URL(f"{self.url}/{path}", encoded=True)

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def request(
        self, segments: Sequence[str], query: Query, *, limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """GET a path; the response if it is a 200, else the ArgoCDApiError it describes."""
        response = await self._session_or_new().get(
            self.url_for(*segments),
            params=query,
            headers=self._headers,
            timeout=limits,
            ssl=self._ssl if self._ssl is not None else True,
            allow_redirects=False,
        )
        if response.status != 200:
            try:
                body = await response.read()
            finally:
                response.release()
            raise error_from(response.status, body)
        return response

    async def close(self) -> None:
        """Close the session if this object opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None
