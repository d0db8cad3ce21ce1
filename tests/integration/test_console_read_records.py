"""Reads through the console are recorded as the API records them, also when a client sends htmx's header.

A page's own htmx refresh (every 2 s while a job runs) is not recorded each time; but ``HX-Request: true``
is a header any client can send, so a first htmx request for a page (no page view of it by this session
just before) must be recorded like a page view, or it would read the archive and a report's status without
a trace.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from odeus_compliance.security import Role
from tests.support.console_report import sign_in
from tests.support.server import LiveServer, last_month

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

HTMX = {"HX-Request": "true"}


def viewed(server: LiveServer, resource: str, person: str) -> list[dict[str, Any]]:
    """The ``report.viewed`` records of ``resource`` with ``person`` as the actor."""
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        answer = client.get(
            "/api/v1/audit/entries",
            params={"limit": 1000, "action": "report.viewed", "purpose": "test of console records"},
            headers=server.auth(Role.AUDITOR),
        )
    assert answer.status_code == 200, answer.text
    records = [entry["record"] for entry in answer.json()["entries"]]
    return [r for r in records if r["resource"] == resource and r["actor_name"] == person]


def test_an_htmx_header_does_not_skip_the_record_of_a_read(live_server: LiveServer) -> None:
    server = live_server
    with httpx.Client(base_url=server.base_url, timeout=60) as api:
        queued = api.post(
            "/api/v1/reports",
            json={"month": last_month(), "timezone": "UTC", "policy": "default", "purpose": "setup"},
            headers=server.auth(Role.OFFICER),
        )
    assert queued.status_code == 202, queued.text
    report_id = queued.json()["id"]
    with sign_in(server, "Hanna Header", "officer") as officer:
        # straight to the htmx answer, with no page view before it: recorded like the API's list
        table = officer.get("/console/reports", headers=HTMX)
        assert table.status_code == 200, table.text
        assert report_id in table.text
        assert len(viewed(server, "report:list", "Hanna Header")) == 1
        # the page's own refresh right after it is not recorded again
        assert officer.get("/console/reports", headers=HTMX).status_code == 200
        assert len(viewed(server, "report:list", "Hanna Header")) == 1
        # another page of the archive is another read
        assert officer.get("/console/reports", params={"before": report_id}, headers=HTMX).status_code == 200
        assert len(viewed(server, "report:list", "Hanna Header")) == 2

        status = officer.get(f"/console/reports/{report_id}", headers=HTMX)
        assert status.status_code == 200, status.text
        assert len(viewed(server, f"report:{report_id}", "Hanna Header")) == 1
        assert officer.get(f"/console/reports/{report_id}", headers=HTMX).status_code == 200
        assert len(viewed(server, f"report:{report_id}", "Hanna Header")) == 1

    # another session of another person is recorded on its own
    with sign_in(server, "Otto Other", "auditor") as auditor:
        assert auditor.get(f"/console/reports/{report_id}", headers=HTMX).status_code == 200
        assert len(viewed(server, f"report:{report_id}", "Otto Other")) == 1
