"""The status page as HTML, server-rendered from the view values of formatters/status_view.py
and formatters/status_timeline.py. Pure: text in, text out.

Every value from a cluster or Git is escaped here (html.escape); states are words with an
icon beside them, never a colour alone; times are `<time>` elements in UTC that the page's
script shows in the reader's time zone, keeping UTC in the tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from core.codec import format_time
from formatters import phrases
from formatters import status_words as say
from formatters.revision import short_revision
from formatters.status_assets import CSS, SCRIPT
from formatters.status_paths import badge_path, cluster_path, json_path
from formatters.status_svg import CATEGORY_ORDER, legend_shape, timeline_svg
from formatters.status_timeline import Span, TimelineEntry
from formatters.status_view import AppView, ClusterView

LIVE_PATH = "/status/_live"
"""The server-sent events the page listens to for changes."""
NO_SCRIPT_REFRESH = 30
"""Seconds between reloads for a reader without JavaScript."""

_ICON_CLASS = {
    "failing": "bad",
    "degraded": "bad",
    "drifted": "warn",
    "pending": "warn",
    "progressing": "info",
    "paused": "grey",
    "unknown": "grey",
    "ok": "good",
}
_ICON_BODY = {
    # A cross in a disc, an exclamation mark in a triangle, a check in a disc, two bars, a dot.
    "bad": '<circle cx="8" cy="8" r="8"/><path class="fg" d="M5 4 8 7 11 4 12 5 9 8 12 11 '
    '11 12 8 9 5 12 4 11 7 8 4 5Z"/>',
    "warn": '<path d="M8 0 16 15H0Z"/><rect class="fg" x="7" y="5" width="2" height="5"/>'
    '<rect class="fg" x="7" y="11.5" width="2" height="2"/>',
    "good": '<circle cx="8" cy="8" r="8"/><path class="fg" d="M3.5 8.5 5 7 7 9 11 5 12.5 6.5 '
    '7 12Z"/>',
    "info": '<circle cx="8" cy="8" r="8"/><path class="fg" d="M6 4 12 8 6 12Z"/>',
    "grey": '<circle cx="8" cy="8" r="8"/><rect class="fg" x="5" y="4" width="2" height="8"/>'
    '<rect class="fg" x="9" y="4" width="2" height="8"/>',
}


def icon(status: str) -> str:
    kind = _ICON_CLASS.get(status, "grey")
    return (
        f'<svg class="icon icon-{kind}" viewBox="0 0 16 16" aria-hidden="true" '
        f'focusable="false">{_ICON_BODY[kind]}</svg>'
    )


def when(moment: datetime) -> str:
    """A `<time>`: UTC as text and tooltip; the script shows it in the reader's time zone."""
    utc = phrases.time_utc(moment)
    return f'<time datetime="{format_time(moment)}" title="{utc}">{utc}</time>'


def _e(text: str, limit: int = 200) -> str:
    return escape(phrases.value(text, limit))


def _who(actor: str) -> str:
    name = phrases.value(actor, phrases.MAX_ACTOR)
    if not name:
        return ""
    if name.lower() == phrases.AUTOMATED:
        return escape(say.AUTOMATICALLY)
    return escape(say.BY.format(who=name))


def _state_line(app: AppView) -> str:
    text = escape(app.words)
    if app.since is not None:
        text += " " + escape(say.SINCE.format(when="")) + when(app.since)
    return (
        f'<span class="state s-{app.status}">{icon(app.status)}'
        f'<span class="state-text">{text}</span></span>'
    )


def _deploy_line(app: AppView) -> str:
    deploy = app.last_deploy
    if deploy is None:
        return f"{escape(say.LAST_DEPLOY)}: {escape(say.NO_DEPLOY)}"
    rev = f"<code>{escape(short_revision(deploy.revision)) or '?'}</code>"
    if deploy.commit_url:
        rev = f'<a href="{escape(deploy.commit_url)}" rel="noreferrer">{rev}</a>'
    text = f"{escape(say.LAST_DEPLOY)}: {rev}{_who(deploy.by)}"
    if deploy.at is not None:
        text += ", " + when(deploy.at)
    return text


def _kind_words(app: AppView) -> str:
    tool = phrases.tool_name(app.key.tool)
    return f"{tool} {app.key.kind} · {phrases.value(app.key.namespace, 80)}"


