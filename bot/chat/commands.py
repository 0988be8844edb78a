"""The slash command: text -> Command (pure), then Command -> answer, with access checks.

`parse_command` reads whatever a person typed after `/gitops` and returns a Command value or
a `Usage` saying what was not understood; it never raises. `select` and `channel_scope` decide
which apps a question is about (pure). `CommandRunner` checks who may ask what (RBAC), gathers
the facts (the pipeline's app states and alerts, the audit log, the mutes) and has
formatters.chat word the answer. Mute, unmute and ack go through a `Controls` object, so this
module holds no alerting policy of its own.
"""

from __future__ import annotations

import difflib
import html
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, Protocol

from config.durations import DurationError, parse_duration
from config.globs import glob_match
from config.schema import Config
from core.model import AppKey, AppState, GitOpsEvent
from core.policy import PolicyState
from formatters import chat
from formatters import chat_phrases as say
from formatters.chat import Answer, AuditRecord, MuteInfo

logger = logging.getLogger(__name__)

MAX_TEXT = 1000
"""Longest command text read; Slack itself allows 4,000."""
MAX_ARG = 253
"""Longest name, namespace, cluster or pattern (Kubernetes names stop at 253)."""
MAX_REASON = 300
MIN_MUTE = timedelta(minutes=1)
MAX_MUTE = timedelta(days=30)
MAX_AUDITED_KEYS = 20
"""A mute or ack touching more apps than this is audited once, not per app."""

Verb = Literal[
    "help", "status", "drift", "history", "versions", "audit", "routes", "mute", "unmute",
    "mutes", "ack",
]  # fmt: skip
VERBS: tuple[str, ...] = (
    "help", "status", "drift", "history", "versions", "audit", "routes", "mute", "unmute",
    "mutes", "ack",
)  # fmt: skip
OPERATOR_VERBS = frozenset({"mute", "unmute", "ack"})

# --- what was asked --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selector:
    """Which apps: all, by app name (optionally within a namespace and cluster), by cluster,
    by environment (cluster name or `env`/`environment` label) or by namespace. Values may
    hold `*` and `?` wildcards."""

    kind: Literal["all", "app", "cluster", "env", "namespace"] = "all"
    value: str = ""
    namespace: str | None = None
    cluster: str | None = None

    @property
    def text(self) -> str:
        """As a person would type it."""
        if self.kind == "all":
            return ""
        if self.kind == "app":
            return "/".join(p for p in (self.cluster, self.namespace, self.value) if p)
        prefix = {"cluster": "cluster", "env": "env", "namespace": "namespace"}[self.kind]
        return f"{prefix}:{self.value}"


ALL = Selector()


@dataclass(frozen=True, slots=True)
class Help:
    verb: ClassVar[str] = "help"


@dataclass(frozen=True, slots=True)
class Status:
    selector: Selector = ALL
    verb: ClassVar[str] = "status"


@dataclass(frozen=True, slots=True)
class Drift:
    selector: Selector = ALL
    verb: ClassVar[str] = "drift"


@dataclass(frozen=True, slots=True)
class History:
    app: Selector
    verb: ClassVar[str] = "history"


@dataclass(frozen=True, slots=True)
class Versions:
    app: Selector
    verb: ClassVar[str] = "versions"


@dataclass(frozen=True, slots=True)
class Audit:
    app: Selector
    verb: ClassVar[str] = "audit"


@dataclass(frozen=True, slots=True)
class Routes:
    app: Selector | None = None
    verb: ClassVar[str] = "routes"


@dataclass(frozen=True, slots=True)
class Mute:
    target: Selector
    duration: timedelta
    reason: str = ""
    verb: ClassVar[str] = "mute"


@dataclass(frozen=True, slots=True)
class Unmute:
    target: Selector
    verb: ClassVar[str] = "unmute"


@dataclass(frozen=True, slots=True)
class Mutes:
    verb: ClassVar[str] = "mutes"


