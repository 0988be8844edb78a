"""The config an importer builds, and its text: every line carries a comment saying where it
came from, and what has no equivalent is listed as comments, so nothing is dropped silently.

Receivers are shared: two subscriptions to one Slack channel make one receiver with both
origins. Routes all say `continue: true`, because Argo CD and Flux send every subscription
that matches, not the first. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ReceiverType = Literal["slack", "teams"]

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_GLOB_CHARS = re.compile(r"([*?\[])")
MAX_COMMENT = 400


DIFFERENCES = (
    "",
    "How driftbot differs from what it replaces (policy in docs/configuration.md):",
    "- a failure or drift is announced once it has lasted policy.grace (60s), and storms on one",
    "  route are grouped (group_wait 30s): the seconds of trouble every deploy has stay quiet;",
    "- a recovery updates the alert it ends, in the channel that got the alert, even where no",
    "  route takes the recovery's own kind; problems still open are reminded (policy.repeat).",
    "",
)


def flow(value: Any) -> str:
    """`value` as YAML flow text: mappings `{k: v}`, lists `[a, b]`, text plain where it can
    only be read back as the same text, else double-quoted (JSON escapes are YAML's)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{flow(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return _quote(text)


def _quote(text: str) -> str:
    """YAML's double-quoted form: `"` and `\\` escaped, and any character that is not
    printable as `\\uXXXX` or `\\UXXXXXXXX` (YAML reads both, and no surrogate pairs)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def comment(text: str) -> str:
    """One line of comment text: no line breaks or other control characters, bounded."""
    line = " ".join(text.split())
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    return line if len(line) <= MAX_COMMENT else line[: MAX_COMMENT - 1] + "…"


def literal(value: str) -> str:
    """A name as a pattern that matches only itself (`*`, `?`, `[` made literal)."""
    return _GLOB_CHARS.sub(r"[\1]", value)


def receiver_name(prefix: str, recipient: str) -> str:
    """`slack-shop-alerts` for the Slack channel `#shop-alerts`: letters, digits, `_.-`."""
    tail = _NAME_CHARS.sub("-", recipient).strip("-._")
    return f"{prefix}-{tail}" if tail else prefix


def env_name(*parts: str) -> str:
    """`TEAMS_PM_WEBHOOK` from ("teams", "pm", "webhook"): an environment variable name."""
    text = "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_") for p in parts if p)
    text = re.sub(r"_+", "_", text).upper()
    return text if text and not text[0].isdigit() else f"X_{text}"


@dataclass
class Receiver:
    name: str
    type: ReceiverType
    body: dict[str, str]
    origins: list[str]


@dataclass(frozen=True)
class Route:
    match: dict[str, Any]
    receivers: tuple[str, ...]
    origin: str
    """What the route as a whole came from (the subscription, the Alert)."""
    receivers_origin: str
    kinds_origin: str = ""
    mention: tuple[str, ...] = ()
    mention_origin: str = ""
    notes: tuple[str, ...] = ()
    """Comment lines above the route: what of its source it does not carry over."""


@dataclass
class Draft:
    """What an importer found: receivers, routes, and notes on everything left behind."""

    tool_label: str
    """`Argo CD` or `Flux`: whose sending the `continue: true` comment explains."""
    title: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    receivers: dict[str, Receiver] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    server: dict[str, tuple[Any, str]] = field(default_factory=dict)
    """`server` keys to set: value and where it came from."""

    def note(self, text: str) -> None:
        line = comment(text)
        if line not in self.notes:
            self.notes.append(line)

    def receiver(self, hint: str, type_: ReceiverType, body: dict[str, str], origin: str) -> str:
        """The name of the receiver with this body, added if new; a name taken by another
        body gets a numbered suffix."""
        name, number = hint, 1
        while name in self.receivers:
            existing = self.receivers[name]
            if existing.type == type_ and existing.body == body:
                if origin not in existing.origins:
                    existing.origins.append(origin)
                return name
            number += 1
            name = f"{hint}-{number}"
        self.receivers[name] = Receiver(name, type_, body, [origin])
        return name

    def render(self) -> str:
        """The config text: header, notes, receivers, routes (and server keys if any)."""
        out = [f"# {comment(line)}" if line else "#" for line in self.title]
        if self.notes:
            out += [
                "#",
                "# Not imported (no equivalent in driftbot, or nothing Argo CD or Flux "
                "would send):",
            ]
            out += [f"# - {line}" for line in self.notes]
        if self.server:
            out.append("server:  # driftbot's HTTP server")
            for key, (value, origin) in self.server.items():
                out.append(f"  {key}: {flow(value)}  # {comment(origin)}")
        out += [f"# {line}" if line else "#" for line in DIFFERENCES]
        out.append("receivers:  # where the old setup sent")
        for rc in self.receivers.values():
            line = flow({"name": rc.name, rc.type: rc.body})
            out.append(f"  - {line}  # {comment('; '.join(rc.origins))}")
        out.append(
            f"routes:  # one per subscription; all say continue: true, as {self.tool_label} "
            "sends every subscription that matches"
        )
        for route in self.routes:
            out += [f"  # {comment(n)}" for n in route.notes]
            out.append(f"  - match: {flow(route.match)}  # {comment(route.origin)}")
            if route.kinds_origin:
                out[-1] += f"; {comment(route.kinds_origin)}"
            out.append(
                f"    receivers: {flow(list(route.receivers))}  # {comment(route.receivers_origin)}"
            )
            if route.mention:
                out.append(
                    f"    mention: {flow(list(route.mention))}  # {comment(route.mention_origin)}"
                )
            out.append(
                f"    continue: true  # {self.tool_label} would also send other subscriptions "
                "that match"
            )
        return "\n".join(out) + "\n"


def join(items: Sequence[str]) -> str:
    return ", ".join(items)
