"""Test-wide settings: hypothesis without per-example deadlines (CI machines are shared and
timing is never what a test asserts), and a smaller example budget for the quick local loop."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

pytest_plugins = ["tests.pg_server"]