@dataclass(frozen=True, slots=True)
class Ack:
    app: Selector
    verb: ClassVar[str] = "ack"


@dataclass(frozen=True, slots=True)
class Usage:
    """Not understood: `problem` is one escaped sentence; `about` the verb it concerned."""

    problem: str
    about: str | None = None


Command = Help | Status | Drift | History | Versions | Audit | Routes | Mute | Unmute | Mutes | Ack


# --- parsing (pure) ----------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _shown(text: str) -> str:
    """User input quoted in an answer: one line, bounded, escaped, no backticks."""
    return chat.escaped(text.replace("`", "'"), 80)


_PREFIXES: dict[str, Literal["cluster", "env", "namespace"]] = {
    "cluster": "cluster",
    "env": "env",
    "environment": "env",
    "ns": "namespace",
    "namespace": "namespace",
}
_PART = re.compile(r"[A-Za-z0-9*?][A-Za-z0-9_.*?:-]*")


def _part(text: str, whole: str) -> str:
    if len(text) > MAX_ARG:
        raise _Refused(say.USAGE_BAD_SELECTOR.format(text=_shown(whole), why="too long"))
    if not _PART.fullmatch(text):
        why = "use letters, digits, '-', '.', '_' and the wildcards '*' and '?'"
        raise _Refused(say.USAGE_BAD_SELECTOR.format(text=_shown(whole), why=why))
    return text


def parse_selector(text: str) -> Selector:
    """`checkout`, `shop/checkout`, `prod/shop/checkout`, `cluster:prod`, `env:staging`,
    `ns:shop` -> a Selector; ValueError (with an escaped sentence) for anything else."""
    try:
        return _selector(text)
    except _Refused as exc:
        raise ValueError(exc.problem) from None


def _selector(text: str) -> Selector:
    if ":" in text and "/" not in text:
        prefix, _, value = text.partition(":")
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            why = "start it with cluster:, env: or ns:, or give an app name"
            raise _Refused(say.USAGE_BAD_SELECTOR.format(text=_shown(text), why=why))
        return Selector(kind, _part(value, text))
    parts = text.split("/")
    if len(parts) > 3:
        why = "give at most cluster/namespace/app"
        raise _Refused(say.USAGE_BAD_SELECTOR.format(text=_shown(text), why=why))
    parts = [_part(p, text) for p in parts]
    if any(":" in p for p in parts):
        why = "':' only follows cluster, env or ns"
        raise _Refused(say.USAGE_BAD_SELECTOR.format(text=_shown(text), why=why))
    if len(parts) == 3:
        return Selector("app", parts[2], namespace=parts[1], cluster=parts[0])
    if len(parts) == 2:
        return Selector("app", parts[1], namespace=parts[0])
    return Selector("app", parts[0])


def _args(verb: str, args: list[str], least: int, most: int, what: str) -> None:
    if len(args) < least:
        raise _Refused(say.USAGE_MISSING.format(verb=verb, what=what))
    if len(args) > most:
        extra = _shown(" ".join(args[most:]))
        raise _Refused(say.USAGE_EXTRA.format(verb=verb, what=what, extra=extra))


def parse_command(text: object) -> Command | Usage:
    """What a person asked for, or a Usage saying what was not understood. Never raises."""
    try:
        return _parse(text if isinstance(text, str) else "")
    except _Refused as exc:
        verb = _verb_of(text)
        return Usage(exc.problem, verb if verb in VERBS else None)
    except Exception:  # a bug must not become a stack trace in a channel
        logger.exception("could not parse a command")
        return Usage(say.USAGE_SEE_HELP.format(command="").strip())


def _verb_of(text: object) -> str:
    words = text.split() if isinstance(text, str) else []
    return words[0].lower() if words else ""