def _app_item(app: AppView) -> str:
    return (
        f'<li class="app status-{app.status}" data-status="{app.status}" '
        f'data-app="{escape(app.key.name)}">'
        f'<div><a class="name" href="{escape(app.path)}">{_e(app.key.name, 120)}</a>'
        f'<span class="where">{escape(_kind_words(app))}</span></div>'
        f"<div>{_state_line(app)}</div>"
        f'<div class="deploy">{_deploy_line(app)}</div></li>'
    )


def _verdict(cluster: ClusterView, level: int, link: bool) -> str:
    rest = cluster.verdict[len(cluster.name) :] if cluster.verdict.startswith(cluster.name) else ""
    name = _e(cluster.name, phrases.MAX_CLUSTER)
    shown = f'<a href="{escape(cluster.path)}">{name}</a>' if link else name
    return (
        f'<h{level} class="verdict s-{cluster.worst}" id="c-{escape(cluster.name)}">'
        f"{icon(cluster.worst)}<span>{shown}{escape(rest)}</span></h{level}>"
    )


def _cluster_section(cluster: ClusterView, level: int, link: bool) -> str:
    apps = "".join(_app_item(a) for a in cluster.apps)
    return (
        f'<section class="cluster" data-cluster="{escape(cluster.name)}" '
        f'aria-labelledby="c-{escape(cluster.name)}">{_verdict(cluster, level, link)}'
        f'<ul class="apps">{apps}</ul></section>'
    )


def _updated(now: datetime, live: bool) -> str:
    note = (
        f'<span id="live-note" hidden> {escape(say.UPDATED_LIVE)}</span>'
        f"<noscript> {escape(say.UPDATED_RELOAD)}</noscript>"
        if live
        else ""
    )
    return f'<p class="updated">{escape(say.UPDATED)} {when(now)}.{note}</p>'


def _crumbs(parts: Sequence[tuple[str, str]]) -> str:
    items = []
    for index, (label, href) in enumerate(parts):
        last = index == len(parts) - 1
        text = escape(phrases.value(label, 80))
        items.append(
            f'<li><a href="{escape(href)}" aria-current="page">{text}</a></li>'
            if last
            else f'<li><a href="{escape(href)}">{text}</a></li>'
        )
    return f'<nav aria-label="Breadcrumb"><ol>{"".join(items)}</ol></nav>'


def document(
    title: str,
    main: str,
    now: datetime,
    *,
    crumbs: Sequence[tuple[str, str]] = (),
    version: str = "",
    live: bool = True,
) -> str:
    """A whole page around `main` (already HTML)."""
    refresh = (
        f'<noscript><meta http-equiv="refresh" content="{NO_SCRIPT_REFRESH}"></noscript>'
        if live
        else ""
    )
    live_attr = f' data-live="{LIVE_PATH}"' if live else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>{refresh}<style>{CSS}</style></head>"
        f'<body data-now="{format_time(now)}" data-version="{escape(version)}"{live_attr}>'
        f'<a class="skip" href="#main">{escape(say.SKIP)}</a>'
        f'<header><p class="brand"><a href="/status">{escape(say.TITLE)}</a></p>'
        f"{_crumbs(crumbs) if crumbs else ''}</header>"
        f'<main id="main">{main}</main>'
        f"<script>{SCRIPT}</script></body></html>"
    )


def fleet_page(clusters: Sequence[ClusterView], now: datetime, *, version: str = "",
               scoped_out: bool = False) -> str:  # fmt: skip
    """`/status`: every environment, worst first, with its apps worst first."""
    body = [f"<h1>{escape(say.HEADING_FLEET)}</h1>", _updated(now, True)]
    if not clusters:
        body.append(f"<p>{escape(say.NOTHING_FOR_YOU if scoped_out else say.NOTHING)}</p>")
    body += [_cluster_section(c, 2, True) for c in clusters]
    return document(say.TITLE, "".join(body), now, version=version)


def cluster_page(cluster: ClusterView, now: datetime, *, version: str = "") -> str:
    """`/status/<cluster>`: one environment."""
    main = (
        _verdict(cluster, 1, False)
        + _updated(now, True)
        + f'<section class="cluster" data-cluster="{escape(cluster.name)}">'
        f'<h2>{escape(say.HEADING_APPS)}</h2><ul class="apps">'
        + "".join(_app_item(a) for a in cluster.apps)
        + "</ul></section>"
    )
    return document(
        say.TITLE_CLUSTER.format(cluster=phrases.value(cluster.name, 60)),
        main,
        now,
        crumbs=[(say.ALL_ENVIRONMENTS, "/status"), (cluster.name, cluster.path)],
        version=version,
    )


