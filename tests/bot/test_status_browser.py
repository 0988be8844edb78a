"""The status page as a person sees it: a real Chromium (Debian's, driven by Playwright) reads
the pages of a `driftbot run` server fed by the demo scenario and the next morning's news.

Checked: the verdict lines and the order (worst first), the app page's timeline marks and
list, a live update after a change without a reload, the JavaScript-off path, phone width,
local times with UTC on hover, nothing loaded from elsewhere, and axe-core's accessibility
check (no serious or critical violation). The screenshots the README shows are taken here:
they are written to docs/images with DRIFTBOT_UPDATE_SCREENSHOTS=1 (review and commit them),
to $DRIFTBOT_SCREENSHOTS when that names a folder, and otherwise to a temporary folder, so a test
run leaves the checkout as it was.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.bot.browser import DESKTOP, PHONE, axe_violations, chromium, require_axe, require_browser
from tests.bot.status_world import NEXT_MORNING, podinfo_fixed, status_world

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go (see the module's docstring)."""
    named = os.environ.get("DRIFTBOT_SCREENSHOTS")
    if named:
        return Path(named)
    if os.environ.get("DRIFTBOT_UPDATE_SCREENSHOTS") == "1":
        return DOCS / "images"
    return tmp_path_factory.mktemp("screenshots")

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(autouse=True)
def _browser_present() -> None:
    require_browser()


async def _texts(page: Any, selector: str) -> list[str]:
    return [" ".join(t.split()) for t in await page.locator(selector).all_inner_texts()]


async def test_a_pm_reads_what_is_wrong_since_when_and_who_deployed(
    tmp_path: Path, shots: Path
) -> None:
    axe = require_axe()
    async with status_world(tmp_path) as world, chromium() as browser:
        outside: list[str] = []
        context = await browser.new_context(
            viewport=DESKTOP, timezone_id="Europe/Berlin", locale="en-GB", bypass_csp=False
        )
        page = await context.new_page()
        page.on(
            "request",
            lambda r: outside.append(r.url) if not r.url.startswith(world.base) else None,
        )
        await page.goto(f"{world.base}/status")

        verdicts = await _texts(page, "section.cluster h2")
        assert verdicts == [
            "staging: 1 problem — podinfo failed to deploy 6.6.1 (14 min)",
            "prod: 1 problem — checkout differs from Git (3 min)",
        ]
        staging = await page.locator('section[data-cluster="staging"] li.app').evaluate_all(
            "els => els.map(e => e.dataset.app + ':' + e.dataset.status)"
        )
        assert staging == ["podinfo:failing", "apps:ok", "redis:ok"]
        prod = await page.locator('section[data-cluster="prod"] li.app').evaluate_all(
            "els => els.map(e => e.dataset.app + ':' + e.dataset.status)"
        )
        assert prod == ["checkout:drifted", "payments:pending", "catalog:ok"]

        # Words, not jargon; the time in the reader's zone (Berlin: UTC+1), UTC on hover.
        checkout = page.locator('li.app[data-app="checkout"]')
        assert "differs from Git since 10:57" in " ".join((await checkout.inner_text()).split())
        since = checkout.locator(".state time")
        assert await since.get_attribute("title") == "2026-11-21 09:57 UTC"
        catalog = " ".join((await page.locator('li.app[data-app="catalog"]').inner_text()).split())
        assert "in sync" in catalog and "by carol@example.com" in catalog
        body = await page.inner_text("main")
        for jargon in ("OutOfSync", "Degraded", "Synced"):
            assert jargon not in body

        await page.screenshot(path=str(shots / "status-desktop.png"), full_page=True)
        assert not await axe_violations_in(browser, world.base + "/status", axe)
        assert outside == [], "the page loads nothing from elsewhere"
        await context.close()


async def axe_violations_in(browser: Any, url: str, axe: Path, **options: Any) -> list[Any]:
    context = await browser.new_context(bypass_csp=True, **options)
    try:
        page = await context.new_page()
        await page.goto(url)
        found = await axe_violations(page, axe)
        return [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in found]
    finally:
        await context.close()


