"""One report's console page over a real server on loopback: a report made through the API against the
Odeus simulator, then read, downloaded and verified through the console by an officer and an auditor.

The page's figures are those of the signed PDF (compared with ``pdftotext`` of the figures-only PDF),
nothing per person reaches the page, downloads need a purpose and are recorded with the person as actor,
auditors are refused the per-person files (recorded as the API records it), and verification records
``report.verified`` as the API does.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Final

import httpx
import pytest

from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from tests.support.console_report import FinishedReport, finished_report, html_tables, pdf_text, sign_in
from tests.support.server import LiveServer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

EMAIL: Final = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.]+")


def audit_records(server: LiveServer, **params: Any) -> list[dict[str, Any]]:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        response = client.get(
            "/api/v1/audit/entries", params={"limit": 1000, **params}, headers=server.auth(Role.AUDITOR)
        )
    assert response.status_code == 200, response.text
    return [e["record"] for e in response.json()["entries"]]


def api_file(server: LiveServer, path: str, role: Role, **params: str) -> bytes:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        response = client.get(path, params=params, headers=server.auth(role))
    assert response.status_code == 200, response.text
    return response.content


def assert_error_page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    return response.text


@pytest.fixture
def finished(migrated_settings: Settings) -> Any:
    with finished_report(migrated_settings) as made:
        yield made


def test_officer_and_auditor_see_the_pdf_figures_download_with_a_purpose_and_verify(
    finished: FinishedReport,
) -> None:
    server, report = finished.server, finished.report
    report_id = report["id"]
    figures_pdf = api_file(server, report["links"]["pdf"], Role.OFFICER, purpose="compare with the console")
    text = pdf_text(figures_pdf)
    dataset = api_file(server, report["links"]["dataset"], Role.OFFICER, purpose="collect the pseudonyms")
    rows = list(csv.DictReader(io.StringIO(dataset.decode("utf-8"))))
    pseudonyms = {row["user_id"] for row in rows}
    assert len(pseudonyms) > 10
    personal = {*pseudonyms, *finished.people.names, *finished.people.emails, *finished.people.ids}

    with (
        sign_in(server, "Olga Officer", "officer") as officer,
        sign_in(server, "Anton Auditor", "auditor") as auditor,
    ):
        pages = {}
        for who, client in (("officer", officer), ("auditor", auditor)):
            shown = client.get(finished.page)
            assert shown.status_code == 200, shown.text
            html = shown.text
            pages[who] = html
            # the status and provenance of GET /api/v1/reports/{id}, times in the report's zone
            assert report["policy"]["hash"] in html
            assert "succeeded" in html
            start = report["period"]["from"]  # 2026-10-01T00:00:00+02:00
            assert f"{start[:10]} {start[11:16]} {start[-6:]}" in html
            assert "hx-trigger" not in html  # finished: no polling
            # nothing per person, for either role
            found = [value for value in personal if value and value in html]
            assert found == [], f"{who} saw per-person values"
            assert EMAIL.search(html) is None
            # every figure table equals the PDF's: each row's cells appear as one line of the PDF's text
            tables = html_tables(html)
            assert {"figures-summary", "figures-department"} <= tables.keys()
            compared = 0
            for name, table in tables.items():
                if not name.startswith("figures-"):
                    continue
                for cells in table[1:]:  # the header row aside
                    assert " ".join(cells) in text, (name, cells)
                    compared += 1
            assert compared > 20
            summary = {row[0]: row[1] for row in tables["figures-summary"][1:]}
            assert summary["People in the dataset"] == f"{len(rows):,}"
            assert 'role="img"' in html  # the charts, with the same numbers in the tables
        # the same page for both roles, but for the downloads offered
        assert html_tables(pages["officer"]) == html_tables(pages["auditor"])
        assert 'value="dataset"' in pages["officer"]
        assert 'value="dataset"' not in pages["auditor"]

        download = f"{finished.page}/download"
        # no purpose, or a blank one: the page again, with the message beside the field
        for params in ({"file": "figures"}, {"file": "figures", "purpose": "   "}):
            refused = officer.get(download, params=params)
            html = assert_error_page(refused, 400)
            assert 'aria-invalid="true"' in html
            assert 'id="download-purpose-error"' in html
            assert "Purpose: required and not blank" in html
            assert not refused.content.startswith(b"%PDF")
        # the auditor downloads the figures-only PDF, the same bytes the API gives
        pdf = auditor.get(download, params={"file": "figures", "purpose": "auditor reads the report"})
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-disposition"] == f'attachment; filename="report-{report_id}.pdf"'
        assert pdf.content == figures_pdf
        # the auditor may not take the per-person files: a 403 page, recorded as the API records it
        for choice in ("full", "dataset"):
            denied = auditor.get(download, params={"file": choice, "purpose": "try it"})
            assert_error_page(denied, 403)
            assert not denied.content.startswith((b"%PDF", b"user_id"))
        # the officer takes the full PDF and the dataset
        full = officer.get(download, params={"file": "full", "purpose": "officer full copy"})
        assert (full.status_code, full.content[:5]) == (200, b"%PDF-")
        data = officer.get(download, params={"file": "dataset", "purpose": "officer dataset copy"})
        assert data.status_code == 200
        assert data.content == dataset

        # verify the stored PDF with the button: a CSRF token is needed
        assert_error_page(auditor.post(f"{finished.page}/verify"), 403)
        token = re.search(r'name="csrf_token" value="([^"]+)"', pages["auditor"])
        assert token is not None
        verified = auditor.post(f"{finished.page}/verify", data={"csrf_token": token[1]})
        assert verified.status_code == 200, verified.text
        assert "Valid: every check passed" in verified.text
        assert verified.text.count("passed</td>") == 4  # signature, coverage, certificate, manifest
        # an uploaded copy with one flipped byte is not valid
        tampered = bytearray(figures_pdf)
        assert tampered[:10] == b"%PDF-1.7\n%"
        tampered[11] ^= 0x01
        bad = officer.post(
            "/console/reports/verify",
            data={"csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', pages["officer"])[0]},
            files={"pdf": ("copy.pdf", bytes(tampered), "application/pdf")},
        )
        assert bad.status_code == 200, bad.text
        assert "Not valid: at least one check failed" in bad.text
        assert "failed</td>" in bad.text
        # no file chosen: the form again, with the message beside the field
        empty = officer.post(
            "/console/reports/verify",
            data={"csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', pages["officer"])[0]},
            files={"pdf": ("", b"", "application/octet-stream")},
        )
        assert 'id="verify-file-error"' in assert_error_page(empty, 400)

    records = audit_records(server, resource=f"report:{report_id}")
    console = [r for r in records if str(r["actor_key_id"]).startswith("console:")]
    by_action: dict[str, list[dict[str, Any]]] = {}
    for record in console:
        by_action.setdefault(record["action"], []).append(record)
    viewed = by_action["report.viewed"]
    assert {r["role"] for r in viewed} == {"officer", "auditor"}
    assert all(r["details"] == {"report_id": report_id, "status": "succeeded"} for r in viewed)
    (downloaded,) = by_action["report.downloaded"]
    assert (downloaded["role"], downloaded["actor_name"], downloaded["purpose"]) == (
        "auditor",
        "Anton Auditor",
        "auditor reads the report",
    )
    assert downloaded["details"] == {"report_id": report_id, "format": "pdf", "sha256": report["pdf_sha256"]}
    dataset_records = by_action["dataset.downloaded"]
    assert [(r["actor_name"], r["purpose"], r["details"]["format"]) for r in dataset_records] == [
        ("Olga Officer", "officer full copy", "pdf"),
        ("Olga Officer", "officer dataset copy", "csv"),
    ]
    verified_records = by_action["report.verified"]
    assert [(r["actor_name"], r["details"]["valid"]) for r in verified_records] == [
        ("Anton Auditor", True),
        ("Olga Officer", False),
    ]
    assert verified_records[0]["details"]["sha256"] == report["pdf_sha256"]
    # the refusals: the auditor's two, on the console's download route
    refusals = [
        r
        for r in audit_records(server, action="access.denied")
        if r["details"]["route"] == "/console/reports/:report_id/download"
    ]
    assert [(r["role"], r["details"]["http_status"], r["details"]["reason"]) for r in refusals] == [
        ("auditor", 403, "wrong_role"),
        ("auditor", 403, "wrong_role"),
    ]
    # the refused downloads wrote no download record
    purposes = {r.get("purpose") for r in records}
    assert "try it" not in purposes


def test_who_may_open_a_report_page(live_server: LiveServer) -> None:
    server = live_server
    unknown = "/console/reports/rpt_000000000000000000000000"
    with httpx.Client(base_url=server.base_url, timeout=60) as anonymous:
        gone = anonymous.get(unknown)
        assert (gone.status_code, gone.headers["location"]) == (303, f"/console/sign-in?next={unknown}")
    with (
        sign_in(server, "Ada Admin", "admin") as admin,
        sign_in(server, "Olga Officer", "officer") as officer,
    ):
        for path in (unknown, f"{unknown}/download?file=figures&purpose=x"):
            assert "This needs the role" in assert_error_page(admin.get(path), 403)
        assert "no report with that id" in assert_error_page(officer.get(unknown), 404)
        assert_error_page(officer.get("/console/reports/not%20an%20id"), 404)
        assert_error_page(officer.get(f"{unknown}/download?file=figures&purpose=read"), 404)
        # every role may verify an upload, as through the API
        form = admin.get("/console/reports/verify")
        assert form.status_code == 200
        assert 'type="file"' in form.text
