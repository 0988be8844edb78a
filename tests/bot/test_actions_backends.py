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


def _plan(verb: Verb, **kwargs: object) -> Plan:
    return Plan(ActionRequest(verb, CHECKOUT, **kwargs))  # type: ignore[arg-type]


def _app(auto_sync: bool = False) -> dict[str, object]:
    from tests.bot.actions_cluster import checkout_app

    return checkout_app(auto_sync=auto_sync)


async def test_the_argocd_api_backend_calls_what_the_argocd_cli_calls() -> None:
    async with FakeArgoCDAPI(token="t0k") as api:
        api.put(_app())
        actions = ArgoCDApiActions(api.url, "t0k", lambda: NOW)
        try:
            await actions.act(_plan(Verb.REFRESH), "U0DEPLOY")
            await actions.act(_plan(Verb.ROLLBACK, history_id="40"), "U0DEPLOY")
            with pytest.raises(ActionError, match="another operation is already in progress"):
                await actions.act(_plan(Verb.SYNC), "U0DEPLOY")
            await actions.act(_plan(Verb.TERMINATE), "U0DEPLOY")
        finally:
            await actions.close()
    calls = [(r.endpoint, r.path, r.status) for r in api.requests]
    assert calls == [
        ("get", "/api/v1/applications/checkout", 200),
        ("rollback", "/api/v1/applications/checkout/rollback", 200),
        ("sync", "/api/v1/applications/checkout/sync", 400),
        ("terminate", "/api/v1/applications/checkout/operation", 200),
    ]
    refresh, rollback, sync, _ = api.requests
    assert refresh.one("refresh") == "hard" and refresh.one("appNamespace") == "argocd"
    assert rollback.body == {"name": "checkout", "appNamespace": "argocd", "id": 40, "prune": False}
    assert sync.body["infos"] == [{"name": "Requested in Slack by", "value": "U0DEPLOY"}]
    assert all(r.authorization == "Bearer t0k" for r in api.requests)


async def test_argocd_api_refusals_are_passed_on_in_argocds_words() -> None:
    async with FakeArgoCDAPI(token="t0k") as api:
        api.put(_app(auto_sync=True))
        actions = ArgoCDApiActions(api.url, "t0k", lambda: NOW)
        wrong = ArgoCDApiActions(api.url, "stolen", lambda: NOW)
        try:
            with pytest.raises(ActionError, match="auto-sync is enabled"):
                await actions.act(_plan(Verb.ROLLBACK, history_id="40"), "U0DEPLOY")
            with pytest.raises(ActionError, match="refused driftbot's token") as refused:
                await wrong.act(_plan(Verb.SYNC), "U0DEPLOY")
            assert refused.value.status == 401
        finally:
            await actions.close()
            await wrong.close()
    assert [r.status for r in api.requests] == [400, 401]