def _parse(text: str) -> Command:
    if len(text) > MAX_TEXT:
        raise _Refused(say.USAGE_TOO_LONG.format(limit=MAX_TEXT))
    words = html.unescape(text).split()
    if not words:
        return Help()
    verb, args = words[0].lower(), words[1:]
    if verb in ("help", "?", "-h", "--help"):
        return Help()
    if verb == "status":
        _args(verb, args, 0, 1, say.WHAT_ONE)
        return Status(_selector(args[0]) if args else ALL)
    if verb == "drift":
        _args(verb, args, 0, 1, say.WHAT_ONE)
        return Drift(_selector(args[0]) if args else ALL)
    if verb in ("history", "versions", "audit", "ack"):
        _args(verb, args, 1, 1, say.WHAT_APP)
        app = _selector(args[0])
        if verb == "history":
            return History(app)
        if verb == "versions":
            return Versions(app)
        return Audit(app) if verb == "audit" else Ack(app)
    if verb == "routes":
        _args(verb, args, 0, 1, say.WHAT_ONE)
        return Routes(_selector(args[0]) if args else None)
    if verb == "mutes":
        _args(verb, args, 0, 0, say.WHAT_NOTHING)
        return Mutes()
    if verb == "unmute":
        _args(verb, args, 1, 1, say.WHAT_TARGET)
        return Unmute(_selector(args[0]))
    if verb == "mute":
        _args(verb, args, 2, len(args), say.WHAT_DURATION)
        target = _selector(args[0])
        if target.kind == "all":
            raise _Refused(say.USAGE_MISSING.format(verb=verb, what=say.WHAT_TARGET))
        try:
            duration = parse_duration(args[1])
        except DurationError:
            raise _Refused(say.USAGE_BAD_DURATION.format(text=_shown(args[1]))) from None
        if not MIN_MUTE <= duration <= MAX_MUTE:
            raise _Refused(
                say.USAGE_DURATION_RANGE.format(max_days=MAX_MUTE.days, text=_shown(args[1]))
            )
        reason = " ".join(args[2:])[:MAX_REASON]
        return Mute(target, duration, reason)
    near = difflib.get_close_matches(verb, VERBS, n=1)
    if near:
        raise _Refused(say.USAGE_UNKNOWN_NEAR.format(word=_shown(verb), near=near[0]))
    raise _Refused(say.USAGE_UNKNOWN.format(word=_shown(verb)))


# --- which apps (pure) -------------------------------------------------------------------------


def _match(pattern: str, value: str) -> bool:
    """`*` and `?` wildcards only: a `[` typed in chat is a literal."""
    return glob_match(pattern.replace("[", "[[]"), value)


def selects(selector: Selector, state: AppState) -> bool:
    if selector.kind == "all":
        return True
    if selector.kind == "cluster":
        return _match(selector.value, state.cluster)
    if selector.kind == "namespace":
        return _match(selector.value, state.namespace)
    if selector.kind == "env":
        env = state.labels.get("env") or state.labels.get("environment") or ""
        return _match(selector.value, state.cluster) or bool(env and _match(selector.value, env))
    return (
        _match(selector.value, state.name)
        and (selector.namespace is None or _match(selector.namespace, state.namespace))
        and (selector.cluster is None or _match(selector.cluster, state.cluster))
    )


def select(states: Iterable[AppState], selector: Selector) -> list[AppState]:
    """The live apps `selector` picks. A bare word that names no app but names a cluster
    picks that cluster (`status staging`)."""
    present = chat.live(states)
    picked = [s for s in present if selects(selector, s)]
    if picked or selector.kind != "app" or selector.namespace or selector.cluster:
        return picked
    return [s for s in present if _match(selector.value, s.cluster)]


def suggestions(states: Iterable[AppState], selector: Selector) -> list[str]:
    """Names close to what was asked, for "did you mean"."""
    words = {s.name for s in states} | {s.cluster for s in states}
    return difflib.get_close_matches(selector.value, sorted(words), n=3)