def _facts(app: AppView) -> str:
    rows: list[tuple[str, str]] = [
        (say.STATE, _state_line(app)),
        (say.TOOL, escape(_kind_words(app))),
        (say.LAST_DEPLOY, _deploy_line(app).split(": ", 1)[1]),
    ]
    if app.revision:
        rows.append((say.REVISION, f"<code>{_e(app.revision, 120)}</code>"))
    if app.desired_revision and app.desired_revision != app.revision:
        rows.append((say.WANTED, f"<code>{_e(app.desired_revision, 120)}</code>"))
    if app.chart:
        chart = _e(app.chart, 80) + (f" {_e(app.chart_version, 40)}" if app.chart_version else "")
        rows.append((say.CHART, chart))
    if app.message:
        rows.append((say.MESSAGE, f'<span class="message">{_e(app.message, 600)}</span>'))
    key = app.key
    links = []
    if app.url.startswith(("https://", "http://")):
        label = say.OPEN_IN.get(key.tool.value, "Open")
        links.append(f'<a href="{escape(app.url)}" rel="noreferrer">{escape(label)}</a>')
    if app.last_deploy is not None and app.last_deploy.commit_url:
        commit = app.last_deploy.commit_url
        links.append(f'<a href="{escape(commit)}" rel="noreferrer">{escape(say.COMMIT_LINK)}</a>')
    links.append(
        f'<a href="{escape(badge_path(key.cluster, key.namespace, key.name))}">'
        f"{escape(say.BADGE_LINK)}</a>"
    )
    links.append(
        f'<a href="{escape(json_path(key.cluster, key.namespace, key.name))}">'
        f"{escape(say.JSON_LINK)}</a>"
    )
    rows.append((say.LINKS, " · ".join(links)))
    inner = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="facts">{inner}</dl>'


def _alerts(app: AppView) -> str:
    if not app.alerts:
        return f"<p>{escape(say.NO_OPEN_ALERT)}</p>"
    items = "".join(
        f"<li>{escape(phrases.headline(a))}, {escape(say.SINCE.format(when=''))}"
        f"{when(a.occurred_at)}</li>"
        for a in app.alerts
    )
    return f'<ul class="open-alerts">{items}</ul>'


def _legend() -> str:
    items = "".join(
        f"<li>{legend_shape(c)}{escape(say.CATEGORY_WORDS[c])}</li>" for c in CATEGORY_ORDER
    )
    return f'<ul class="legend" aria-label="Legend">{items}</ul>'


def _event_list(entries: Sequence[TimelineEntry]) -> str:
    if not entries:
        return f"<p>{escape(say.NOTHING_HAPPENED)}</p>"
    items = "".join(
        f'<li data-category="{e.category}" data-kind="{escape(e.kind)}">{when(e.at)}: '
        f"{escape(e.text)}</li>"
        for e in reversed(entries)
    )
    return f'<ol class="events" reversed>{items}</ol>'


def app_page(
    app: AppView,
    entries: Sequence[TimelineEntry],
    spans: Sequence[Span],
    now: datetime,
    *,
    version: str = "",
) -> str:
    """`/status/<cluster>/<namespace>/<name>`: the app now, its open alert, its last 7 days."""
    key = app.key
    name = _e(key.name, 120)
    main = (
        f'<h1 class="verdict s-{app.status}">{icon(app.status)}<span>{name} '
        f'<span class="where">on {_e(key.cluster, 60)}</span>: '
        f"{escape(app.words)}</span></h1>"
        + _updated(now, True)
        + f"<h2>{escape(say.HEADING_NOW)}</h2>{_facts(app)}"
        + f"<h2>{escape(say.HEADING_OPEN_ALERT)}</h2>{_alerts(app)}"
        + f'<h2 id="timeline">{escape(say.HEADING_TIMELINE)}</h2>'
        + f"<figure>{timeline_svg(entries, spans, now, 'timeline-title')}{_legend()}</figure>"
        + _event_list(entries)
    )
    return document(
        say.TITLE_APP.format(app=phrases.value(key.name, 80), cluster=key.cluster),
        main,
        now,
        crumbs=[
            (say.ALL_ENVIRONMENTS, "/status"),
            (key.cluster, cluster_path(key.cluster)),
            (f"{key.namespace}/{key.name}", app.path),
        ],
        version=version,
    )


def message_page(title: str, text: str, now: datetime) -> str:
    """A short page for not found and the like."""
    return document(
        title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>", now, live=False,
        crumbs=[(say.ALL_ENVIRONMENTS, "/status")],
    )  # fmt: skip
