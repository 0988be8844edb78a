"""Decisions the schema's models make on their own: quiet hours, RBAC, receiver types."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from config.schema import Config, Principals, QuietHours, RbacConfig, cross_check, lint


def quiet(start: str, end: str, **extra: object) -> QuietHours:
    return QuietHours.model_validate({"start": start, "end": end, **extra})


@pytest.mark.parametrize(
    ("window", "now", "active"),
    [
        (quiet("22:00", "07:00"), datetime(2026, 11, 27, 23, 0, tzinfo=UTC), True),
        (quiet("22:00", "07:00"), datetime(2026, 11, 27, 6, 59, tzinfo=UTC), True),
        (quiet("22:00", "07:00"), datetime(2026, 11, 27, 7, 0, tzinfo=UTC), False),
        (quiet("22:00", "07:00"), datetime(2026, 11, 27, 12, 0, tzinfo=UTC), False),
        (quiet("09:00", "17:00"), datetime(2026, 11, 27, 9, 0, tzinfo=UTC), True),
        (quiet("09:00", "17:00"), datetime(2026, 11, 27, 17, 0, tzinfo=UTC), False),
        (quiet("00:00", "00:00"), datetime(2026, 11, 27, 13, 0, tzinfo=UTC), True),
        # 2026-11-27 is a Friday; 21:30 UTC is 22:30 in Berlin.
        (
            quiet("22:00", "07:00", timezone="Europe/Berlin"),
            datetime(2026, 11, 27, 21, 30, tzinfo=UTC),
            True,
        ),
        (
            quiet("22:00", "07:00", timezone="Europe/Berlin"),
            datetime(2026, 11, 27, 20, 30, tzinfo=UTC),
            False,
        ),
        # A window belongs to the day it starts on: Friday night, into Saturday morning.
        (quiet("22:00", "07:00", days=["fri"]), datetime(2026, 11, 28, 6, 0, tzinfo=UTC), True),
        (quiet("22:00", "07:00", days=["sat"]), datetime(2026, 11, 28, 6, 0, tzinfo=UTC), False),
        (
            quiet("00:00", "00:00", days=["sat", "sun"]),
            datetime(2026, 11, 27, 12, tzinfo=UTC),
            False,
        ),
        (
            quiet("00:00", "00:00", days=["sat", "sun"]),
            datetime(2026, 11, 29, 12, tzinfo=UTC),
            True,
        ),
    ],
)
def test_quiet_hours(window: QuietHours, now: datetime, active: bool) -> None:
    assert window.active(now) is active


def test_quiet_hours_need_an_aware_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        quiet("22:00", "07:00").active(datetime(2026, 11, 27, 23, 0))


def test_quiet_hours_parse_times() -> None:
    window = quiet("7:05", "23:59")
    assert (window.start, window.end) == (time(7, 5), time(23, 59))


@pytest.mark.parametrize(
    ("rbac", "user", "groups", "operate", "view"),
    [
        (RbacConfig(), "U1", (), False, True),
        (RbacConfig(operators=Principals(users=("U1",))), "U1", (), True, True),
        (RbacConfig(operators=Principals(groups=("S1",))), "U2", ("S1",), True, True),
        (RbacConfig(viewers=Principals(users=("U3",))), "U4", (), False, False),
        (RbacConfig(viewers=Principals(users=("U3",))), "U3", (), False, True),
        (
            RbacConfig(operators=Principals(users=("U1",)), viewers=Principals(users=("U3",))),
            "U1",
            (),
            True,
            True,
        ),
    ],
)
def test_rbac(
    rbac: RbacConfig, user: str, groups: tuple[str, ...], operate: bool, view: bool
) -> None:
    assert rbac.may_operate(user, groups) is operate
    assert rbac.may_view(user, groups) is view


def test_cross_check_and_lint_accept_a_built_config() -> None:
    config = Config.model_validate(
        {
            "receivers": [{"name": "a", "console": {}}, {"name": "b", "console": {}}],
            "routes": [{"receivers": ["a", "c"]}],
        }
    )
    assert cross_check(config) == [
        (("routes", 0, "receivers", 1), "receiver 'c' is not defined (defined: a, b)")
    ]
    assert lint(config) == [(("receivers", 1, "name"), "receiver 'b' is used by no route")]


def test_receiver_type() -> None:
    config = Config.model_validate(
        {
            "receivers": [
                {"name": "s", "slack": {"channel": "C1"}},
                {"name": "t", "teams": {"webhook_env": "HOOK"}},
                {"name": "c", "console": {}},
            ],
            "routes": [{"receivers": ["s", "t", "c"]}],
        }
    )
    assert [r.type for r in config.receivers] == ["slack", "teams", "console"]
    teams = config.receiver("t")
    assert teams is not None and teams.teams is not None
    assert teams.teams.payload == "envelope"
    assert config.receiver("nope") is None


def test_chat_links_to_the_status_page_need_a_public_url_and_the_page_served() -> None:
    def page_url(server: dict[str, object]) -> str:
        return Config.model_validate({"server": server}).server.page_url

    assert page_url({}) == ""
    assert page_url({"public_url": "https://driftbot.example.com/"}) == (
        "https://driftbot.example.com"
    )
    hidden = {"public_url": "https://driftbot.example.com", "status": {"enabled": False}}
    assert page_url(hidden) == ""
