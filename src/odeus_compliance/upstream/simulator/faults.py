"""Fault injection: make the next requests on the API or storage host fail, drop, stall or end early.

Tests drive it in process (``RunningSimulator.faults``) or over HTTP (``POST /_simulator/faults`` on the
API app, with the scoped key) when the simulator runs in another process. Faults are queued per host and
consumed one per request, first in first out. Paths under ``/_simulator`` are never faulted.

A dropped connection closes the socket before any response byte is written. uvicorn has no ASGI way to do
that, so ``DroppableH11Protocol`` (uvicorn's h11 protocol plus one scope extension) hands the transport's
``close`` to the app.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from uvicorn.protocols.http.h11_impl import H11Protocol

FaultKind = Literal["fail", "drop", "slow", "truncate"]
Target = Literal["api", "storage"]
DROP_EXTENSION = "odeus.simulator.drop"
ADMIN_PREFIX = "/_simulator"

# Raw ASGI, loosely typed: this middleware rewrites messages, which the strict ASGI TypedDicts resist.
Message = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Fault:
    """One queued fault: what happens to one request."""

    kind: FaultKind
    status: int = 503  # fail
    seconds: float = 0.0  # slow: delay before the request is handled normally
    keep_fraction: float = 0.5  # truncate: share of the body that is sent
    content_length: bool = True  # truncate: keep the full Content-Length (else end cleanly at a line)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return asdict(self)


class FaultInjector:
    """The pending faults of one simulator (thread-safe: tests and servers run in different threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Fault]] = {"api": deque(), "storage": deque()}

    def _add(self, target: Target, fault: Fault, count: int) -> None:
        if target not in self._queues:
            msg = f"unknown fault target {target!r} (api or storage)"
            raise ValueError(msg)
        if count < 1:
            msg = "count must be at least 1"
            raise ValueError(msg)
        with self._lock:
            self._queues[target].extend([fault] * count)

    def fail_next(self, count: int = 1, *, status: int = 503, target: Target = "api") -> None:
        """The next ``count`` requests on ``target`` answer ``status`` (a 5xx) with an Odeus error body."""
        if not 500 <= status <= 599:
            msg = "a failure status must be a 5xx"
            raise ValueError(msg)
        self._add(target, Fault("fail", status=status), count)

    def drop_next(self, count: int = 1, *, target: Target = "api") -> None:
        """The next ``count`` requests on ``target`` see the connection closed without any response."""
        self._add(target, Fault("drop"), count)

    def slow_next(self, seconds: float, count: int = 1, *, target: Target = "api") -> None:
        """The next ``count`` requests on ``target`` wait ``seconds`` before they are handled."""
        if seconds < 0:
            msg = "seconds must not be negative"
            raise ValueError(msg)
        self._add(target, Fault("slow", seconds=seconds), count)

    def truncate_next_download(
        self, count: int = 1, *, keep_fraction: float = 0.5, content_length: bool = True
    ) -> None:
        """The next ``count`` downloads end early.

        With ``content_length`` the response declares the full size and the connection closes after
        ``keep_fraction`` of the body (the client sees an incomplete body). Without it the response has no
        Content-Length and ends cleanly at a line boundary, dropping at least one row: only
        ``recordCount`` reveals it.
        """
        if not 0.0 <= keep_fraction < 1.0:
            msg = "keep_fraction must be in [0, 1)"
            raise ValueError(msg)
        fault = Fault("truncate", keep_fraction=keep_fraction, content_length=content_length)
        self._add("storage", fault, count)

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            for queue in self._queues.values():
                queue.clear()

    def pending(self, target: Target) -> list[Fault]:
        """The faults still queued for ``target``, next first."""
        with self._lock:
            return list(self._queues[target])

    def take(self, target: Target) -> Fault | None:
        """Consume the next fault for ``target``, if any."""
        with self._lock:
            queue = self._queues[target]
            return queue.popleft() if queue else None


class DroppableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the connection's ``close`` offered to the app as a scope extension."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        inner = self.config.loaded_app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            extensions = dict(scope.get("extensions") or {})
            extensions[DROP_EXTENSION] = transport.close
            await inner({**scope, "extensions": extensions}, receive, send)

        self.app = app


def _error_body(status: int) -> bytes:
    return b'{"error":"Service unavailable","message":"Simulated upstream failure (HTTP %d)"}' % status


class FaultMiddleware:
    """Raw ASGI middleware applying the next queued fault of its host to each request."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, target: Target) -> None:
        self.app = app
        self.injector = injector
        self.target: Target = target

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        fault = self.injector.take(self.target)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "fail":
            body = _error_body(fault.status)
            await send(
                {
                    "type": "http.response.start",
                    "status": fault.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})
        elif fault.kind == "drop":
            await _drop(scope, send)
        else:
            close = _closer(scope)
            await self.app(scope, receive, _Truncating(send, fault, close).send)


def _closer(scope: Scope) -> Callable[[], None] | None:
    """The connection's ``close`` when the server offers it (``DroppableH11Protocol``)."""
    close = (scope.get("extensions") or {}).get(DROP_EXTENSION)
    return close if callable(close) else None


async def _drop(scope: Scope, send: Send) -> None:
    close = _closer(scope)
    if close is not None:
        close()
        await asyncio.sleep(0.05)  # let the server notice the disconnect before the app returns
        return
    # Another server: start a response and never finish it, which servers answer by closing the socket.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})


class _Truncating:
    """A ``send`` that collects the body, then sends only part of it."""

    def __init__(self, send: Send, fault: Fault, close: Callable[[], None] | None) -> None:
        self._send = send
        self._fault = fault
        self._close = close
        self._start: Message | None = None
        self._chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        self._chunks.append(bytes(message.get("body", b"")))
        if message.get("more_body", False):
            return
        await self._finish(self._start, b"".join(self._chunks))

    async def _finish(self, start: Message, body: bytes) -> None:
        if start["status"] != 200:
            await self._send(start)
            await self._send({"type": "http.response.body", "body": body, "more_body": False})
            return
        cut = int(len(body) * self._fault.keep_fraction)
        if self._fault.content_length:
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await self._send({**start, "headers": headers})
            await self._send({"type": "http.response.body", "body": body[:cut], "more_body": True})
            if self._close is not None:  # close mid-body (other servers close when the app returns)
                self._close()
                await asyncio.sleep(0.05)
            return
        line_end = body.rfind(b"\n", 0, max(cut, 1)) + 1
        if line_end >= len(body):  # keep everything but the last line
            line_end = body.rfind(b"\n", 0, len(body) - 1) + 1
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body[:line_end], "more_body": False})
