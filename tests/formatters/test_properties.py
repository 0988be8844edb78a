"""Untrusted input, any size: no renderer raises, breaks a platform limit or lets markup through."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.model import AppState, EventKind, GitOpsEvent, ResourceRef, Tool, make_event
from formatters.group import EventGroup
from formatters.phrases import first_line, headline
from formatters.slack import (
    mention_tokens,
    render_slack,
    render_slack_group,
    render_slack_resolved,
)
from formatters.teams import render_teams, render_teams_group, render_teams_resolved
from formatters.text import render_group_text, render_text, render_text_resolved
from tests.formatters.adaptive_card import assert_valid_teams, card_texts
from tests.formatters.blockkit import assert_valid_slack, live_tokens

SPECIAL = "<>&!@#*_[]`~|{}\\\n\r\t\x1b\u202e-. "
_chars = st.one_of(st.sampled_from(SPECIAL), st.characters())
_any_chars = st.one_of(_chars, st.characters(exclude_categories=()))
"""Also lone surrogates and control characters: JSON from a cluster can carry them."""


def _texts(chars: st.SearchStrategy[str], repeat: int) -> st.SearchStrategy[str]:
    small = st.text(chars, max_size=40)
    large = st.builds(
        lambda s, n: s * n, st.text(chars, min_size=1, max_size=30), st.integers(1, repeat)
    )
    return st.one_of(small, small, large)


key_text = _texts(_chars, 100)
"""For fields the event id hashes (the id needs encodable text)."""
any_text = _texts(_any_chars, 100)
huge_text = _texts(_any_chars, 3000)
small = st.text(_any_chars, max_size=40)
times = (
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))]
        )
    )
    | st.datetimes()
)
urls = st.one_of(
    any_text,
    st.just("https://argocd.example.com/applications/argocd/guestbook"),
    st.builds(lambda s: "https://x.example/" + s, small),
)
refs = st.builds(ResourceRef, small, small, small)
states = st.builds(
    AppState,
    tool=st.sampled_from(Tool),
    cluster=key_text,
    namespace=key_text,
    kind=key_text,
    name=key_text,
    observed_at=times,
    revision=key_text,
    chart_version=key_text,
    message=huge_text,
    project=any_text,
    url=urls,
    out_of_sync_resources=st.lists(refs, max_size=60).map(tuple),
    out_of_sync_count=st.integers(0, 10**9),
)


@st.composite
def events(draw: Any) -> GitOpsEvent:
    resources = draw(st.none() | st.lists(refs, min_size=400, max_size=500).map(tuple))
    ev = make_event(
        draw(st.sampled_from(EventKind)),
        draw(states),
        draw(times),
        previous_revision=draw(key_text),
        previous_chart_version=draw(key_text),
        actor=draw(any_text),
        resources=resources,
    )
    if draw(st.booleans()):  # what a normalizer could pass on from a raw object
        ev = replace(ev, name=draw(any_text), cluster=draw(any_text), revision=draw(any_text))
    return replace(
        ev,
        since=draw(st.none() | times),
        commit_subject=draw(any_text),
        commit_author=draw(small),
    )


mentions = st.lists(st.one_of(small, st.sampled_from(["U0123ABC", "S0456", "@here"])), max_size=30)
MENTION = re.compile(r"<@[UW][A-Z0-9]+>|<!subteam\^S[A-Z0-9]+>|<!here>|<!channel>|<!everyone>")

common = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@common
@given(events(), events(), mentions)
def test_slack_messages_always_valid_and_inert(
    a: GitOpsEvent, b: GitOpsEvent, who: list[str]
) -> None:
    requested = tuple(t for t in mention_tokens(who) if t.startswith("<"))
    assert all(MENTION.fullmatch(t) for t in requested), requested
    for message in (
        render_slack(a, who),
        render_slack_resolved(a, b),
        render_slack_group(EventGroup.of([a, b]), who),
    ):
        assert_valid_slack(message)
        tokens = live_tokens(message)
        assert all(t.startswith(("<!date^", "<https://", *requested)) for t in tokens), tokens


@common
@given(events(), events())
def test_teams_payloads_always_valid_and_escaped(a: GitOpsEvent, b: GitOpsEvent) -> None:
    for payload in (render_teams(a), render_teams_resolved(a, b)):
        assert_valid_teams(payload)
        for text in card_texts(payload):
            assert not _unescaped_markdown(text), text
    assert_valid_teams(render_teams(a, payload="card"), shape="card")
    assert_valid_teams(render_teams_group(EventGroup.of([a, b])))


@common
@given(events(), events())
def test_text_is_clean(a: GitOpsEvent, b: GitOpsEvent) -> None:
    for text in (
        render_text(a),
        render_text_resolved(a, b),
        render_group_text(EventGroup.of([a, b])),
    ):
        text.encode("utf-8")
        assert all(c == "\n" or c == "\t" or ord(c) >= 0x20 for c in text)
        assert "\x1b" not in text and "\x7f" not in text
    assert render_text(a).splitlines()[0] == first_line(a)
    assert first_line(a).endswith(headline(a))


_OURS = ("**Out of sync (", "**Controller message**", "**Why**", "**What went wrong**")


def _unescaped_markdown(text: str) -> list[str]:
    """Markdown characters not preceded by an escaping backslash, outside driftbot's own labels."""
    for label in _OURS:
        if text.startswith(label):
            return []
    found = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char in "*_[]`<>~#|":
            found.append(char)
        index += 1
    return found


def test_the_markdown_check_sees_unescaped_markup() -> None:
    assert _unescaped_markdown("[x](y) \\*") == ["[", "]"]
    assert _unescaped_markdown("a\\_b") == []
    assert datetime(2026, 1, 1, tzinfo=UTC)
