"""Security headers on every response: no active content, no framing, no type sniffing, no referrer.

The API answers JSON, problem documents, PDFs and CSV, never a page that should run script, so every
response says so (a route that needs more sets its own ``Content-Security-Policy``, which is kept). Wrapped
around the whole ASGI handler like the request log, so 404s, 405s and the OpenAPI document carry them too.
"""

from __future__ import annotations

from typing import Final

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SECURITY_HEADERS", "SecurityHeadersMiddleware", "install_security_headers"]

SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}


class SecurityHeadersMiddleware:
    """ASGI wrapper adding :data:`SECURITY_HEADERS` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: Litestar) -> None:
    """Wrap the app's ASGI handler (exception handling and routing included)."""
    app.asgi_handler = SecurityHeadersMiddleware(app.asgi_handler)