@dataclass(frozen=True, slots=True)
class Scope:
    """The clusters and namespaces a channel follows: those of the routes that post to it.
    Each rule is (cluster patterns, namespace patterns); None matches anything."""

    channel: str
    rules: tuple[tuple[tuple[str, ...] | None, tuple[str, ...] | None], ...]

    def covers(self, state: AppState) -> bool:
        return any(
            (clusters is None or any(glob_match(p, state.cluster) for p in clusters))
            and (namespaces is None or any(glob_match(p, state.namespace) for p in namespaces))
            for clusters, namespaces in self.rules
        )


def channel_scope(config: Config, channel_id: str, channel_name: str = "") -> Scope | None:
    """What a question asked in this channel may show (pure). None: everything, either
    because `slack.scope_channels` is off or because no Slack receiver posts here."""
    if not config.slack.scope_channels or not channel_id:
        return None
    names = {channel_id, channel_name, f"#{channel_name}"} - {"", "#"}
    receivers = {r.name for r in config.receivers if r.slack and r.slack.channel in names}
    if not receivers:
        return None
    rules = tuple(
        (
            route.match.cluster if route.match else None,
            route.match.namespace if route.match else None,
        )
        for route in config.routes
        if receivers.intersection(route.receivers)
    )
    return Scope(channel_id, rules)


def problems_since(policy: PolicyState) -> dict[AppKey, datetime]:
    """Per app, when its oldest open or held problem began."""
    since: dict[AppKey, datetime] = {}
    events = [a.event for a in policy.open.values()] + [h.event for h in policy.held.values()]
    for event in events:
        key, began = event.key, event.occurred_at
        if key not in since or began < since[key]:
            since[key] = began
    return since


def open_alerts(policy: PolicyState) -> dict[AppKey, list[GitOpsEvent]]:
    alerts: dict[AppKey, list[GitOpsEvent]] = {}
    for alert in policy.open.values():
        alerts.setdefault(alert.event.key, []).append(alert.event)
    return alerts


