"""Where an annotation may send events: `routing.allow`, the central config's allow-list.

App teams route their own alerts with annotations (`config.annotation_routes`), but only to
destinations the central config allows, so an annotation can neither invent a webhook nor post
into a channel nobody approved. An entry is:
- `slack:<channel>`: a Slack channel (ID or name). A receiver posting there is used; if none
  does, one is made (`slack-<channel>`, posting with driftbot's own Slack app), so allowing a
  team's channel is one line;
- `teams:<receiver>`: a Teams receiver of `receivers` (its webhook stays in the central config);
- `<receiver>`: any receiver of `receivers`, by name.
Works on the raw parsed file (before the schema), so the loader reports problems with their
lines. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from config.importers.draft import receiver_name

Loc = tuple[str | int, ...]


def split_entry(entry: str) -> tuple[str, str]:
    """`slack:C0123` -> ("slack", "C0123"); `teams:pm` -> ("teams", "pm"); `oncall` ->
    ("receiver", "oncall")."""
    kind, sep, value = entry.partition(":")
    if sep and kind in ("slack", "teams"):
        return kind, value.strip()
    return "receiver", entry.strip()


def slack_receiver_name(channel: str) -> str:
    """The receiver made for an allowed channel: `slack-shop-alerts` for `#shop-alerts`, the
    name `driftbot import` gives it too."""
    return receiver_name("slack", channel)


def _channel(receiver: Mapping[str, Any]) -> str | None:
    slack = receiver.get("slack")
    channel = slack.get("channel") if isinstance(slack, Mapping) else None
    return channel if isinstance(channel, str) else None


def _entries(data: Mapping[str, Any]) -> list[tuple[int, str]]:
    routing = data.get("routing")
    allow = routing.get("allow") if isinstance(routing, Mapping) else None
    if not isinstance(allow, list | tuple):
        return []
    return [(i, e) for i, e in enumerate(allow) if isinstance(e, str)]


def _receivers(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    receivers = data.get("receivers")
    if not isinstance(receivers, list | tuple):
        return []
    return [r for r in receivers if isinstance(r, Mapping)]


def with_allowed_channels(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with a Slack receiver for each allowed channel no receiver posts to yet."""
    receivers = list(_receivers(data))
    channels = {c.lstrip("#") for r in receivers if (c := _channel(r)) is not None}
    names = {r.get("name") for r in receivers}
    added = False
    for _, entry in _entries(data):
        kind, channel = split_entry(entry)
        if kind != "slack" or not channel or channel.lstrip("#") in channels:
            continue
        name = slack_receiver_name(channel)
        if name in names:
            continue  # cross_check says why
        receivers.append({"name": name, "slack": {"channel": channel}})
        channels.add(channel.lstrip("#"))
        names.add(name)
        added = True
    return {**data, "receivers": receivers} if added else dict(data)


def check_allow(data: Mapping[str, Any], defined: Sequence[str]) -> list[tuple[Loc, str]]:
    """Problems with `routing.allow`: entries naming receivers that do not exist, `teams:`
    entries naming a receiver that is not a Teams one, empty channels, names taken."""
    by_name = {r.get("name"): r for r in _receivers(data)}
    channels = {c.lstrip("#") for r in by_name.values() if (c := _channel(r)) is not None}
    issues: list[tuple[Loc, str]] = []
    for index, entry in _entries(data):
        loc: Loc = ("routing", "allow", index)
        kind, value = split_entry(entry)
        if not value:
            issues.append((loc, f"{entry!r} names nothing (write slack:C0123, teams:NAME or NAME)"))
        elif kind == "slack":
            name = slack_receiver_name(value)
            if value.lstrip("#") not in channels and name in by_name:
                issues.append(
                    (loc, f"receiver {name!r}, needed for channel {value}, is not a Slack receiver")
                )
        elif value not in defined:
            issues.append(
                (loc, f"receiver {value!r} is not defined (defined: {', '.join(defined)})")
            )
        elif kind == "teams" and not isinstance(by_name.get(value, {}).get("teams"), Mapping):
            issues.append((loc, f"receiver {value!r} is not a Teams receiver"))
    return issues
