"""Two ``odeus-compliance serve`` replicas on one PostgreSQL database behind one address: the deployment of
``deploy/compose.yaml``, without containers.

After ``odeus-compliance init`` (as the compose file's ``init`` service runs it), each replica is a real
process on its own loopback port with its own data dir (on PostgreSQL the data dir holds only scratch work
copies: reports, the key ring, schedules and the audit log are in the database); they share the database,
the master key and the report-signing key and certificate. A small round-robin proxy
(tests/support/proxy.py) stands in for Caddy. Through it an officer requests a report; the signed PDF is
downloaded from the other replica's own port and verified; a schedule due now runs exactly once for its
period although both replicas tick every second; and the audit log both replicas wrote to verifies, over
HTTP while they run and with ``audit verify`` after they stopped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator
from tests.support.audit import CLI, cli_env, sql
from tests.support.proxy import run_proxy
from tests.support.server import issue_keys
from tests.support.tsa import make_test_pki

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
    pytest.mark.timeout(1200),  # two services, two reports and a scheduler on a small, shared machine
]

REPLICAS = 2
MONTH = "2026-10"
PURPOSE = "works council, replicas"
WAIT_SECONDS = 600.0
"""Only so that a broken replica cannot hang the run: every wait polls for its condition."""


@dataclass
class Replica:
    """A running ``serve`` process: where it listens and where its log goes."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text("utf-8", "replace")[-3000:]


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=40, seed=14)) as running:
        yield running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _shared_env(settings: Settings, sim: RunningSimulator, folder: Path) -> dict[str, str]:
    """What every replica gets alike: database, master key, upstream, signing key and certificate, trust
    anchors; and a scheduler tick of one second, so that both replicas race for every due period."""
    folder.mkdir()
    pki = make_test_pki("Replicas")
    key_file, cert_file = pki.signer.write_pem(folder, "signer", chain=(pki.root.certificate,))
    anchors = folder / "anchors.pem"
    anchors.write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.PEM))
    return {
        **cli_env(settings),
        "ODEUS_API_KEY": sim.api_key,
        "ODEUS_BASE_URL": sim.base_url,
        "ODEUS_COMPLIANCE_DOWNLOAD_HOSTS": sim.download_host,
        "ODEUS_COMPLIANCE_SIGNING_KEY_FILE": str(key_file),
        "ODEUS_COMPLIANCE_SIGNING_CERT_FILE": str(cert_file),
        "ODEUS_COMPLIANCE_TRUST_ANCHORS_FILE": str(anchors),
        "ODEUS_COMPLIANCE_SCHEDULE_TICK_SECONDS": "1",
    }


def _start(env: dict[str, str], folder: Path) -> Replica:
    folder.mkdir()
    port = _free_port()
    log = folder / "serve.log"
    with log.open("wb") as sink:  # a file, not a pipe: a pipe nobody reads would stall a chatty replica
        process = subprocess.Popen(
            [CLI, "serve", "--port", str(port)],
            env={**env, "ODEUS_COMPLIANCE_DATA_DIR": str(folder / "data")},
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,  # its own process group: stopping it stops its report worker too
        )
    return Replica(url=f"http://127.0.0.1:{port}", process=process, log=log)


def _stop(replicas: list[Replica]) -> list[int]:
    for replica in replicas:
        if replica.process.poll() is None:
            os.killpg(replica.process.pid, signal.SIGTERM)
    codes = []
    for replica in replicas:
        try:
            codes.append(replica.process.wait(timeout=60))
        except subprocess.TimeoutExpired:
            os.killpg(replica.process.pid, signal.SIGKILL)
            codes.append(replica.process.wait(timeout=30))
    return codes


