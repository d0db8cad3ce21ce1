"""The client against a raw loopback HTTP server that misbehaves in ways the contract allows (or forbids).

The server writes whatever bytes a test asks for, so answers no well-behaved framework would send (a redirect
with a malformed ``Location``, HTML instead of JSON, an error body that echoes the key) cross a real socket.
Waits are injected: a fake clock advances when the client sleeps, so no assertion depends on timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from odeus_compliance.upstream.backoff import RetryPolicy
from odeus_compliance.upstream.client import OdeusClient
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.errors import (
    AnswerTooLarge,
    UpstreamBadRequest,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamUnauthorized,
)
from odeus_compliance.upstream.request import ExportFormat, ExportRequest

KEY = "sk-failure-test-KEY-0042"
SIGNATURE = "SIGNATURE0123456789abcdef"
MARCH = ExportRequest.for_month(ExportType.USERS, 2026, 3, "Europe/Berlin")
CSV = b"period_start,period_end,org_id,user_id,department\n2026-03-01,2026-03-31,o,u1,N/A\n"

Handler = Callable[[str, str], bytes | None]  # (method, path) -> raw response, or None to drop the connection


def http(status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    head = f"HTTP/1.1 {status} Status\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode() + b"\r\n" + body


def envelope(url: str, count: int = 1) -> bytes:
    data = {
        "filePath": "users-usage/ws/users-usage-2026-03-01-2026-03-31-abcd1234.csv",
        "downloadUrl": url,
        "dataType": "users",
        "recordCount": count,
        "dateRange": {"from": "2026-02-28T23:00:00.000Z", "to": "2026-03-31T21:59:59.999Z"},
    }
    return json.dumps({"success": True, "data": data}).encode()


@dataclass
class RawServer:
    handler: Handler
    base: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            if int(headers.get("content-length", "0")):
                await reader.readexactly(int(headers["content-length"]))
            self.requests.append((method, path, headers))
            answer = self.handler(method, path)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[RawServer]:
    server = RawServer(handler)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.base = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime(2026, 11, 20, 9, tzinfo=UTC)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@asynccontextmanager
async def client_for(
    base: str, fake: FakeTime, policy: RetryPolicy | None = None
) -> AsyncIterator[OdeusClient]:
    config = OdeusClientConfig(
        api_key=KEY,
        base_url=base,
        download_hosts=frozenset({"127.0.0.1"}),
        retry=policy or RetryPolicy(max_attempts=3, max_total_seconds=60),
    )
    async with OdeusClient(config, sleep=fake.sleep, clock=fake.clock, wall_clock=fake.wall) as client:
        yield client


def api_then_download(api: Callable[[str], bytes], download: bytes | None = None) -> Handler:
    """``api(base)`` answers the export call; ``download`` (default: ``CSV``) the storage GET."""
    holder: dict[str, str] = {}

    def handler(_method: str, path: str) -> bytes | None:
        if path.startswith("/export/"):
            return api(holder["base"])
        return download if download is not None else http(200, CSV, (("Content-Type", "text/csv"),))

    handler.holder = holder  # type: ignore[attr-defined]
    return handler


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[RawServer]:
    async with raw_server(handler) as server:
        getattr(handler, "holder", {})["base"] = server.base
        yield server


async def test_the_retry_budget_counts_the_injected_clock() -> None:
    """Retry-After 4 s each time, 10 s of budget: attempts at 0, 4 and 8 s, then a 12 s mark is refused."""
    fake = FakeTime()
    handler = api_then_download(lambda _: http(429, b"{}", (("Retry-After", "4"),)))
    policy = RetryPolicy(max_attempts=10, max_total_seconds=10)
    async with serving(handler) as server, client_for(server.base, fake, policy) as client:
        with pytest.raises(UpstreamRateLimited, match="gave up after 3 attempt"):
            await client.fetch_export(MARCH)
    assert fake.sleeps == [4.0, 4.0]
    assert len(server.requests) == 3


@pytest.mark.parametrize("retry_after", ["Wed, 21 Oct 2099 07:28:00 GMT", "86400"])
async def test_a_retry_after_beyond_the_budget_is_not_waited_for(retry_after: str) -> None:
    fake = FakeTime()
    handler = api_then_download(lambda _: http(429, b"{}", (("Retry-After", retry_after),)))
    async with serving(handler) as server, client_for(server.base, fake) as client:
        with pytest.raises(UpstreamRateLimited, match="429"):
            await client.fetch_export(MARCH)
    assert fake.sleeps == []
    assert len(server.requests) == 1


async def test_a_redirect_with_a_malformed_location_is_a_protocol_error_not_retried() -> None:
    fake = FakeTime()
    handler = api_then_download(lambda _: http(302, b"", (("Location", "http://[::1"),)))
    async with serving(handler) as server, client_for(server.base, fake) as client:
        with pytest.raises(UpstreamProtocolError, match="redirect"):
            await client.fetch_export(MARCH)
    assert len(server.requests) == 1
    assert fake.sleeps == []


def _fixed(answer: bytes) -> Callable[[str], bytes]:
    return lambda _base: answer


async def test_an_error_text_that_echoes_the_key_is_not_quoted() -> None:
    """Only the known error code is named (in our spelling); the free message, key and all, is dropped."""
    fake = FakeTime()
    echo = json.dumps({"error": "bad  REQUEST", "message": f"key {KEY} is not allowed here"}).encode()
    for status, error in ((400, UpstreamBadRequest), (401, UpstreamUnauthorized)):
        handler = api_then_download(_fixed(http(status, echo)))
        async with serving(handler) as server, client_for(server.base, fake) as client:
            with pytest.raises(error) as caught:
                await client.fetch_export(MARCH)
        assert KEY not in str(caught.value)
        assert "not allowed here" not in str(caught.value)
        assert f"({status}): Bad Request" in str(caught.value)


async def test_no_log_record_carries_the_signature_or_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # another test may have configured the service's logging, which holds these loggers at WARNING
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    fake = FakeTime()
    handler = api_then_download(lambda base: http(200, envelope(f"{base}/files/x.csv?signature={SIGNATURE}")))
    async with serving(handler) as server, client_for(server.base, fake) as client:
        result = await client.fetch_export(MARCH)
    assert [row["department"] for row in result.rows()] == ["N/A"]
    assert any(r.name == "httpx" for r in caplog.records)  # httpx did log the download request
    for record in caplog.records:
        message = record.getMessage()
        assert SIGNATURE not in message
        assert KEY not in message


@pytest.mark.parametrize(
    "answer",
    [
        http(200, b"<html><body>Maintenance</body></html>", (("Content-Type", "text/html"),)),
        http(200, b'{"success": true, "data": {"dataType": "users"}}'),
        http(200, b'{"success": false, "error": "x", "message": "y"}'),
    ],
)
async def test_an_answer_that_is_not_the_envelope_is_a_protocol_error(answer: bytes) -> None:
    fake = FakeTime()
    async with (
        serving(api_then_download(lambda _: answer)) as server,
        client_for(server.base, fake) as client,
    ):
        with pytest.raises(UpstreamProtocolError, match="export answer"):
            await client.fetch_export(MARCH)
    assert [path for _, path, _ in server.requests] == ["/export/users/csv"]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x.csv",
        f"http://storage.example.com/x.csv?signature={SIGNATURE}",
        f"https://127.0.0.1.evil.example/x.csv?signature={SIGNATURE}",
        f"http://127.0.0.1@evil.example/x.csv?signature={SIGNATURE}",
        f"/files/x.csv?signature={SIGNATURE}",
    ],
)
async def test_a_download_url_off_the_allow_list_is_never_fetched(url: str) -> None:
    fake = FakeTime()
    handler = api_then_download(lambda _: http(200, envelope(url)))
    async with serving(handler) as server, client_for(server.base, fake) as client:
        with pytest.raises(UpstreamProtocolError, match="not allowed") as caught:
            await client.fetch_export(MARCH)
    assert SIGNATURE not in str(caught.value)
    assert [path for _, path, _ in server.requests] == ["/export/users/csv"]


@pytest.mark.parametrize("route", [ExportFormat.CSV, ExportFormat.JSON])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
async def test_an_answer_over_its_cap_is_refused_not_retried(route: ExportFormat, declared: bool) -> None:
    """The CSV route's envelope is capped at 256 KiB, the JSON route's rows at ``max_answer_bytes``: one
    MiB more is refused, announced or not, and not asked for again."""
    body = b'{"success": true, "data": {"rows": ["' + b"x" * (1 << 20) + b'"]}}'
    raw = http(200, body) if declared else b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body
    config = OdeusClientConfig(
        api_key=KEY,
        base_url="http://127.0.0.1:1",
        max_answer_bytes=512 << 10,
        retry=RetryPolicy(max_attempts=3),
    )
    request = ExportRequest.for_month(ExportType.USERS, 2026, 3, "UTC", export_format=route)
    fake = FakeTime()
    async with serving(api_then_download(_fixed(raw))) as server:
        config = dataclasses.replace(config, base_url=server.base)
        async with OdeusClient(config, sleep=fake.sleep, clock=fake.clock, wall_clock=fake.wall) as client:
            with pytest.raises(AnswerTooLarge, match="256 KiB" if route is ExportFormat.CSV else "512 KiB"):
                await client.fetch_export(request)
    assert len(server.requests) == 1
