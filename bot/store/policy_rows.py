"""The policy state as rows, both ways, without a database: `policy_writes` is what to write to
go from the policy state last saved to a new one (only the buckets, groups and items that
changed: a save stays small with 10,000 apps), `decode_policy` reads the rows back (an
unreadable row is logged and skipped, never fatal). Pure apart from those log lines.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson

from bot.store.row_text import alert_key_text, to_text
from core.codec import (
    CodecError,
    alert_key_from_list,
    alert_key_to_list,
    event_from_dict,
    event_to_dict,
    flap_key_from_list,
    flap_key_to_list,
    format_time,
    from_jsonable,
    parse_time,
)
from core.flap import Flap
from core.grouping import Group
from core.immutable import PMap
from core.model import AppKey
from core.mutes import Mute
from core.policy import AlertKey, Held, OpenAlert, PolicyState, RecentIds, TextSeen

logger = logging.getLogger(__name__)

Write = tuple[str, list[tuple[Any, ...]]]
"""One statement and its rows."""

POLICY_QUERIES = {
    "held": "SELECT alert_key, held FROM policy_held",
    "open": "SELECT alert_key, alert FROM policy_open",
    "recent": "SELECT id, at FROM policy_recent ORDER BY rowid",
    "groups": "SELECT id, meta FROM policy_groups",
    "events": "SELECT group_id, part, event FROM policy_group_events ORDER BY group_id, part, seq",
    "items": "SELECT part, key, value FROM policy_items",
}
"""The rows a policy state is read from, by table, as `decode_policy` takes them."""


@dataclass(frozen=True, slots=True)
class PolicyRows:
    """The rows of each policy table, as POLICY_QUERIES select them."""

    held: list[Any]
    open: list[Any]
    recent: list[Any]
    groups: list[Any]
    events: list[Any]
    items: list[Any]


def decode_policy(rows: PolicyRows, where: str) -> PolicyState:
    """The policy state the rows hold; `where` (the store) names it in the log lines about
    rows that could not be read."""
    held_rows, open_rows, recent_rows = rows.held, rows.open, rows.recent
    group_rows, event_rows, item_rows = rows.groups, rows.events, rows.items
    held = _decode_rows(Held, held_rows, where)
    opened = _decode_rows(OpenAlert, open_rows, where)
    recent: list[tuple[str, datetime]] = []
    for event_id, at in recent_rows:
        try:
            recent.append((event_id, parse_time(at)))
        except CodecError as exc:
            logger.warning("skipping unreadable id %s in %s: %s", event_id, where, exc)
    mutes: list[Mute] = []
    flaps: list[tuple[tuple[str, AppKey], Flap]] = []
    texts: list[tuple[AlertKey, TextSeen]] = []
    for part, key, value in item_rows:
        try:
            if part == "mute":
                mutes.append(from_jsonable(Mute, orjson.loads(value)))
            elif part == "flap":
                flaps.append(
                    (
                        flap_key_from_list(orjson.loads(key)),
                        from_jsonable(Flap, orjson.loads(value)),
                    )
                )
            elif part == "text":
                texts.append(
                    (
                        alert_key_from_list(orjson.loads(key)),
                        from_jsonable(TextSeen, orjson.loads(value)),
                    )
                )
        except (CodecError, orjson.JSONDecodeError) as exc:
            logger.warning("skipping unreadable %s %s in %s: %s", part, key, where, exc)
    return PolicyState.of(
        held,
        opened,
        RecentIds.of(recent),
        groups=_decode_groups(group_rows, event_rows, where),
        flaps=flaps,
        mutes=mutes,
        texts=texts,
    )


def _decode_groups(group_rows: list[Any], event_rows: list[Any], where: str) -> list[Group]:
    parts: dict[tuple[str, str], list[Any]] = {}
    for group_id, part, text in event_rows:
        parts.setdefault((group_id, part), []).append(text)
    groups = []
    for group_id, meta in group_rows:
        try:
            data = orjson.loads(meta)
            if not isinstance(data, dict):
                raise CodecError("expected an object")
            data["members"] = [
                event_to_dict(event_from_dict(orjson.loads(t)))
                for t in parts.get((group_id, "m"), [])
            ]
            data["resolved"] = [
                event_to_dict(event_from_dict(orjson.loads(t)))
                for t in parts.get((group_id, "r"), [])
            ]
            group = from_jsonable(Group, data)
            if not group.members:
                raise CodecError("a group without members")
            groups.append(group)
        except (CodecError, orjson.JSONDecodeError) as exc:
            logger.warning("skipping unreadable group %s in %s: %s", group_id, where, exc)
    return groups


def _decode_rows(cls: type[Any], rows: list[Any], where: str) -> list[Any]:
    values = []
    for key, text in rows:
        try:
            values.append(from_jsonable(cls, orjson.loads(text)))
        except (CodecError, orjson.JSONDecodeError) as exc:
            logger.warning("skipping unreadable %s %s in %s: %s", cls.__name__, key, where, exc)
    return values


def policy_writes(old: PolicyState, state: PolicyState) -> list[Write]:
    """What to write to go from the saved policy state `old` to `state` ([]: nothing)."""
    held_put, held_gone = _changes(old.held, state.held)
    open_put, open_gone = _changes(old.open, state.open)
    recent_put, recent_gone = _recent_changes(old.recent, state.recent)
    extra = _group_writes(old.groups, state.groups) + _item_writes(old, state)
    if not (held_put or held_gone or open_put or open_gone or recent_put or recent_gone or extra):
        return []
    return [
        (
            "DELETE FROM policy_held WHERE alert_key = ?",
            [(alert_key_text(k),) for k in held_gone],
        ),
        (
            "INSERT INTO policy_held (alert_key, due, held) VALUES (?, ?, ?) "
            "ON CONFLICT (alert_key) DO UPDATE SET due = excluded.due, held = excluded.held",
            [(alert_key_text(k), format_time(h.due), to_text(h)) for k, h in held_put],
        ),
        (
            "DELETE FROM policy_open WHERE alert_key = ?",
            [(alert_key_text(k),) for k in open_gone],
        ),
        (
            "INSERT INTO policy_open (alert_key, announced_at, alert) VALUES (?, ?, ?) "
            "ON CONFLICT (alert_key) DO UPDATE SET announced_at = excluded.announced_at, "
            "alert = excluded.alert",
            [(alert_key_text(k), format_time(a.announced_at), to_text(a)) for k, a in open_put],
        ),
        ("DELETE FROM policy_recent WHERE id = ?", [(i,) for i in recent_gone]),
        (
            "INSERT INTO policy_recent (id, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(i, format_time(at)) for i, at in recent_put],
        ),
        *extra,
    ]


def _group_writes(old: PMap[str, Group], new: PMap[str, Group]) -> list[Write]:
    """Groups are written as a row of their own and one row per event; their events are only
    appended to, so a save writes the new events only (all of them after a rewrite)."""
    put, gone = _changes(old, new)
    metas: list[tuple[Any, ...]] = []
    cleared: list[tuple[Any, ...]] = [(g,) for g in gone]
    events: list[tuple[Any, ...]] = []
    for group_id, group in put:
        before = old.get(group_id)
        meta = {
            f.name: getattr(group, f.name)
            for f in dataclasses.fields(group)
            if f.name not in ("members", "resolved")
        }
        metas.append((group_id, to_text(meta)))
        if before is None or before.epoch != group.epoch:
            cleared.append((group_id,))
            start_m = start_r = 0
        else:
            start_m, start_r = len(before.members), len(before.resolved)
        for part, items, start in (
            ("m", group.members, start_m),
            ("r", group.resolved, start_r),
        ):
            events.extend(
                (group_id, part, seq, to_text(e)) for seq, e in enumerate(items[start:], start)
            )
    return (
        [
            ("DELETE FROM policy_groups WHERE id = ?", [(g,) for g in gone]),
            ("DELETE FROM policy_group_events WHERE group_id = ?", cleared),
            (
                "INSERT INTO policy_groups (id, meta) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET meta = excluded.meta",
                metas,
            ),
            (
                "INSERT INTO policy_group_events (group_id, part, seq, event) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (group_id, part, seq) DO UPDATE SET event = excluded.event",
                events,
            ),
        ]
        if put or gone
        else []
    )


def _item_writes(old: PolicyState, new: PolicyState) -> list[Write]:
    """Mutes, flaps and remembered texts, one row each."""
    deletes: list[tuple[Any, ...]] = []
    puts: list[tuple[Any, ...]] = []
    parts: tuple[tuple[str, PMap[Any, Any], PMap[Any, Any], Any], ...] = (
        ("mute", old.mutes, new.mutes, lambda k: k),
        ("flap", old.flaps, new.flaps, lambda k: to_text(flap_key_to_list(k))),
        ("text", old.texts, new.texts, lambda k: to_text(alert_key_to_list(k))),
    )
    for part, before, after, key_text in parts:
        put, gone = _changes(before, after)
        deletes.extend((part, key_text(k)) for k in gone)
        puts.extend((part, key_text(k), to_text(v)) for k, v in put)
    if not deletes and not puts:
        return []
    return [
        ("DELETE FROM policy_items WHERE part = ? AND key = ?", deletes),
        (
            "INSERT INTO policy_items (part, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (part, key) DO UPDATE SET value = excluded.value",
            puts,
        ),
    ]


K = TypeVar("K")


def _changes(old: PMap[K, Any], new: PMap[K, Any]) -> tuple[list[tuple[K, Any]], list[K]]:
    """What to write and delete to go from `old` to `new`: only the buckets that differ."""
    put: list[tuple[K, Any]] = []
    gone: list[K] = []
    if old is new:
        return put, gone
    for old_bucket, new_bucket in zip(old.buckets, new.buckets, strict=True):
        if old_bucket is new_bucket:
            continue
        put.extend((k, v) for k, v in new_bucket.items() if old_bucket.get(k) is not v)
        gone.extend(k for k in old_bucket if k not in new_bucket)
    return put, gone


def _recent_changes(old: RecentIds, new: RecentIds) -> tuple[list[tuple[str, datetime]], list[str]]:
    """Chunks are never changed in place: compare them by identity, then look inside the few
    that differ (usually only the newest, grown by a few ids)."""
    if old is new:
        return [], []
    old_chunks = {id(c) for c in old.chunks}
    new_chunks = {id(c) for c in new.chunks}
    added = [c for c in new.chunks if id(c) not in old_chunks]
    dropped = [c for c in old.chunks if id(c) not in new_chunks]
    stored: set[str] = set()
    for chunk in dropped:
        stored.update(chunk)
    fresh: set[str] = set()
    for chunk in added:
        fresh.update(chunk)
    put = [(i, at) for chunk in added for i, at in chunk.items() if i not in stored]
    gone = [i for i in stored if i not in fresh]
    return put, gone
