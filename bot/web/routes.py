"""The status page's HTTP routes on `driftbot run`'s port (read-only, GET only):

- `/status`, `/status/<cluster>`, `/status/<cluster>/<namespace>/<name>`: HTML;
- `/status/_live`: server-sent events, one `data: <version>` line whenever what the page
  shows changed (checked twice a second), so a reader's page updates within a second or so;
- `/badge/<cluster>/<namespace>/<name>.svg`: sync and health as a badge;
- `/api/v1/apps`, `/api/v1/apps/<cluster>/<namespace>/<name>`: the same data as JSON.

The facts are the running pipeline's (app states, open alerts) and the audit log's (an app's
last 7 days); the words and pictures are drawn by formatters/status_*.py. While this replica
stands by (leader election) there are no facts: the pages answer 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from bot.pipeline.links import state_with_repository
from bot.pipeline.runner import Pipeline
from bot.store.store import StoreError
from bot.web.access import Gate, Reader, Refusal, may_see
from bot.web.changes import ChangeWatch
from config.schema import Config
from core.model import AppState
from core.problems import open_alerts, problems_since
from formatters import status_html as html
from formatters import status_json, status_timeline
from formatters import status_svg as svg
from formatters import status_view as view
from formatters import status_words as say
from formatters.status_assets import CSP

__all__ = ["LIVE_PATH", "StatusSource", "add_status_routes"]

logger = logging.getLogger(__name__)

LIVE_PATH = html.LIVE_PATH
MAX_LISTENERS = 200
"""Readers following live updates at once; more are told to reload by hand (503)."""
KEEPALIVE_SECONDS = 15.0


class StatusSource(Protocol):
    """What the page reads: the running service's pipeline and clock."""

    @property
    def pipeline(self) -> Pipeline: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Admitted = Callable[[web.Request, StatusSource, "Reader | None"], Awaitable[web.StreamResponse]]
"""A page's handler, given the running service and who reads (None: no sign-in)."""

