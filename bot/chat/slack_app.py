"""The Slack app: the slash command, the buttons on alerts and the App Home tab, on Bolt.

One `SlackBot` wraps a slack_bolt AsyncApp whose Web API client points at `slack.api_url`.
It reaches Slack either over Socket Mode (`start_socket_mode`, an `xapp-` app token, no public
URL) or over HTTP at /slack/events on the service's aiohttp server (`add_slack_routes`), where
every request is read whole (within `server.read_timeout`, at most 1 MiB) and passes the door
(bot/chat/slack_door.py: signature and timestamp, replays refused, Slack's retries of work done
answered without doing it again) before Bolt sees it.

Every handler acknowledges first (Slack wants an answer within 3 s) and does the work in a
named background task: answering a command (chat.postEphemeral, or the command's
response_url where the bot cannot post), acknowledging or muting from a button (then updating
the alert with who did it, chat.update), publishing the Home tab. Who may do what comes from
the config's `rbac`, with Slack user groups resolved through usergroups.users.list and cached.

A button's value is not trusted: the alerts a click acts on are those the policy stored under
the notification id the value names (an alert, or every open member of a storm group); a value
whose app is not that alert's is refused and audited (`button_refused`).

`reconfigure` takes a reloaded config: RBAC, the command name, `slack.api_url` and
`scope_channels` take effect at once (`slack.mode` needs a restart).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions.actor import Actor
from bot.chat.action_desk import DESK_ACTIONS, ActionDesk
from bot.chat.app_home import HomePublisher
from bot.chat.commands import (
    Act,
    Asker,
    AuditLog,
    CommandRunner,
    Controls,
    Fleet,
    parse_command,
)
from bot.chat.slack_door import Door
from bot.chat.user_groups import GroupResolver, groups_of
from bot.delivery.slack_sender import make_client
from bot.ops.http import problem, read_capped
from config.schema import Config
from core.commands import alerts_of_notification
from core.model import AppKey
from formatters import chat
from formatters import chat_phrases as say
from formatters.actions import CALLBACK_CONFIRM
from formatters.slack_actions import ACTION_ACK, LINK_ACTIONS, MUTE_ACTIONS, parse_action_value

logger = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
ACTIONS = re.compile(
    r"^driftbot_(ack|open|open_commit|mute_\d+h|approve|act_(sync|rollback|reconcile))$"
)
FALLBACK_ERRORS = frozenset({"channel_not_found", "not_in_channel", "user_not_in_channel"})
"""chat.postEphemeral errors after which the answer goes through the response_url instead."""
BACKGROUND = frozenset({"slack-home-refresh", "slack-action-ticker"})
"""Tasks that run until `close`; `drain` does not wait for them."""
MAX_BODY = 1 << 20
"""A click carries the whole message it was on (up to 50 blocks): well under this."""
_GLOB = re.compile(r"([*?\[])")


class SlackAppError(Exception):
    """The Slack app cannot start (a token of the wrong kind, a missing secret); the message
    is one sentence for the CLI to print."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _why(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    return repr(exc)


