"""The HTTP side of `driftbot run`: one aiohttp application on `server.port`.

- `/healthz`: 200 while the process runs;
- `/readyz`: 200 once every source has listed at least once, else 503 naming the others;
- `/metrics`: Prometheus text, from a registry of our own (bot/ops/metrics.py lists every family);
- `/webhooks/flux`: Flux notification-controller (see bot/inbound/flux.py);
- `/webhooks/teams`: Teams outgoing webhook questions, when `teams.outgoing_webhook_secret_env`
  is set (bot/chat/teams_inbound.py; 404 while it is not);
- `/slack/events`: Slack's HTTP mode, when `slack.mode` is `http` (bot/chat/slack_app.py);
- `/status`, `/badge/...svg`, `/api/v1/apps`: the read-only status page (bot/web/routes.py).

With SLACK_BOT_TOKEN set, the Slack app (slash command, buttons, App Home) runs beside the
watches: over Socket Mode (SLACK_APP_TOKEN) by default, or at /slack/events in HTTP mode.

A reloaded config file reaches this side too (`_follow_reloads`): webhook tokens and clusters,
and the Slack app's RBAC, command and API URL; host, port and Slack mode need a restart.

The service (watches, pipeline, store) lives in the application's cleanup context: it starts
with the server and is stopped, its state saved, when the server shuts down. `serve` runs it
until SIGTERM or SIGINT and returns 0.

With leader election (`leader_election` settings, bot/app/leader.py) the server starts at once and
the service only while this replica holds the Lease (`bot.app.service.lead`). A standby answers
`/healthz` and `/readyz` (200, status `standby`) and `/metrics` (`driftbot_leader` 0), and
refuses Flux webhooks with 503 (Flux retries; the watches carry the state anyway); the Slack
app runs on the leader only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from bot.app.service import Service, ServiceError, lead, open_service
from bot.chat.controls import PolicyControls
from bot.chat.teams_inbound import (
    TeamsInboundError,
    TeamsQuestions,
    add_teams_route,
    secret_from_env,
)
from bot.delivery.outbox import Deadline
from bot.inbound.flux import FLUX_WEBHOOK_PATH, FluxAuth, FluxWebhook, WebhookConfigError
from bot.jobs.reload import ConfigReloader
from bot.ops.logs import add_secrets, secrets_from
from bot.ops.metrics import METRICS, ServiceCollector
from bot.web.access import StatusConfigError
from bot.web.routes import add_status_routes
from config.schema import Config
from config.settings import LeaderElectionSettings

if TYPE_CHECKING:
    from bot.app.leader import LeaderElector
    from bot.chat.slack_app import SlackBot

# The Slack app (slack_bolt), leader election and the chat receivers' modules load only when
# configured (SLACK_BOT_TOKEN, leader election on): a console-only service never imports them.

__all__ = ["LIVE", "Live", "ServiceCollector", "create_app", "serve"]

logger = logging.getLogger(__name__)


@dataclass
class Live:
    """What the running service offers the routes; empty while this replica stands by."""

    service: Service | None = None
    webhook: FluxWebhook | None = None
    collector: ServiceCollector | None = None
    slack_bot: SlackBot | None = None
    elector: LeaderElector | None = None
    """With leader election: this replica's candidate for the Lease."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when leading ended for good (an error opening the service): the server stops."""
    failure: BaseException | None = None


class _LiveCollector(Collector):
    """The running service's families, none while standing by."""

    def __init__(self, live: Live) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        if self._live.collector is not None:
            yield from self._live.collector.collect()


LIVE = web.AppKey("live", Live)
REGISTRY = web.AppKey("registry", CollectorRegistry)

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    live = request.app[LIVE]
    if live.service is None:
        elector = live.elector
        if elector is not None and not elector.is_leader:
            # A standby is ready: otherwise a rollout would wait for it for ever.
            return web.json_response({"status": "standby", "leader": elector.holder})
        return web.json_response({"status": "starting"}, status=503)
    waiting = live.service.not_ready()
    if waiting:
        return web.json_response({"status": "waiting", "not_ready": waiting}, status=503)
    return web.json_response({"status": "ready"})


async def _metrics(request: web.Request) -> web.Response:
    collector = request.app[LIVE].collector
    if collector is not None:
        await collector.refresh()
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_METRICS})


