"""Support for the chat tests: a fleet of app states and an in-memory Controls.

The fleet follows the upstream fixtures' shapes (the guestbook Application, the apps
Kustomization, the podinfo HelmRelease). The chat layer only passes mutes and acks on to its
Controls; what they do to alerting is the policy's business and is tested there, so
MemoryControls keeps what it was given and tests look at what reached it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

from core.model import AppKey, AppState, Health, HistoryEntry, Operation, SyncStatus
from formatters.chat import MuteInfo
from tests.formatters.builders import NOW, OLD_SHA, SHA, argocd_state, flux_state

STAGING_SHA = "0cc9a8446c95bd1d5a7c6f5f0d6a4e5a3b2c1d0e"


def fleet() -> dict[AppKey, AppState]:
    """prod: guestbook fine, checkout drifted, payments failing, apps (Flux) fine;
    staging: checkout fine at a newer revision with a newer chart, guestbook deploying."""
    healthy = {"sync": SyncStatus.SYNCED, "health": Health.HEALTHY, "message": ""}
    states = [
        argocd_state(**healthy, out_of_sync_resources=(), out_of_sync_count=0),
        argocd_state(
            name="checkout",
            namespace="shop",
            sync=SyncStatus.OUT_OF_SYNC,
            health=Health.HEALTHY,
            chart_version="1.4.0",
            url="https://argocd.example.com/applications/argocd/checkout",
            history=(
                HistoryEntry(SHA, NOW - timedelta(hours=2), "alice@example.com", "12"),
                HistoryEntry(OLD_SHA, NOW - timedelta(days=1), "automated", "11"),
            ),
        ),
        argocd_state(
            name="payments",
            namespace="shop",
            sync=SyncStatus.SYNCED,
            health=Health.DEGRADED,
            message="Deployment payments: <!channel> crash loop & back-off",
        ),
        flux_state(ready=True, ready_reason="ReconciliationSucceeded", sync=SyncStatus.SYNCED),
        argocd_state(
            cluster="staging",
            name="checkout",
            namespace="shop",
            **healthy,
            revision=STAGING_SHA,
            chart_version="1.5.0",
            out_of_sync_resources=(),
            out_of_sync_count=0,
        ),
        argocd_state(
            cluster="staging",
            sync=SyncStatus.SYNCED,
            health=Health.PROGRESSING,
            message="",
            operation=Operation(phase="Running", revision=STAGING_SHA),
        ),
    ]
    states = [replace(s, observed_at=NOW) for s in states]
    return {s.key: s for s in states}


class MemoryControls:
    def __init__(self, open_alerts: dict[AppKey, int] | None = None) -> None:
        self.muted: dict[str, MuteInfo] = {}
        self.acked: list[tuple[AppKey, str, datetime]] = []
        self.open_alerts = dict(open_alerts or {})
        """How many open alerts each app has (what `ack` reports)."""
        self.gate: asyncio.Event | None = None
        """When set, `mute` waits for it: a slow policy, to show the ack comes first."""

    def mutes(self, now: datetime) -> list[MuteInfo]:
        return [m for m in self.muted.values() if m.until > now]

    async def mute(
        self, target: str, until: datetime, reason: str, who: str, now: datetime
    ) -> MuteInfo:
        if self.gate is not None:
            await self.gate.wait()
        self.muted[target] = MuteInfo(target, until, who, reason)
        return self.muted[target]

    async def unmute(self, target: str, who: str, now: datetime) -> bool:
        return self.muted.pop(target, None) is not None

    async def ack(self, key: AppKey, who: str, now: datetime) -> int:
        self.acked.append((key, who, now))
        return self.open_alerts.pop(key, 0)
