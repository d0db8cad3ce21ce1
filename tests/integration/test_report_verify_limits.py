"""Hostile uploads to ``POST /api/v1/reports/verify`` over loopback: refused cleanly (a verdict or a 4xx
problem, never a 5xx), without growing the service's memory, and with a bounded number at a time (503 with
``Retry-After`` beyond it), while a signed report still verifies.

The server runs in this process (``tests.support.server``), so the service's memory is this process's
resident set (``VmRSS``). Parsed in the service, the 16 MiB huge-array file alone grows it by gigabytes.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from odeus_compliance.app import create_app
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.reports.signing import load_signer, sign_pdf
from odeus_compliance.reports.verifier import PdfVerifier
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings
from odeus_compliance.state_keys import REPORT_VERIFIER
from tests.support.logs import captured_json_logs, parse_lines
from tests.support.report_pdf import build_manifest, default_attachments, render_test_pdf
from tests.support.server import LiveServer, issue_keys, run_server

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PDF = {"content-type": "application/pdf"}
MIB = 1 << 20
RSS_BOUND = 150 * MIB
_PAGES = b"<< /Type /Pages /Kids [] /Count 0 >>"


def pdf_with(objects: list[bytes]) -> bytes:
    """A well-formed PDF whose object ``i + 1`` is ``objects[i]`` (object 1 the catalog), with its xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def huge_array(size: int) -> bytes:
    """A catalog holding one array of about ``size`` bytes of small numbers."""
    return pdf_with([b"<< /Type /Catalog /Pages 2 0 R /Huge [" + b"0 " * (size // 2) + b"] >>", _PAGES])


def nested_arrays(depth: int) -> bytes:
    return pdf_with([b"<< /Type /Catalog /Pages 2 0 R /Deep " + b"[" * depth + b"]" * depth + b" >>", _PAGES])


def nested_dicts(depth: int) -> bytes:
    deep = b"<< /A " * depth + b"0" + b" >>" * depth
    return pdf_with([b"<< /Type /Catalog /Pages 2 0 R /Deep " + deep + b" >>", _PAGES])


def many_objects(count: int) -> bytes:
    """A catalog naming ``count`` objects of their own (each a small dictionary)."""
    refs = b" ".join(b"%d 0 R" % number for number in range(3, count + 3))
    return pdf_with(
        [b"<< /Type /Catalog /Pages 2 0 R /All [" + refs + b"] >>", _PAGES, *[b"<< /A 1 >>"] * count]
    )


def rss() -> int:
    """This process's resident set in bytes (the server runs in it)."""
    for line in Path(f"/proc/{os.getpid()}/status").read_text("ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    msg = "no VmRSS"
    raise AssertionError(msg)


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """The body as a stream (no whole-body copy on the client side)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def signed_report(settings: Settings) -> bytes:
    attachments = default_attachments()
    pdf = render_test_pdf(attachments, build_manifest(attachments))
    return sign_pdf(pdf, load_signer(settings), tsa_url=None)


@dataclasses.dataclass(frozen=True)
class Served:
    server: LiveServer
    app: Litestar

    @property
    def verifier(self) -> PdfVerifier:
        verifier = self.app.state[REPORT_VERIFIER]
        assert isinstance(verifier, PdfVerifier)
        return verifier


def serve(settings: Settings, **changes: object) -> Iterator[Served]:
    configured = dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
    ensure_demo_certificate(configured.data_dir, configured.require_master_key())
    keys = issue_keys(configured)
    app = create_app(configured)
    with run_server(app) as base_url:
        yield Served(LiveServer(base_url=base_url, settings=configured, keys=keys), app)


@pytest.fixture
def server(migrated_settings: Settings) -> Iterator[LiveServer]:
    for served in serve(migrated_settings):
        yield served.server


@pytest.fixture
def narrow(migrated_settings: Settings) -> Iterator[Served]:
    """One verification at a time and one waiting."""
    yield from serve(migrated_settings, verify_concurrency=1, verify_queue=1, verify_timeout_seconds=300.0)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition()`` (a deadline only so that a broken service cannot hang the suite)."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def verify(
    client: httpx.Client, server: LiveServer, data: bytes, role: Role = Role.AUDITOR
) -> httpx.Response:
    return client.post("/api/v1/reports/verify", content=chunked(data), headers={**PDF, **server.auth(role)})


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["status"], problem["valid"], problem["reason"]) == (422, False, reason)


def assert_invalid(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is False


def test_hostile_pdfs_are_refused_without_growing_the_service(server: LiveServer) -> None:
    good = signed_report(server.settings)
    hostile = {
        "huge array": huge_array(16 * MIB),
        "nested arrays": nested_arrays(100_000),
        "nested dictionaries": nested_dicts(10_000),
        "many objects": many_objects(300_000),
    }
    parallel = [(huge_array(4 * MIB), role) for role in (Role.OFFICER, Role.AUDITOR, Role.ADMIN)]
    with httpx.Client(base_url=server.base_url, timeout=300) as client:
        warm = verify(client, server, good)  # a signed report verifies (and the service's imports are done)
        assert warm.status_code == 200, warm.text
        assert warm.json()["valid"] is True, warm.json()
        before = rss()

        for name, data in hostile.items():
            answer = verify(client, server, data)
            assert_refused(answer, "too_complex")
            assert "could not be verified" in answer.json()["detail"], name
        assert_invalid(verify(client, server, good[: len(good) // 2]))  # truncated
        assert_invalid(verify(client, server, b"this is not a PDF at all\n" * 1000))
        with ThreadPoolExecutor(max_workers=3) as pool:  # one per key: a key gets one slot at a time
            answers = list(pool.map(lambda upload: verify(client, server, *upload), parallel))
        for answer in answers:
            assert_refused(answer, "too_complex")
        assert client.get("/health/live").status_code == 200

        grown = rss() - before
        assert grown < RSS_BOUND, f"the service grew by {grown // MIB} MiB"
        again = verify(client, server, good)
        assert again.status_code == 200
        assert again.json()["valid"] is True

        entries = client.get(
            "/api/v1/audit/entries",
            params={"action": "report.verified", "limit": 100},
            headers=server.auth(Role.AUDITOR),
        )
    assert entries.status_code == 200, entries.text
    records = [e["record"] for e in entries.json()["entries"] if e.get("record")]
    refused = [r for r in records if r["outcome"] == "failure"]
    assert len(refused) == len(hostile) + len(parallel)
    assert {r["details"]["error_code"] for r in refused} == {"pdf_too_complex"}


def test_a_full_verification_queue_answers_503_with_retry_after(narrow: Served) -> None:
    server, verifier = narrow.server, narrow.verifier
    verifier.stall_seconds = 240.0  # the uploads below are held open on purpose
    good = signed_report(server.settings)
    release = threading.Event()

    def held() -> Iterator[bytes]:
        yield good[:1024]
        release.wait(timeout=240)
        yield good[1024:]

    def upload(role: Role) -> httpx.Response:
        return client.post("/api/v1/reports/verify", content=held(), headers={**PDF, **server.auth(role)})

    with (
        httpx.Client(base_url=server.base_url, timeout=300) as client,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        # one verification runs (its upload held open), then one waits for the slot: the queue is full
        running = pool.submit(upload, Role.OFFICER)
        wait_for(lambda: verifier.admitted == 1 and bool(verifier.pids()), "the first upload never started")
        same_key = verify(client, server, good, Role.OFFICER)  # one key holds one slot at most
        assert same_key.status_code == 503, same_key.text
        waiting = pool.submit(upload, Role.AUDITOR)
        wait_for(lambda: verifier.admitted == 2, "the second upload never queued")
        refused = verify(client, server, good, Role.ADMIN)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["status"] == 503
        release.set()
        results = [running.result(timeout=240), waiting.result(timeout=240)]
        for result in results:
            assert result.status_code == 200, result.text
            assert result.json()["valid"] is True
        assert verify(client, server, good).json()["valid"] is True  # a slot is free again


def test_an_upload_that_stops_sending_is_refused_and_frees_its_slot(narrow: Served) -> None:
    server, verifier = narrow.server, narrow.verifier
    verifier.stall_seconds = 1.0
    good = signed_report(server.settings)
    gone = threading.Event()

    def stalled() -> Iterator[bytes]:
        yield good[:1024]
        gone.wait(timeout=60)  # sends nothing more until the service has given up on it
        yield good[1024:]

    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        answer = client.post(
            "/api/v1/reports/verify", content=stalled(), headers={**PDF, **server.auth(Role.OFFICER)}
        )
        gone.set()
        assert answer.status_code == 422, answer.text
        assert answer.json()["reason"] == "timeout"
        assert verifier.admitted == 0
        assert verify(client, server, good, Role.OFFICER).json()["valid"] is True


def test_an_upload_cut_short_is_a_client_error_not_a_server_error(server: LiveServer) -> None:
    url = httpx.URL(server.base_url)
    key = server.auth(Role.OFFICER)["Authorization"]
    head = (
        f"POST /api/v1/reports/verify HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: {key}\r\n"
        "Content-Type: application/pdf\r\nContent-Length: 100000\r\n\r\n"
    )
    with captured_json_logs() as logs:
        with socket.create_connection((url.host, url.port or 80), timeout=60) as sock:
            sock.sendall(head.encode("ascii") + b"%PDF-1.7")
            sock.shutdown(socket.SHUT_WR)  # the client goes away with most of the body unsent
            while sock.recv(65536):
                pass
        wait_for(
            lambda: any(line.get("status") for line in parse_lines(logs)), "the request was never logged"
        )
    lines = parse_lines(logs)
    assert [line for line in lines if line.get("status") == 500 or line.get("event") == "server_error"] == []
    assert any(line.get("status") == 400 for line in lines)
