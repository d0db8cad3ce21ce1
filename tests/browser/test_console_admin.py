"""An admin's walk through the admin pages in Chromium: sign in by link, create a schedule (first with a
mistake, shown beside its field), change it, issue a key (shown once) and revoke it after the confirmation,
read the policies and one policy's columns, and start a new key epoch. axe-core finds no WCAG 2.2 AA
violation on any of these pages (the schedule list also at 320 px wide); a screenshot of each is kept in
``test-artifacts/screenshots``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect

from odeus_compliance.app import create_app
from odeus_compliance.console.bootstrap import issue_sign_in_links
from odeus_compliance.settings import Settings
from tests.support.axe import axe_violations, describe_violations
from tests.support.browser import screenshot
from tests.support.server import run_server


@pytest.fixture
def served(migrated_settings: Settings) -> Iterator[tuple[str, Settings]]:
    with run_server(create_app(migrated_settings)) as base_url:
        yield base_url, migrated_settings


async def checked(page: Page, name: str) -> None:
    """No axe violation on the page as it is; its screenshot saved."""
    violations = await axe_violations(page)
    assert violations == [], describe_violations(violations)
    await screenshot(page, f"admin-{name}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_admin_walks_schedules_keys_policies_and_epochs(
    page: Page, served: tuple[str, Settings]
) -> None:
    base_url, settings = served
    (link,) = await issue_sign_in_links(
        settings, people=[("Ada Admin", "admin")], minutes=15, base_url=base_url
    )
    await page.goto(link)
    await expect(page).to_have_url(re.compile(r"/console/schedules$"))  # an admin starts at the schedules
    nav = page.get_by_role("navigation", name="Sections")

    # schedules: none yet; a new one, first with an unknown zone
    await expect(page.get_by_role("heading", level=1)).to_have_text("Schedules")
    await checked(page, "schedules-empty")
    await page.get_by_role("link", name="New schedule").click()
    await page.get_by_label("Name").fill("monthly-berlin")
    await page.get_by_label("Due day").fill("2")
    await page.get_by_label("Due time").fill("06:30")
    await page.get_by_label("Time zone").fill("Europe/Berlln")
    await page.get_by_label("Missed periods").select_option("skip-and-record")
    await checked(page, "schedule-new")
    await page.get_by_role("button", name="Create the schedule").click()
    zone = page.get_by_label("Time zone")
    await expect(zone).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#error-timezone")).to_contain_text("is not a known IANA time zone")
    await expect(page.get_by_role("alert")).to_contain_text("Time zone")
    await checked(page, "schedule-new-error")
    await zone.fill("Europe/Berlin")
    await zone.press("Enter")  # submitted from the keyboard
    await expect(page.get_by_role("heading", level=1)).to_have_text("Schedule monthly-berlin")
    await expect(page.get_by_role("status")).to_have_text("The schedule was saved.")
    await checked(page, "schedule")

    # changed: a later time, disabled
    await page.get_by_label("Due time").fill("07:15")
    await page.get_by_label("Enabled").uncheck()
    await page.get_by_role("button", name="Save the changes").click()
    await expect(page.get_by_role("status")).to_have_text("The schedule was saved.")
    await expect(page.get_by_label("Due time")).to_have_value("07:15")
    await expect(page.get_by_label("Enabled")).not_to_be_checked()
    await page.get_by_role("link", name="Back to the schedules").click()
    row = page.get_by_role("row").filter(has_text="monthly-berlin")
    await expect(row).to_contain_text("every month, day 2, 07:15")
    await expect(row).to_contain_text("disabled")
    await checked(page, "schedules")
    await page.set_viewport_size({"width": 320, "height": 800})
    await checked(page, "schedules-320")
    await page.set_viewport_size({"width": 1280, "height": 800})

    # API keys: issue one, shown once; revoke it after the confirmation
    await nav.get_by_role("link", name="API keys").click()
    await page.get_by_label("Name").fill("Nightly export")
    await page.get_by_label("Role").select_option("auditor")
    await checked(page, "apikeys")
    await page.get_by_role("button", name="Issue the key").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Key issued")
    key = await page.get_by_label("The key").input_value()
    assert re.fullmatch(r"oc_auditor_[A-Za-z0-9_-]{43}", key)
    await checked(page, "apikey-issued")
    await page.get_by_role("link", name="Back to the keys").click()
    assert key not in await page.content()
    await page.get_by_role("row").filter(has_text="Nightly export").get_by_role("link", name="Revoke").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Revoke a key")
    await checked(page, "apikey-revoke")
    await page.get_by_role("button", name="Revoke the key").click()
    await expect(page.get_by_role("status")).to_contain_text("The key was revoked")
    await expect(page.get_by_role("row").filter(has_text="Nightly export")).to_contain_text("revoked")
    await checked(page, "apikeys-revoked")

    # policies and one policy's columns
    await nav.get_by_role("link", name="Policies").click()
    await checked(page, "policies")
    await page.get_by_role("link", name="default", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Policy default")
    await expect(page.get_by_role("table").first).to_contain_text("pseudonymize")
    await checked(page, "policy")

    # key epochs: a new report-data epoch becomes the current one
    await nav.get_by_role("link", name="Key epochs").click()
    await checked(page, "keys")
    await page.get_by_role("link", name="Rotate the report-data key").click()
    await checked(page, "key-rotate")
    await page.get_by_role("button", name="Start a new report-data epoch now").click()
    await expect(page.get_by_role("status")).to_contain_text("A new epoch was started")
    current = page.get_by_role("row").filter(has_text=re.compile(r"report-data:2:"))
    await expect(current).to_contain_text("current")
    await checked(page, "keys-rotated")
