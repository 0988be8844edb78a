"""The slash command's words -> a Command value (pure): what a person asked for, or a Usage
saying what was not understood; parsing never raises.

Each command is a small frozen dataclass with its `verb`; `GRAMMAR` says how each verb reads
its words. A new command is a dataclass here, a line in `GRAMMAR` (and in `OPERATOR_VERBS` if
it changes anything), and a case in the runner (bot.chat.commands.run).
"""

from __future__ import annotations

import difflib
import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Literal

from config.durations import DurationError, parse_duration
from formatters import chat
from formatters import chat_phrases as say

logger = logging.getLogger(__name__)

MAX_TEXT = 1000
"""Longest command text read; Slack itself allows 4,000."""
MAX_ARG = 253
"""Longest name, namespace, cluster or pattern (Kubernetes names stop at 253)."""
MAX_REASON = 300
MIN_MUTE = timedelta(minutes=1)
MAX_MUTE = timedelta(days=30)

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
class Act:
    """An action on one app (deployers only, with `actions.enabled`): `action` is its verb
    (sync, rollback, refresh, terminate, reconcile, suspend, resume)."""

    action: str
    app: Selector
    revision: str = ""
    history_id: str = ""
    with_source: bool = False

    @property
    def verb(self) -> str:
        return self.action


@dataclass(frozen=True, slots=True)
class Usage:
    """Not understood: `problem` is one escaped sentence; `about` the verb it concerned."""

    problem: str
    about: str | None = None


Command = (
    Help | Status | Drift | History | Versions | Audit | Routes | Mute | Unmute | Mutes | Ack | Act
)


# --- selectors -------------------------------------------------------------------------------


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


# --- how each verb reads its words -------------------------------------------------------------

Reader = Callable[[str, list[str]], Command]
"""(verb, the words after it) -> the Command; raises _Refused for words it cannot take."""


def _nothing(make: Callable[[], Command]) -> Reader:
    """A verb that takes no words."""

    def read(verb: str, args: list[str]) -> Command:
        _args(verb, args, 0, 0, say.WHAT_NOTHING)
        return make()

    return read


def _maybe_selector(make: Callable[[Selector], Command]) -> Reader:
    """A verb about all apps, or those one selector picks."""

    def read(verb: str, args: list[str]) -> Command:
        _args(verb, args, 0, 1, say.WHAT_ONE)
        return make(_selector(args[0]) if args else ALL)

    return read


def _one(make: Callable[[Selector], Command], what: str = say.WHAT_APP) -> Reader:
    """A verb about exactly the apps one selector picks."""

    def read(verb: str, args: list[str]) -> Command:
        _args(verb, args, 1, 1, what)
        return make(_selector(args[0]))

    return read


def _routes(verb: str, args: list[str]) -> Command:
    _args(verb, args, 0, 1, say.WHAT_ONE)
    return Routes(_selector(args[0]) if args else None)


def _mute(verb: str, args: list[str]) -> Command:
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


_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:/+-]{0,252}")


def _act(verb: str, args: list[str]) -> Command:
    """`sync APP [REVISION]`, `rollback APP [HISTORY_ID]`, `reconcile APP [--with-source]`,
    `refresh|terminate|suspend|resume APP`: exactly one app, no wildcards."""
    flags = [a for a in args if a.startswith("--")]
    words = [a for a in args if not a.startswith("--")]
    allowed = {"--with-source"} if verb == "reconcile" else set()
    unknown = [f for f in flags if f not in allowed]
    if unknown:
        raise _Refused(
            say.USAGE_EXTRA.format(verb=verb, what=say.WHAT_APP, extra=_shown(unknown[0]))
        )
    most = 2 if verb in ("sync", "rollback") else 1
    _args(verb, words, 1, most, say.WHAT_APP)
    app = _selector(words[0])
    if app.kind != "app" or any(c in app.text for c in "*?"):
        raise _Refused(say.USAGE_ONE_APP.format(verb=verb))
    extra = words[1] if len(words) > 1 else ""
    if verb == "rollback" and extra and not extra.isdigit():
        raise _Refused(say.USAGE_HISTORY_ID.format(text=_shown(extra)))
    if verb == "sync" and extra and not _REVISION.fullmatch(extra):
        raise _Refused(say.USAGE_REVISION.format(text=_shown(extra)))
    return Act(
        verb,
        app,
        revision=extra if verb == "sync" else "",
        history_id=extra if verb == "rollback" else "",
        with_source="--with-source" in flags,
    )


ACT_VERBS = ("sync", "rollback", "refresh", "terminate", "reconcile", "suspend", "resume")
"""The verbs that act on Argo CD or Flux: deployers only (`rbac.deployers`), and only with
`actions.enabled`; each opens a confirmation first."""

GRAMMAR: dict[str, Reader] = {
    "help": lambda verb, args: Help(),  # whatever follows `help` is ignored
    "status": _maybe_selector(Status),
    "drift": _maybe_selector(Drift),
    "history": _one(History),
    "versions": _one(Versions),
    "audit": _one(Audit),
    "routes": _routes,
    "mute": _mute,
    "unmute": _one(Unmute, say.WHAT_TARGET),
    "mutes": _nothing(Mutes),
    "ack": _one(Ack),
    **dict.fromkeys(ACT_VERBS, _act),
}
"""Every verb and how it reads its words."""
ALIASES = {"?": "help", "-h": "help", "--help": "help"}
VERBS: tuple[str, ...] = tuple(GRAMMAR)
OPERATOR_VERBS = frozenset({"mute", "unmute", "ack"})
"""The verbs that change something: only operators (config `rbac.operators`) may give them."""


# --- parsing ---------------------------------------------------------------------------------


def parse_command(text: object) -> Command | Usage:
    """What a person asked for, or a Usage saying what was not understood. Never raises."""
    try:
        return _parse(text if isinstance(text, str) else "")
    except _Refused as exc:
        verb = verb_of(text)
        return Usage(exc.problem, verb if verb in VERBS else None)
    except Exception:  # a bug must not become a stack trace in a channel
        logger.exception("could not parse a command")
        return Usage(say.USAGE_SEE_HELP.format(command="").strip())


def verb_of(text: object) -> str:
    """The first word, lower case ("" for no words): what an audit entry names."""
    words = text.split() if isinstance(text, str) else []
    return words[0].lower() if words else ""


def _parse(text: str) -> Command:
    if len(text) > MAX_TEXT:
        raise _Refused(say.USAGE_TOO_LONG.format(limit=MAX_TEXT))
    words = html.unescape(text).split()
    if not words:
        return Help()
    verb, args = words[0].lower(), words[1:]
    read = GRAMMAR.get(ALIASES.get(verb, verb))
    if read is not None:
        return read(verb, args)
    near = difflib.get_close_matches(verb, VERBS, n=1)
    if near:
        raise _Refused(say.USAGE_UNKNOWN_NEAR.format(word=_shown(verb), near=near[0]))
    raise _Refused(say.USAGE_UNKNOWN.format(word=_shown(verb)))


def needs_operator(command: Command | Usage) -> bool:
    return not isinstance(command, Usage) and command.verb in OPERATOR_VERBS
