"""`driftbot audit`: the audit log, read back from the store, as a table or as JSON Lines.

The log holds every notification (with the events it told of and each receiver's outcome),
every digest, every human action from chat (mute, unmute, ack, refusals) and every config
reload or refusal, each with who and when. Entries are selected by app name (`name` or
`namespace/name`, globs allowed) and cluster; a storm's entry names its apps in its events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC
from fnmatch import fnmatchcase
from typing import Any

import orjson

from bot.store.store import AuditEntry, Store
from core.codec import format_time
from formatters.escape import one_line, truncate
from formatters.revision import short_revision

MAX_DETAIL = 160
PAGE = 500


def _apps(entry: AuditEntry) -> list[tuple[str, str, str]]:
    """(cluster, namespace, name) of every app the entry is about."""
    apps = []
    if entry.app is not None:
        apps.append((entry.app.cluster, entry.app.namespace, entry.app.name))
    for event in entry.detail.get("events") or ():
        if isinstance(event, dict):
            apps.append(
                (
                    str(event.get("cluster", "")),
                    str(event.get("namespace", "")),
                    str(event.get("name", "")),
                )
            )
    return apps


def selects(entry: AuditEntry, app: str | None, cluster: str | None) -> bool:
    """Is the entry about an app named `app` (`name` or `namespace/name`, globs) in
    `cluster` (glob)? None matches anything; an entry about no app matches only no filter."""
    if app is None and cluster is None:
        return True
    namespace, _, name = (app or "").rpartition("/")
    for app_cluster, app_namespace, app_name in _apps(entry):
        if cluster is not None and not fnmatchcase(app_cluster, cluster):
            continue
        if app is not None and not fnmatchcase(app_name, name):
            continue
        if namespace and not fnmatchcase(app_namespace, namespace):
            continue
        return True
    return False


async def read_audit(
    store: Store, app: str | None = None, cluster: str | None = None, limit: int = 50
) -> list[AuditEntry]:
    """The newest `limit` entries that the filters select, oldest first."""
    found: list[AuditEntry] = []
    fetch = max(limit, PAGE) if (app or cluster) else limit
    while True:
        entries = await store.audit_log(None, fetch)
        found = [e for e in entries if selects(e, app, cluster)][:limit]
        if len(found) >= limit or len(entries) < fetch:
            return list(reversed(found))
        fetch *= 4


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """One entry as a JSON object (one line of `--output jsonl`)."""
    app = None
    if entry.app is not None:
        app = {
            "tool": entry.app.tool.value,
            "cluster": entry.app.cluster,
            "namespace": entry.app.namespace,
            "kind": entry.app.kind,
            "name": entry.app.name,
        }
    return {
        "id": entry.id,
        "at": format_time(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "app": app,
        "detail": entry.detail,
    }


def render_jsonl(entries: Iterable[AuditEntry]) -> str:
    return "".join(orjson.dumps(entry_json(e)).decode() + "\n" for e in entries)


def _app_text(entry: AuditEntry) -> str:
    if entry.app is not None:
        return f"{entry.app.cluster}/{entry.app.namespace}/{entry.app.name}"
    apps = _apps(entry)
    if apps:
        first = "/".join(apps[0])
        return first if len(apps) == 1 else f"{first} +{len(apps) - 1}"
    return "-"


def _outcomes(receivers: Any) -> str:
    if not isinstance(receivers, dict) or not receivers:
        return "no receivers"
    return ", ".join(f"{name} {outcome}" for name, outcome in receivers.items())


def summary(entry: AuditEntry) -> str:
    """The entry's detail in a few words, for the table."""
    d = entry.detail
    if entry.action in ("announce", "remind"):
        events = [e for e in d.get("events") or () if isinstance(e, dict)]
        what = str(d.get("kind", ""))
        if len(events) == 1:
            event = events[0]
            rev = short_revision(str(event.get("revision") or ""))
            what += f" {rev}" if rev else ""
            actor = str(event.get("actor") or "")
            what += f" by {actor}" if actor else ""
        elif events:
            what += f" of {len(events)} events"
        text = f"{what} -> {_outcomes(d.get('receivers'))}"
    elif entry.action == "digest":
        text = f"{d.get('name', '')} since {d.get('since', '')} -> {_outcomes(d.get('receivers'))}"
    elif entry.action == "config_reload":
        text = f"{d.get('file', '')}: {d.get('routes', 0)} routes"
        for key in ("added", "removed", "changed"):
            if d.get(key):
                text += f", {key} {', '.join(map(str, d[key]))}"
    elif entry.action == "config_rejected":
        errors = d.get("errors") or []
        text = f"{len(errors)} errors" + (f": {errors[0]}" if errors else "")
    else:
        text = ", ".join(
            f"{k} {v}" for k, v in d.items() if isinstance(v, str | int | float) and v != ""
        )
    return truncate(one_line(text), MAX_DETAIL)


HEADERS = ("WHEN (UTC)", "ACTOR", "ACTION", "APP", "DETAIL")


def render_table(entries: Sequence[AuditEntry]) -> str:
    """A table with one line per entry, columns aligned."""
    rows = [
        (
            entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            truncate(one_line(entry.actor), 40),
            truncate(one_line(entry.action), 20),
            truncate(one_line(_app_text(entry)), 60),
            summary(entry),
        )
        for entry in entries
    ]
    widths = [max(len(r[i]) for r in [HEADERS, *rows]) for i in range(len(HEADERS) - 1)]
    lines = []
    for row in [HEADERS, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"
