"""kill -9 during a burst of audited requests: afterwards the log verifies and every request that got a 2xx
has its record (matched by the request id the service returned in ``X-Request-ID``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

import httpx
import pytest

from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from tests.integration.test_audit_log import read_all
from tests.support.audit import CLI, cli, cli_env
from tests.support.server import issue_keys

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())  # ready: reports can be signed
    port = _free_port()
    process = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=cli_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail("the server did not start")


def test_kill_9_mid_burst_loses_no_acknowledged_record(migrated_settings: Settings) -> None:
    keys = issue_keys(migrated_settings)
    auditor = {"Authorization": f"Bearer {keys[Role.AUDITOR]}"}
    process, base_url = _serve(migrated_settings)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def burst() -> None:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.get("/api/v1/audit/entries", params={"limit": 1}, headers=auditor)
                except httpx.HTTPError:
                    return  # the server died
                if 200 <= response.status_code < 300:
                    with lock:
                        acknowledged.append(response.headers["x-request-id"])

    threads = [threading.Thread(target=burst) for _ in range(16)]
    for t in threads:
        t.start()
    # kill mid-burst once enough requests were acknowledged (on a loaded machine that takes a while)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if len(acknowledged) > 100:
                break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acknowledged) > 50

    result = cli(migrated_settings, "audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = {e.record["request_id"] for e in read_all(migrated_settings) if e.record}
    lost = [r for r in acknowledged if r not in recorded]
    assert not lost, f"{len(lost)} acknowledged requests have no record"

    # and the service restarts on the same log
    process, base_url = _serve(migrated_settings)
    try:
        response = httpx.get(f"{base_url}/api/v1/audit/verify", headers=auditor, timeout=60)
        assert response.status_code == 200
        assert response.json()["valid"] is True, response.json()
    finally:
        process.terminate()
        process.wait(timeout=30)
