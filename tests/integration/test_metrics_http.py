"""``GET /metrics`` over a real server on loopback, on SQLite and PostgreSQL: guarded like every route, valid
Prometheus text, and moving when a report runs against the built-in Odeus simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from odeus_compliance.upstream.simulator.server import RunningSimulator
from tests.support.prometheus import Exposition, parse_exposition
from tests.support.server import LiveServer, last_month, simulator_server

JOBS = "odeus_compliance_report_jobs_total"


@pytest.fixture
def served(migrated_settings: Settings) -> Iterator[tuple[LiveServer, RunningSimulator]]:
    with simulator_server(migrated_settings, users=40, seed=3) as served:
        yield served


def scrape(client: httpx.Client, server: LiveServer, role: Role = Role.METRICS) -> Exposition:
    response = client.get("/metrics", headers=server.auth(role))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse_exposition(response.text)


def test_metrics_move_when_a_report_runs(served: tuple[LiveServer, RunningSimulator]) -> None:
    server, sim = served
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        before = scrape(client, server)
        assert before.value(JOBS, outcome="succeeded") == 0
        assert before.value("odeus_compliance_report_jobs", status="queued") == 0
        entries_before = before.value("odeus_compliance_audit_log_entries")
        assert entries_before > 0  # issuing the keys was recorded
        assert client.get("/api/v1/reports").status_code == 401  # a refused request is counted
        sim.faults.fail_next(1, status=503)  # the export request is tried again once
        requested = client.post(
            "/api/v1/reports",
            json={"month": last_month(), "timezone": "UTC", "policy": "default", "purpose": "metrics test"},
            headers=server.auth(Role.OFFICER),
        )
        assert requested.status_code == 202, requested.text
        location = requested.headers["location"]
        deadline = time.monotonic() + 240
        while (status := client.get(location, headers=server.auth(Role.OFFICER)).json()["status"]) not in {
            "succeeded",
            "failed",
        }:
            assert time.monotonic() < deadline, "the report did not finish"
            time.sleep(0.2)
        assert status == "succeeded"
        after = scrape(client, server)
    assert after.value(JOBS, outcome="succeeded") == 1
    assert after.value("odeus_compliance_report_job_duration_seconds_count", outcome="succeeded") == 1
    for stage in ("policy", "audit", "fetch", "render"):
        assert (
            after.value("odeus_compliance_report_stage_duration_seconds_count", stage=stage, outcome="ok")
            == 1
        )
    # the job ended in its last stage, which is timed with the job's outcome
    assert (
        after.value(
            "odeus_compliance_report_stage_duration_seconds_count", stage="store", outcome="succeeded"
        )
        == 1
    )
    assert after.total("odeus_compliance_upstream_retries_total") >= 1
    assert after.total("odeus_compliance_upstream_errors_total") >= 1
    assert after.value("odeus_compliance_report_jobs", status="queued") == 0
    assert after.value("odeus_compliance_report_jobs", status="running") == 0
    assert after.value("odeus_compliance_audit_log_entries") > entries_before  # request, fetch, generated
    assert after.value("odeus_compliance_audit_append_duration_seconds_count", outcome="ok") >= 3
    assert after.value("odeus_compliance_access_denied_total", status="401", reason="no_key") >= 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_metrics_are_guarded_and_the_metrics_key_reads_nothing_else(live_server: LiveServer) -> None:
    server = live_server
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        anonymous = client.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"].startswith("application/problem+json")
        for role in (Role.OFFICER, Role.AUDITOR):
            assert client.get("/metrics", headers=server.auth(role)).status_code == 403, role
        scrape(client, server, Role.ADMIN)
        parsed = scrape(client, server, Role.METRICS)
        # the officer's and auditor's refusals above were counted as sign-in failures
        assert parsed.value("odeus_compliance_access_denied_total", status="403", reason="wrong_role") == 2
        assert parsed.value("odeus_compliance_access_denied_total", status="401", reason="no_key") == 1
        for path in ("/api/v1/whoami", "/api/v1/policies", "/api/v1/reports", "/api/v1/audit/entries"):
            assert client.get(path, headers=server.auth(Role.METRICS)).status_code == 403, path
    text = " ".join(f"{name} {dict(labels)}" for name, labels in parsed.samples)
    for key in server.keys.values():
        assert key not in text