async def _flux(request: web.Request) -> web.Response:
    webhook = request.app[LIVE].webhook
    if webhook is None:
        return web.json_response(
            {"error": "this replica stands by; the leader takes webhooks"}, status=503
        )
    return await webhook.handle(request)


def create_app(
    config: Config,
    state_path: Path,
    *,
    environ: Mapping[str, str] = os.environ,
    leader_election: LeaderElectionSettings | None = None,
    **service_options: Any,
) -> web.Application:
    """The application; the service starts and stops with it (`service_options` go to
    `open_service`: clock, stream, watcher_options, ...), or with `leader_election` while
    this replica holds the Lease. Raises ServiceError when a Flux webhook token is named
    but not set."""
    try:
        flux_auth = FluxAuth.from_config(config, environ)
        teams_key = secret_from_env(config, environ)
    except (WebhookConfigError, TeamsInboundError) as exc:
        raise ServiceError(str(exc)) from None
    slack_token = environ.get("SLACK_BOT_TOKEN", "").strip()

    live = Live()

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[Service]:
        async with open_service(config, state_path, environ=environ, **service_options) as service:
            webhook = FluxWebhook(
                service.gate.notify,
                auth=flux_auth,
                clock=service.clock,
                read_timeout=config.server.read_timeout.total_seconds(),
            )
            live.collector = ServiceCollector(service, webhook)
            live.service, live.webhook = service, webhook
            try:
                if slack_token:
                    live.slack_bot = await _start_slack(config, service, slack_token, environ)
                if service.reloader is not None:
                    _follow_reloads(service.reloader, environ, live, teams)
                logger.info(
                    "watching %d clusters (%d watches); Flux webhook %s",
                    len(config.clusters),
                    len(service.resources) + len(service.extra_sources),
                    flux_auth.describe(),
                )
                if flux_auth.unsigned:
                    logger.warning(
                        "the Flux webhook accepts UNSIGNED events for %s "
                        "(server.flux_webhook_accept_unsigned): anyone who can reach "
                        "/webhooks/flux can announce anything for them",
                        ", ".join(flux_auth.unsigned),
                    )
                yield service
            finally:
                slack_bot, live.slack_bot = live.slack_bot, None
                live.service = live.webhook = live.collector = None
                if slack_bot is not None:
                    await slack_bot.close()

    async def service_context(app: web.Application) -> AsyncIterator[None]:
        if leader_election is None:
            async with running():
                yield
            return
        async with _leading(config, leader_election, environ, live, running):
            yield

    app = web.Application(client_max_size=2 << 20)
    app[LIVE] = live
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LiveCollector(live))
    registry.register(METRICS)
    app[REGISTRY] = registry
    app.cleanup_ctx.append(service_context)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post(FLUX_WEBHOOK_PATH, _flux)
    teams = add_teams_route(
        app, teams_key, config, lambda: live.service.pipeline if live.service else None
    )
    if slack_token and config.slack.mode == "http":
        from bot.chat.slack_app import add_slack_routes

        add_slack_routes(app, lambda: live.slack_bot)
    try:
        add_status_routes(app, config, lambda: live.service, environ)
    except StatusConfigError as exc:
        raise ServiceError(str(exc)) from None
    return app


def _follow_reloads(
    reloader: ConfigReloader, environ: Mapping[str, str], live: Live, teams: TeamsQuestions
) -> None:
    """A reloaded config reaches the HTTP side too: the Flux webhook's tokens and clusters,
    the Teams webhook's token, and the Slack app (RBAC, command, API URL, channel scoping).
    A config naming a token variable that is not set is refused as a whole."""

    def check(config: Config) -> None:
        try:
            FluxAuth.from_config(config, environ)
            secret_from_env(config, environ)
        except (WebhookConfigError, TeamsInboundError) as exc:
            raise ValueError(str(exc)) from None

    def take(config: Config) -> None:
        add_secrets(secrets_from(config, environ))
        auth = FluxAuth.from_config(config, environ)
        if live.webhook is not None:
            if auth != live.webhook.auth:
                logger.info("Flux webhook now %s", auth.describe())
                if auth.unsigned:
                    logger.warning(
                        "the Flux webhook accepts UNSIGNED events for %s "
                        "(server.flux_webhook_accept_unsigned)",
                        ", ".join(auth.unsigned),
                    )
            live.webhook.auth = auth
            live.webhook.read_timeout = config.server.read_timeout.total_seconds()
        teams.reconfigure(config, secret_from_env(config, environ))
        if live.slack_bot is not None:
            live.slack_bot.reconfigure(config)

    reloader.checks.append(check)
    reloader.listeners.append(take)


