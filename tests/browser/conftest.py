"""Browser fixtures: a headless Debian Chromium per test (it starts in a fraction of a second, and a fresh
one per test keeps the fixtures on the test's own event loop), a fresh context and page per test.
The helpers behind them are in ``tests/support/browser.py``; axe-core is in ``tests/support/axe.py`` and
the OpenID provider in ``tests/support/oidc.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from tests.support.browser import launch_chromium, new_context


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as launched:
        yield launched


@pytest.fixture
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await new_context(browser)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def page(browser_context: BrowserContext) -> Page:
    return await browser_context.new_page()