class SlackBot:
    """The Bolt app and its handlers. `start()` the background work, `close()` at the end."""

    def __init__(
        self,
        config: Config,
        *,
        client: AsyncWebClient,
        fleet: Fleet,
        audit: AuditLog,
        controls: Controls,
        signing_secret: str = "",
        clock: Callable[[], datetime] = utc_now,
        group_clock: Callable[[], float] = time.monotonic,
        home_interval: timedelta = timedelta(seconds=30),
        actor: Actor | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.fleet = fleet
        self.audit = audit
        self.controls = controls
        self.clock = clock
        self.runner = CommandRunner(config, fleet, audit, controls, clock)
        self.groups = GroupResolver(client, groups_of(config), clock=group_clock)
        self.desk = ActionDesk(
            config,
            client,
            fleet,
            audit,
            actor or Actor(config, clock),
            clock,
            lambda channel, user, answer: self._reply(channel, user, answer, None),
            self.groups.groups_of,
        )
        self.home = HomePublisher(
            client,
            fleet,
            self._may_view,
            clock,
            command=config.slack.command,
            min_interval=home_interval,
        )
        self.app = AsyncApp(
            client=client,
            signing_secret=signing_secret,
            request_verification_enabled=True,
            process_before_response=False,
            raise_error_for_unhandled_request=False,
        )
        self.app.command(re.compile(r"^/"), matchers=[self._is_our_command])(self._on_command)
        self.app.action(ACTIONS)(self._on_action)
        self.app.view(CALLBACK_CONFIRM)(self._on_view)
        self.app.event("app_home_opened")(self._on_home_opened)
        self._tasks: set[asyncio.Task[None]] = set()
        self._socket: AsyncSocketModeHandler | None = None
        self.door = Door(signing_secret) if signing_secret else None

    def reconfigure(self, config: Config) -> None:
        """Take a reloaded config: who may do what, the command's name, the Web API's URL and
        channel scoping from now on (user groups newly named are read at their first use)."""
        self.config = config
        self.runner.config = config
        self.runner.command = config.slack.command
        self.home.command = config.slack.command
        self.groups.groups = groups_of(config)
        self.desk.reconfigure(config)
        self.client.base_url = config.slack.api_url

    async def _is_our_command(self, body: dict[str, Any]) -> bool:
        return body.get("command") == self.config.slack.command

    # -- lifecycle ------------------------------------------------------------------------------

    def start(
        self,
        *,
        home_every: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tick_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Start refreshing the Home tab every `home_every` seconds, and looking at pending
        actions (approvals that expire, results that do not come) as often."""
        self._spawn(self.home.run(home_every, sleep), "slack-home-refresh")
        self._spawn(self._tick(home_every, tick_sleep), "slack-action-ticker")

    async def _tick(self, every: float, sleep: Callable[[float], Awaitable[None]]) -> None:
        """Expire approvals and report actions whose result did not come in time."""
        while True:
            await sleep(every)
            await self.desk.tick(self.clock())

    async def start_socket_mode(self, app_token: str) -> None:
        """Connect to Slack over Socket Mode with an app-level token (xapp-)."""
        if not app_token.startswith("xapp-"):
            raise SlackAppError(
                "SLACK_APP_TOKEN must be an app-level token (xapp-...) with the "
                "connections:write scope, for Socket Mode"
            )
        self._socket = AsyncSocketModeHandler(self.app, app_token)
        await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def drain(self) -> None:
        """Wait until the work handed off after acknowledgements is done (not the Home
        refresher, which runs until `close`)."""
        while True:
            pending = [t for t in self._tasks if t.get_name() not in BACKGROUND]
            if not pending:
                return
            await asyncio.wait(pending)

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.desk.close()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._guarded(work, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s failed", name)

    # -- HTTP mode ------------------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.Response:
        """One request from Slack to /slack/events: read whole, let in by the door, then
        verified again and dispatched by Bolt."""
        body = await read_capped(request, MAX_BODY, self.config.server.read_timeout.total_seconds())
        if isinstance(body, web.Response):
            return body
        if self.door is not None:
            verdict = self.door.check(body, request.headers)
            if verdict.status == 200:
                logger.info("a Slack retry of work already done: answered, not done again")
                return web.Response(status=200, headers=dict(verdict.headers))
            if verdict.status is not None:
                logger.warning(
                    "refused a Slack request from %s: %s", request.remote, verdict.reason
                )
                refusal = problem(verdict.status, verdict.reason)
                refusal.headers.update(verdict.headers)
                return refusal
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8", "replace"),
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    # -- access ---------------------------------------------------------------------------------

    async def _may_view(self, user: str) -> bool:
        return self.config.rbac.may_view(user, await self.groups.groups_of(user))

    # -- the slash command ----------------------------------------------------------------------

    async def _on_command(
        self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        self._spawn(self._answer(body, respond), "slack-command")

    async def _answer(self, body: dict[str, Any], respond: Any) -> None:
        user = _text(body.get("user_id"))
        asker = Asker(
            user=user,
            groups=await self.groups.groups_of(user),
            channel=_text(body.get("channel_id")),
            channel_name=_text(body.get("channel_name")),
        )
        text = _text(body.get("text"))
        parsed = parse_command(text)
        if isinstance(parsed, Act):
            states = self.runner.visible(asker)
            trigger = _text(body.get("trigger_id"))
            found = await self.desk.ask(parsed, asker, trigger, states)
            if found is None:
                return
            answer = found
        else:
            answer = await self.runner.run(text, asker)
        await self._reply(
            asker.channel, user, answer, respond if body.get("response_url") else None
        )

    async def _reply(
        self, channel: str, user: str, answer: chat.Answer, respond: Any | None
    ) -> None:
        """Only `user` sees the answer: chat.postEphemeral, or the response_url where the bot
        may not post (a DM, a private channel it is not in)."""
        try:
            await self.client.chat_postEphemeral(
                channel=channel, user=user, text=answer["text"], blocks=answer["blocks"]
            )
            return
        except SlackApiError as exc:
            error = exc.response.get("error")
            if respond is None or error not in FALLBACK_ERRORS:
                logger.warning("answering %s in %s failed: %s", user, channel, error)
                return
        await respond(
            text=answer["text"],
            blocks=answer["blocks"],
            response_type="ephemeral",
            replace_original=False,
        )

    # -- buttons on alerts ----------------------------------------------------------------------

    async def _on_action(
        self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        await ack()
        if action.get("action_id") in LINK_ACTIONS:
            return
        self._spawn(self._act(body, action), "slack-action")

    async def _act(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Act on a click; a failure is logged and the clicker gets an apology."""
        try:
            await self._act_on(body, action)
        except Exception:
            logger.exception("the button %s failed", action.get("action_id"))
            user = _text((body.get("user") or {}).get("id"))
            channel = _text((body.get("channel") or {}).get("id"))
            if user and channel:
                await self._reply(channel, user, chat.answer_text(say.FAILED), None)

    async def _act_on(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        action_id = _text(action.get("action_id"))
        user = _text((body.get("user") or {}).get("id"))
        container = body.get("container") or {}
        channel = _text((body.get("channel") or {}).get("id")) or _text(container.get("channel_id"))
        message = body.get("message") or {}
        ts = _text(container.get("message_ts")) or _text(message.get("ts"))
        now = self.clock()
        if action_id in DESK_ACTIONS:
            asker = Asker(user, await self.groups.groups_of(user), channel)
            value, trigger = _text(action.get("value")), _text(body.get("trigger_id"))
            answer = await self.desk.clicked(action_id, value, asker, trigger, ts)
            if answer is not None:
                await self._reply(channel, user, answer, None)
            return
        verb = "ack" if action_id == ACTION_ACK else "mute"
        if not self.config.rbac.may_operate(user, await self.groups.groups_of(user)):
            refused = {"command": action_id, "channel": channel, "message_ts": ts}
            await self.audit.audit(user, "denied", None, refused, at=now)
            await self._reply(channel, user, chat.answer_denied(verb), None)
            return
        try:
            target = parse_action_value(_text(action.get("value")))
        except ValueError as exc:
            logger.info("button from %s refused: %s", user, exc)
            await self._reply(channel, user, chat.answer_text(say.BUTTON_STALE), None)
            return
        keys = self._keys_of_notification(target.event_id)
        hours = MUTE_ACTIONS.get(action_id)
        if not keys or (action_id != ACTION_ACK and hours is None):
            await self._reply(channel, user, chat.answer_text(say.BUTTON_STALE), None)
            return
        if target.key is not None and target.key not in keys:
            logger.warning(
                "refused a button from %s: its value names an app that is not the alert's", user
            )
            named: dict[str, Any] = {
                "command": action_id,
                "event": target.event_id[:200],
                "named": list(target.key)[:5],
                "channel": channel,
                "message_ts": ts,
            }
            await self.audit.audit(user, "button_refused", keys[0], named, at=now)
            await self._reply(channel, user, chat.answer_text(say.BUTTON_STALE), None)
            return
        note: str
        drop: list[str] = []
        for key in keys:
            detail: dict[str, Any]
            if action_id == ACTION_ACK:
                count = await self.controls.ack(key, user, now)
                detail = {"event": target.event_id, "alerts": count}
                await self.audit.audit(user, "ack", key, detail, at=now)
                note, drop = chat.note_acked(user, now), [ACTION_ACK]
            else:
                assert hours is not None
                mute_target = "/".join(_literal(p) for p in (key.cluster, key.namespace, key.name))
                mute = await self.controls.mute(
                    mute_target, now + timedelta(hours=hours), "", user, now
                )
                detail = {
                    "target": mute_target,
                    "until": mute.until.isoformat(),
                    "event": target.event_id,
                }
                await self.audit.audit(user, "mute", key, detail, at=now)
                note = chat.note_muted(user, mute.until)
        if channel and ts:
            blocks = chat.with_note(message.get("blocks") or [], note, drop_actions=drop)
            try:
                await self.client.chat_update(
                    channel=channel, ts=ts, text=_text(message.get("text")) or note, blocks=blocks
                )
            except SlackApiError as exc:
                logger.warning("updating the alert %s in %s failed: %s", ts, channel, _why(exc))

    # -- confirmation modals --------------------------------------------------------------------

    async def _on_view(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any]) -> None:
        await ack()
        user = _text((body.get("user") or {}).get("id"))
        self._spawn(self.desk.submitted(user, body.get("view") or {}), "slack-confirmation")

    def _keys_of_notification(self, notification_id: str) -> list[AppKey]:
        """The apps of the open alerts stored under this notification id (see the module
        docstring), in the order they were announced."""
        alerts = alerts_of_notification(self.fleet.policy_state, notification_id)
        return list(dict.fromkeys(alert.event.key for alert in alerts))

    # -- App Home -------------------------------------------------------------------------------

    async def _on_home_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            self._spawn(self.home.opened(_text(event.get("user"))), "slack-home-opened")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _literal(part: str) -> str:
    """A name as a mute pattern that matches only itself."""
    return _GLOB.sub(r"[\1]", part)


def add_slack_routes(
    web_app: web.Application,
    bot: SlackBot | Callable[[], SlackBot | None],
    path: str = SLACK_EVENTS_PATH,
) -> None:
    """Serve Slack's HTTP mode (commands, interactivity, events) at `path` on `web_app`.

    `bot` may be a function returning the bot, for a server whose routes are fixed before the
    service (and so the bot) starts: until it returns one, Slack is answered 503 and retries.
    """

    async def slack_events(request: web.Request) -> web.Response:
        current = bot if isinstance(bot, SlackBot) else bot()
        if current is None:
            return web.json_response({"error": "starting"}, status=503)
        return await current.handle_http(request)

    web_app.router.add_post(path, slack_events)


def create_slack_bot(
    config: Config,
    *,
    bot_token: str,
    signing_secret: str | None,
    fleet: Fleet,
    audit: AuditLog,
    controls: Controls,
    clock: Callable[[], datetime] = utc_now,
) -> SlackBot:
    """A SlackBot for `config.slack` (mode, command, api_url); SlackAppError when a secret
    the mode needs is missing or of the wrong kind."""
    if not bot_token.startswith("xoxb-"):
        raise SlackAppError("SLACK_BOT_TOKEN must be a bot token (xoxb-...)")
    if config.slack.mode == "http" and not signing_secret:
        raise SlackAppError(
            "slack.mode is http: set SLACK_SIGNING_SECRET (Basic Information -> Signing Secret)"
        )
    return SlackBot(
        config,
        client=make_client(bot_token, config.slack.api_url),
        fleet=fleet,
        audit=audit,
        controls=controls,
        signing_secret=signing_secret or "",
        clock=clock,
    )
