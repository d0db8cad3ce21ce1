"""A stuck upstream holds up one job only: deadline, minimum throughput, bounded concurrency and cancel.

The service runs on loopback against a hostile Odeus in front of the built-in simulator: the hostile server
passes the API calls through, and serves the export file itself, from its own origin, either at once or
dripped a few bytes at a time (never a gap long enough for the client's 60 s read timeout). Which months
drip is decided per test. Everything is real HTTP; no assertion depends on how long anything took.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.reports.jobs import ReportJobs, ReportPeriod
from odeus_compliance.security import Role
from odeus_compliance.settings import Secret, Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator
from tests.support.audit import cli
from tests.support.server import LiveServer, issue_keys, run_server

PURPOSE: Final = "stuck upstream check"


def _months_back(count: int) -> str:
    today = datetime.now(UTC).date()
    index = today.year * 12 + today.month - 1 - count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


STUCK: Final = _months_back(1)
"""The month whose export drips."""
FAST: Final = _months_back(2)
"""A month whose export comes at once."""


class HostileUpstream:
    """Odeus's API passed through to the simulator; export files served from here, dripped for some months."""

    def __init__(self, sim: RunningSimulator, *, drip_months: set[str], drip_bytes: int, drip_seconds: float):
        self.sim = sim
        self.drip_months = drip_months
        self.drip_bytes = drip_bytes
        self.drip_seconds = drip_seconds
        self.stop = threading.Event()
        self.dripping = 0  # downloads currently dripping
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                return

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                forwarded = {
                    k: self.headers[k]
                    for k in ("Authorization", "Content-Type", "Accept")
                    if k in self.headers
                }
                answer = httpx.post(
                    upstream.sim.base_url + self.path, content=body, headers=forwarded, timeout=60
                )
                payload = answer.content
                if answer.status_code == 200:
                    document = answer.json()
                    original = document["data"].get("downloadUrl")
                    if original is not None:
                        wanted = json.loads(body)["from"]["date"][:7]
                        slow = int(wanted in upstream.drip_months)
                        document["data"]["downloadUrl"] = (
                            f"{upstream.base_url}/files/export.csv?slow={slow}&u={quote(original, safe='')}"
                        )
                    payload = json.dumps(document).encode()
                self._send(
                    answer.status_code, payload, answer.headers.get("content-type", "application/json")
                )

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                data = httpx.get(query["u"][0], timeout=60).content
                if query["slow"][0] != "1":
                    self._send(200, data, "text/csv")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with upstream._lock:
                    upstream.dripping += 1
                try:
                    for offset in range(0, len(data), upstream.drip_bytes):
                        if upstream.stop.wait(upstream.drip_seconds):
                            return
                        self.wfile.write(data[offset : offset + upstream.drip_bytes])
                        self.wfile.flush()
                except OSError:
                    return  # the client gave up (deadline, throughput, cancel)
                finally:
                    with upstream._lock:
                        upstream.dripping -= 1

        return Handler

    def __enter__(self) -> HostileUpstream:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=40, seed=5)) as running:
        yield running


@contextmanager
def _serve(migrated_settings: Settings, upstream: HostileUpstream, **limits: Any) -> Iterator[LiveServer]:
    port = urlsplit(upstream.base_url).port
    settings = dataclasses.replace(
        migrated_settings,
        odeus_base_url=upstream.base_url,
        odeus_api_key=Secret(upstream.sim.api_key),
        download_hosts=frozenset({"127.0.0.1", f"127.0.0.1:{port}"}),
        report_lease_seconds=3.0,  # renewed every second: a job cancelled elsewhere stops within a second
        **limits,
    )
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    keys = issue_keys(settings)
    with run_server(create_app(settings)) as base_url:
        yield LiveServer(base_url=base_url, settings=settings, keys=keys)


