"""A small round-robin HTTP reverse proxy on loopback, in a thread: what Caddy does in front of the replicas
in ``deploy/``, for tests that run the replicas as real ``serve`` processes.

Each request goes to the next upstream in turn (no stickiness, no retry), so consecutive calls of one client
land on different replicas. Bodies pass through unchanged in both directions; an upstream that cannot be
reached is answered 502, as a real proxy would. The proxy notes which upstream served each request.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import uvicorn

__all__ = ["RoundRobinProxy", "run_proxy"]

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
"""Headers that belong to one connection (RFC 9110, section 7.6.1), and ``host``: not forwarded."""

Message = dict[str, Any]


class RoundRobinProxy:
    """The ASGI app: forwards each HTTP request to the next of ``upstreams`` (base URLs)."""

    def __init__(self, upstreams: Sequence[str]) -> None:
        self.upstreams = tuple(u.rstrip("/") for u in upstreams)
        self._turn = itertools.cycle(range(len(self.upstreams)))
        self._lock = threading.Lock()
        self._served: list[tuple[str, str, int]] = []
        self._client: httpx.AsyncClient | None = None

    def served(self) -> list[tuple[str, str, int]]:
        """``(method, path, upstream index)`` of every request forwarded so far, in order."""
        with self._lock:
            return list(self._served)

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # generous: a report download or an upload being verified may take a while on a busy machine
                self._client = httpx.AsyncClient(timeout=httpx.Timeout(300.0))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: Message, receive: Any, send: Any) -> None:
        assert self._client is not None, "the proxy's lifespan has not started"
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        with self._lock:
            index = next(self._turn)
            self._served.append((scope["method"], scope["path"], index))
        target = self.upstreams[index] + scope["raw_path"].decode("ascii")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("ascii")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        request = self._client.build_request(scope["method"], target, headers=headers, content=bytes(body))
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError:
            await send(
                {"type": "http.response.start", "status": 502, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"bad gateway"})
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP],
                }
            )
            async for chunk in response.aiter_raw():  # as sent: no decoding of a Content-Encoding
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


@contextlib.contextmanager
def run_proxy(
    upstreams: Sequence[str], *, startup_timeout: float = 15.0
) -> Iterator[tuple[str, RoundRobinProxy]]:
    """Serve a :class:`RoundRobinProxy` over ``upstreams`` on ``127.0.0.1:<free port>`` until the block
    ends; yields its base URL and the proxy (to ask which upstream served what)."""
    proxy = RoundRobinProxy(upstreams)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        proxy,
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,  # the upstream's own headers pass through
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            msg = "the test proxy did not start"
            raise RuntimeError(msg)
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", proxy
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
