"""The officers' report API over a real server on loopback, on SQLite and PostgreSQL.

The journey: an officer requests a report (the real job runs against the built-in Odeus simulator), polls it
until it has succeeded, downloads the signed PDF and the dataset with a purpose; an auditor reads the status
and verifies the PDF; the audit log holds every step with its purpose. Then the bad paths: malformed requests
(problem+json that never echoes what was sent), unfinished and failed reports (409), files that are not
there (404), and downloads while the audit log cannot be written (503, not one byte of the file).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.errors import ValidationFailed
from odeus_compliance.reports import service
from odeus_compliance.reports.jobs import ReportJobs, ReportPeriod, ReportRecord
from odeus_compliance.reports.schemas import ReportRequestIn
from odeus_compliance.security import ALL_ROLES, Role
from odeus_compliance.settings import Settings
from tests.support.audit import sql
from tests.support.server import LiveServer, issue_keys, last_month, run_server, simulator_server

PROBLEM_MEMBERS: Final = {"type", "title", "status", "detail", "instance", "request_id"}
MARKER: Final = "Zq7secretMarker"
"""Put into every bad request; no answer may contain it."""
FOREIGN_RUNNER: Final = "another-host.example:4242:abcd1234"
"""A lease owner on another machine: this server's worker leaves its job alone while the lease lasts."""
_FAIL_SQLITE: Final = (
    "CREATE TRIGGER audit_fails BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'no'); END"
)
_FAIL_PG: Final = [
    "CREATE FUNCTION audit_fails() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER audit_fails BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_fails()",
]
_HEAL_SQLITE: Final = ["DROP TRIGGER audit_fails"]
_HEAL_PG: Final = ["DROP TRIGGER audit_fails ON audit_entries", "DROP FUNCTION audit_fails()"]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_MEMBERS, body
    assert body["status"] == status
    return body


def audit_records(client: httpx.Client, server: LiveServer, **params: Any) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/audit/entries", params={"limit": 1000, **params}, headers=server.auth(Role.AUDITOR)
    )
    assert response.status_code == 200, response.text
    return [e["record"] for e in response.json()["entries"]]


def wait_until_finished(client: httpx.Client, server: LiveServer, location: str) -> dict[str, Any]:
    """Poll the status until the job has finished (a deadline only so that a broken job cannot hang CI)."""
    deadline = time.monotonic() + 240
    seen: list[tuple[str, float]] = []
    while True:
        response = client.get(location, headers=server.auth(Role.OFFICER))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        seen.append((body["status"], body["progress"]))
        if body["status"] in {"succeeded", "failed"}:
            progress = [p for s, p in seen if s == "running"]
            assert progress == sorted(progress), seen  # progress never goes back
            return body
        assert time.monotonic() < deadline, f"the report did not finish: {seen[-5:]}"
        time.sleep(0.2)


def corrupt_stored_pdf(settings: Settings, report_id: str) -> None:
    """Flip one ciphertext byte of the stored PDF: in its file (SQLite) or its first row (PostgreSQL)."""
    if settings.is_sqlite:
        path = settings.data_dir / "reports" / report_id / "report.pdf.enc"
        data = bytearray(path.read_bytes())
        data[-20] ^= 0x01
        path.write_bytes(bytes(data))
        return
    where = "report_id = :r AND name = 'report.pdf' AND seq = 0"
    ((row,),) = sql(settings, [(f"SELECT data FROM report_artifact_chunks WHERE {where}", {"r": report_id})])
    data = bytearray(row[0])
    data[-20] ^= 0x01
    sql(
        settings,
        [(f"UPDATE report_artifact_chunks SET data = :d WHERE {where}", {"r": report_id, "d": bytes(data)})],
    )


@pytest.fixture
def report_server(migrated_settings: Settings) -> Iterator[LiveServer]:
    """The service pulling from the built-in Odeus simulator, with the demo signing certificate."""
    with simulator_server(migrated_settings, users=60, seed=11) as (server, _sim):
        yield server


