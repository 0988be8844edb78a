"""Running a slash command: who may ask what (RBAC), the facts each answer needs (the
pipeline's app states and alerts, the audit log, the mutes), and formatters.chat to word it.

Mute, unmute and ack go through a `Controls` object, so the runner holds no alerting policy
of its own. `CommandRunner.execute` has one case per command (mypy checks that none is missed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, assert_never

from bot.chat.commands.parse import (
    Ack,
    Act,
    Audit,
    Command,
    Drift,
    Help,
    History,
    Mute,
    Mutes,
    Routes,
    Selector,
    Status,
    Unmute,
    Usage,
    Versions,
    needs_operator,
    parse_command,
    verb_of,
)
from bot.chat.commands.scope import (
    channel_scope,
    open_alerts,
    problems_since,
    select,
    selects,
    suggestions,
)
from config.schema import Config
from core.model import AppKey, AppState
from core.policy import PolicyState
from core.summary import live
from formatters import actions as act_words
from formatters import chat
from formatters import chat_phrases as say
from formatters.chat import Answer, AuditRecord, MuteInfo

logger = logging.getLogger(__name__)

MAX_AUDITED_KEYS = 20
"""A mute or ack touching more apps than this is audited once, not per app."""


class Controls(Protocol):
    """Mutes and acknowledgements, as the alert policy keeps them."""

    def mutes(self, now: datetime) -> list[MuteInfo]:
        """The mutes in force at `now`."""
        ...

    async def mute(
        self, target: str, until: datetime, reason: str, who: str, now: datetime
    ) -> MuteInfo:
        """Mute `target` (a Selector's text) until `until`; ValueError, with a sentence for
        the user, for a target the policy cannot mute."""
        ...

    async def unmute(self, target: str, who: str, now: datetime) -> bool:
        """False when nothing was muted under `target`."""
        ...

    async def ack(self, key: AppKey, who: str, now: datetime) -> int:
        """Acknowledge the app's open alerts; how many there were."""
        ...


class Fleet(Protocol):
    """What the pipeline holds: every app as last seen, and the policy state."""

    @property
    def states(self) -> Mapping[AppKey, AppState]: ...
    @property
    def policy_state(self) -> PolicyState: ...
    @property
    def projects(self) -> Mapping[tuple[str, str], Mapping[str, str]]:
        """(cluster, Argo CD project) -> its routing annotations."""
        ...


class AuditLog(Protocol):
    async def audit(
        self,
        actor: str,
        action: str,
        app: AppKey | None = None,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None: ...

    async def audit_log(self, app: AppKey | None = None, limit: int = 50) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asked, where: the Slack user, their user groups, the channel."""

    user: str
    groups: tuple[str, ...] = ()
    channel: str = ""
    channel_name: str = ""


@dataclass(frozen=True, slots=True)
class _Asked:
    """One question being answered: who asked, when, the apps they may see here, and the
    policy state as it was when they asked."""

    asker: Asker
    now: datetime
    states: list[AppState]
    policy: PolicyState


@dataclass
class CommandRunner:
    config: Config
    fleet: Fleet
    audit: AuditLog
    controls: Controls
    clock: Callable[[], datetime]
    command: str = field(default="")

    def __post_init__(self) -> None:
        self.command = self.command or self.config.slack.command

    async def run(self, text: str, asker: Asker) -> Answer:
        """The answer to `text` from `asker`; never raises (a failure is logged and answered
        with an apology)."""
        try:
            return await self._run(text, asker)
        except Exception:
            logger.exception("answering %r failed", self.command)
            return chat.answer_text(say.FAILED)

    async def _run(self, text: str, asker: Asker) -> Answer:
        now = self.clock()
        parsed = parse_command(text)
        rbac = self.config.rbac
        if not rbac.may_view(asker.user, asker.groups):
            await self._denied(asker, verb_of(text), text, now)
            return chat.answer_denied(None)
        if isinstance(parsed, Usage):
            return chat.answer_usage(self.command, parsed.problem, parsed.about)
        if needs_operator(parsed) and not rbac.may_operate(asker.user, asker.groups):
            await self._denied(asker, parsed.verb, text, now)
            return chat.answer_denied(parsed.verb)
        return await self.execute(parsed, asker, now)

    async def _denied(self, asker: Asker, verb: str, text: str, now: datetime) -> None:
        detail = {"command": verb[:40], "text": text[:200], "channel": asker.channel}
        await self.audit.audit(asker.user, "denied", None, detail, at=now)

    def visible(self, asker: Asker) -> list[AppState]:
        """The apps this asker may see here: those `rbac.grants` give them (all when no
        grants are listed), within the channel's scope."""
        rbac = self.config.rbac
        states = [
            s
            for s in live(self.fleet.states.values())
            if rbac.sees(asker.user, asker.groups, s.cluster, s.namespace)
        ]
        scope = channel_scope(self.config, asker.channel, asker.channel_name)
        return states if scope is None else [s for s in states if scope.covers(s)]

    async def execute(self, command: Command, asker: Asker, now: datetime) -> Answer:
        """Answer an understood command from someone allowed to give it."""
        policy = self.fleet.policy_state
        asked = _Asked(asker, now, self.visible(asker), policy)
        match command:
            case Help():
                return chat.answer_help(self.command)
            case Status():
                return self._status(command.selector, asked)
            case Drift():
                return self._drift(command.selector, asked)
            case History() | Audit() | Versions():
                return await self._about_apps(command, asked)
            case Routes():
                return self._routes(command.app, asked)
            case Mute():
                return await self._mute(command, asked)
            case Unmute():
                return await self._unmute(command, asked)
            case Mutes():
                return chat.answer_mutes(self.controls.mutes(now))
            case Ack():
                return await self._ack(command, asked)
            case Act():  # the Slack app opens a confirmation before it gets here
                return chat.answer_text(act_words.TEAMS_WHERE.format(verb=command.verb))
            case _:
                assert_never(command)

    @staticmethod
    def _pick(selector: Selector, asked: _Asked) -> list[AppState] | Answer:
        """The apps `selector` picks, or (a dict) the "no such app" answer when it picks none."""
        picked = select(asked.states, selector)
        if picked:
            return picked
        return chat.answer_no_match(selector.text, suggestions(asked.states, selector))

    def _status(self, selector: Selector, asked: _Asked) -> Answer:
        since = problems_since(asked.policy)
        page = self.config.server.page_url
        if selector.kind == "all":
            scoped = channel_scope(self.config, asked.asker.channel, asked.asker.channel_name)
            empty = say.STATUS_NOTHING_IN_SCOPE if scoped else say.STATUS_NOTHING
            return chat.answer_status(
                asked.states, asked.now, since=since, empty=empty, public_url=page
            )
        picked = self._pick(selector, asked)
        if isinstance(picked, dict):
            return picked
        what = selector.text
        if selector.kind == "app" and any(selects(selector, s) for s in picked):
            alerts = open_alerts(asked.policy)
            return chat.answer_apps(
                picked, asked.now, what=what, alerts=alerts, since=since, public_url=page
            )
        return chat.answer_status(picked, asked.now, what=what, since=since, public_url=page)

    def _drift(self, selector: Selector, asked: _Asked) -> Answer:
        picked = asked.states if selector.kind == "all" else self._pick(selector, asked)
        if isinstance(picked, dict):
            return picked
        return chat.answer_drift(picked, asked.now, problems_since(asked.policy))

    async def _about_apps(self, command: History | Audit | Versions, asked: _Asked) -> Answer:
        picked = self._pick(command.app, asked)
        if isinstance(picked, dict):
            return picked
        what = command.app.text
        if isinstance(command, Versions):
            return chat.answer_versions(what, picked)
        if isinstance(command, History):
            return chat.answer_history(what, picked, await self._entries(picked))
        return chat.answer_audit(what, await self._entries(picked))

    def _routes(self, selector: Selector | None, asked: _Asked) -> Answer:
        if selector is None:
            return chat.answer_routes(None, [], self.config)
        picked = self._pick(selector, asked)
        if isinstance(picked, dict):
            return picked
        return chat.answer_routes(selector.text, picked, self.config, self.fleet.projects)

    async def _mute(self, command: Mute, asked: _Asked) -> Answer:
        target, asker, now = command.target.text, asked.asker, asked.now
        try:
            mute = await self.controls.mute(
                target, now + command.duration, command.reason, asker.user, now
            )
        except ValueError as exc:  # a target the policy cannot mute
            return chat.answer_usage(self.command, chat.escaped(str(exc), 300), command.verb)
        detail = {"target": target, "until": mute.until.isoformat(), "reason": command.reason}
        await self._audit_keys(asked, "mute", select(asked.states, command.target), detail)
        return chat.answer_muted(mute)

    async def _unmute(self, command: Unmute, asked: _Asked) -> Answer:
        target = command.target.text
        try:
            found = await self.controls.unmute(target, asked.asker.user, asked.now)
        except ValueError as exc:
            return chat.answer_usage(self.command, chat.escaped(str(exc), 300), command.verb)
        detail = {"target": target, "found": found}
        await self._audit_keys(asked, "unmute", select(asked.states, command.target), detail)
        return chat.answer_unmuted(target, found)

    async def _ack(self, command: Ack, asked: _Asked) -> Answer:
        picked = self._pick(command.app, asked)
        if isinstance(picked, dict):
            return picked
        user, now, total = asked.asker.user, asked.now, 0
        for state in picked:
            count = await self.controls.ack(state.key, user, now)
            if count:
                total += count
                await self.audit.audit(user, "ack", state.key, {"alerts": count}, at=now)
        return chat.answer_acked(command.app.text, total)

    async def _audit_keys(
        self, asked: _Asked, action: str, states: list[AppState], detail: Mapping[str, Any]
    ) -> None:
        """One entry per app the action touches (so `audit APP` shows it), or one entry for
        all when it touches none or very many."""
        user, now = asked.asker.user, asked.now
        if not states or len(states) > MAX_AUDITED_KEYS:
            await self.audit.audit(user, action, None, detail, at=now)
            return
        for state in states:
            await self.audit.audit(user, action, state.key, detail, at=now)

    async def _entries(self, picked: list[AppState]) -> list[AuditRecord]:
        """The audit entries about these apps, newest first."""
        entries: dict[int, Any] = {}
        for state in picked[:MAX_AUDITED_KEYS]:
            for entry in await self.audit.audit_log(state.key, 50):
                entries[entry.id] = entry
        return sorted(entries.values(), key=lambda e: e.id, reverse=True)[:50]