# --- running a command ---------------------------------------------------------------------------


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
            await self._denied(asker, _verb_of(text), text, now)
            return chat.answer_denied(None)
        if isinstance(parsed, Usage):
            return chat.answer_usage(self.command, parsed.problem, parsed.about)
        if parsed.verb in OPERATOR_VERBS and not rbac.may_operate(asker.user, asker.groups):
            await self._denied(asker, parsed.verb, text, now)
            return chat.answer_denied(parsed.verb)
        return await self.execute(parsed, asker, now)

    async def _denied(self, asker: Asker, verb: str, text: str, now: datetime) -> None:
        detail = {"command": verb[:40], "text": text[:200], "channel": asker.channel}
        await self.audit.audit(asker.user, "denied", None, detail, at=now)

    def visible(self, asker: Asker) -> list[AppState]:
        """The apps this asker may see here (channel scoping)."""
        states = chat.live(self.fleet.states.values())
        scope = channel_scope(self.config, asker.channel, asker.channel_name)
        return states if scope is None else [s for s in states if scope.covers(s)]

    async def execute(self, command: Command, asker: Asker, now: datetime) -> Answer:
        """Answer an understood command from someone allowed to give it."""
        policy = self.fleet.policy_state
        states = self.visible(asker)
        if isinstance(command, Help):
            return chat.answer_help(self.command)
        if isinstance(command, Mutes):
            return chat.answer_mutes(self.controls.mutes(now))
        if isinstance(command, Routes) and command.app is None:
            return chat.answer_routes(None, [], self.config)
        if isinstance(command, Status | Drift) and command.selector.kind == "all":
            if isinstance(command, Drift):
                return chat.answer_drift(states, now, problems_since(policy))
            scoped = channel_scope(self.config, asker.channel, asker.channel_name)
            empty = say.STATUS_NOTHING_IN_SCOPE if scoped else say.STATUS_NOTHING
            return chat.answer_status(states, now, since=problems_since(policy), empty=empty)
        if isinstance(command, Mute):
            return await self._mute(command, asker, states, now)
        if isinstance(command, Unmute):
            try:
                found = await self.controls.unmute(command.target.text, asker.user, now)
            except ValueError as exc:
                return chat.answer_usage(self.command, chat.escaped(str(exc), 300), command.verb)
            detail = {"target": command.target.text, "found": found}
            await self._audit_keys(asker, "unmute", select(states, command.target), detail, now)
            return chat.answer_unmuted(command.target.text, found)

        selector = _selector_of(command)
        picked = select(states, selector)
        if not picked:
            return chat.answer_no_match(selector.text, suggestions(states, selector))
        what = selector.text
        if isinstance(command, Status):
            if selector.kind == "app" and any(selects(selector, s) for s in picked):
                return chat.answer_apps(
                    picked,
                    now,
                    what=what,
                    alerts=open_alerts(policy),
                    since=problems_since(policy),
                )
            return chat.answer_status(picked, now, what=what, since=problems_since(policy))
        if isinstance(command, Drift):
            return chat.answer_drift(picked, now, problems_since(policy))
        if isinstance(command, Versions):
            return chat.answer_versions(what, picked)
        if isinstance(command, Routes):
            return chat.answer_routes(what, picked, self.config)
        if isinstance(command, History):
            return chat.answer_history(what, picked, await self._entries(picked))
        if isinstance(command, Audit):
            return chat.answer_audit(what, await self._entries(picked))
        assert isinstance(command, Ack)
        return await self._ack(command, asker, picked, now)

    async def _mute(
        self, command: Mute, asker: Asker, states: list[AppState], now: datetime
    ) -> Answer:
        target = command.target.text
        try:
            mute = await self.controls.mute(
                target, now + command.duration, command.reason, asker.user, now
            )
        except ValueError as exc:  # a target the policy cannot mute
            return chat.answer_usage(self.command, chat.escaped(str(exc), 300), command.verb)
        detail = {"target": target, "until": mute.until.isoformat(), "reason": command.reason}
        await self._audit_keys(asker, "mute", select(states, command.target), detail, now)
        return chat.answer_muted(mute)

    async def _ack(
        self, command: Ack, asker: Asker, picked: list[AppState], now: datetime
    ) -> Answer:
        total = 0
        for state in picked:
            count = await self.controls.ack(state.key, asker.user, now)
            if count:
                total += count
                await self.audit.audit(asker.user, "ack", state.key, {"alerts": count}, at=now)
        return chat.answer_acked(command.app.text, total)

    async def _audit_keys(
        self,
        asker: Asker,
        action: str,
        states: list[AppState],
        detail: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """One entry per app the action touches (so `audit APP` shows it), or one entry for
        all when it touches none or very many."""
        if not states or len(states) > MAX_AUDITED_KEYS:
            await self.audit.audit(asker.user, action, None, detail, at=now)
            return
        for state in states:
            await self.audit.audit(asker.user, action, state.key, detail, at=now)

    async def _entries(self, picked: list[AppState]) -> list[AuditRecord]:
        """The audit entries about these apps, newest first."""
        entries: dict[int, Any] = {}
        for state in picked[:MAX_AUDITED_KEYS]:
            for entry in await self.audit.audit_log(state.key, 50):
                entries[entry.id] = entry
        return sorted(entries.values(), key=lambda e: e.id, reverse=True)[:50]


def _selector_of(command: Command) -> Selector:
    for name in ("selector", "app", "target"):
        value = getattr(command, name, None)
        if isinstance(value, Selector):
            return value
    return ALL


def needs_operator(command: Command | Usage) -> bool:
    return not isinstance(command, Usage) and command.verb in OPERATOR_VERBS