def _attachments(pdf: bytes) -> set[str]:
    """The names of a PDF's embedded files, as poppler lists them."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.pdf"
        path.write_bytes(pdf)
        listed = subprocess.run(
            ["pdfdetach", "-list", str(path)], check=True, timeout=60, capture_output=True, text=True
        ).stdout
    return {line.split(": ", 1)[1] for line in listed.splitlines() if ": " in line}


def test_request_poll_download_verify_and_every_step_audited(report_server: LiveServer) -> None:
    server = report_server
    officer, auditor = server.auth(Role.OFFICER), server.auth(Role.AUDITOR)
    month = last_month()
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        requested = client.post(
            "/api/v1/reports",
            json={
                "month": month,
                "timezone": "Europe/Berlin",
                "policy": "rows",  # releases per-person rows: both PDF variants and the dataset
                "purpose": "works council Q4",
            },
            headers=officer,
        )
        assert requested.status_code == 202, requested.text
        job = requested.json()
        assert job["status"] in {"queued", "running"}
        assert requested.headers["location"] == f"/api/v1/reports/{job['id']}" == job["links"]["self"]
        assert job["period"]["from"].startswith(f"{month}-01T00:00:00+0")  # Berlin: +01:00 or +02:00
        assert job["period"]["timezone"] == "Europe/Berlin"
        assert job["links"]["pdf"] is None

        # not finished yet, or finished: either way the status says where it is
        done = wait_until_finished(client, server, requested.headers["location"])
        assert done["status"] == "succeeded", done
        assert done["progress"] == 1.0
        assert done["policy"]["name"] == "rows"
        assert done["policy"]["hash"].startswith("sha256:")
        assert done["links"] == {
            "self": f"/api/v1/reports/{job['id']}",
            "pdf": f"/api/v1/reports/{job['id']}/pdf",
            "dataset": f"/api/v1/reports/{job['id']}/data.csv",
            "pdf_full": f"/api/v1/reports/{job['id']}/pdf?variant=full",
        }
        assert done["has_dataset"] is True  # the rows policy releases pseudonymous rows

        # the auditor sees the same status and the job in the list
        assert client.get(done["links"]["self"], headers=auditor).json()["id"] == job["id"]
        listing = client.get("/api/v1/reports", params={"limit": 10}, headers=auditor)
        assert listing.status_code == 200
        assert [r["id"] for r in listing.json()["reports"]] == [job["id"]]
        assert listing.json()["next_before"] is None

        # the PDF: signed, streamed as an attachment with its digest
        pdf = client.get(done["links"]["pdf"], params={"purpose": "board review"}, headers=auditor)
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"] == f'attachment; filename="report-{job["id"]}.pdf"'
        assert pdf.content.startswith(b"%PDF-")
        digest = hashlib.sha256(pdf.content).hexdigest()
        assert digest == done["pdf_sha256"]
        assert pdf.headers["etag"] == f'"{digest}"'
        assert "data.csv" not in _attachments(pdf.content)  # the figures-only PDF: no per-person attachment

        # the full PDF (with the dataset) is for officers only, and handing it out is a dataset download
        full_path = done["links"]["pdf"]
        assert_problem(
            client.get(full_path, params={"purpose": "x", "variant": "full"}, headers=auditor), 403
        )
        full = client.get(full_path, params={"purpose": "analysis", "variant": "full"}, headers=officer)
        assert full.status_code == 200, full.text
        assert "data.csv" in _attachments(full.content)

        # the dataset: CSV, formula-safe (a text cell never starts with = + - @ tab CR; numbers may be -5)
        data = client.get(done["links"]["dataset"], params={"purpose": "works council Q4"}, headers=officer)
        assert data.status_code == 200, data.text
        assert data.headers["content-type"].startswith("text/csv")
        assert "attachment" in data.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(data.content.decode("utf-8"))))
        assert len(rows) > 1
        assert "email" not in rows[0]
        assert "name" not in rows[0]
        for row in rows:
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
                if cell.startswith("-"):
                    float(cell)  # a negative number, not a formula

        # verify: the auditor uploads the PDF; a flipped byte fails
        verified = client.post(
            "/api/v1/reports/verify",
            content=pdf.content,
            headers={**auditor, "content-type": "application/pdf"},
        )
        assert verified.status_code == 200, verified.text
        assert verified.json()["valid"] is True, verified.json()
        tampered = bytearray(pdf.content)
        # a byte of the binary comment after the header: signed, yet every object (the manifest too) still
        # reads, so the verdict names its report (a byte in the middle may fall in any attachment)
        assert tampered[:10] == b"%PDF-1.7\n%"
        tampered[11] ^= 0x01
        bad = client.post(
            "/api/v1/reports/verify",
            content=bytes(tampered),
            headers={**officer, "content-type": "application/pdf"},
        )
        assert bad.status_code == 200
        assert bad.json()["valid"] is False

        # the audit log: each step, with its purpose where data went out
        records = audit_records(client, server, resource=f"report:{job['id']}")
        by_action: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_action.setdefault(record["action"], []).append(record)
        (download,) = by_action["report.downloaded"]
        assert (download["role"], download["purpose"]) == ("auditor", "board review")
        assert download["details"] == {"report_id": job["id"], "format": "pdf", "sha256": digest}
        full_record, dataset = by_action["dataset.downloaded"]
        assert (full_record["role"], full_record["details"]["format"]) == ("officer", "pdf")
        assert (dataset["role"], dataset["purpose"]) == ("officer", "works council Q4")
        # the tampered copy still names its report (read from its manifest), with the verdict
        assert [r["details"]["valid"] for r in by_action["report.verified"]] == [True, False]
        assert len(by_action["report.viewed"]) >= 2
        (request_record,) = by_action["report.requested"]  # the requester, under the job's own resource
        assert by_action["export.fetched"][0]["purpose"] == "works council Q4"
        assert request_record["seq"] < by_action["export.fetched"][0]["seq"]
        assert request_record["purpose"] == "works council Q4"
        assert request_record["role"] == "officer"
        assert request_record["details"]["policy"] == "rows"
        assert request_record["details"]["policy_hash"] == done["policy"]["hash"]
        assert request_record["details"]["timezone"] == "Europe/Berlin"
        assert request_record["details"]["period_from"] == done["period"]["from"]

        # a download without a purpose is refused, and the auditor may not take the dataset
        assert_problem(client.get(done["links"]["pdf"], headers=officer), 400)
        assert_problem(client.get(done["links"]["pdf"], params={"purpose": "   "}, headers=officer), 400)
        assert_problem(client.get(done["links"]["dataset"], params={"purpose": "x"}, headers=auditor), 403)

        # the audit log cannot be written: 503, and not one byte of either file goes out
        statements = [_FAIL_SQLITE] if server.settings.is_sqlite else _FAIL_PG
        sql(server.settings, [(s, {}) for s in statements])
        try:
            for path, headers in ((done["links"]["pdf"], auditor), (done["links"]["dataset"], officer)):
                failed = client.get(path, params={"purpose": "during the outage"}, headers=headers)
                body = assert_problem(failed, 503)
                assert body["type"].endswith("service-unavailable")
                assert not failed.content.startswith(b"%PDF")
                assert set(body) <= PROBLEM_MEMBERS
            refused = client.post(
                "/api/v1/reports",
                json={"month": month, "timezone": "UTC", "purpose": "during the outage"},
                headers=officer,
            )
            assert_problem(refused, 503)
        finally:
            heal = _HEAL_SQLITE if server.settings.is_sqlite else _HEAL_PG
            sql(server.settings, [(s, {}) for s in heal])
        # the refused request queued no job, and the refused downloads left no record
        assert [r["id"] for r in client.get("/api/v1/reports", headers=officer).json()["reports"]] == [
            job["id"]
        ]
        purposes = [r["purpose"] for r in audit_records(client, server)]
        assert "during the outage" not in purposes

        # the same month as Odeus-style ends (wall-clock time in its zone, 'to' inclusive): a new version
        year, number = (int(part) for part in month.split("-"))
        last_day = (date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)).day
        again = client.post(
            "/api/v1/reports",
            json={
                "from": {"date": f"{month}-01T00:00:00.000Z", "timezone": "Europe/Berlin"},
                "to": {"date": f"{month}-{last_day:02d}T23:59:59.999Z", "timezone": "Europe/Berlin"},
                "policy": "rows",
                "purpose": "second version",
            },
            headers=officer,
        )
        assert again.status_code == 202, again.text
        second = wait_until_finished(client, server, again.headers["location"])
        assert second["status"] == "succeeded", second
        assert second["period"] == done["period"]
        assert (second["version"], second["supersedes"]) == (2, job["id"])
        newest_first = client.get("/api/v1/reports", params={"limit": 1}, headers=auditor).json()
        assert [r["id"] for r in newest_first["reports"]] == [second["id"]]
        assert newest_first["next_before"] == second["id"]

        # a stored file altered at rest: refused whole (500, not one byte), and no download recorded
        corrupt_stored_pdf(server.settings, second["id"])
        altered = client.get(f"{second['links']['pdf']}", params={"purpose": "altered copy"}, headers=officer)
        body = assert_problem(altered, 500)
        assert body["type"].endswith("artifact-unreadable")
        assert b"%PDF" not in altered.content
        assert "altered copy" not in [r["purpose"] for r in audit_records(client, server)]


BAD_REQUESTS: Final[list[tuple[str, Any]]] = [
    ("month out of range", {"month": "2026-13", "timezone": "UTC", "purpose": MARKER}),
    ("month malformed", {"month": f"{MARKER[:5]}", "timezone": "UTC", "purpose": "p"}),
    ("month in the future", {"month": "2999-01", "timezone": "UTC", "purpose": "p"}),
    ("unknown time zone", {"month": "2026-01", "timezone": f"Mars/{MARKER}", "purpose": "p"}),
    ("month without zone", {"month": "2026-01", "purpose": MARKER}),
    ("unknown policy", {"month": "2026-01", "timezone": "UTC", "policy": MARKER, "purpose": "p"}),
    ("policy path", {"month": "2026-01", "timezone": "UTC", "policy": "../default", "purpose": MARKER}),
    ("blank purpose", {"month": "2026-01", "timezone": "UTC", "purpose": "  \t "}),
    ("missing purpose", {"month": "2026-01", "timezone": "UTC"}),
    ("purpose too long", {"month": "2026-01", "timezone": "UTC", "purpose": MARKER * 100}),
    ("purpose with control", {"month": "2026-01", "timezone": "UTC", "purpose": f"{MARKER}\u0000"}),
    ("neither month nor range", {"timezone": "UTC", "purpose": MARKER}),
    (
        "both month and range",
        {
            "month": "2026-01",
            "from": {"date": "2026-01-01T00:00:00.000Z", "timezone": "UTC"},
            "to": {"date": "2026-01-31T23:59:59.999Z", "timezone": "UTC"},
            "purpose": MARKER,
        },
    ),
    (
        "range without end",
        {"from": {"date": "2026-01-01T00:00:00.000Z", "timezone": "UTC"}, "purpose": MARKER},
    ),
    (
        "range backwards",
        {
            "from": {"date": "2026-02-01T00:00:00.000Z", "timezone": "UTC"},
            "to": {"date": "2026-01-01T00:00:00.000Z", "timezone": "UTC"},
            "purpose": MARKER,
        },
    ),
    (
        "range date malformed",
        {
            "from": {"date": f"2026-01-01T{MARKER[:8]}", "timezone": "UTC"},
            "to": {"date": "2026-01-31T23:59:59.999Z", "timezone": "UTC"},
            "purpose": "p",
        },
    ),
    (
        "range date with offset",
        {
            "from": {"date": "2026-01-01T00:00:00+02:00", "timezone": "UTC"},
            "to": {"date": "2026-01-31T23:59:59.999Z", "timezone": "UTC"},
            "purpose": MARKER,
        },
    ),
    (
        "range zone unknown",
        {
            "from": {"date": "2026-01-01T00:00:00.000Z", "timezone": MARKER},
            "to": {"date": "2026-01-31T23:59:59.999Z", "timezone": "UTC"},
            "purpose": "p",
        },
    ),
    (
        "range too long",
        {
            "from": {"date": "2024-01-01T00:00:00.000Z", "timezone": "UTC"},
            "to": {"date": "2026-01-31T23:59:59.999Z", "timezone": "UTC"},
            "purpose": MARKER,
        },
    ),
    ("unknown field", {"month": "2026-01", "timezone": "UTC", "purpose": "p", f"{MARKER}@example.com": 1}),
    ("wrong type", {"month": 202601, "timezone": "UTC", "purpose": MARKER}),
    ("not an object", [MARKER]),
    ("policy too long", {"month": "2026-01", "timezone": "UTC", "policy": MARKER * 10, "purpose": "p"}),
    ("month not ended", {"month": f"{datetime.now(UTC):%Y-%m}", "timezone": "UTC", "purpose": MARKER}),
    (
        "range not ended",
        {
            "from": {"date": f"{datetime.now(UTC):%Y-%m}-01", "timezone": "UTC"},
            "to": {
                "date": f"{datetime.now(UTC) + timedelta(days=2):%Y-%m-%d}T00:00:00.000Z",
                "timezone": "UTC",
            },
            "purpose": MARKER,
        },
    ),
    ("partial not a flag", {"month": "2026-01", "timezone": "UTC", "purpose": MARKER, "partial": "yes"}),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_requests_are_problems_that_never_echo(live_server: LiveServer) -> None:
    server = live_server
    officer = server.auth(Role.OFFICER)
    failures: list[str] = []
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for name, body in BAD_REQUESTS:
            response = client.post("/api/v1/reports", json=body, headers=officer)
            if response.status_code != 400 or not response.headers["content-type"].startswith(
                "application/problem+json"
            ):
                failures.append(f"{name}: {response.status_code} {response.headers['content-type']}")
            elif MARKER in response.text or MARKER[:5] in response.text:
                failures.append(f"{name}: the answer echoes the request: {response.text}")
        for name, raw in (
            ("malformed JSON", b'{"purpose": "' + MARKER.encode() + b'"'),
            ("not UTF-8", b"\xff\xfe"),
        ):
            response = client.post(
                "/api/v1/reports", content=raw, headers={**officer, "content-type": "application/json"}
            )
            if response.status_code != 400 or MARKER in response.text:
                failures.append(f"{name}: {response.status_code} {response.text}")
        assert not failures, "\n".join(failures)
        huge = client.post("/api/v1/reports", json={"purpose": "p", "month": "x" * 20_000}, headers=officer)
        assert_problem(huge, 413)
        # the named field, never the value
        named = client.post("/api/v1/reports", json=BAD_REQUESTS[3][1], headers=officer).json()
        assert named["errors"] == [
            {"key": "timezone", "source": "body", "message": "is not a known IANA time zone"}
        ]

        # unknown ids, bad cursors, downloads of nothing
        assert_problem(client.get("/api/v1/reports/rpt_000000000000000000000000", headers=officer), 404)
        assert_problem(client.get(f"/api/v1/reports/{MARKER}%20x", headers=officer), 404)
        for suffix in ("pdf", "data.csv"):
            missing = client.get(
                f"/api/v1/reports/rpt_000000000000000000000000/{suffix}",
                params={"purpose": "p"},
                headers=officer,
            )
            assert_problem(missing, 404)
        assert_problem(client.get("/api/v1/reports", params={"before": f"{MARKER}!"}, headers=officer), 400)
        # a download purpose may name a person: a bad one is refused without being repeated
        for purpose in (MARKER * 100, f"{MARKER}\x1b[2J", " "):
            for suffix in ("pdf", "data.csv"):
                refused = client.get(
                    f"/api/v1/reports/rpt_000000000000000000000000/{suffix}",
                    params={"purpose": purpose},
                    headers=officer,
                )
                assert_problem(refused, 400)
                assert MARKER not in refused.text
        assert_problem(client.get("/api/v1/reports", params={"limit": 0}, headers=officer), 400)

        # verify: only a raw PDF, within the size limit; junk is answered (invalid), never an error
        as_json = client.post("/api/v1/reports/verify", json={"pdf": MARKER}, headers=officer)
        assert_problem(as_json, 400)
        empty = client.post(
            "/api/v1/reports/verify", content=b"", headers={**officer, "content-type": "application/pdf"}
        )
        assert_problem(empty, 400)
        junk = client.post(
            "/api/v1/reports/verify",
            content=b"%PDF-1.7\n" + MARKER.encode() * 100,
            headers={**server.auth(Role.ADMIN), "content-type": "application/pdf"},
        )
        assert junk.status_code == 200, junk.text
        assert junk.json()["valid"] is False
        assert MARKER not in junk.text
        too_big = client.post(
            "/api/v1/reports/verify",
            content=b"%PDF-1.7\n" + b"0" * (64 * 1024 * 1024),
            headers={**officer, "content-type": "application/pdf"},
        )
        assert_problem(too_big, 413)

    # nothing was queued by any of it
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        assert client.get("/api/v1/reports", headers=officer).json()["reports"] == []


def test_a_partial_report_is_asked_for_explicitly_and_listed_as_current(report_server: LiveServer) -> None:
    server = report_server
    officer = server.auth(Role.OFFICER)
    body = {"month": f"{datetime.now(UTC):%Y-%m}", "timezone": "UTC", "purpose": "month so far"}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        refused = assert_problem(client.post("/api/v1/reports", json=body, headers=officer), 400)
        assert refused["errors"] == [
            {
                "key": "month",
                "source": "body",
                "message": 'has not ended yet; send "partial": true for a report of the data so far',
            }
        ]
        assert client.get("/api/v1/reports", headers=officer).json()["reports"] == []
        queued = client.post("/api/v1/reports", json={**body, "partial": True}, headers=officer)
        assert queued.status_code == 202, queued.text
        assert (queued.json()["partial"], queued.json()["current"]) == (False, False)  # not made yet
        done = wait_until_finished(client, server, queued.headers["location"])
        assert done["status"] == "succeeded", done["error"]
        assert (done["partial"], done["current"]) == (True, True)
        assert datetime.fromisoformat(done["data_until"]) < datetime.fromisoformat(done["period"]["to"])
        (listed,) = client.get("/api/v1/reports", headers=officer).json()["reports"]
        assert (listed["id"], listed["partial"], listed["current"]) == (done["id"], True, True)
        pdf = client.get(done["links"]["pdf"], params={"purpose": "read"}, headers=officer)
        assert pdf.status_code == 200
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.pdf"
        path.write_bytes(pdf.content)
        text = subprocess.run(
            ["pdftotext", str(path), "-"], check=True, timeout=60, capture_output=True, text=True
        ).stdout
    assert "Partial period: data up to " in text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_denials_on_report_routes_are_recorded(live_server: LiveServer) -> None:
    server = live_server
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        assert_problem(client.get("/api/v1/reports"), 401)
        assert_problem(client.post("/api/v1/reports", json={}, headers=server.auth(Role.AUDITOR)), 403)
        dataset = "/api/v1/reports/rpt_000000000000000000000000/data.csv"
        assert_problem(client.get(dataset, params={"purpose": "p"}, headers=server.auth(Role.AUDITOR)), 403)
        assert_problem(client.get("/api/v1/reports", headers=server.auth(Role.ADMIN)), 403)
        denied = audit_records(client, server, action="access.denied")
    assert [(r["role"], r["details"]["http_status"], r["details"]["route"]) for r in denied] == [
        ("anonymous", 401, "/api/v1/reports"),
        ("auditor", 403, "/api/v1/reports"),
        ("auditor", 403, "/api/v1/reports/:report_id/data.csv"),
        ("admin", 403, "/api/v1/reports"),
    ]
    assert all(r["outcome"] == "denied" for r in denied)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_report_route_admits_exactly_its_roles(live_server: LiveServer) -> None:
    server = live_server
    unknown = "/api/v1/reports/rpt_000000000000000000000000"
    pdf_body = {"content": b"%PDF-1.7\n", "headers": {"content-type": "application/pdf"}}
    routes: list[tuple[str, str, dict[str, Any], set[Role]]] = [
        ("POST", "/api/v1/reports", {"json": {}}, {Role.OFFICER}),
        ("GET", "/api/v1/reports", {}, {Role.OFFICER, Role.AUDITOR}),
        ("GET", unknown, {}, {Role.OFFICER, Role.AUDITOR}),
        ("GET", f"{unknown}/pdf", {"params": {"purpose": "p"}}, {Role.OFFICER, Role.AUDITOR}),
        ("GET", f"{unknown}/data.csv", {"params": {"purpose": "p"}}, {Role.OFFICER}),
        ("POST", "/api/v1/reports/verify", pdf_body, set(ALL_ROLES)),  # people, not the metrics scraper
    ]
    wrong: list[str] = []
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for method, path, options, allowed in routes:
            extra_headers = options.get("headers", {})
            call = {k: v for k, v in options.items() if k != "headers"}
            anonymous = client.request(method, path, headers=extra_headers, **call)
            if anonymous.status_code != 401:
                wrong.append(f"{method} {path} without a key: {anonymous.status_code}")
            for role in Role:
                answer = client.request(method, path, headers={**extra_headers, **server.auth(role)}, **call)
                denied = answer.status_code == 403
                if denied == (role in allowed) or answer.status_code in (401, 500):
                    wrong.append(f"{method} {path} as {role.value}: {answer.status_code}")
    assert wrong == []


async def _make_jobs(settings: Settings) -> dict[str, ReportRecord]:
    """Three jobs another machine holds: running, failed, and succeeded without any stored file."""
    engine = create_engine_for(settings)
    try:
        jobs = ReportJobs(session_factory(engine), lease_seconds=3600)
        made: dict[str, ReportRecord] = {}
        for month, state in ((7, "running"), (8, "failed"), (9, "succeeded")):
            period = ReportPeriod.month(2026, month, "UTC")
            queued = await jobs.request(period=period, policy="default", purpose="setup", requested_by="cli")
            claimed = await jobs.claim(FOREIGN_RUNNER, report_id=queued.id)
            assert claimed is not None
            if state == "failed":
                await jobs.fail(
                    queued.id, FOREIGN_RUNNER, reason="the upstream refused the export (HTTP 403)"
                )
            if state == "succeeded":
                await jobs.succeed(
                    queued.id, FOREIGN_RUNNER, pdf_sha256="0" * 64, has_dataset=False, artifact_key_id="none"
                )
            record = await jobs.get(queued.id)
            assert record is not None
            made[state] = record
        return made
    finally:
        await engine.dispose()


def test_unfinished_failed_and_missing_files(migrated_settings: Settings) -> None:
    """409 while a job runs or after it failed; 404 for a dataset the policy did not give and for a PDF no
    longer stored. The jobs are made directly, held by a runner on another machine: the server leaves them."""
    made = asyncio.run(_make_jobs(migrated_settings))
    keys = issue_keys(migrated_settings)
    officer = {"Authorization": f"Bearer {keys[Role.OFFICER]}"}
    with run_server(create_app(migrated_settings)) as base_url, httpx.Client(base_url=base_url) as client:
        running = client.get(f"/api/v1/reports/{made['running'].id}", headers=officer).json()
        assert (running["status"], running["links"]["pdf"]) == ("running", None)
        for state in ("running", "failed"):
            for suffix in ("pdf", "data.csv"):
                response = client.get(
                    f"/api/v1/reports/{made[state].id}/{suffix}", params={"purpose": "p"}, headers=officer
                )
                body = assert_problem(response, 409)
                assert body["status"] == 409
                assert body["report_status"] == state  # the job's state reaches the client
                assert state in body["detail"]
        failed = client.get(f"/api/v1/reports/{made['failed'].id}", headers=officer).json()
        assert failed["error"] == "the upstream refused the export (HTTP 403)"
        done = made["succeeded"].id
        no_dataset = client.get(f"/api/v1/reports/{done}/data.csv", params={"purpose": "p"}, headers=officer)
        assert "per-person" in assert_problem(no_dataset, 404)["detail"]
        no_pdf = client.get(f"/api/v1/reports/{done}/pdf", params={"purpose": "p"}, headers=officer)
        assert_problem(no_pdf, 404)
        listing = client.get("/api/v1/reports", params={"limit": 2}, headers=officer).json()
        assert [r["id"] for r in listing["reports"]] == [made["succeeded"].id, made["failed"].id]
        rest = client.get(
            "/api/v1/reports", params={"limit": 2, "before": listing["next_before"]}, headers=officer
        ).json()
        assert [r["id"] for r in rest["reports"]] == [made["running"].id]
        assert rest["next_before"] is None


def test_periods_follow_the_zone_and_odeus_inclusive_ends(tmp_path: Path) -> None:
    settings = Settings.for_tests(tmp_path)
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)

    def parse(**body: Any) -> ReportPeriod:
        request = msgspec.json.decode(json.dumps({"purpose": " why ", **body}), type=ReportRequestIn)
        wanted = service.parse_request(request, settings=settings, now=now)
        assert wanted.purpose == "why"
        assert wanted.policy.name == body.get("policy", "default")
        return wanted.period

    october = parse(month="2026-10", timezone="Europe/Berlin")  # the clocks go back on 25 October
    assert october.local_start.isoformat() == "2026-10-01T00:00:00+02:00"
    assert october.local_end.isoformat() == "2026-11-01T00:00:00+01:00"
    # the current month has not ended: refused, naming the field, unless a partial report is asked for
    with pytest.raises(ValidationFailed, match="'month' has not ended yet") as refused:
        parse(month="2026-11", timezone="UTC")
    assert refused.value.extra["errors"][0]["key"] == "month"
    assert parse(month="2026-11", timezone="UTC", partial=True).end == datetime(2026, 12, 1, tzinfo=UTC)
    running = {
        "from": {"date": "2026-11-01", "timezone": "UTC"},
        "to": {"date": "2026-11-30T23:59:59.999Z", "timezone": "UTC"},
    }
    with pytest.raises(ValidationFailed, match="'to' has not ended yet"):
        parse(**running)
    assert parse(partial=True, **running).end == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse(month="2026-10", timezone="UTC", partial=True).end == datetime(2026, 11, 1, tzinfo=UTC)
    same = parse(
        **{
            "from": {"date": "2026-10-01T00:00:00.000Z", "timezone": "Europe/Berlin"},
            "to": {"date": "2026-10-31T23:59:59.999", "timezone": "Europe/Berlin"},
        }
    )
    assert same == october
    mixed = parse(
        policy="strict",
        timezone="UTC",
        **{
            "from": {"date": "2026-10-01", "timezone": "Asia/Tokyo"},
            "to": {"date": "2026-10-01T23:59:59.999Z", "timezone": "America/New_York"},
        },
    )
    assert (mixed.start, mixed.end) == (
        datetime(2026, 9, 30, 15, tzinfo=UTC),
        datetime(2026, 10, 2, 4, tzinfo=UTC),
    )
    assert mixed.timezone == "UTC"
    with pytest.raises(ValidationFailed, match="future"):
        parse(month="2026-12", timezone="UTC")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openapi_describes_every_report_operation(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url) as client:
        doc = client.get("/schema/openapi.json").json()
    paths = doc["paths"]
    expected = {
        ("post", "/api/v1/reports"): "requestReport",
        ("get", "/api/v1/reports"): "listReports",
        ("get", "/api/v1/reports/{report_id}"): "getReport",
        ("get", "/api/v1/reports/{report_id}/pdf"): "downloadReportPdf",
        ("get", "/api/v1/reports/{report_id}/data.csv"): "downloadReportDataset",
        ("post", "/api/v1/reports/verify"): "verifyReport",
    }
    for (method, path), operation_id in expected.items():
        operation = paths[path][method]
        assert operation["operationId"] == operation_id
        assert len(operation["description"]) > 100, operation_id
    for path in ("/api/v1/reports/{report_id}/pdf", "/api/v1/reports/{report_id}/data.csv"):
        operation = paths[path]["get"]
        assert "purpose" in operation["description"]
        (purpose,) = [p for p in operation["parameters"] if p["in"] == "query" and p["name"] == "purpose"]
        assert purpose["required"] is True
        assert {"404", "409", "503"} <= set(operation["responses"])
    request_body = paths["/api/v1/reports"]["post"]["requestBody"]["content"]["application/json"]
    assert request_body["schema"]
    upload = paths["/api/v1/reports/verify"]["post"]["requestBody"]
    assert upload["content"]["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    assert "202" in paths["/api/v1/reports"]["post"]["responses"]
    assert json.dumps(doc).count("requestReport") == 1
