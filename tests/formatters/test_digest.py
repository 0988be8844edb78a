"""Digest rendering: plain words for non-engineers, per cluster; escaped values; Slack and
Teams limits kept whatever the content."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import EventKind
from formatters.digest import (
    QUIET,
    ClusterDigest,
    Digest,
    Problem,
    StillOpen,
    render_digest_slack,
    render_digest_teams,
    render_digest_text,
    summary,
    title,
)
from tests.formatters.adaptive_card import assert_valid_teams, card_texts
from tests.formatters.blockkit import assert_valid_slack, live_tokens
from tests.formatters.builders import NOW, argocd_state, event, recovery

K = EventKind
SINCE = NOW - timedelta(days=1)
UNTIL = NOW + timedelta(hours=2)


def _digest(*clusters: ClusterDigest, name: str = "Morning", zone: str = "UTC") -> Digest:
    return Digest(name=name, since=SINCE, until=UNTIL, timezone=zone, clusters=clusters)


def _prod() -> ClusterDigest:
    drift = event(K.DRIFT_DETECTED)
    failed = event(K.DEPLOY_FAILED, at=NOW + timedelta(minutes=5))
    return ClusterDigest(
        cluster="prod",
        deploys=(event(K.DEPLOY_SUCCEEDED, actor="carol"),),
        rollbacks=(event(K.ROLLBACK_SUCCEEDED, actor="alice"),),
        drifts=(Problem(drift, recovery(K.DRIFT_RESOLVED)),),
        problems=(Problem(failed),),
        still_open=(
            StillOpen("prod", "shop", "payments", "pending", target="a" * 40),
            StillOpen("prod", "shop", "cart", "failing", since=NOW, alert=failed, acked_by="bob"),
        ),
    )


def test_the_text_names_each_part_per_cluster() -> None:
    text = render_digest_text(_digest(_prod()))
    lines = text.splitlines()
    assert lines[0] == title(_digest())
    assert lines[1] == "In short: 1 deploy, 1 rollback, 1 drift, 1 problem; 2 apps need attention."
    assert lines[3] == "prod"
    for heading in (
        "Still needs attention:",
        "Deployed:",
        "Rolled back:",
        "Changed outside Git (drift):",
        "Problems:",
    ):
        assert f"  {heading}" in lines
    assert "no longer matches Git: fixed after 14 min" in text
    assert ": not fixed yet" in text
    assert "payments has changes in Git waiting to be deployed (aaaaaaa)" in text
    assert "acknowledged by bob" in text


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", "Morning: Nov 19 09:40 to Nov 20 11:40 (UTC)"),
        ("Europe/Berlin", "Morning: Nov 19 10:40 to Nov 20 12:40 (Europe/Berlin)"),
        ("America/New_York", "Morning: Nov 19 04:40 to Nov 20 06:40 (America/New_York)"),
    ],
)
def test_the_title_is_in_the_digest_time_zone(zone: str, expected: str) -> None:
    assert datetime(2026, 11, 20, 9, 40, tzinfo=UTC) == NOW
    assert title(_digest(zone=zone)) == expected


def test_a_quiet_period_says_so() -> None:
    digest = _digest(ClusterDigest("prod"))
    assert digest.quiet and summary(digest) == QUIET
    assert render_digest_text(digest).splitlines() == [title(digest), QUIET]


def test_long_lists_end_in_and_n_more() -> None:
    deploys = tuple(
        event(K.DEPLOY_SUCCEEDED, replace(argocd_state(), name=f"app-{i}")) for i in range(45)
    )
    text = render_digest_text(_digest(ClusterDigest("prod", deploys=deploys)))
    assert "    - and 25 more" in text
    assert_valid_slack(render_digest_slack(_digest(ClusterDigest("prod", deploys=deploys))))


def test_slack_and_teams_escape_values_from_the_cluster() -> None:
    hostile = replace(argocd_state(), name="<!channel> *x* [y](https://evil)", cluster="p<r>od")
    digest = _digest(
        ClusterDigest(
            "p<r>od",
            deploys=(event(K.DEPLOY_SUCCEEDED, hostile, actor="<@U123>"),),
            still_open=(StillOpen("p<r>od", "ns", "<!here>", "drifted"),),
        ),
        name="<!everyone>",
    )
    slack = render_digest_slack(digest)
    assert_valid_slack(slack)
    assert live_tokens(slack) == []
    teams = render_digest_teams(digest)
    assert_valid_teams(teams)
    assert not any("[y](https://evil)" in t for t in card_texts(teams))


def test_teams_card_can_be_bare() -> None:
    card = render_digest_teams(_digest(_prod()), payload="card")
    assert_valid_teams(card, shape="card")
    assert card["type"] == "AdaptiveCard"


names = st.text(min_size=0, max_size=300)


@st.composite
def digests(draw: st.DrawFn) -> Digest:
    clusters = []
    for c in range(draw(st.integers(0, 14))):
        count = draw(st.integers(0, 60))
        evs = tuple(
            event(
                draw(st.sampled_from(list(K))),
                replace(argocd_state(), name=draw(names), cluster=f"c{c}"),
                message=draw(names),
                actor=draw(names),
            )
            for _ in range(min(count, 3))
        ) * (count // 3 + 1)
        opened = tuple(
            StillOpen(
                f"c{c}",
                draw(names),
                draw(names),
                draw(st.sampled_from(["failing", "drifted", "pending"])),
                target=draw(names),
            )
            for _ in range(draw(st.integers(0, 3)))
        ) * draw(st.integers(1, 30))
        clusters.append(
            ClusterDigest(
                cluster=draw(names) or f"c{c}",
                deploys=evs,
                rollbacks=evs[: count // 2],
                drifts=tuple(Problem(e) for e in evs),
                problems=tuple(Problem(e, e) for e in evs[:5]),
                still_open=opened,
            )
        )
    return _digest(*clusters, name=draw(names))


@settings(max_examples=60)
@given(digests())
def test_any_digest_renders_within_slack_and_teams_limits(digest: Digest) -> None:
    assert_valid_slack(render_digest_slack(digest))
    assert_valid_teams(render_digest_teams(digest))
    assert_valid_slack(render_digest_slack(digest, PUBLIC))
    assert_valid_teams(render_digest_teams(digest, "envelope", PUBLIC))
    assert render_digest_text(digest).startswith(title(digest))


PUBLIC = "https://driftbot.example.com"


def test_with_a_public_url_each_cluster_links_to_its_status_page() -> None:
    digest = _digest(_prod(), replace(_prod(), cluster="eu west"))
    slack = render_digest_slack(digest, PUBLIC)
    assert_valid_slack(slack)
    links = [t for t in live_tokens(slack) if t.startswith("<https://")]
    assert links == [
        "<https://driftbot.example.com/status/prod|prod>",
        "<https://driftbot.example.com/status/eu%20west|eu west>",
    ]
    texts = card_texts(render_digest_teams(digest, "card", PUBLIC))
    assert "[prod](https://driftbot.example.com/status/prod)" in texts
    assert "[eu west](https://driftbot.example.com/status/eu%20west)" in texts
    assert "driftbot.example.com" not in str(render_digest_slack(digest))
    assert "driftbot.example.com" not in str(render_digest_teams(digest))
