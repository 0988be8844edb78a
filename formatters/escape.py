"""Make strings from a cluster or Git safe to show, and fit them into a size limit.

App names, commit messages and controller messages are untrusted: in Slack, `<!channel>` in a
commit message would ping a whole channel; in Teams, `[x](https://evil)` would become a link.
Everything that did not come from driftbot itself goes through `clean` and then the escaper of
the target format. `fit` truncates such a string so that its *escaped* form stays within a
limit, never cutting an escape sequence in half.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Escaper = Callable[[str], str]

ELLIPSIS = "…"

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]"  # control characters (not \t, \n)
    "|[\u202a-\u202e\u2066-\u2069\u200e\u200f]"  # bidi overrides: text that reads backwards
    "|[\ud800-\udfff]"  # lone surrogates: not encodable as UTF-8
)
_SPACES = re.compile(r"\s+")


def _replace_unsafe(match: re.Match[str]) -> str:
    char = match.group()
    return "\ufffd" if "\ud800" <= char <= "\udfff" else " "


def clean(text: str) -> str:
    """`text` without control characters, bidi overrides or lone surrogates; newlines kept."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE.sub(_replace_unsafe, text)


def one_line(text: str) -> str:
    """`clean(text)` with every run of whitespace (newlines too) folded into one space."""
    return _SPACES.sub(" ", clean(text)).strip()


def plain(text: str) -> str:
    """The escaper for plain text: nothing to escape once the text is clean."""
    return text


def slack(text: str) -> str:
    """Escape the three characters Slack mrkdwn gives meaning to (`&`, `<`, `>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_TEAMS_SPECIAL = str.maketrans({c: "\\" + c for c in "\\*_[]`#<>~|"})
_TEAMS_LINE_START = re.compile(r"(?m)^([ \t]*)([-+]|\d+\.)(?=[ \t\n]|$)")


def teams(text: str) -> str:
    """Escape Teams (Adaptive Card) markdown: emphasis, links, code, lists, headings, tags.

    `{{` is broken with a zero-width space so that it is not read as a DATE()/TIME() function.
    """
    text = text.translate(_TEAMS_SPECIAL)
    text = _TEAMS_LINE_START.sub(_escape_list_marker, text)
    return text.replace("{{", "{\u200b{")


def _escape_list_marker(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker[-1] == ".":
        return f"{indent}{marker[:-1]}\\."
    return f"{indent}\\{marker}"


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1] + ELLIPSIS


def fit(text: str, limit: int, escape: Escaper = plain) -> str:
    """`escape(text)`, cut so that the result (with its ellipsis) has at most `limit` characters.

    The cut is made in the raw text, so an escape sequence is never split. Escapers never
    shorten text, so a raw text over the limit is cut without escaping all of it.
    """
    if len(text) <= limit:
        escaped = escape(text)
        if len(escaped) <= limit:
            return escaped
    if limit <= 0:
        return ""
    budget = limit - len(ELLIPSIS)
    low, high = 0, min(len(text), budget)
    while low < high:  # the longest raw prefix whose escaped form fits the budget
        mid = (low + high + 1) // 2
        if len(escape(text[:mid])) <= budget:
            low = mid
        else:
            high = mid - 1
    return escape(text[:low]) + ELLIPSIS