_HTML_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class StatusPages:
    def __init__(
        self,
        config: Config,
        source: Callable[[], StatusSource | None],
        environ: Mapping[str, str],
        poll_seconds: float,
    ) -> None:
        self.config = config
        self.gate = Gate(config.server.status, environ)
        self.source = source
        self.changes = ChangeWatch(lambda: s.pipeline if (s := source()) is not None else None)
        self.poll_seconds = poll_seconds
        self.listeners = 0
        self.closing = asyncio.Event()

    # --- the facts ---------------------------------------------------------------------------

    def _rbac(self, source: StatusSource) -> Any:
        return source.pipeline.config.rbac

    def _visible(self, source: StatusSource, reader: Reader | None) -> list[AppState]:
        rbac = self._rbac(source)
        states = source.pipeline.states
        return [
            state_with_repository(s, states)
            for s in states.values()
            if view.shown(s) and may_see(rbac, reader, s.cluster, s.namespace)
        ]

    def _fleet(
        self, source: StatusSource, reader: Reader | None
    ) -> tuple[list[view.ClusterView], datetime]:
        policy = source.pipeline.policy_state
        now = source.clock()
        clusters = view.fleet(
            self._visible(source, reader), problems_since(policy), open_alerts(policy), now
        )
        return clusters, now

    def _app(
        self, source: StatusSource, reader: Reader | None, address: Mapping[str, str]
    ) -> view.AppView | None:
        """The app the page address names (its cluster, namespace and name), if the reader
        may see it."""
        cluster, namespace, name = address["cluster"], address["namespace"], address["name"]
        clusters, _ = self._fleet(source, reader)
        for found in clusters:
            for app in found.apps:  # worst first: the worst of same-named apps wins
                key = app.key
                if (key.cluster, key.namespace, key.name) == (cluster, namespace, name):
                    return app
        return None

    async def _timeline(
        self, source: StatusSource, app: view.AppView, now: datetime
    ) -> tuple[list[status_timeline.TimelineEntry], list[status_timeline.Span]]:
        try:
            records = await source.pipeline.store.audit_about(app.key, now - status_timeline.WINDOW)
        except StoreError:
            logger.exception("status page: the audit log could not be read")
            records = []
        return status_timeline.timeline(reversed(records), app.key, now)

    # --- answers -----------------------------------------------------------------------------

    def admitted(self, handler: Admitted, *, badge: bool = False) -> Handler:
        """`handler` for a reader let in (with the running service and who reads); anyone
        else gets the refusal, and everyone gets a 503 while no service runs here."""

        async def handle(request: web.Request) -> web.StreamResponse:
            let = await self._let_in(request, badge=badge)
            if isinstance(let, web.Response):
                return let
            source, reader = let
            return await handler(request, source, reader)

        return handle

    async def _let_in(
        self, request: web.Request, *, badge: bool = False
    ) -> tuple[StatusSource, Reader | None] | web.Response:
        reader = await self.gate.reader(request, badge=badge)
        if isinstance(reader, Refusal):
            headers = {"Cache-Control": "no-store"}
            if reader.challenge:
                headers["WWW-Authenticate"] = f'Basic realm="{say.TITLE}", charset="UTF-8"'
            return web.Response(status=reader.status, text=reader.text + "\n", headers=headers)
        source = self.source()
        if source is None:
            return web.Response(
                status=503,
                text="driftbot is starting or stands by for the leader; try again shortly.\n",
                headers={"Retry-After": "5", "Cache-Control": "no-store"},
            )
        return source, reader

    def _page(self, text: str, status: int = 200) -> web.Response:
        return web.Response(
            status=status, text=text, content_type="text/html", headers=_HTML_HEADERS
        )

    def _not_found(self, now: datetime) -> web.Response:
        return self._page(html.message_page(say.NOT_FOUND_TITLE, say.NOT_FOUND, now), 404)

    async def fleet_page(
        self, request: web.Request, source: StatusSource, reader: Reader | None
    ) -> web.StreamResponse:
        version = self.changes.version()
        clusters, now = self._fleet(source, reader)
        scoped_out = reader is not None and self._rbac(source).scoped and not clusters
        return self._page(html.fleet_page(clusters, now, version=version, scoped_out=scoped_out))

    async def cluster_page(
        self, request: web.Request, source: StatusSource, reader: Reader | None
    ) -> web.StreamResponse:
        version = self.changes.version()
        clusters, now = self._fleet(source, reader)
        wanted = request.match_info["cluster"]
        found = next((c for c in clusters if c.name == wanted), None)
        if found is None:
            return self._not_found(now)
        return self._page(html.cluster_page(found, now, version=version))

    async def app_page(
        self, request: web.Request, source: StatusSource, reader: Reader | None
    ) -> web.StreamResponse:
        version = self.changes.version()
        now = source.clock()
        app = self._app(source, reader, request.match_info)
        if app is None:
            return self._not_found(now)
        entries, spans = await self._timeline(source, app, now)
        return self._page(html.app_page(app, entries, spans, now, version=version))

    async def badge(
        self, request: web.Request, source: StatusSource, reader: Reader | None
    ) -> web.StreamResponse:
        app = self._app(source, reader, request.match_info)
        headers = {"Cache-Control": "no-cache, max-age=0", "X-Content-Type-Options": "nosniff"}
        if app is None:
            body = svg.badge_svg(request.match_info["name"], [say.BADGE_UNKNOWN_APP])
            return web.Response(
                status=404, text=body, content_type="image/svg+xml", headers=headers
            )
        body = svg.badge_svg(app.key.name, list(view.badge_words(app)))
        return web.Response(text=body, content_type="image/svg+xml", headers=headers)

    def _absolute(self, data: dict[str, Any]) -> dict[str, Any]:
        base = (self.config.server.public_url or "").rstrip("/")
        if base:
            data["page"] = base + data["page"]
            data["badge"] = base + data["badge"]
        return data

    async def apps_json(
        self, request: web.Request, source: StatusSource, reader: Reader | None
    ) -> web.StreamResponse:
        clusters, now = self._fleet(source, reader)
        data = status_json.fleet_json(clusters, now)
        for cluster in data["clusters"]:
            cluster["apps"] = [self._absolute(a) for a in cluster["apps"]]
        return web.json_response(data, headers={"Cache-Control": "no-store"})

    async def app_json(
        self, request: web.Request, source: StatusSource, reader: Reader | None
    ) -> web.StreamResponse:
        app = self._app(source, reader, request.match_info)
        if app is None:
            return web.json_response({"error": say.NOT_FOUND}, status=404)
        now = source.clock()
        entries, _ = await self._timeline(source, app, now)
        data = self._absolute(status_json.app_json(app))
        data["timeline"] = status_json.timeline_json(entries)
        return web.json_response(data, headers={"Cache-Control": "no-store"})

    async def live(
        self, request: web.Request, source: StatusSource, reader: Reader | None
    ) -> web.StreamResponse:
        if self.listeners >= MAX_LISTENERS:
            return web.Response(status=503, text="Too many live readers; reload by hand.\n")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        self.listeners += 1
        try:
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            sent = ""
            quiet = 0.0
            while not self.closing.is_set():
                version = self.changes.version()
                if version != sent:
                    await response.write(f"data: {version}\n\n".encode())
                    sent, quiet = version, 0.0
                elif quiet >= KEEPALIVE_SECONDS:
                    await response.write(b": keepalive\n\n")
                    quiet = 0.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closing.wait(), self.poll_seconds)
                quiet += self.poll_seconds
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.listeners -= 1
        return response


def add_status_routes(
    app: web.Application,
    config: Config,
    source: Callable[[], StatusSource | None],
    environ: Mapping[str, str] = os.environ,
    *,
    poll_seconds: float = 0.5,
) -> None:
    """Serve the status page on `app` (when `server.status.enabled`). StatusConfigError when
    its sign-in cannot be set up (a users secret missing or malformed)."""
    if not config.server.status.enabled:
        return
    pages = StatusPages(config, source, environ, poll_seconds)
    if config.rbac.grants and config.server.status.auth == "none":
        logger.warning(
            "rbac.grants are set but server.status.auth is none: the status page knows no "
            "reader, so it shows every app (use basic or proxy to scope it)"
        )

    async def closing(_: web.Application) -> None:
        pages.closing.set()

    app.on_shutdown.append(closing)
    router = app.router
    admitted = pages.admitted
    router.add_get("/status", admitted(pages.fleet_page))
    router.add_get(LIVE_PATH, admitted(pages.live))
    router.add_get("/status/{cluster}", admitted(pages.cluster_page))
    router.add_get("/status/{cluster}/{namespace}/{name}", admitted(pages.app_page))
    router.add_get("/badge/{cluster}/{namespace}/{name}.svg", admitted(pages.badge, badge=True))
    router.add_get("/api/v1/apps", admitted(pages.apps_json))
    router.add_get("/api/v1/apps/{cluster}/{namespace}/{name}", admitted(pages.app_json))
