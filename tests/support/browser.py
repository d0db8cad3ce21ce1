"""Playwright (async API) driving Debian's Chromium for the browser tests; nothing downloads a browser build.

- ``launch_chromium()``: an async context manager for a headless ``/usr/bin/chromium`` (installed by
  ``scripts/setup``). Playwright gives every launch a fresh temporary profile (``--user-data-dir``) and
  removes it on close, so no test sees another's cookies, storage or cache. Host names other than
  ``localhost`` do not resolve, so a page that reaches for a CDN or any other outside host fails to load
  it, as it would on an offline CI machine.
- ``new_context(browser)``: a fresh context (one per test) with a fixed locale, zone and viewport.
- ``screenshot(page, name)``: a full-page PNG in ``test-artifacts/screenshots/NAME.png`` (kept for people
  to look at; ``test-artifacts/`` is ignored by git).

The fixtures ``browser``, ``browser_context`` and ``page`` in ``tests/browser/conftest.py`` use these.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, async_playwright

__all__ = ["CHROMIUM", "SCREENSHOTS", "launch_chromium", "new_context", "screenshot"]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = (
    "--no-sandbox",  # root in CI containers, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # loopback only: every host name but the loopback ones fails to resolve
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """A headless Chromium from ``/usr/bin/chromium`` with its own fresh profile, closed afterwards."""
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: run scripts/setup (it installs Debian's chromium)"
        raise RuntimeError(msg)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            await browser.close()


async def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh context: English, UTC, a laptop-sized viewport unless ``options`` say otherwise."""
    settings: dict[str, Any] = {
        "locale": "en-GB",
        "timezone_id": "UTC",
        "viewport": {"width": 1280, "height": 800},
        **options,
    }
    return await browser.new_context(**settings)


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``test-artifacts/screenshots/<name>.png``; returns its path."""
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "page"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{safe_name}.png"
    await page.screenshot(path=path, full_page=True)
    return path
