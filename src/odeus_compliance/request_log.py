"""One safe log line per HTTP request, and the request id that ties log lines and problem documents together.

Replaces uvicorn's access log, which prints the raw path with its query string (personal data can ride in
a query) and the client address. Ours writes the route *template* (``/api/v1/reports/{id:uuid}``), the
method (only standard ones; anything else is ``OTHER``), status, duration, request id and the API key's id.
The request id is generated here, never taken from the client, and returned as ``X-Request-ID``.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Final

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from odeus_compliance.logging_setup import log_event, request_id_var
from odeus_compliance.security import ApiKeyIdentity

__all__ = ["REQUEST_ID_HEADER", "RequestLogMiddleware", "install_request_log"]

REQUEST_ID_HEADER: Final = "x-request-id"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_log = logging.getLogger("odeus_compliance.http")


class RequestLogMiddleware:
    """ASGI wrapper around the whole app (outside routing, so 404 and 405 are logged too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request with a fresh request id, then log it."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            user = scope.get("user")
            method = scope.get("method", "")
            log_event(
                _log,
                logging.INFO,
                "request",
                method=method if method in _METHODS else "OTHER",
                route=scope.get("path_template") or "<unmatched>",
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                key_id=user.key_id if isinstance(user, ApiKeyIdentity) else None,
            )
            request_id_var.reset(token)


def install_request_log(app: Litestar) -> None:
    """Wrap the app's ASGI handler (exception handling and routing included) in :class:`RequestLogMiddleware`.

    Litestar's ``middleware=`` list runs per route, after routing, so it never sees a 404 or a 405; the
    app's ``asgi_handler`` is the one place that sees every request.
    """
    app.asgi_handler = RequestLogMiddleware(app.asgi_handler)
