"""The pieces of bot/actions that need no cluster: the requestedAt value as Go writes it, and
the Argo CD API backend against the fake API server, which records every call."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.actions.argocd_api import ArgoCDApiActions
from bot.actions.errors import ActionError
from bot.actions.kube import go_time
from core.actions import ActionRequest, Plan, Verb
from core.model import AppKey, Tool
from tests.fakes.argocd_api import FakeArgoCDAPI

NOW = datetime(2026, 12, 6, 3, 0, 0, 123456, tzinfo=UTC)
CHECKOUT = AppKey(Tool.ARGOCD, "prod", "argocd", "Application", "checkout")


def test_go_time_writes_rfc3339nano_as_go_does() -> None:
    assert go_time(NOW) == "2026-12-06T03:00:00.123456Z"
    assert go_time(NOW.replace(microsecond=0)) == "2026-12-06T03:00:00Z"
    assert go_time(NOW.replace(microsecond=500000)) == "2026-12-06T03:00:00.5Z"