def _wait_ready(replicas: list[Replica]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    waiting = list(replicas)
    while waiting:
        for replica in list(waiting):
            assert replica.process.poll() is None, replica.log_tail()
            try:
                if httpx.get(replica.url + "/health/ready", timeout=5).status_code == 200:
                    waiting.remove(replica)
            except httpx.TransportError:
                pass  # not listening yet
        assert time.monotonic() < deadline, [r.log_tail() for r in waiting]
        time.sleep(0.2)


@pytest.fixture
def replicas(
    migrated_settings: Settings, sim: RunningSimulator, tmp_path: Path
) -> Iterator[tuple[list[Replica], dict[str, str]]]:
    """The first start of deploy/compose.yaml: ``init`` once (key ring, trial signature), then both
    replicas at once, each ready; stopped afterwards."""
    env = _shared_env(migrated_settings, sim, tmp_path / "shared")
    init = subprocess.run([CLI, "init"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert init.returncode == 0, init.stderr[-2000:]
    started = [_start(env, tmp_path / f"replica-{n}") for n in range(REPLICAS)]
    try:
        _wait_ready(started)
        yield started, env
    finally:
        _stop(started)


def _due_time() -> dt.datetime:
    """06:00 Berlin time on the 1st of this month: when last month's report fell due (already past)."""
    first = dt.datetime.now(dt.UTC).date().replace(day=1)
    return dt.datetime.combine(first, dt.time(6, 0), ZoneInfo("Europe/Berlin")).astimezone(dt.UTC)


def _poll(check: Any, what: str, replicas: list[Replica]) -> Any:
    """Call ``check`` until it returns something truthy; the replicas must stay up meanwhile."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = check()
        if found:
            return found
        for replica in replicas:
            assert replica.process.poll() is None, replica.log_tail()
        assert time.monotonic() < deadline, f"{what}: gave up waiting"
        time.sleep(0.5)


def test_two_replicas_behind_one_address(
    migrated_settings: Settings, replicas: tuple[list[Replica], dict[str, str]]
) -> None:
    started, env = replicas
    keys = issue_keys(migrated_settings)  # the key ring the replicas made signs their records
    officer = {"Authorization": f"Bearer {keys[Role.OFFICER]}"}
    auditor = {"Authorization": f"Bearer {keys[Role.AUDITOR]}"}
    admin = {"Authorization": f"Bearer {keys[Role.ADMIN]}"}

    with (
        run_proxy([r.url for r in started]) as (proxy_url, proxy),
        httpx.Client(base_url=proxy_url, timeout=300) as client,
    ):
        # an officer's report, requested through the one address
        requested = client.post(
            "/api/v1/reports",
            json={"month": MONTH, "timezone": "Europe/Berlin", "policy": "default", "purpose": PURPOSE},
            headers=officer,
        )
        assert requested.status_code == 202, requested.text
        accepted_by = proxy.served()[-1][2]
        location = requested.headers["location"]

        def finished() -> dict[str, Any] | None:
            status = client.get(location, headers=officer)  # alternates: both replicas see the job
            assert status.status_code == 200, status.text
            body: dict[str, Any] = status.json()
            return body if body["status"] in {"succeeded", "failed"} else None

        done = _poll(finished, "the requested report", started)
        assert done["status"] == "succeeded", done

        # downloaded from the other replica, on its own port: the archive is the database, not a data dir
        other = started[1 - accepted_by]
        pdf = httpx.get(
            other.url + done["links"]["pdf"], params={"purpose": PURPOSE}, headers=auditor, timeout=300
        )
        assert pdf.status_code == 200, pdf.text
        assert hashlib.sha256(pdf.content).hexdigest() == done["pdf_sha256"]
        verified = client.post(
            "/api/v1/reports/verify",
            content=pdf.content,
            headers={**auditor, "content-type": "application/pdf"},
        )
        assert verified.status_code == 200, verified.text
        assert verified.json()["valid"] is True, verified.json()

        # a schedule whose last period is already due: both replicas tick every second, one run is made
        due = _due_time()
        created = client.put(
            "/api/v1/schedules",
            json={
                "name": "monthly",
                "every": "month",
                "day": 1,
                "time": "06:00",
                "timezone": "Europe/Berlin",
                "policy": "default",
                "active_from": (due - dt.timedelta(days=1)).isoformat(),
            },
            headers=admin,
        )
        assert created.status_code == 200, created.text
        schedule_id = created.json()["id"]

        def runs() -> list[dict[str, Any]]:
            listed = client.get(f"/api/v1/schedules/{schedule_id}/runs", headers=officer)
            assert listed.status_code == 200, listed.text
            found: list[dict[str, Any]] = listed.json()["runs"]
            return found

        def run_finished() -> list[dict[str, Any]]:
            found = runs()
            return found if found and found[0]["status"] in {"succeeded", "failed"} else []

        (run,) = _poll(run_finished, "the scheduled run", started)
        assert (run["status"], run["attempts"], run["version"]) == ("succeeded", 1, 1), run
        # more ticks of both replicas, and a third process looking too: the period has had its run
        time.sleep(3)
        looked = subprocess.run(
            [CLI, "schedule", "run-due"], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert (looked.returncode, looked.stdout) == (0, ""), looked.stderr[-2000:]
        assert [(r["id"], r["status"]) for r in runs()] == [(run["id"], "succeeded")]
        [scheduled_reports] = sql(
            migrated_settings,
            [("SELECT id FROM reports WHERE requested_by = :by", {"by": f"schedule:{schedule_id}"})],
        )
        assert scheduled_reports == [(run["report_id"],)]

        # the one audit log both replicas appended to verifies, and holds the request and the download
        verdict = client.get("/api/v1/audit/verify", headers=auditor)
        assert verdict.status_code == 200, verdict.text
        assert (verdict.json()["valid"], verdict.json()["problems"]) == (True, []), verdict.json()
        entries = client.get(
            "/api/v1/audit/entries",
            params={"resource": f"report:{done['id']}", "limit": 1000},
            headers=auditor,
        )
        assert entries.status_code == 200, entries.text
        actions = {e["record"]["action"] for e in entries.json()["entries"]}
        assert {"report.requested", "report.downloaded", "report.verified"} <= actions, actions
        assert {index for _method, _path, index in proxy.served()} == set(range(REPLICAS))

    # a clean stop: uvicorn finishes its shutdown, then ends by the signal it was sent (as under tini)
    assert set(_stop(started)) <= {0, -signal.SIGTERM}, [r.log_tail() for r in started]
    assert all("Finished server process" in r.log_tail() for r in started), [r.log_tail() for r in started]
    # and offline, with both replicas stopped: the whole stored log, every record decrypted
    offline = subprocess.run(
        [CLI, "audit", "verify"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout.splitlines()[0] == "valid", offline.stdout
