"""The console's report archive, request form and cancel pages over a real server on loopback.

Jobs held by a runner on another machine (so this server leaves them as they are: one running, one failed,
one succeeded) are made before the server starts. Officers and auditors see the same reports and statuses
the API gives them; the request form is checked by the API's rules (400 with the message beside the field,
nothing queued) and a good request is recorded as ``report.requested`` with the officer's console actor id
and purpose; cancelling records ``report.cancelled``. Admins, other roles' forms, forms without the CSRF
token and browsers without a session are refused.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import httpx
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.console.bootstrap import issue_sign_in_links
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.reports.jobs import ReportJobs, ReportPeriod, ReportRecord
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from tests.support.server import LiveServer, issue_keys, last_month, run_server

FOREIGN_RUNNER: Final = "another-host.example:4242:abcd1234"
ROW: Final = re.compile(r'<tr id="row-(rpt_[A-Za-z0-9_-]+)" data-status="(\w+)">')
CSRF: Final = re.compile(r'name="csrf_token" value="([^"]+)"')
PURPOSE: Final = "works council review of October"


async def _make_jobs(settings: Settings) -> dict[str, ReportRecord]:
    """Three jobs another machine holds: running, failed and succeeded."""
    engine = create_engine_for(settings)
    try:
        jobs = ReportJobs(session_factory(engine), lease_seconds=3600)
        made: dict[str, ReportRecord] = {}
        for month, state in ((7, "running"), (8, "failed"), (9, "succeeded")):
            period = ReportPeriod.month(2026, month, "Europe/Berlin")
            queued = await jobs.request(period=period, policy="default", purpose="setup", requested_by="cli")
            assert await jobs.claim(FOREIGN_RUNNER, report_id=queued.id) is not None
            if state == "failed":
                await jobs.fail(queued.id, FOREIGN_RUNNER, reason="the upstream refused the export")
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


@pytest.fixture
def made(migrated_settings: Settings) -> dict[str, ReportRecord]:
    return asyncio.run(_make_jobs(migrated_settings))


@pytest.fixture
def server(migrated_settings: Settings, made: dict[str, ReportRecord]) -> Iterator[LiveServer]:
    keys = issue_keys(migrated_settings)
    with run_server(create_app(migrated_settings)) as base_url:
        yield LiveServer(base_url=base_url, settings=migrated_settings, keys=keys)


@contextmanager
def signed_in(server: LiveServer, name: str, role: str) -> Iterator[httpx.Client]:
    """A browser-like client with a console session for ``role`` (the link's cookie kept)."""
    (link,) = asyncio.run(
        issue_sign_in_links(server.settings, people=[(name, role)], minutes=15, base_url=server.base_url)
    )
    with httpx.Client(base_url=server.base_url) as client:
        answer = client.get(link)
        assert answer.status_code in (200, 303), answer.text
        assert client.cookies, "no session cookie"
        yield client


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match is not None
    return match[1]


def api_reports(server: LiveServer, role: Role, **params: Any) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.base_url}/api/v1/reports", params=params, headers=server.auth(role))
    assert answer.status_code == 200, answer.text
    reports: list[dict[str, Any]] = answer.json()["reports"]
    return reports


def audit_records(server: LiveServer, action: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{server.base_url}/api/v1/audit/entries",
        params={"limit": 1000, "action": action},
        headers=server.auth(Role.AUDITOR),
    )
    assert answer.status_code == 200, answer.text
    return [entry["record"] for entry in answer.json()["entries"]]