def _request(client: httpx.Client, server: LiveServer, month: str) -> str:
    body = {"month": month, "timezone": "UTC", "policy": "default", "purpose": PURPOSE}
    answer = client.post("/api/v1/reports", json=body, headers=server.auth(Role.OFFICER))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _status(client: httpx.Client, server: LiveServer, report_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/reports/{report_id}", headers=server.auth(Role.OFFICER))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _wait(
    client: httpx.Client, server: LiveServer, report_id: str, until: set[str], stage: str | None = None
) -> dict[str, Any]:
    """Poll until the job's status is in ``until`` (and at ``stage``); a deadline only so CI cannot hang."""
    deadline = time.monotonic() + 240
    while True:
        body = _status(client, server, report_id)
        if body["status"] in until and (stage is None or body["stage"] == stage):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_dripping_download_fails_the_job_on_the_minimum_throughput(
    migrated_settings: Settings, sim: RunningSimulator
) -> None:
    limits = {"fetch_min_bytes_per_second": 4096.0, "fetch_throughput_window_seconds": 1.0}
    with (  # about 160 bytes/s where 4 KiB/s over 1 s are required
        HostileUpstream(sim, drip_months={STUCK}, drip_bytes=8, drip_seconds=0.05) as upstream,
        _serve(migrated_settings, upstream, **limits) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        done = _wait(client, server, _request(client, server, STUCK), {"succeeded", "failed"})
    assert done["status"] == "failed"
    assert "ODEUS_COMPLIANCE_FETCH_MIN_BYTES_PER_SECOND" in done["error"], done["error"]


def test_a_dripping_download_fails_the_job_at_the_fetch_deadline(
    migrated_settings: Settings, sim: RunningSimulator
) -> None:
    limits = {
        "fetch_deadline_seconds": 2.0,
        "fetch_min_bytes_per_second": 1.0,
        "fetch_throughput_window_seconds": 3600.0,
    }
    with (
        HostileUpstream(sim, drip_months={STUCK}, drip_bytes=8, drip_seconds=0.05) as upstream,
        _serve(migrated_settings, upstream, **limits) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        done = _wait(client, server, _request(client, server, STUCK), {"succeeded", "failed"})
    assert done["status"] == "failed"
    assert "ODEUS_COMPLIANCE_FETCH_DEADLINE_SECONDS" in done["error"], done["error"]


def _work_left(settings: Settings, report_id: str) -> bool:
    return (settings.data_dir / "report-work" / report_id).exists()


def _audit(client: httpx.Client, server: LiveServer, action: str) -> list[dict[str, Any]]:
    answer = client.get(
        "/api/v1/audit/entries",
        params={"action": action, "limit": 500, "purpose": PURPOSE},
        headers=server.auth(Role.AUDITOR),
    )
    assert answer.status_code == 200, answer.text
    return [entry["record"] for entry in answer.json()["entries"]]


def test_stuck_jobs_hold_one_slot_each_and_an_officer_cancels_them(
    migrated_settings: Settings, sim: RunningSimulator
) -> None:
    # drips for hours (a few bytes every 0.2 s), within every default bound but the deadline
    with (
        HostileUpstream(sim, drip_months={STUCK}, drip_bytes=4, drip_seconds=0.2) as upstream,
        _serve(migrated_settings, upstream, report_concurrency=2) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        settings = server.settings
        stuck = _request(client, server, STUCK)
        _wait(client, server, stuck, {"running"}, stage="fetch")
        _wait_for(lambda: upstream.dripping == 1, "the first download drips")

        # the other slot: a second job completes while the first is stuck
        fast = _request(client, server, FAST)
        assert _wait(client, server, fast, {"succeeded", "failed"})["status"] == "succeeded"
        assert _status(client, server, stuck)["status"] == "running"

        # both slots stuck; a third job waits until an officer cancels one of them
        stuck_too = _request(client, server, STUCK)
        _wait(client, server, stuck_too, {"running"}, stage="fetch")
        _wait_for(lambda: upstream.dripping == 2, "both downloads drip")
        waiting = _request(client, server, FAST)
        for role in (Role.AUDITOR, Role.ADMIN):
            denied = client.post(
                f"/api/v1/reports/{stuck}/cancel",
                json={"purpose": PURPOSE},
                headers=server.auth(role),
            )
            assert denied.status_code == 403, denied.text
        no_purpose = client.post(
            f"/api/v1/reports/{stuck}/cancel", json={}, headers=server.auth(Role.OFFICER)
        )
        assert no_purpose.status_code == 400, no_purpose.text

        cancelled = client.post(
            f"/api/v1/reports/{stuck}/cancel",
            json={"purpose": PURPOSE},
            headers=server.auth(Role.OFFICER),
        )
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["status"], cancelled.json()["stage"]) == ("failed", "cancelled")
        # its slot is free: the waiting job runs and completes while the other stuck job still drips
        assert _wait(client, server, waiting, {"succeeded", "failed"})["status"] == "succeeded"
        assert _status(client, server, stuck_too)["status"] == "running"
        _wait_for(lambda: not _work_left(settings, stuck), "the cancelled job's work folder is removed")
        assert not (settings.data_dir / "reports" / stuck).exists()  # nothing stored

        # the other one from the command line (another process): the service stops it at its
        # next lease renewal
        from_cli = cli(settings, "report", "cancel", stuck_too, "--purpose", PURPOSE)
        assert from_cli.returncode == 0, from_cli.stderr
        _wait_for(lambda: upstream.dripping == 0, "the service stops the job cancelled elsewhere")
        _wait_for(lambda: not _work_left(settings, stuck_too), "its work folder is removed")
        final = _status(client, server, stuck_too)
        assert (final["status"], final["stage"]) == ("failed", "cancelled")

        # an ended job cannot be cancelled: 409, over HTTP and on the command line
        for ended in (fast, stuck):
            again = client.post(
                f"/api/v1/reports/{ended}/cancel",
                params={"purpose": PURPOSE},
                headers=server.auth(Role.OFFICER),
            )
            assert again.status_code == 409, again.text
            assert again.headers["content-type"].startswith("application/problem+json")
        assert cli(settings, "report", "cancel", fast, "--purpose", PURPOSE).returncode == 1

        records = _audit(client, server, "report.cancelled")
    by_report = {(r["details"]["report_id"], r["outcome"]): r for r in records}
    http = by_report[(stuck, "success")]
    assert http["purpose"] == PURPOSE
    assert http["role"] == "officer"
    assert http["details"] == {"report_id": stuck, "status": "running"}
    assert by_report[(stuck_too, "success")]["actor_key_id"].startswith("system:")
    assert len(records) == 2  # a refused or conflicting cancel changes nothing and records nothing


def test_a_queued_job_is_cancelled_from_the_command_line(migrated_settings: Settings) -> None:
    async def queue() -> str:
        engine = create_engine_for(migrated_settings)
        try:
            record = await ReportJobs(session_factory(engine)).request(
                period=ReportPeriod.month(2026, 10, "UTC"),
                policy="default",
                purpose=PURPOSE,
                requested_by="t",
            )
            return record.id
        finally:
            await engine.dispose()

    async def read(report_id: str) -> Any:
        engine = create_engine_for(migrated_settings)
        try:
            return await ReportJobs(session_factory(engine)).get(report_id)
        finally:
            await engine.dispose()

    report_id = asyncio.run(queue())
    done = cli(migrated_settings, "report", "cancel", report_id, "--purpose", PURPOSE)
    assert done.returncode == 0, done.stderr
    record = asyncio.run(read(report_id))
    assert record.cancelled
    assert record.error
    again = cli(migrated_settings, "report", "cancel", report_id, "--purpose", PURPOSE)
    assert again.returncode == 1
    assert "already ended" in again.stderr
    unknown = cli(migrated_settings, "report", "cancel", "rpt_000000000000000000000000", "--purpose", PURPOSE)
    assert unknown.returncode == 1
