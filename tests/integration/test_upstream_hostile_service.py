"""The whole service against a hostile Odeus: what the upstream's answers may not do to it.

The service runs for real (uvicorn on loopback, SQLite, the report runner in its lifespan) and pulls from a
raw HTTP server of ours that writes whatever a test asks for: an error body full of personal data and
terminal escapes, an export-call answer of hundreds of megabytes, an export file larger than the configured
maximum. Officers request reports over the API; each job must fail cleanly with a reason in the service's
own words, and:

- no byte of the upstream's error text reaches the job's ``error`` (read over the API), a log line (the JSON
  lines ``serve`` writes, captured) or a file under the data dir (the SQLite database, its WAL, artifacts);
- the service's memory does not grow with the size of what the upstream sends. The service runs in this
  test's process, so its peak RSS is the process's ``VmHWM``, reset (``/proc/self/clear_refs``) before
  the request; the bodies are generated lazily by the server, never held by the test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from odeus_compliance.app import create_app
from odeus_compliance.db.migrate import upgrade
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.security import Role
from odeus_compliance.settings import Secret, Settings
from tests.support.logs import captured_json_logs
from tests.support.server import LiveServer, issue_keys, run_server

EMAIL: Final = "jane.doe@example.com"
MiB: Final = 1 << 20
HUGE: Final = 1024 * MiB
"""What the hostile upstream sends where it sends "a lot": generated lazily as it is read, never held."""
GROWTH_LIMIT: Final = 256 * MiB
"""How much the service's peak RSS may grow meanwhile (a first report job imports the policy engine)."""

Respond = Callable[[str, str, str], Iterable[bytes]]
"""(method, path, the server's own origin) -> the raw HTTP answer, in pieces."""


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} Status", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(status: int, body: bytes, content_type: str = "application/json") -> list[bytes]:
    return [head(status, {"Content-Type": content_type, "Content-Length": str(len(body))}), body]


def envelope(download_url: str, record_count: int) -> bytes:
    data = {
        "filePath": "users-usage/ws/users-usage-abcd1234.csv",
        "downloadUrl": download_url,
        "dataType": "users",
        "recordCount": record_count,
        "dateRange": {"from": "2026-01-01T00:00:00.000Z", "to": "2026-01-31T23:59:59.999Z"},
    }
    return json.dumps({"success": True, "data": data}).encode()


