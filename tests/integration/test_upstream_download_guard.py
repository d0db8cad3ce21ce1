"""Download URLs an upstream may name, against real loopback servers: where the client refuses to go.

A hostile Odeus answers the export call with a ``downloadUrl`` of its choosing. Canary servers listen on the
loopback addresses and ports such a URL points at, and record every connection: a refused URL must leave
them untouched, and the error must say why in the client's words, never repeating the URL's path or query.
Name resolution goes through the real resolver; where a test needs a name to resolve to a given address
(or to change its answer between two lookups, as DNS rebinding does), ``socket.getaddrinfo`` is wrapped for
that one name only.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from odeus_compliance.upstream.backoff import RetryPolicy
from odeus_compliance.upstream.client import OdeusClient
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.config import OdeusClientConfig, Timeouts
from odeus_compliance.upstream.errors import DownloadRefused, UpstreamProtocolError, UpstreamUnavailable
from odeus_compliance.upstream.request import ExportRequest

MARCH = ExportRequest.for_month(ExportType.USERS, 2026, 3, "Europe/Berlin")
SIGNATURE = "SIGNATURE0123456789abcdef"
SECRET_PATH = "/tenant-7/private-bucket/users-usage.csv"
CSV = b"period_start,period_end,org_id,user_id\n2026-03-01,2026-03-31,o,u1\n"
PUBLIC = "93.184.216.34"  # a global unicast address (example.com's); never actually connected to here


def http(status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    head = f"HTTP/1.1 {status} Status\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode() + b"\r\n" + body


def envelope(url: str) -> bytes:
    data = {
        "filePath": "users-usage/ws/users-usage-2026-03-01-2026-03-31-abcd1234.csv",
        "downloadUrl": url,
        "dataType": "users",
        "recordCount": 1,
        "dateRange": {"from": "2026-02-28T23:00:00.000Z", "to": "2026-03-31T21:59:59.999Z"},
    }
    return json.dumps({"success": True, "data": data}).encode()


@dataclass
class Server:
    """A raw HTTP server on one loopback address: answers ``handler(path)`` and records each request."""

    handler: Callable[[str], bytes]
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            if int(headers.get("content-length", "0")):
                await reader.readexactly(int(headers["content-length"]))
            self.requests.append((path.split("?", 1)[0], headers))
            writer.write(self.handler(path))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(handler: Callable[[str], bytes], host: str = "127.0.0.1") -> AsyncIterator[Server]:
    server = Server(handler, host)
    listener = await asyncio.start_server(server.serve, host, 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


def canary() -> Callable[[str], bytes]:
    return lambda _path: http(200, CSV, (("Content-Type", "text/csv"),))


def upstream_naming(url: str) -> Callable[[str], bytes]:
    """An Odeus whose export call answers with ``url`` as the download URL."""
    return lambda path: http(200, envelope(url)) if path.startswith("/export/") else http(404)


@asynccontextmanager
async def client_of(
    base: str, hosts: frozenset[str] = frozenset(), *, http_client: httpx.AsyncClient | None = None
) -> AsyncIterator[OdeusClient]:
    config = OdeusClientConfig(
        api_key="sk-guard-test",
        base_url=base,
        download_hosts=hosts,
        retry=RetryPolicy(max_attempts=1),
        timeouts=Timeouts(connect=2.0, read=5.0),
    )

    async def no_sleep(_seconds: float) -> None:
        return None

    async with OdeusClient(config, http=http_client, sleep=no_sleep) as client:
        yield client


def assert_clean(error: BaseException) -> None:
    """The error names no part of the URL the upstream chose beyond its host: no path, no query."""
    text = str(error)
    assert SIGNATURE not in text
    assert "tenant-7" not in text
    assert "private-bucket" not in text


def wrap_resolver(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[list[str]]) -> list[str]:
    """``name`` resolves to ``answers[0]`` on the first lookup, ``answers[1]`` on the second, ...; other
    names go to the real resolver. Returns the log of lookups of ``name``."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        addresses = answers[min(len(lookups), len(answers) - 1)]
        lookups.append(",".join(addresses))
        out = []
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (
                (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
            )
            out.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


# ---- without an allow-list: https on 443, public addresses only --------------------------------------


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.2", "a loopback address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("10.0.0.1", "a private-network address"),
        ("[::1]", "a loopback address"),
        ("[::ffff:127.0.0.1]", "a loopback address"),
        ("[fe80::1]", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("100.64.0.1", "an address that is not publicly routable"),
        ("localhost", "a loopback address"),  # a name: resolved, then refused for its address
    ],
)
async def test_a_download_url_on_a_non_public_address_is_refused(host: str, reason: str) -> None:
    url = f"https://{host}{SECRET_PATH}?signature={SIGNATURE}"
    async with serving(upstream_naming(url)) as upstream, client_of(upstream.origin) as client:
        with pytest.raises(DownloadRefused) as caught:
            await client.fetch_export(MARCH)
    assert reason in str(caught.value)
    assert "not allowed" in str(caught.value)
    assert_clean(caught.value)
    assert [path for path, _ in upstream.requests] == ["/export/users/csv"]


