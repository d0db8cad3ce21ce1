"""One report's console page in Chromium: an auditor signs in by link, opens a finished report, the page
passes axe (also 320 px wide), the figures-only PDF comes through the download form and poppler's
``pdfsig`` finds its signature intact, and the stored PDF verifies with the page's button."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from odeus_compliance.settings import Settings
from tests.support.axe import axe_violations, describe_violations
from tests.support.browser import screenshot
from tests.support.console_report import FinishedReport, finished_report, sign_in_link

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def assert_accessible(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], describe_violations(violations)


@pytest.fixture
def finished(migrated_settings: Settings) -> Iterator[tuple[FinishedReport, str]]:
    """The finished report and an auditor's sign-in link (made outside the test's event loop)."""
    with finished_report(migrated_settings) as made:
        yield made, sign_in_link(made.server, "Anton Auditor", "auditor")


async def test_an_auditor_reads_downloads_and_verifies_a_report(
    page: Page, finished: tuple[FinishedReport, str], tmp_path: Path
) -> None:
    report, link = finished
    base = report.server.base_url + report.page
    await page.goto(link)
    await page.goto(base)
    await page.get_by_role("heading", level=1).wait_for()
    assert await page.get_by_role("heading", name="Figures").is_visible()
    assert await page.get_by_role("table", name="Summary figures").is_visible()
    assert await page.get_by_role("img", name="Messages by channel").is_visible()
    await assert_accessible(page)
    await screenshot(page, "console-report-page")

    # the download form: the purpose is asked for, the figures-only PDF is the default choice
    await page.get_by_label("Purpose").fill("audit of the October figures")
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Download").click()
    download = await waiting.value
    saved = tmp_path / "report.pdf"
    await download.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-")
    checked = subprocess.run(["pdfsig", str(saved)], capture_output=True, text=True, timeout=60, check=False)
    assert "Signature Validation: Signature is Valid." in checked.stdout, checked.stdout + checked.stderr

    await page.get_by_role("button", name="Verify this report").click()
    await page.get_by_role("heading", name="Verification result").wait_for()
    assert await page.get_by_text("Valid: every check passed").is_visible()
    await assert_accessible(page)
    await screenshot(page, "console-report-verified")

    # narrow: readable at 320 px, still without violations
    await page.set_viewport_size({"width": 320, "height": 800})
    await page.goto(base)
    await page.get_by_role("heading", level=1).wait_for()
    await assert_accessible(page)
    await screenshot(page, "console-report-page-320")