async def test_the_app_page_tells_yesterdays_story_on_a_timeline(
    tmp_path: Path, shots: Path
) -> None:
    axe = require_axe()
    async with status_world(tmp_path) as world, chromium() as browser:
        context = await browser.new_context(viewport=DESKTOP, timezone_id="UTC")
        page = await context.new_page()
        await page.goto(f"{world.base}/status")
        await page.click('li.app[data-app="payments"] a.name')
        assert page.url == f"{world.base}/status/prod/argocd/payments"
        heading = " ".join((await page.inner_text("h1")).split())
        assert heading == "payments on prod: waiting to deploy"
        # The deployed commit, on the forge of the app's repository (its last deploy's revision).
        commits = page.locator("dl.facts a", has_text="View the deployed commit")
        href = await commits.get_attribute("href")
        assert href is not None
        assert re.fullmatch(r"https://github\.com/example/shop-deploy/commit/[0-9a-f]{40}", href)
        deployed = page.locator(f'dl.facts a[href="{href}"] code')
        assert await deployed.count() == 1, "the last deploy's revision links the same commit"

        kinds = await page.locator("svg.timeline g.mark").evaluate_all(
            "els => els.map(e => e.dataset.kind)"
        )
        listed = await page.locator("ol.events li").evaluate_all(
            "els => els.map(e => e.dataset.kind)"
        )
        assert kinds, "the chart has marks"
        assert listed == list(reversed(kinds)), "the list says what the chart shows, newest first"
        assert "health_degraded" in kinds and "rollback_succeeded" in kinds
        events = await _texts(page, "ol.events li")
        assert any("rolled back to ea87599 by alice@example.com" in e for e in events), events
        assert any(e.startswith("2026-11-20") or "Nov" in e for e in events)
        title = await page.locator(
            'svg.timeline g.mark[data-kind="rollback_succeeded"] title'
        ).text_content()
        assert title is not None and "2026-11-20" in title and "rolled back" in title

        # The mute made from chart is on redis's story, with who and why.
        await page.goto(f"{world.base}/status/staging/data/redis")
        redis = await _texts(page, "ol.events li")
        assert any(
            "alerts muted until 2026-11-21 13:16 UTC by alice: database upgrade window" in e
            for e in redis
        ), redis
        assert await page.locator('svg.timeline g.mark[data-kind="mute"]').count() == 1

        await page.goto(f"{world.base}/status/staging/podinfo/podinfo")
        assert "podinfo on staging: deploy of 6.6.1 failed" in await page.inner_text(
            "ul.open-alerts"
        )
        await page.screenshot(path=str(shots / "status-app.png"), full_page=True)
        await context.close()
        found = await axe_violations_in(browser, f"{world.base}/status/prod/argocd/payments", axe)
        assert not found, found


async def test_the_page_follows_a_change_live_and_reloads_without_javascript(
    tmp_path: Path,
) -> None:
    async with status_world(tmp_path) as world, chromium() as browser:
        live = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await live.goto(f"{world.base}/status")
        await live.wait_for_selector("#live-note:not([hidden])")
        marker = await live.evaluate("() => { window.notReloaded = true; return true; }")
        assert marker

        plain_context = await browser.new_context(viewport=DESKTOP, java_script_enabled=False)
        plain = await plain_context.new_page()
        await plain.goto(f"{world.base}/status")
        assert "Reload the page to see changes." in await plain.inner_text(".updated")
        refresh = plain.locator('noscript meta[http-equiv="refresh"]')
        assert await refresh.count() == 1
        assert "failed to deploy" in await plain.inner_text('section[data-cluster="staging"] h2')

        await world.apply(NEXT_MORNING, "staging", podinfo_fixed())

        # Within 2 s, without a reload: the same window, the new verdict.
        await live.wait_for_function(
            "() => document.querySelector('section[data-cluster=\"staging\"] h2')"
            ".innerText.includes('all 3 apps in sync')",
            timeout=2000,
        )
        assert await live.evaluate("() => window.notReloaded === true")
        order = await _texts(live, "section.cluster h2")
        assert order[0].startswith("prod: 1 problem"), "the environment with a problem first"

        # Without JavaScript the page is the same after a reload.
        assert "failed to deploy" in await plain.inner_text('section[data-cluster="staging"] h2')
        await plain.reload()
        staging = " ".join((await plain.inner_text('section[data-cluster="staging"] h2')).split())
        assert staging == "staging: all 3 apps in sync"
        time_text = await plain.locator(".updated time").inner_text()
        assert time_text.endswith("UTC"), "without JavaScript, times are shown in UTC"
        await plain_context.close()


async def test_at_phone_width_nothing_scrolls_sideways(tmp_path: Path, shots: Path) -> None:
    axe = require_axe()
    async with status_world(tmp_path) as world, chromium() as browser:
        context = await browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
        )
        page = await context.new_page()
        for path in ("/status", "/status/staging", "/status/staging/podinfo/podinfo"):
            await page.goto(world.base + path)
            widths = await page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert widths[0] <= widths[1], (path, widths)
        await page.goto(world.base + "/status")
        box = await page.locator('li.app[data-app="podinfo"]').bounding_box()
        assert box is not None and box["width"] <= PHONE["width"]
        await page.screenshot(path=str(shots / "status-phone.png"), full_page=True)
        await context.close()
        found = await axe_violations_in(
            browser, world.base + "/status", axe, viewport=PHONE, is_mobile=True
        )
        assert not found, found