async def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """One loopback address among public ones refuses the URL: the resolver may hand out either."""
    lookups = wrap_resolver(monkeypatch, "storage.mixed.test", [[PUBLIC, "127.0.0.1"]])
    url = f"https://storage.mixed.test{SECRET_PATH}?signature={SIGNATURE}"
    async with serving(upstream_naming(url)) as upstream, client_of(upstream.origin) as client:
        with pytest.raises(DownloadRefused, match="a loopback address") as caught:
            await client.fetch_export(MARCH)
    assert_clean(caught.value)
    assert lookups == [f"{PUBLIC},127.0.0.1"]


async def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name is public when checked and loopback afterwards. The client connects to the
    address it checked (a transport under it records where each request goes and stops anything that is
    not the upstream on loopback), so the canary behind the second answer is never reached."""
    async with serving(canary()) as target:
        name = "storage.rebind.test"
        lookups = wrap_resolver(monkeypatch, name, [[PUBLIC], ["127.0.0.1"]])
        url = f"http://{name}:{target.port}{SECRET_PATH}?signature={SIGNATURE}"
        seen: list[tuple[str, str]] = []
        inner = httpx.AsyncHTTPTransport()

        class Recording(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                seen.append((request.url.host, request.headers["host"]))
                if request.url.host != "127.0.0.1":
                    raise httpx.ConnectError("not connected in this test", request=request)
                return await inner.handle_async_request(request)

        async with (
            serving(upstream_naming(url)) as upstream,
            httpx.AsyncClient(transport=Recording()) as http_client,
            client_of(
                upstream.origin, frozenset({f"{name}:{target.port}"}), http_client=http_client
            ) as client,
        ):
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.fetch_export(MARCH)
    assert_clean(caught.value)
    assert seen[-1] == (PUBLIC, f"{name}:{target.port}")  # pinned: the checked address, the original Host
    assert lookups == [PUBLIC]  # one lookup, the checked one: nothing resolved the name again
    assert target.requests == []


async def test_plain_http_and_other_ports_need_the_allow_list() -> None:
    async with serving(canary()) as target:
        for url in (f"http://{PUBLIC}{SECRET_PATH}", f"https://{PUBLIC}:{target.port}{SECRET_PATH}"):
            async with (
                serving(upstream_naming(url)) as upstream,
                client_of(upstream.origin) as client,
            ):
                with pytest.raises(DownloadRefused, match="only https on port 443") as caught:
                    await client.fetch_export(MARCH)
            assert_clean(caught.value)
    assert target.requests == []


# ---- with an allow-list: host and port ----------------------------------------------------------------


async def test_an_allow_listed_address_is_fetched_on_its_port_only() -> None:
    async with serving(canary()) as storage, serving(canary()) as other:
        listed = frozenset({f"127.0.0.1:{storage.port}"})
        good = f"{storage.origin}/files/x.csv?signature={SIGNATURE}"
        async with (
            serving(upstream_naming(good)) as upstream,
            client_of(upstream.origin, listed) as client,
        ):
            result = await client.fetch_export(MARCH)
        assert result.num_rows == 1
        assert [path for path, _ in storage.requests] == ["/files/x.csv"]

        wrong_port = f"{other.origin}{SECRET_PATH}?signature={SIGNATURE}"
        async with (
            serving(upstream_naming(wrong_port)) as upstream,
            client_of(upstream.origin, listed) as client,
        ):
            with pytest.raises(
                DownloadRefused, match=f"port {other.port} .*not on the download allow-list"
            ) as caught:
                await client.fetch_export(MARCH)
        assert_clean(caught.value)
    assert other.requests == []


async def test_a_host_without_a_port_means_the_default_port() -> None:
    async with serving(canary()) as other:
        url = f"{other.origin}{SECRET_PATH}?signature={SIGNATURE}"
        async with (
            serving(upstream_naming(url)) as upstream,
            client_of(upstream.origin, frozenset({"127.0.0.1"})) as client,
        ):
            with pytest.raises(DownloadRefused, match="not on the download allow-list") as caught:
                await client.fetch_export(MARCH)
        assert_clean(caught.value)
    assert other.requests == []


async def test_an_allow_listed_name_must_still_resolve_to_public_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing a name trusts the name, not whatever it resolves to: mapped to loopback, it is refused."""
    async with serving(canary()) as target:
        wrap_resolver(monkeypatch, "storage.listed.test", [["127.0.0.1"]])
        url = f"http://storage.listed.test:{target.port}{SECRET_PATH}?signature={SIGNATURE}"
        listed = frozenset({f"storage.listed.test:{target.port}", f"localhost:{target.port}"})
        for download in (url, url.replace("storage.listed.test", "localhost")):
            async with (
                serving(upstream_naming(download)) as upstream,
                client_of(upstream.origin, listed) as client,
            ):
                with pytest.raises(DownloadRefused, match="a loopback address") as caught:
                    await client.fetch_export(MARCH)
            assert_clean(caught.value)
    assert target.requests == []


