from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from formatters import escape


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<https://evil|x>", "&lt;https://evil|x&gt;"),
        ("a & b", "a &amp; b"),
        ("&amp;", "&amp;amp;"),
        ("*bold* _it_", "*bold* _it_"),
    ],
)
def test_slack(raw: str, expected: str) -> None:
    assert escape.slack(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[x](https://evil)", "\\[x\\](https://evil)"),
        ("**bold** _it_", "\\*\\*bold\\*\\* \\_it\\_"),
        ("`code` # h ~s~", "\\`code\\` \\# h \\~s\\~"),
        ("<at>Bob</at>", "\\<at\\>Bob\\</at\\>"),
        ("a\\b", "a\\\\b"),
        ("- item\n1. first", "\\- item\n1\\. first"),
        ("my-app-1.2", "my-app-1.2"),
        ("{{DATE(2026-01-01T00:00:00Z)}}", "{\u200b{DATE(2026-01-01T00:00:00Z)}}"),
    ],
)
def test_teams(raw: str, expected: str) -> None:
    assert escape.teams(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ok\x1b[31mred", "ok [31mred"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("tab\tkept", "tab\tkept"),
        ("evil\u202etxt.exe", "evil txt.exe"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("nul\x00", "nul "),
    ],
)
def test_clean(raw: str, expected: str) -> None:
    assert escape.clean(raw) == expected


def test_one_line_folds_whitespace() -> None:
    assert escape.one_line("  a\n\n b\t c ") == "a b c"


def test_fit_keeps_short_text_whole() -> None:
    assert escape.fit("a&b", 10, escape.slack) == "a&amp;b"


def test_fit_never_splits_an_entity() -> None:
    assert escape.fit("&&&&", 12, escape.slack) == "&amp;&amp;…"


@given(st.text(), st.integers(min_value=0, max_value=200))
def test_fit_respects_the_limit_and_keeps_a_prefix(text: str, limit: int) -> None:
    fitted = escape.fit(text, limit, escape.slack)
    assert len(fitted) <= limit
    shown = html.unescape(fitted.removesuffix(escape.ELLIPSIS))
    assert text.startswith(shown)
    assert "<" not in fitted and ">" not in fitted


@given(st.text())
def test_clean_output_has_no_control_characters(text: str) -> None:
    cleaned = escape.clean(text)
    assert all(c in "\n\t" or (c.isprintable() or c == " " or not c.isascii()) for c in cleaned)
    assert "\x1b" not in cleaned
    cleaned.encode("utf-8")
