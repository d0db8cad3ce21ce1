"""Odeus refuses browsers: any request that carries an ``Origin`` header is answered 403, on every route of
both hosts, before anything else happens (so a CORS preflight, ``OPTIONS`` with ``Origin``, is refused too).

The export routes are ``POST`` only and the storage route ``GET`` only: Litestar's automatic ``OPTIONS``
answer (204 with ``Allow``) is replaced by a 405 in Odeus's error shape, like every other wrong method.
"""

from __future__ import annotations

from typing import Any

import msgspec

from odeus_compliance.upstream.simulator.errors import OdeusError

BROWSER_ORIGIN = OdeusError(403, "Forbidden", "Requests from a browser origin are not allowed")
_ALLOWED = {"api": "POST", "storage": "GET"}


async def send_error(
    send: Any, error: OdeusError, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with ``error`` as Odeus's ``{"error", "message"}`` JSON."""
    body = msgspec.json.encode(error.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BrowserGuard:
    """Raw ASGI middleware: ``Origin`` → 403, ``OPTIONS`` → 405; everything else passes through."""

    def __init__(self, app: Any, target: str = "api") -> None:
        self.app = app
        self.allowed = _ALLOWED.get(target, "POST")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers") or []
            if any(name.lower() == b"origin" for name, _ in headers):
                await send_error(send, BROWSER_ORIGIN)
                return
            if scope.get("method") == "OPTIONS":
                error = OdeusError(405, "Method Not Allowed", "Method Not Allowed (405)")
                await send_error(send, error, [(b"allow", self.allowed.encode())])
                return
        await self.app(scope, receive, send)