@contextmanager
def hostile_upstream(respond: Respond) -> Iterator[str]:
    """A threaded raw HTTP server on loopback answering ``respond``; yields its origin."""
    origin: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.close_connection = True
            try:
                for piece in respond(self.command, self.path, origin[0]):
                    self.wfile.write(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the service stopped reading: what a refusing client does

        do_GET = do_POST = _any  # noqa: N815 - BaseHTTPRequestHandler's naming

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    origin.append(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield origin[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def service_against(tmp_path: Path, upstream: str, **changes: Any) -> Iterator[LiveServer]:
    """The service on SQLite in ``tmp_path/data``, pulling from ``upstream``, with logs captured."""
    settings = dataclasses.replace(
        Settings.for_tests(tmp_path / "data"),
        odeus_base_url=upstream,
        odeus_api_key=Secret("sk-hostile-test"),
        **changes,
    )
    asyncio.run(upgrade(settings))
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    keys = issue_keys(settings)
    with run_server(create_app(settings)) as base_url:
        yield LiveServer(base_url=base_url, settings=settings, keys=keys)


def failed_report(server: LiveServer) -> dict[str, Any]:
    """Request last month's report as an officer and wait for it to end; it must have failed."""
    today = datetime.now(UTC).date()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        requested = client.post(
            "/api/v1/reports",
            json={"month": f"{year:04d}-{month:02d}", "timezone": "UTC", "policy": "default", "purpose": "t"},
            headers=server.auth(Role.OFFICER),
        )
        assert requested.status_code == 202, requested.text
        deadline = time.monotonic() + 180  # only so that a broken job cannot hang CI
        while True:
            body: dict[str, Any] = client.get(
                requested.headers["location"], headers=server.auth(Role.OFFICER)
            ).json()
            if body["status"] in {"succeeded", "failed"}:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
    assert body["status"] == "failed", body
    assert isinstance(body["error"], str)
    return body


def files_under(folder: Path) -> Iterator[tuple[Path, bytes]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield path, path.read_bytes()


def reset_peak_rss() -> int:
    """Reset this process's peak RSS to its current RSS; returns that, in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kib("VmHWM") * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


# ---- item: the upstream's error text is never kept --------------------------------------------------

HOSTILE_ERRORS: Final = [
    # a known code, then free text with an e-mail address and escapes (colour, clear screen, window title)
    ({"error": "Invalid date range", "message": f"\x1b[2J\x1b]0;pwned\x07 ask {EMAIL} \x1b[31mnow\x1b[0m"}),
    # an error code that is itself hostile: nothing of it may be named
    ({"error": f"\x1b[31m{EMAIL}\x1b[0m\u202e", "message": f"{EMAIL}\r\nX-Injected: 1"}),
]


@pytest.mark.parametrize("body", HOSTILE_ERRORS, ids=["known-code", "hostile-code"])
def test_the_upstreams_error_text_reaches_no_job_error_log_line_or_file(
    tmp_path: Path, body: dict[str, str]
) -> None:
    def respond(_method: str, _path: str, _origin: str) -> list[bytes]:
        return answer(400, json.dumps(body, ensure_ascii=False).encode())

    with hostile_upstream(respond) as upstream, captured_json_logs() as logs:
        with service_against(tmp_path, upstream) as server:
            job = failed_report(server)
        log_text = logs.getvalue()

    error = job["error"]
    assert "Odeus refused the request (400)" in error
    if body["error"] == "Invalid date range":
        # the known code, in our spelling, and nothing else
        assert error.endswith("(400): Invalid date range")
    for leaked in (EMAIL, "pwned", "\x1b", "[31m", "[2J", "\u202e", "X-Injected"):
        assert leaked not in error
    assert job["id"] in log_text  # the failure was logged ...
    for leaked in (EMAIL, "pwned", "\\u001b", "\x1b", "[31m", "\\u202e", "X-Injected"):
        assert leaked not in log_text  # ... without the upstream's text
    for path, data in files_under(tmp_path / "data"):
        for raw in (EMAIL.encode(), EMAIL.encode("utf-16-le"), b"\x1b[", b"pwned"):
            assert raw not in data, path


# ---- item: answers are capped, never held whole --------------------------------------------------------


def test_a_huge_answer_to_the_export_call_fails_the_job_without_growing_the_service(tmp_path: Path) -> None:
    """The CSV route's answer is a small envelope: 1 GiB of it is refused at 256 KiB, never held."""

    def respond(_method: str, _path: str, _origin: str) -> Iterator[bytes]:
        yield head(200, {"Content-Type": "application/json"})  # no length: the body ends with the connection
        yield b'{"success": true, "data": {"downloadUrl": "https://storage.example.com/'
        block = b"a" * MiB
        for _ in range(HUGE // MiB):
            yield block
        yield b'"}}'

    with hostile_upstream(respond) as upstream, service_against(tmp_path, upstream) as server:
        before = reset_peak_rss()
        job = failed_report(server)
        grown = peak_rss() - before
    assert "the Odeus export could not be fetched" in job["error"]
    assert "larger than the 256 KiB the client accepts" in job["error"]
    assert grown < GROWTH_LIMIT, f"peak RSS grew by {grown / MiB:.0f} MiB"


@pytest.mark.parametrize("declared", [False, True], ids=["streamed", "content-length"])
def test_an_export_file_over_the_maximum_answer_size_fails_the_job_without_growing_the_service(
    tmp_path: Path, declared: bool
) -> None:
    """``upstream_max_answer_mb`` caps the export file: reading stops there (or before the first byte, when
    the storage host announces its length), and the job fails with that reason."""
    header = b"period_start,period_end,org_id,user_id,messages_total\n"
    row = b"2026-01-01,2026-01-31,org,user-%09d,3\n"
    rows = HUGE // len(row % 0)

    def respond(method: str, _path: str, origin: str) -> Iterator[bytes]:
        if method == "POST":
            yield from answer(200, envelope(f"{origin}/files/users.csv?signature=S", rows))
            return
        extra = {"Content-Length": str(len(header) + rows * len(row % 0))} if declared else {}
        yield head(200, {"Content-Type": "text/csv", **extra})
        yield header
        for start in range(0, rows, 20_000):
            yield b"".join(row % i for i in range(start, min(rows, start + 20_000)))

    with (
        hostile_upstream(respond) as upstream,
        service_against(tmp_path, upstream, upstream_max_answer_mb=8) as server,
    ):
        before = reset_peak_rss()
        job = failed_report(server)
        grown = peak_rss() - before
    assert "the export file from the storage host '127.0.0.1' is larger than the 8 MiB" in job["error"]
    assert "(maximum answer size)" in job["error"]
    assert grown < GROWTH_LIMIT, f"peak RSS grew by {grown / MiB:.0f} MiB"
