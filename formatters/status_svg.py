"""The pictures of the status page, as SVG text drawn from data: an app's 7-day timeline and
its badge (sync and health, like Argo CD's, for Flux apps too). Pure.

Every mark says what it is in words (a `<title>` a pointer shows, a legend, and the list
beside the chart); shapes differ by category, so nothing is told by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from formatters import phrases
from formatters import status_words as say
from formatters.status_timeline import WINDOW, Span, TimelineEntry

WIDTH = 720
HEIGHT = 120
LEFT = 16
RIGHT = 16
AXIS_Y = 84
MARK_Y = 56
BAND_Y = 30
BAND_H = 12

CATEGORY_ORDER = ("deploy", "drift", "failure", "rollback", "recovery", "mute", "ack", "other")


def _x(moment: datetime, now: datetime) -> float:
    span = WINDOW.total_seconds()
    ago = (now - moment).total_seconds()
    fraction = min(max(1 - ago / span, 0.0), 1.0)
    return round(LEFT + fraction * (WIDTH - LEFT - RIGHT), 1)


def _shape(category: str, x: float, y: float) -> str:
    """One mark: a different shape per category."""
    if category == "deploy":
        return f'<circle cx="{x}" cy="{y}" r="6"/>'
    if category == "failure":
        return f'<path d="M{x - 6},{y + 6} L{x},{y - 7} L{x + 6},{y + 6} Z"/>'
    if category == "drift":
        return f'<path d="M{x},{y - 7} L{x + 7},{y} L{x},{y + 7} L{x - 7},{y} Z"/>'
    if category == "rollback":
        return f'<rect x="{x - 5.5}" y="{y - 5.5}" width="11" height="11"/>'
    if category == "recovery":
        return f'<path d="M{x - 6},{y} L{x - 2},{y + 5} L{x + 6},{y - 6}" class="stroke"/>'
    if category in ("mute", "ack"):
        return f'<rect x="{x - 2}" y="{y - 8}" width="4" height="16"/>'
    return f'<circle cx="{x}" cy="{y}" r="3"/>'


def legend_shape(category: str) -> str:
    """A category's mark alone, for the legend beside the chart (decorative)."""
    return (
        f'<svg class="legend-mark cat-{category}" width="18" height="18" viewBox="0 0 18 18" '
        f'aria-hidden="true" focusable="false">{_shape(category, 9, 9)}</svg>'
    )


def timeline_svg(
    entries: Sequence[TimelineEntry], spans: Sequence[Span], now: datetime, title_id: str
) -> str:
    """The 7-day chart: trouble as bands, each event as a mark, days on the axis."""
    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{title_id}" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{title_id}">{escape(say.TIMELINE_LABEL)}: '
        f"{len(entries)} {say.plural(len(entries), 'entry', 'entries')}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{AXIS_Y}" x2="{WIDTH - RIGHT}" y2="{AXIS_Y}"/>',
    ]
    days = WINDOW.days
    for day in range(days + 1):
        x = round(LEFT + day / days * (WIDTH - LEFT - RIGHT), 1)
        ago = days - day
        label = say.TIMELINE_AXIS_NOW if ago == 0 else say.TIMELINE_DAYS_AGO.format(n=ago)
        anchor = "end" if ago == 0 else ("start" if day == 0 else "middle")
        parts.append(f'<line class="tick" x1="{x}" y1="{AXIS_Y}" x2="{x}" y2="{AXIS_Y + 5}"/>')
        parts.append(
            f'<text class="tick-label" x="{x}" y="{AXIS_Y + 20}" text-anchor="{anchor}">'
            f"{escape(label)}</text>"
        )
    for span in spans:
        x1, x2 = _x(span.start, now), _x(span.end, now)
        width = max(x2 - x1, 2.0)
        until = "" if span.open else f" to {phrases.time_utc(span.end)}"
        parts.append(
            f'<g class="span cat-{span.category}{" open" if span.open else ""}">'
            f"<title>{escape(span.text)}: {escape(phrases.time_utc(span.start))}"
            f"{escape(until)}</title>"
            f'<rect x="{x1}" y="{BAND_Y}" width="{round(width, 1)}" height="{BAND_H}"/></g>'
        )
    for entry in entries:
        x = _x(entry.at, now)
        parts.append(
            f'<g class="mark cat-{entry.category}" data-kind="{escape(entry.kind)}" '
            f'data-at="{escape(entry.at.isoformat())}">'
            f"<title>{escape(phrases.time_utc(entry.at))}: {escape(entry.text)}</title>"
            f"{_shape(entry.category, x, MARK_Y)}</g>"
        )
    if not entries and not spans:
        parts.append(
            f'<text class="empty" x="{WIDTH / 2}" y="{MARK_Y}" text-anchor="middle">'
            f"{escape(say.TIMELINE_EMPTY)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# --- badges ---------------------------------------------------------------------------------

_CHAR = 6.6
"""Average width of a character of the badge's 11 px sans-serif font, in px."""
_PAD = 6

BADGE_FILL: dict[str, str] = {
    "in sync": "#1a6b32",
    "healthy": "#1a6b32",
    "differs from Git": "#8a4b00",
    "deploying": "#0b5cad",
    "suspended": "#555555",
    "degraded": "#b3261e",
    "failing": "#b3261e",
    "unknown": "#555555",
    "no such app": "#555555",
}
"""Fills with white text at 4.5:1 or more (WCAG AA); the words say the same."""


def _segment(text: str, x: float, fill: str) -> tuple[str, float]:
    width = round(len(text) * _CHAR + 2 * _PAD, 1)
    middle = round(x + width / 2, 1)
    svg = (
        f'<rect x="{x}" width="{width}" height="20" fill="{fill}"/>'
        f'<text x="{middle}" y="14" fill="#ffffff">{escape(text)}</text>'
    )
    return svg, width


def badge_svg(label: str, values: Sequence[str]) -> str:
    """`label | in sync | healthy`: a shields-like badge; `values` are words of BADGE_FILL."""
    label = phrases.value(label, 60) or "app"
    words = [label, *values]
    title = ": ".join([label, ", ".join(values)])
    x = 0.0
    body = []
    for index, word in enumerate(words):
        fill = "#333333" if index == 0 else BADGE_FILL.get(word, "#555555")
        svg, width = _segment(word, x, fill)
        body.append(svg)
        x = round(x + width, 1)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{x}" height="20" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<g font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11" '
        f'text-anchor="middle">{"".join(body)}</g></svg>'
    )