@contextlib.asynccontextmanager
async def _leading(
    config: Config,
    settings: LeaderElectionSettings,
    environ: Mapping[str, str],
    live: Live,
    running: Callable[[], contextlib.AbstractAsyncContextManager[Service]],
) -> AsyncIterator[None]:
    """Campaign for the Lease in the background and run the service while leading; on exit
    the service closes first and the Lease is released after (see `bot.app.service.lead`)."""
    from bot.app.leader import LeaderElector, LeaseTiming, lease_client, lease_namespace

    try:
        client = await lease_client(config, environ)
    except Exception as exc:
        raise ServiceError(f"leader election: cannot reach the Lease's cluster: {exc}") from None
    live.elector = LeaderElector(
        client,
        name=settings.lease_name,
        namespace=lease_namespace(settings, environ),
        identity=settings.identity,
        timing=LeaseTiming.from_settings(settings),
    )
    METRICS.set_leader(False)
    stopping = asyncio.Event()

    def ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            live.failure = task.exception()
            logger.error("leading failed: %s", live.failure)
        live.ended.set()

    task = asyncio.create_task(
        lead(live.elector, running, stopping, METRICS.set_leader), name="leader-election"
    )
    task.add_done_callback(ended)
    logger.info(
        "leader election: %s stands by for Lease %s/%s",
        live.elector.identity,
        live.elector.namespace,
        live.elector.name,
    )
    try:
        yield
    finally:
        stopping.set()
        await asyncio.wait([task])
        await client.close()


async def _start_slack(
    config: Config, service: Service, bot_token: str, environ: Mapping[str, str]
) -> SlackBot:
    """The Slack app on the running pipeline: commands read its states, mutes and acks change
    its policy state through the gate every observation goes through."""
    from bot.chat.slack_app import SlackAppError, create_slack_bot

    pipeline = service.pipeline
    try:
        bot = create_slack_bot(
            config,
            bot_token=bot_token,
            signing_secret=environ.get("SLACK_SIGNING_SECRET", "").strip() or None,
            fleet=pipeline,
            audit=pipeline.store,
            controls=PolicyControls(service.gate),
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
    pipeline.listeners.append(bot.desk.follower.on_state)
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
        if hasattr(receiver, "close_deadline"):  # the chat receivers, with an outbox
            receiver.close_deadline = deadline
    logger.info("stopping: sending what is in the outbox for at most %.0f s", timeout)


async def serve(
    config: Config,
    state_path: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
    on_started: Callable[[int], None] | None = None,
    **service_options: Any,
) -> int:
    """Run until SIGTERM/SIGINT (or `stop` is set): watches stopped, state saved, 0 returned.

    `host` and `port` override server.host and server.port (port 0 picks a free one);
    `on_started` gets the bound port once the server listens. A connection that has not sent
    a request's headers whole within server.read_timeout is closed (the keep-alive timer of
    aiohttp runs from the connection's start, and counts a half-sent request as idle)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    app = create_app(config, state_path, **service_options)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=config.server.read_timeout.total_seconds(),
    )
    try:
        await runner.setup()
        site = web.TCPSite(
            runner,
            config.server.host if host is None else host,
            config.server.port if port is None else port,
        )
        await site.start()
        ports = [a[1] for a in runner.addresses if isinstance(a, tuple)]
        logger.info(
            "listening on %s port %s",
            config.server.host if host is None else host,
            ports[0] if ports else "?",
        )
        if on_started is not None:
            on_started(ports[0] if ports else 0)
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(app[LIVE].ended.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()
        logger.info("stopping: closing the watches and saving state")
        _flush_within(app[LIVE].service)
    finally:
        await runner.cleanup()
        for sig in handled:
            loop.remove_signal_handler(sig)
    failure = app[LIVE].failure
    if isinstance(failure, ServiceError):
        raise failure
    if failure is not None:
        raise ServiceError(f"the service stopped: {failure}") from failure
    return 0
