"""``serve`` and ``demo --serve`` as real processes: the same server options and the same hardened answers.

Neither names its server software, neither trusts ``X-Forwarded-For`` (the audit log records the socket's
address), every response carries the security headers, and ``/schema`` offers the OpenAPI document only:
no browser UI that loads script from a CDN.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from tests.support.server import issue_keys

CLI = str(Path(sys.executable).with_name("odeus-compliance"))
SPOOFED = "203.0.113.77"
_UI_PATHS = ("/schema", "/schema/swagger", "/schema/redoc", "/schema/rapidoc", "/schema/elements")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(base: str, process: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited early"
        try:
            httpx.get(f"{base}/health/live", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not come up")


@contextmanager
def _running(command: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=60)
        if process.stdout is not None:
            process.stdout.close()


def _check_hardened(base: str, auditor_key: str) -> None:
    auditor = {"Authorization": f"Bearer {auditor_key}"}
    spoofing = {"X-Forwarded-For": SPOOFED, "X-Real-IP": SPOOFED, "Forwarded": f"for={SPOOFED}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        for response in (
            client.get("/health/live"),
            client.get("/api/v1/whoami"),  # 401
            client.get("/no/such/route"),  # 404 from routing
            client.get("/schema/openapi.json"),
        ):
            assert "server" not in response.headers, response.request.url
            policy = response.headers["content-security-policy"]
            assert "default-src 'none'" in policy
            assert "frame-ancestors 'none'" in policy
            assert response.headers["x-content-type-options"] == "nosniff"
        assert client.get("/schema/openapi.json").json()["openapi"].startswith("3.")
        for path in _UI_PATHS:  # no page that runs script, none that names another host to load from
            page = client.get(path)
            assert not page.headers.get("content-type", "").startswith("text/html"), path
            assert "<script" not in page.text.lower(), path
            assert "cdn." not in page.text, path
            assert "unpkg" not in page.text, path

        # the audit record of this read names the socket's address, never the header's
        read = client.get(
            "/api/v1/audit/checkpoint", params={"purpose": "xff check"}, headers=auditor | spoofing
        )
        assert read.status_code == 200, read.text
        entries = client.get(
            "/api/v1/audit/entries", params={"action": "audit.read", "limit": "1000"}, headers=auditor
        )
        assert entries.status_code == 200, entries.text
        assert SPOOFED not in entries.text
        records = [e["record"] for e in entries.json()["entries"] if e["record"] is not None]
        checkpoint_reads = [r for r in records if r["resource"] == "audit:checkpoint"]
        assert checkpoint_reads
        assert {r["client_address"] for r in checkpoint_reads} == {"127.0.0.1"}


def test_serve_is_hardened(migrated_settings: Settings, tmp_path: Path) -> None:
    keys = issue_keys(migrated_settings)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODEUS_")}
    env |= {
        "ODEUS_COMPLIANCE_MASTER_KEY": base64.b64encode(migrated_settings.require_master_key()).decode(),
        "ODEUS_API_KEY": "upstream-test-key",
        "ODEUS_COMPLIANCE_DATA_DIR": str(migrated_settings.data_dir),
        "ODEUS_COMPLIANCE_DATABASE_URL": migrated_settings.database_url,
    }
    with _running([CLI, "serve", "--port", str(port)], env, tmp_path) as process:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, process, 60)
        _check_hardened(base, keys[Role.AUDITOR])


def test_demo_serve_is_hardened_like_serve(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODEUS")}
    command = [CLI, "demo", "--out", str(tmp_path / "out"), "--users", "30", "--serve", "--port", str(port)]
    with _running(command, env, tmp_path) as process:
        assert process.stdout is not None
        keys: dict[str, str] = {}
        for line in process.stdout:
            fields = line.split()
            if len(fields) == 2 and fields[0] in {"officer", "auditor", "admin"} and fields[1][:3] == "oc_":
                keys[fields[0]] = fields[1]  # the API keys (the console's sign-in links come first)
            if len(keys) == 3:
                break
        assert "auditor" in keys, "demo --serve printed no keys"
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, process, 60)
        _check_hardened(base, keys["auditor"])
