"""The HTTP side of `driftbot run`: one aiohttp application on `server.port`.

- `/healthz`: 200 while the process runs;
- `/readyz`: 200 once every source has listed at least once, else 503 naming the others;
- `/metrics`: Prometheus text, from a registry of our own (pipeline and watcher counters,
  read at scrape time, so nothing is counted twice);
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
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.controls import PolicyControls
from bot.flux_receiver import FLUX_WEBHOOK_PATH, FluxWebhook, WebhookConfigError, token_from_env
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
SLACK_BOT = web.AppKey("slack_bot", SlackBot)

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


class ServiceCollector(Collector):
    """Prometheus metrics read from the service's counters at scrape time."""

    def __init__(self, service: Service, webhook: FluxWebhook | None = None) -> None:
        self._service = service
        self._webhook = webhook

    def collect(self) -> Iterator[Metric]:
        pipeline = self._service.pipeline
        stats = pipeline.stats

        events = CounterMetricFamily(
            "driftbot_events", "GitOps events detected", labels=["kind", "tool"]
        )
        for (kind, tool), count in sorted(pipeline.detected.items()):
            events.add_metric([kind, tool], count)
        yield events

        yield CounterMetricFamily(
            "driftbot_notifications", "Notifications sent to receivers", value=stats["sent"]
        )
        yield CounterMetricFamily(
            "driftbot_rejected", "Inputs the normalizers refused", value=stats["rejected"]
        )
        suppressions = CounterMetricFamily(
            "driftbot_suppressions", "Events the policy kept quiet", labels=["reason"]
        )
        held = CounterMetricFamily(
            "driftbot_holds", "Events the policy held back", labels=["reason"]
        )
        for key, count in sorted(stats.items()):
            action, _, reason = key.partition(".")
            if action == "suppress":
                suppressions.add_metric([reason], count)
            elif action == "hold":
                held.add_metric([reason], count)
        yield suppressions
        yield held

        names = ["cluster", "resource"]
        relists = CounterMetricFamily(
            "driftbot_watch_relists", "Relists after the first", labels=names
        )
        reconnects = CounterMetricFamily(
            "driftbot_watch_reconnects", "Watches resumed from a resourceVersion", labels=names
        )
        received = CounterMetricFamily(
            "driftbot_watch_events", "Watch events received", labels=names
        )
        errors = CounterMetricFamily("driftbot_watch_errors", "Watch failures", labels=names)
        synced = GaugeMetricFamily(
            "driftbot_source_ready", "1 once the source has listed", labels=names
        )
        for resource in self._service.resources:
            where = [resource.cluster, resource.watched.name]
            counters = resource.watcher.counters
            relists.add_metric(where, counters.relists)
            reconnects.add_metric(where, counters.reconnects)
            received.add_metric(where, counters.events)
            errors.add_metric(where, counters.errors)
            synced.add_metric(where, 1.0 if resource.ready else 0.0)
        for source in self._service.extra_sources:
            where = [str(getattr(source, "cluster", "")), source.task_name]
            source_counters: Any = getattr(source, "counters", None)
            if source_counters is not None:
                relists.add_metric(where, getattr(source_counters, "relists", 0))
                reconnects.add_metric(where, getattr(source_counters, "reconnects", 0))
                received.add_metric(where, getattr(source_counters, "events", 0))
                errors.add_metric(where, getattr(source_counters, "errors", 0))
            synced.add_metric(where, 1.0 if source.synced.is_set() else 0.0)
        yield from (relists, reconnects, received, errors, synced)

        ignored = CounterMetricFamily(
            "driftbot_events_ignored",
            "Kubernetes Events about objects other than Argo CD's and Flux's",
            labels=["cluster"],
        )
        for cluster, count in sorted(self._service.ignored_events.items()):
            ignored.add_metric([cluster], count)
        yield ignored

        if self._webhook is not None:
            webhooks = CounterMetricFamily(
                "driftbot_flux_webhooks", "Flux webhook requests", labels=["outcome"]
            )
            webhooks.add_metric(["accepted"], self._webhook.accepted)
            webhooks.add_metric(["refused"], self._webhook.refused)
            yield webhooks


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    waiting = request.app[SERVICE].not_ready()
    if waiting:
        return web.json_response({"status": "waiting", "not_ready": waiting}, status=503)
    return web.json_response({"status": "ready"})


async def _metrics(request: web.Request) -> web.Response:
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
            registry = CollectorRegistry(auto_describe=False)
            registry.register(ServiceCollector(service, webhook))
            app[SERVICE] = service
            app[WEBHOOK] = webhook
            app[REGISTRY] = registry
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
