"""A real browser for the tests of what people see: Debian's Chromium driven by Playwright
(PyPI) through its executable_path, never a downloaded browser; axe-core (npm) for the
accessibility check. `.ci/browser` installs both. Missing outside CI: the test skips and says
why; missing under CI=true: the test fails."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("DRIFTBOT_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def axe_script() -> Path | None:
    """axe.min.js where .ci/browser puts it (or $DRIFTBOT_AXE_DIR)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base = Path(os.environ.get("DRIFTBOT_AXE_DIR") or cache / "driftbot" / "npm")
    path = base / "node_modules" / "axe-core" / "axe.min.js"
    return path if path.is_file() else None


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must have it: see .ci/browser)")
    pytest.skip(reason)


def require_browser() -> None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.is_file():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium, or bash .ci/browser)")


def require_axe() -> Path:
    path = axe_script()
    if path is None:
        _missing("axe-core is not installed (bash .ci/browser installs it from npm)")
    assert path is not None
    return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium (Playwright's Browser)."""
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def axe_violations(page: Any, axe: Path) -> list[dict[str, Any]]:
    """The serious and critical violations axe-core finds on the page (the page's context
    must bypass its Content-Security-Policy so the script can be injected)."""
    await page.add_script_tag(path=str(axe))
    result: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    return [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
