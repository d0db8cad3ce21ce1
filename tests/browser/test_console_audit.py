"""The auditor's console in Chromium: sign in by link, filter the log with a purpose, open an entry's proof
(htmx), verify the whole log, read the checkpoint and download a bundle, open the receipts; axe-core finds
no WCAG 2.2 AA violation on any page (the log also at 320 px wide), and each page is saved as a screenshot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect

from odeus_compliance.audit.bundle_verify import verify_bundle
from odeus_compliance.settings import Settings
from tests.support.auditor_console import serve_with_receipts, sign_in_links
from tests.support.axe import axe_violations, describe_violations
from tests.support.browser import screenshot

pytestmark = pytest.mark.slow


@pytest.fixture
def signed_link(migrated_settings: Settings) -> Iterator[str]:
    """An auditor's one-time sign-in link to a live server whose database holds receipts and a hold."""
    with serve_with_receipts(migrated_settings) as server:
        (link,) = sign_in_links(server, [("Ada Auditor", "auditor")])
        yield link


async def assert_accessible(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], describe_violations(violations)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_auditor_walks_the_console(page: Page, signed_link: str) -> None:
    await page.goto(signed_link)
    await page.get_by_role("navigation", name="Sections").get_by_role("link", name="Audit log").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    await assert_accessible(page)

    # a filter without a purpose is refused beside the field; with one, the entries show
    await page.get_by_label("Action").select_option("console.sign_in")
    await page.get_by_role("button", name="Show entries").click()
    await expect(page.locator("#f-purpose-error")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "auditor-log-refused")
    await page.get_by_label("Purpose of this read").fill("quarterly access review")
    await page.get_by_label("Action").select_option("")
    await page.get_by_label("Entries per page").fill("8")
    await page.get_by_role("button", name="Show entries").click()
    await expect(page.get_by_role("table", name="Entries")).to_be_visible()
    await expect(page.locator("tr[data-seq]")).to_have_count(8)

    # an entry's inclusion proof, loaded under its row
    await page.get_by_role("link", name="Inclusion proof of entry 5").click()
    proof = page.locator("#proof-5")
    await expect(proof.get_by_text("Checked: the audit path leads")).to_be_visible()
    await expect(proof.locator(".audit-path li").first).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "auditor-log")

    # the log at 320 px wide
    await page.set_viewport_size({"width": 320, "height": 800})
    await assert_accessible(page)
    await screenshot(page, "auditor-log-320")
    await page.set_viewport_size({"width": 1280, "height": 800})

    # verify the whole log
    await page.get_by_role("link", name="Verify the log").click()
    await assert_accessible(page)
    await page.get_by_role("button", name="Verify the whole log now").click()
    checks = page.get_by_role("table", name="Each check and its result")
    await expect(checks).to_be_visible()
    await expect(checks.get_by_text("Pass", exact=True)).to_have_count(6)
    await expect(page.get_by_text("Valid.")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "auditor-verify")

    # the checkpoint and a bundle
    await page.get_by_role("link", name="Checkpoint and export").click()
    await page.get_by_label("Purpose of this read").fill("pin the verifier key")
    await page.get_by_role("button", name="Show the checkpoint").click()
    vkey = await page.locator("code.vkey").inner_text()
    assert vkey.startswith("odeus-compliance/")
    await page.get_by_label("From (RFC 3339 with offset)").fill("2000-01-01T00:00:00Z")
    await page.get_by_label("To (RFC 3339 with offset)").fill("2100-01-01T00:00:00Z")
    await page.get_by_label("Purpose of the export").fill("works council review")
    await assert_accessible(page)
    await screenshot(page, "auditor-checkpoint")
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download the bundle").click()
    download = await download_info.value
    assert download.suggested_filename == "audit-bundle.json"
    path = await download.path()
    report = verify_bundle(path.read_text(encoding="utf-8"), trusted_vkey=vkey)
    assert report.valid, report.summary()

    # receipts and holds
    await page.get_by_role("link", name="Receipts and holds").click()
    receipts = page.get_by_role("table", name="Deletion receipts")
    await expect(receipts.get_by_text("Verified", exact=True).first).to_be_visible()
    await expect(receipts.get_by_text("Does not verify")).to_have_count(0)
    await expect(page.get_by_role("table", name="Legal holds, newest first")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "auditor-retention")
