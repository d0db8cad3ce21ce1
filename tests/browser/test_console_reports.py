"""An officer's walk through the report pages in Chromium, against the service pulling from the built-in
Odeus simulator: sign in by link, open the request form from the navigation, submit it with mistakes (the
errors beside their fields), then a good request; the archive shows the job and follows it by htmx polling,
without reloading the page, until it has succeeded. axe-core finds no WCAG 2.2 AA violation on any of these
pages (the archive also at 320 px wide); a screenshot of each is kept in ``test-artifacts/screenshots``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

import pytest
from playwright.async_api import Page, expect

from odeus_compliance.console.bootstrap import issue_sign_in_links
from odeus_compliance.settings import Settings
from tests.support.axe import axe_violations, describe_violations
from tests.support.browser import screenshot
from tests.support.server import LiveServer, last_month, simulator_server

PURPOSE: Final = "monthly works council report"
JOB_DEADLINE_MS: Final = 240_000
"""Only so that a broken job cannot hang the run; the job takes seconds."""


@pytest.fixture
def served(migrated_settings: Settings) -> Iterator[LiveServer]:
    """The service pulling from the Odeus simulator, with the demo signing certificate."""
    with simulator_server(migrated_settings, users=60, seed=11) as (server, _sim):
        yield server


async def assert_accessible(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], describe_violations(violations)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_officer_requests_a_report_and_watches_it_finish(page: Page, served: LiveServer) -> None:
    (link,) = await issue_sign_in_links(
        served.settings, people=[("Olga Officer", "officer")], minutes=15, base_url=served.base_url
    )
    await page.goto(link)
    await expect(page).to_have_url(f"{served.base_url}/console/reports")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    await expect(page.get_by_role("status")).to_have_text("No report on this page is queued or running.")

    await page.get_by_role("navigation", name="Sections").get_by_role("link", name="Request a report").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Request a report")
    await assert_accessible(page)
    await screenshot(page, "officer-request-form")

    # mistakes: no purpose, a month in the future; both shown beside their fields, the entries kept
    await page.get_by_label("Month").fill("2999-01")
    await page.get_by_label("Time zone").fill("Europe/Berlin")
    await page.get_by_role("button", name="Request the report").click()
    await expect(page.locator("#month-error")).to_contain_text("must not be in the future")
    await expect(page.locator("#purpose-error")).to_contain_text("required and not blank")
    await expect(page.get_by_label("Month")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Month")).to_have_value("2999-01")
    await assert_accessible(page)
    await screenshot(page, "officer-request-form-errors")

    await page.get_by_label("Month").fill(last_month())
    await page.get_by_label("Purpose").fill(PURPOSE)
    await page.get_by_label("Policy").select_option("default")
    await page.get_by_role("button", name="Request the report").click()
    await expect(page).to_have_url(f"{served.base_url}/console/reports")
    row = page.locator("tbody tr").first
    await expect(row).to_have_attribute("data-status", re.compile(r"queued|running"))
    await expect(page.locator("#archive[hx-trigger]")).to_have_count(1)  # it polls while the job runs
    await page.evaluate("() => { window.notReloaded = true; }")
    await assert_accessible(page)
    await screenshot(page, "officer-archive-running")

    await expect(row).to_have_attribute("data-status", "succeeded", timeout=JOB_DEADLINE_MS)
    assert await page.evaluate("() => window.notReloaded === true")  # updated by htmx, not a reload
    await expect(page.get_by_role("status")).to_have_text("No report on this page is queued or running.")
    await expect(page.locator("#archive[hx-trigger]")).to_have_count(0)  # and it has stopped polling
    await expect(row.get_by_role("link", name="Request again")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "officer-archive")

    await page.set_viewport_size({"width": 320, "height": 800})
    await assert_accessible(page)
    await screenshot(page, "officer-archive-320")

    # "Request again" fills in the month, zone and policy, never the purpose
    await row.get_by_role("link", name="Request again").click()
    await expect(page.get_by_label("Month")).to_have_value(last_month())
    await expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")
    await expect(page.get_by_label("Purpose")).to_have_value("")
