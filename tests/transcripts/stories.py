"""The stories of the golden transcripts, as recorded streams built from the upstream shapes.

Most are the demo's own apps taken out of it one by one (the demo is built from real Argo CD
and Flux objects, see tests/scenarios.py); the storm and the hostile text are built here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests import builders_argocd as argo
from tests import scenarios
from tests.scenarios import Stream, _argo, _argo_time, _history, _op

STORM_APPS = 8


def _name_of(line: bytes) -> str:
    record = json.loads(line)
    body: dict[str, Any] = record.get("object") or record.get("flux_event") or {}
    involved = body.get("involvedObject")
    if isinstance(involved, dict):
        return str(involved.get("name", ""))
    return str((body.get("metadata") or {}).get("name", ""))


def demo_apps(*names: str) -> Callable[[], list[bytes]]:
    def lines() -> list[bytes]:
        return [line for line in scenarios.demo_lines() if _name_of(line) in names]

    return lines


def eight_drifts_that_clear() -> list[bytes]:
    """Eight apps drift on prod within 20 s at one revision; all match Git again 7 min later."""
    s = Stream()
    hist = _history((1, argo.REV_OLD, -120, ""), (2, argo.REV_A, -60, ""))
    deployed = _op("Succeeded", argo.REV_A, -61, -60)
    names = [
        f"shop-{n}" for n in ("cart", "search", "users", "orders", "stock", "mail", "web", "api")
    ]
    assert len(names) == STORM_APPS
    for name in names:
        s.add(0, "prod", _argo(name, history=hist, operation=deployed, auto_sync=False), "ADDED")
    for i, name in enumerate(names):
        minutes = 3 + i / 180
        drifted = _argo(
            name,
            sync="OutOfSync",
            history=hist,
            operation=deployed,
            auto_sync=False,
            out_of_sync=[("Deployment", "shop", name)],
            reconciled_at=_argo_time(minutes),
        )
        s.add(minutes, "prod", drifted)
    for i, name in enumerate(names):
        minutes = 10 + i / 180
        synced = _argo(
            name,
            history=hist,
            operation=deployed,
            auto_sync=False,
            reconciled_at=_argo_time(minutes),
        )
        s.add(minutes, "prod", synced)
    return s.render()


HOSTILE = (
    "<!channel> *urgent* `rm -rf /` ~gone~ <https://evil.example|click here> "
    "<@U0ADMIN> & \x1b[31mred\x1b[0m\x07 > quoted\nsecond line"
)


def hostile_text() -> list[bytes]:
    """A failed deploy whose controller message and initiator carry mentions, markup, a link,
    control characters and a newline; then a fixed deploy."""
    s = Stream()
    hist = _history((1, argo.REV_OLD, -120, ""), (2, argo.REV_A, -60, ""))
    deployed = _op("Succeeded", argo.REV_A, -61, -60)
    name = "billing"
    s.add(0, "prod", _argo(name, history=hist, operation=deployed, auto_sync=False), "ADDED")
    actor = "<!here> mallory*@example.com"
    failed = _op("Failed", argo.REV_B, 4.5, 5, user=actor, message=HOSTILE)
    s.add(
        5,
        "prod",
        _argo(
            name,
            sync="OutOfSync",
            desired=argo.REV_B,
            history=hist,
            operation=failed,
            auto_sync=False,
        ),
    )
    fixed_hist = [*hist, *_history((3, argo.REV_B, 9, actor))]
    s.add(
        9,
        "prod",
        _argo(
            name,
            desired=argo.REV_B,
            history=fixed_hist,
            operation=_op("Succeeded", argo.REV_B, 8.5, 9, user=actor),
            auto_sync=False,
        ),
    )
    return s.render()


STORIES: dict[str, Callable[[], list[bytes]]] = {
    "demo": scenarios.demo_lines,
    "argocd_rollback_after_degraded_deploy": demo_apps("payments"),
    "flux_upgrade_failure_rolled_back": demo_apps("podinfo"),
    "deploy_fails_then_succeeds": demo_apps("catalog", "apps"),
    "eight_drifts_that_clear": eight_drifts_that_clear,
    "hostile_text": hostile_text,
    "status_page_links": demo_apps("catalog", "apps"),
}
"""Story name -> its stream; the golden file is tests/transcripts/golden/<name>.txt."""

PUBLIC_URLS: dict[str, str] = {"status_page_links": "https://driftbot.example.com"}
"""Stories told with `server.public_url` set: their alerts link to the status page."""
