"""Many officers request the same month at once: every request gets its own, consecutive version.

A real server on loopback, 50 requests in parallel (asyncio + httpx), on SQLite and PostgreSQL. The version
of a period is allocated in one write that cannot collide (an advisory lock on PostgreSQL, a single
``INSERT ... (SELECT max(version))`` under SQLite's write lock), retried with backoff for a while and only
then answered with 503 and ``Retry-After``, never a 500. Every ``report.requested`` record names a report
that exists, or is followed by a failure record for the same id.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from tests.support.server import LiveServer, issue_keys, run_server

PARALLEL: Final = 50
MONTH: Final = "2026-10"


@pytest.fixture
def offline_server(migrated_settings: Settings) -> Iterator[LiveServer]:
    """The service with no upstream key: its jobs run (and fail at the fetch) without leaving loopback."""
    settings = dataclasses.replace(migrated_settings, odeus_api_key=None)
    keys = issue_keys(settings)
    with run_server(create_app(settings)) as base_url:
        yield LiveServer(base_url=base_url, settings=settings, keys=keys)


async def _request_all(server: LiveServer) -> list[httpx.Response]:
    body = {"month": MONTH, "timezone": "Europe/Berlin", "policy": "default", "purpose": "contention check"}
    limits = httpx.Limits(max_connections=PARALLEL)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post("/api/v1/reports", json=body, headers=server.auth(Role.OFFICER))
                for _ in range(PARALLEL)
            )
        )


def _records(client: httpx.Client, server: LiveServer, action: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = -1
    while True:
        page = client.get(
            "/api/v1/audit/entries",
            params={"action": action, "after": after, "limit": 500, "purpose": "contention check"},
            headers=server.auth(Role.AUDITOR),
        )
        assert page.status_code == 200, page.text
        body = page.json()
        out += [entry["record"] for entry in body["entries"]]
        if body["next_after"] is None:
            return out
        after = body["next_after"]


def test_parallel_requests_for_one_month_get_consecutive_versions(
    offline_server: LiveServer,
) -> None:
    server = offline_server
    answers = asyncio.run(_request_all(server))

    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {202, 503}, statuses
    for answer in answers:
        if answer.status_code == 503:  # allowed only as a problem document that says when to retry
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert int(answer.headers["retry-after"]) > 0
    created = [answer.json() for answer in answers if answer.status_code == 202]
    assert created

    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        jobs = sorted(
            (
                client.get(f"/api/v1/reports/{job['id']}", headers=server.auth(Role.OFFICER)).json()
                for job in created
            ),
            key=lambda job: job["version"],
        )
        assert [job["version"] for job in jobs] == list(range(1, len(created) + 1))  # distinct, consecutive
        # each version names the one before it as the version it supersedes
        assert [job["supersedes"] for job in jobs] == [None, *(job["id"] for job in jobs[:-1])]

        listed = client.get("/api/v1/reports", params={"limit": 200}, headers=server.auth(Role.AUDITOR))
        existing = {report["id"] for report in listed.json()["reports"]}
        assert existing == {job["id"] for job in created}

        requested = _records(client, server, "report.requested")
    failed = {r["details"]["report_id"] for r in requested if r["outcome"] == "failure"}
    named = {r["details"]["report_id"] for r in requested if r["outcome"] == "success"}
    assert len([r for r in requested if r["outcome"] == "success"]) == PARALLEL
    assert named - failed == existing  # no record names a report that was never made without saying so
    assert len(failed) == statuses.count(503)
