"""The HTTP side of `driftbot run`: one aiohttp application on `server.port`.

- `/healthz`: 200 while the process runs;
- `/readyz`: 200 once every source has listed at least once, else 503 naming the others;
- `/metrics`: Prometheus text, from a registry of our own (bot/metrics.py lists every family);
- `/webhooks/flux`: Flux notification-controller (see bot/flux_receiver.py);
- `/webhooks/teams`: Teams outgoing webhook questions, when `teams.outgoing_webhook_secret_env`
  is set (bot/teams_inbound.py);
- `/slack/events`: Slack's HTTP mode, when `slack.mode` is `http` (bot/slack_app.py).

With SLACK_BOT_TOKEN set, the Slack app (slash command, buttons, App Home) runs beside the
watches: over Socket Mode (SLACK_APP_TOKEN) by default, or at /slack/events in HTTP mode.

The service (watches, pipeline, store) lives in the application's cleanup context: it starts
with the server and is stopped, its state saved, when the server shuts down. `serve` runs it
until SIGTERM or SIGINT and returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from bot.controls import PolicyControls
from bot.flux_receiver import FLUX_WEBHOOK_PATH, FluxWebhook, WebhookConfigError, token_from_env
from bot.metrics import METRICS, ServiceCollector
from bot.outbox import Deadline
from bot.service import Service, ServiceError, open_service
from bot.slack_app import SlackAppError, SlackBot, add_slack_routes, create_slack_bot
from bot.slack_receiver import SlackReceiver
from bot.teams_inbound import TeamsInboundError, add_teams_route, secret_from_env
from bot.teams_receiver import TeamsReceiver
from config.schema import Config

__all__ = ["SERVICE", "ServiceCollector", "create_app", "serve"]

logger = logging.getLogger(__name__)

SERVICE = web.AppKey("service", Service)
WEBHOOK = web.AppKey("flux_webhook", FluxWebhook)
REGISTRY = web.AppKey("registry", CollectorRegistry)
COLLECTOR = web.AppKey("collector", ServiceCollector)
SLACK_BOT = web.AppKey("slack_bot", SlackBot)

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    waiting = request.app[SERVICE].not_ready()
    if waiting:
        return web.json_response({"status": "waiting", "not_ready": waiting}, status=503)
    return web.json_response({"status": "ready"})


async def _metrics(request: web.Request) -> web.Response:
    await request.app[COLLECTOR].refresh()
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_METRICS})


async def _flux(request: web.Request) -> web.Response:
    return await request.app[WEBHOOK].handle(request)


def create_app(
    config: Config,
    state_path: Path,
    *,
    environ: Mapping[str, str] = os.environ,
    **service_options: Any,
) -> web.Application:
    """The application; the service starts and stops with it (`service_options` go to
    `open_service`: clock, stream, watcher_options, ...). Raises ServiceError when the Flux
    webhook token is named but not set."""
    try:
        token = token_from_env(config, environ)
        teams_key = secret_from_env(config, environ)
    except (WebhookConfigError, TeamsInboundError) as exc:
        raise ServiceError(str(exc)) from None
    slack_token = environ.get("SLACK_BOT_TOKEN", "").strip()

    async def service_context(app: web.Application) -> AsyncIterator[None]:
        async with open_service(config, state_path, environ=environ, **service_options) as service:
            webhook = FluxWebhook(
                service.gate.notify,
                token=token,
                clusters=[c.name for c in config.clusters],
                clock=service.clock,
            )
            collector = ServiceCollector(service, webhook)
            registry = CollectorRegistry(auto_describe=False)
            registry.register(collector)
            registry.register(METRICS)
            app[SERVICE] = service
            app[WEBHOOK] = webhook
            app[REGISTRY] = registry
            app[COLLECTOR] = collector
            if slack_token:
                app[SLACK_BOT] = await _start_slack(config, service, slack_token, environ)
            logger.info(
                "watching %d clusters (%d watches); Flux webhook %s",
                len(config.clusters),
                len(service.resources) + len(service.extra_sources),
                "signed (generic-hmac)" if token else "unsigned (generic)",
            )
            try:
                yield
            finally:
                if SLACK_BOT in app:
                    await app[SLACK_BOT].close()

    app = web.Application(client_max_size=2 << 20)
    app.cleanup_ctx.append(service_context)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post(FLUX_WEBHOOK_PATH, _flux)
    if teams_key is not None:
        add_teams_route(
            app, teams_key, config, lambda: app[SERVICE].pipeline if SERVICE in app else None
        )
    if slack_token and config.slack.mode == "http":
        add_slack_routes(app, lambda: app.get(SLACK_BOT))
    return app


async def _start_slack(
    config: Config, service: Service, bot_token: str, environ: Mapping[str, str]
) -> SlackBot:
    """The Slack app on the running pipeline: commands read its states, mutes and acks change
    its policy state under the same lock as every observation."""
    pipeline = service.pipeline
    try:
        bot = create_slack_bot(
            config,
            bot_token=bot_token,
            signing_secret=environ.get("SLACK_SIGNING_SECRET", "").strip() or None,
            fleet=pipeline,
            audit=pipeline.store,
            controls=PolicyControls(pipeline, service.gate.lock),
            clock=service.clock,
        )
        if config.slack.mode == "socket":
            app_token = environ.get("SLACK_APP_TOKEN", "").strip()
            if not app_token:
                raise SlackAppError(
                    "slack.mode is socket: set SLACK_APP_TOKEN (an app-level token, xapp-...)"
                )
            await bot.start_socket_mode(app_token)
    except SlackAppError as exc:
        raise ServiceError(str(exc)) from None
    bot.start()
    logger.info("Slack app running (%s mode, command %s)", config.slack.mode, config.slack.command)
    return bot


def _flush_within(service: Service | None) -> None:
    """From now, the chat receivers have `server.shutdown_timeout` between them to send what
    is in the outbox (their closes, after the watches stop, share the deadline); the rest
    stays queued for the next start."""
    if service is None:
        return
    timeout = service.pipeline.config.server.shutdown_timeout.total_seconds()
    deadline = Deadline(timeout)
    for receiver in service.pipeline.receivers.values():
        if isinstance(receiver, SlackReceiver | TeamsReceiver):
            receiver.close_deadline = deadline
    logger.info("stopping: sending what is in the outbox for at most %.0f s", timeout)


async def serve(
    config: Config,
    state_path: Path,
    *,
    host: str = "0.0.0.0",
    port: int | None = None,
    stop: asyncio.Event | None = None,
    on_started: Callable[[int], None] | None = None,
    **service_options: Any,
) -> int:
    """Run until SIGTERM/SIGINT (or `stop` is set): watches stopped, state saved, 0 returned.

    `port` overrides server.port (0 picks a free one); `on_started` gets the bound port once
    the server listens."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    app = create_app(config, state_path, **service_options)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, config.server.port if port is None else port)
        await site.start()
        ports = [a[1] for a in runner.addresses if isinstance(a, tuple)]
        logger.info("listening on port %s", ports[0] if ports else "?")
        if on_started is not None:
            on_started(ports[0] if ports else 0)
        await stop.wait()
        logger.info("stopping: closing the watches and saving state")
        _flush_within(app.get(SERVICE))
    finally:
        await runner.cleanup()
        for sig in handled:
            loop.remove_signal_handler(sig)
    return 0
