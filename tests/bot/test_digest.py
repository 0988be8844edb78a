"""A digest after the demo scenario: the deploys, drifts, rollbacks and problems of the
morning, and what is still open, per cluster; its `match`; its delivery and its record."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app.replay import replay_stream
from bot.delivery.receivers import ConsoleReceiver
from bot.jobs.digest import deliver_digest, gather_digest, run_digest
from bot.pipeline.runner import Pipeline
from bot.store.store import Store
from config.schema import Config, DigestConfig, Match
from formatters.digest import render_digest_text

DEMO = Path(__file__).resolve().parents[2] / "bot" / "app" / "scenarios" / "demo.jsonl"
AFTER = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DAY_BEFORE = AFTER - timedelta(days=1)
DAILY = DigestConfig(name="Morning", receivers=("pm",), schedule="0 10 * * *")


@dataclass
class Demo:
    store: Store
    pipeline: Pipeline


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    path = tmp_path / "state.sqlite"
    await replay_stream(
        DEMO.read_bytes().splitlines(), "demo", Config(), path, "jsonl", io.StringIO()
    )
    store = await Store.open(path)
    pipeline = Pipeline(store, Config(), {})
    await pipeline.load()
    yield Demo(store, pipeline)
    await store.close()


async def test_the_demo_digest_names_deploys_drifts_rollbacks_and_what_is_open(
    demo: Demo,
) -> None:
    digest = await gather_digest(demo.store, demo.pipeline, DAILY, "Morning", AFTER, DAY_BEFORE)
    assert [c.cluster for c in digest.clusters] == ["prod", "staging"]
    prod, staging = digest.clusters
    assert [e.name for e in prod.deploys] == ["payments", "catalog"]
    assert [e.name for e in staging.deploys] == ["apps"]
    assert [(e.name, e.actor) for e in prod.rollbacks] == [("payments", "alice@example.com")]
    assert [e.name for e in staging.rollbacks] == ["podinfo"]
    assert [(p.event.name, p.fixed_by is not None) for p in prod.drifts] == [("checkout", True)]
    assert [(p.event.name, p.fixed_by is not None) for p in staging.drifts] == [("redis", True)]
    assert [(p.event.kind.value, p.event.name) for p in prod.problems] == [
        ("health_degraded", "payments"),
        ("deploy_failed", "catalog"),
    ]
    # Rolled back: Git still wants the newer revision, so these wait to be deployed.
    assert [(o.name, o.state) for o in prod.still_open] == [("payments", "pending")]
    assert [(o.name, o.state) for o in staging.still_open] == [("podinfo", "pending")]

    text = render_digest_text(digest)
    for sentence in (
        "In short: 3 deploys, 2 rollbacks, 2 drifts, 4 problems; 2 apps need attention.",
        "09:08 payments on prod was updated from ea87599 to 7d2e4f6 by carol@example.com",
        "09:16 payments on prod: 7d2e4f6 was rolled back by alice@example.com; ea87599 runs again",
        "09:05 checkout on prod no longer matches Git: fixed after 15 min",
        "09:22 podinfo on staging: deploy of 6.6.1 failed: rolled back after 1 min, not shipped",
        "payments has changes in Git waiting to be deployed (7d2e4f6)",
    ):
        assert sentence in text


async def test_the_match_of_a_digest_selects_what_it_tells(demo: Demo) -> None:
    only = DigestConfig(receivers=("pm",), schedule="0 10 * * *", match=Match(cluster=("staging",)))
    digest = await gather_digest(demo.store, demo.pipeline, only, "s", AFTER, DAY_BEFORE)
    assert [c.cluster for c in digest.clusters] == ["staging"]
    drifts = DigestConfig(
        receivers=("pm",),
        schedule="0 10 * * *",
        match=Match(kinds=("drift_detected", "drift_resolved")),  # type: ignore[arg-type]
    )
    digest = await gather_digest(demo.store, demo.pipeline, drifts, "d", AFTER, DAY_BEFORE)
    assert all(not c.deploys and not c.rollbacks and not c.problems for c in digest.clusters)
    assert sum(len(c.drifts) for c in digest.clusters) == 2


async def test_a_digest_is_delivered_recorded_and_the_next_starts_where_it_ended(
    demo: Demo,
) -> None:
    out = io.StringIO()
    receivers = {"pm": ConsoleReceiver("pm", "text", out)}
    first = await run_digest(
        demo.store, demo.pipeline, receivers, DAILY, "Morning", AFTER, DAY_BEFORE
    )
    assert first.since == DAY_BEFORE
    assert out.getvalue().startswith("Morning: Nov 19 10:00 to Nov 20 10:00 (UTC)")
    [entry] = await demo.store.audit_log(None, 1)
    assert (entry.actor, entry.action) == ("driftbot", "digest")
    assert entry.detail["receivers"] == {"pm": "ok"}

    later = AFTER + timedelta(days=1)
    second = await run_digest(
        demo.store, demo.pipeline, receivers, DAILY, "Morning", later, DAY_BEFORE
    )
    assert second.since == AFTER
    assert all(not c.deploys and not c.rollbacks for c in second.clusters)


async def test_a_missing_receiver_is_a_failed_delivery_not_a_crash(demo: Demo) -> None:
    digest = await gather_digest(demo.store, demo.pipeline, DAILY, "Morning", AFTER, DAY_BEFORE)
    [outcome] = await deliver_digest(digest, ["gone"], {}, AFTER)
    assert outcome.receiver == "gone"
    assert outcome.outcome.startswith("failed: LookupError")


async def test_a_digest_can_select_where_apps_run(demo: Demo) -> None:
    """The demo's Argo CD Applications live in argocd and deploy into shop."""
    shop = DigestConfig(
        receivers=("pm",), schedule="0 10 * * *", match=Match(destination_namespace=("shop",))
    )
    digest = await gather_digest(demo.store, demo.pipeline, shop, "shop", AFTER, DAY_BEFORE)
    assert [c.cluster for c in digest.clusters] == ["prod"]
    (prod,) = digest.clusters
    assert [e.name for e in prod.deploys] == ["payments", "catalog"]
    assert [(o.name, o.state) for o in prod.still_open] == [("payments", "pending")]
    home = DigestConfig(receivers=("pm",), schedule="0 10 * * *", match=Match(namespace=("shop",)))
    digest = await gather_digest(demo.store, demo.pipeline, home, "home", AFTER, DAY_BEFORE)
    assert [c.cluster for c in digest.clusters] == []  # no object lives in shop