async def test_a_redirect_from_an_allowed_url_to_loopback_is_refused() -> None:
    async with serving(canary()) as hidden:
        inside = f"{hidden.origin}/latest/meta-data?signature={SIGNATURE}"

        def storage_handler(_path: str) -> bytes:
            return http(302, b"", (("Location", inside),))

        async with serving(storage_handler) as storage:
            url = f"{storage.origin}{SECRET_PATH}?signature={SIGNATURE}"
            listed = frozenset({f"127.0.0.1:{storage.port}"})
            async with (
                serving(upstream_naming(url)) as upstream,
                client_of(upstream.origin, listed) as client,
            ):
                with pytest.raises(
                    UpstreamProtocolError, match=r"redirect \(302\).*a loopback address"
                ) as caught:
                    await client.fetch_export(MARCH)
            assert_clean(caught.value)
            assert "meta-data" not in str(caught.value)
            assert len(storage.requests) == 1
    assert hidden.requests == []


async def test_the_upstreams_own_origin_is_allowed_on_loopback() -> None:
    """The simulator of the demo and the tests serves downloads beside its API: the base URL's origin is
    trusted as configured, without an allow-list entry."""
    holder: dict[str, str] = {}

    def handler(path: str) -> bytes:
        if path.startswith("/export/"):
            return http(200, envelope(f"{holder['origin']}/files/x.csv?signature={SIGNATURE}"))
        return http(200, CSV, (("Content-Type", "text/csv"),))

    async with serving(handler) as upstream:
        holder["origin"] = upstream.origin
        async with client_of(upstream.origin) as client:
            result = await client.fetch_export(MARCH)
    assert result.num_rows == 1
    assert [path for path, _ in upstream.requests] == ["/export/users/csv", "/files/x.csv"]