def assert_error_page(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "Traceback" not in answer.text


def test_officers_and_auditors_see_what_the_api_gives(
    server: LiveServer, made: dict[str, ReportRecord]
) -> None:
    for role, name in ((Role.OFFICER, "Olga Officer"), (Role.AUDITOR, "Anton Auditor")):
        with signed_in(server, name, role.value) as client:
            archive = client.get("/console/reports")
            assert archive.status_code == 200, archive.text
            rows = ROW.findall(archive.text)
            api = api_reports(server, role)
            assert rows == [(r["id"], r["status"]) for r in api]
            assert {status for _id, status in rows} == {"running", "failed", "succeeded"}
            # a running job on the page: the table polls itself; its period is shown in its zone
            assert 'hx-trigger="every 2s"' in archive.text
            assert "2026-07-01 00:00 +02:00" in archive.text
            assert "2026-07-31 23:59 +02:00" in archive.text
            assert f'href="/console/reports/{made["succeeded"].id}"' in archive.text
            officer = role is Role.OFFICER
            assert (f'href="/console/reports/{made["running"].id}/cancel"' in archive.text) is officer
            assert (
                "/console/reports/new?month=2026-09&amp;timezone=Europe%2FBerlin" in archive.text
            ) is officer
            # paging as the API pages
            older = client.get("/console/reports", params={"before": made["succeeded"].id})
            assert [i for i, _s in ROW.findall(older.text)] == [made["failed"].id, made["running"].id]
    viewed = [r for r in audit_records(server, "report.viewed") if r["resource"] == "report:list"]
    by_console = [r for r in viewed if r["actor_key_id"].startswith("console:link:lnk_")]
    by_key = [r for r in viewed if r not in by_console]
    assert {r["role"] for r in by_console} == {"officer", "auditor"}
    assert by_key  # the API's own reads, for comparison: the same record shape
    assert {tuple(sorted(r["details"])) for r in by_console} == {tuple(sorted(r["details"])) for r in by_key}
    assert {r["details"]["count"] for r in by_console} == {3, 2}  # the first page, then the older one

    with signed_in(server, "Ada Admin", "admin") as admin:
        assert_error_page(admin.get("/console/reports"), 403)
        assert_error_page(admin.get("/console/reports/new"), 403)
    with httpx.Client(base_url=server.base_url) as nobody:
        answer = nobody.get("/console/reports")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/sign-in")


BAD_FORMS: Final[list[tuple[str, dict[str, str], str, str]]] = [
    ("month malformed", {"month": "2026-13"}, "month", "must be YYYY-MM"),
    ("month in the future", {"month": "2999-01"}, "month", "must not be in the future"),
    ("unknown zone", {"timezone": "Mars/Olympus_Mons"}, "timezone", "is not a known IANA time zone"),
    ("unknown policy", {"policy": "no-such-policy"}, "policy", "must name a valid policy"),
    ("blank purpose", {"purpose": "   "}, "purpose", "required and not blank"),
]


def test_the_request_form_checks_like_the_api_and_records_the_request(server: LiveServer) -> None:
    before = {r["id"] for r in api_reports(server, Role.OFFICER)}
    with signed_in(server, "Olga Officer", "officer") as client:
        form = client.get("/console/reports/new", params={"month": "2026-09", "policy": "default"})
        assert form.status_code == 200
        assert 'type="month"' in form.text
        assert 'value="2026-09"' in form.text
        assert '<option value="default" selected>' in form.text
        token = csrf_of(form.text)
        good = {"csrf_token": token, "month": last_month(), "timezone": "Europe/Berlin", "policy": "default"}

        for label, change, field, message in BAD_FORMS:
            answer = client.post("/console/reports/new", data={**good, "purpose": PURPOSE, **change})
            assert answer.status_code == 400, label
            error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', answer.text)
            assert error is not None, (label, answer.text)
            assert message in error[1], label
            assert f'aria-describedby="{field}-error' in answer.text, label
            assert 'aria-invalid="true"' in answer.text
            if field != "purpose":
                assert PURPOSE in answer.text, label  # what was entered is kept
        # a blank purpose and a bad month together: both are shown
        both = client.post("/console/reports/new", data={**good, "purpose": "", "month": "2999-01"})
        assert both.status_code == 400
        assert 'id="purpose-error"' in both.text
        assert 'id="month-error"' in both.text

        no_token = {k: v for k, v in good.items() if k != "csrf_token"}
        assert_error_page(client.post("/console/reports/new", data={**no_token, "purpose": PURPOSE}), 403)
        assert {r["id"] for r in api_reports(server, Role.OFFICER)} == before  # nothing was queued

        answer = client.post("/console/reports/new", data={**good, "purpose": PURPOSE})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/console/reports"
        (new,) = [r for r in api_reports(server, Role.OFFICER) if r["id"] not in before]
        assert (new["policy"]["name"], new["period"]["timezone"]) == ("default", "Europe/Berlin")
        assert new["period"]["from"].startswith(f"{last_month()}-01T00:00:00")
        officer_actor = new["requested_by"]
        assert re.fullmatch(r"console:link:lnk_[A-Za-z0-9_-]+", officer_actor)
    (requested,) = [
        r for r in audit_records(server, "report.requested") if r["resource"] == f"report:{new['id']}"
    ]
    assert (requested["actor_key_id"], requested["role"], requested["purpose"]) == (
        officer_actor,
        "officer",
        PURPOSE,
    )
    assert requested["details"]["report_id"] == new["id"]

    with signed_in(server, "Anton Auditor", "auditor") as auditor:
        token = csrf_of(auditor.get("/console/reports").text)
        refused = auditor.post("/console/reports/new", data={**good, "csrf_token": token, "purpose": PURPOSE})
        assert_error_page(refused, 403)
    assert len(api_reports(server, Role.OFFICER)) == len(before) + 1


def test_an_officer_cancels_a_running_job(server: LiveServer, made: dict[str, ReportRecord]) -> None:
    running = made["running"].id
    with signed_in(server, "Olga Officer", "officer") as client:
        confirm = client.get(f"/console/reports/{running}/cancel")
        assert confirm.status_code == 200
        token = csrf_of(confirm.text)
        blank = client.post(f"/console/reports/{running}/cancel", data={"csrf_token": token, "purpose": " "})
        assert blank.status_code == 400
        assert 'id="purpose-error"' in blank.text
        assert_error_page(client.post(f"/console/reports/{running}/cancel", data={"purpose": PURPOSE}), 403)
        assert [r["status"] for r in api_reports(server, Role.OFFICER) if r["id"] == running] == ["running"]

        done = client.post(
            f"/console/reports/{running}/cancel", data={"csrf_token": token, "purpose": PURPOSE}
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/console/reports"
        (after,) = [r for r in api_reports(server, Role.OFFICER) if r["id"] == running]
        assert (after["status"], after["stage"]) == ("failed", "cancelled")
        again = client.post(
            f"/console/reports/{running}/cancel", data={"csrf_token": token, "purpose": PURPOSE}
        )
        assert_error_page(again, 409)
        assert "already ended" in again.text
        assert_error_page(client.get(f"/console/reports/{made['succeeded'].id}/cancel"), 409)
        assert_error_page(client.get("/console/reports/rpt_nosuchreport/cancel"), 404)
        # the archive polls no longer: nothing on it is queued or running
        assert 'hx-trigger="every 2s"' not in client.get("/console/reports").text
    (record,) = [r for r in audit_records(server, "report.cancelled") if r["outcome"] == "success"]
    assert (record["resource"], record["role"], record["purpose"]) == (
        f"report:{running}",
        "officer",
        PURPOSE,
    )
    assert record["actor_key_id"].startswith("console:link:lnk_")
    assert record["details"] == {"report_id": running, "status": "running"}
    with signed_in(server, "Anton Auditor", "auditor") as auditor:
        assert_error_page(auditor.get(f"/console/reports/{running}/cancel"), 403)
