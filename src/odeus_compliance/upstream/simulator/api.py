"""The API app: ``POST /export/{type}[/csv|/json]`` with Odeus's auth, origin and rate-limit rules, and the
admin route ``/_simulator/faults`` that lets a test in another process inject faults.

Every error, including Litestar's own 404/405, leaves in Odeus's ``{"error", "message"}`` shape.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from http import HTTPStatus
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath
from litestar.response import Response

from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.request import ExportFormat
from odeus_compliance.upstream.simulator.errors import OdeusError
from odeus_compliance.upstream.simulator.faults import FaultMiddleware
from odeus_compliance.upstream.simulator.guard import BROWSER_ORIGIN, BrowserGuard
from odeus_compliance.upstream.simulator.period import parse_body
from odeus_compliance.upstream.simulator.service import Simulator

logger = logging.getLogger(__name__)

UNAUTHORIZED = OdeusError(401, "Unauthorized", "Invalid or missing API key")
JSON = "application/json"


def error_response(error: OdeusError) -> Response[Any]:
    """An Odeus error answer."""
    return Response(error.body(), status_code=error.status, headers=error.headers, media_type=JSON)


def handle_exception(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Map every exception to the Odeus error shape (never Litestar's default or problem+json)."""
    if isinstance(exc, OdeusError):
        return error_response(exc)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        message = "No such route" if status == 404 else f"{phrase} ({status})"
        return error_response(OdeusError(status, phrase, message, headers=dict(exc.headers or {})))
    logger.error("simulator error", exc_info=exc)  # synthetic data only: no real personal data exists here
    return error_response(OdeusError(500, "Internal Server Error", "Unexpected simulator error"))


EXCEPTION_HANDLERS: dict[Any, Any] = {Exception: handle_exception, HTTPException: handle_exception}


def _is(token: str, key: str) -> bool:
    return hmac.compare_digest(token.encode(), key.encode())


def authorise(request: Request[Any, Any, Any], sim: Simulator) -> None:
    """Origin, key, scope and the workspace's request rate, in the order Odeus checks them."""
    config = sim.config
    if "origin" in request.headers:  # BrowserGuard answers these first; kept for direct callers
        raise BROWSER_ORIGIN
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UNAUTHORIZED
    if _is(token, config.unscoped_api_key):
        raise OdeusError(403, "Forbidden", "The API key lacks the USAGE_EXPORT_API scope")
    if not _is(token, config.api_key):
        raise UNAUTHORIZED


def create_api_app(sim: Simulator) -> Litestar:
    """The Odeus Usage Export API of one simulator."""

    async def answer(request: Request[Any, Any, Any], export_type: str, export_format: str) -> Response[Any]:
        try:
            kind = ExportType(export_type)
            fmt = ExportFormat(export_format)
        except ValueError:
            raise OdeusError(404, "Not Found", "No such route") from None
        authorise(request, sim)
        retry_after = sim.limiter.acquire()
        if retry_after is not None:
            headers = {"Retry-After": str(retry_after)} if sim.config.variant_retry_after else {}
            msg = f"Rate limit of {sim.config.requests_per_minute} requests per minute exceeded"
            raise OdeusError(429, "Too many requests", msg, headers)
        raw = await request.body()
        body = await asyncio.to_thread(sim.export, kind, fmt, raw)
        return Response(body, media_type=JSON)

    @post("/export/{export_type:str}", status_code=200, operation_id="exportCsv")
    async def export_bare(request: Request[Any, Any, Any], export_type: FromPath[str]) -> Response[Any]:
        """An export as CSV (the bare route behaves like ``/csv``)."""
        return await answer(request, export_type, "csv")

    @post("/export/{export_type:str}/{export_format:str}", status_code=200, operation_id="exportFormat")
    async def export_format(
        request: Request[Any, Any, Any], export_type: FromPath[str], export_format: FromPath[str]
    ) -> Response[Any]:
        """An export as CSV (a signed download URL) or JSON (the rows inline)."""
        return await answer(request, export_type, export_format)

    @post("/_simulator/faults", status_code=200, operation_id="injectFault")
    async def inject_fault(request: Request[Any, Any, Any]) -> Response[Any]:
        """Queue a fault (``action``: fail, drop, slow, truncate or clear); needs the scoped key."""
        authorise(request, sim)
        body = parse_body(await request.body())
        try:
            _apply_fault(sim, body)
        except (TypeError, ValueError) as exc:
            raise OdeusError(400, "Bad Request", str(exc)) from None
        return Response(_pending(sim), media_type=JSON)

    @get("/_simulator/faults", operation_id="listFaults", sync_to_thread=False)
    def list_faults(request: Request[Any, Any, Any]) -> Response[Any]:
        """The faults still queued, per host."""
        authorise(request, sim)
        return Response(_pending(sim), media_type=JSON)

    return Litestar(
        route_handlers=[export_bare, export_format, inject_fault, list_faults],
        middleware=[
            DefineMiddleware(BrowserGuard, target="api"),
            DefineMiddleware(FaultMiddleware, injector=sim.faults, target="api"),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )


def _pending(sim: Simulator) -> dict[str, Any]:
    return {
        "success": True,
        "pending": {t: [f.describe() for f in sim.faults.pending(t)] for t in ("api", "storage")},
    }


def _apply_fault(sim: Simulator, body: dict[str, Any]) -> None:
    """Queue what the admin body asks for; ``ValueError`` names a bad field."""
    action = body.get("action")
    count = body.get("count", 1)
    target = body.get("target", "api")
    if not isinstance(count, int) or isinstance(count, bool):
        msg = "count must be an integer"
        raise ValueError(msg)
    faults = sim.faults
    if action == "fail":
        faults.fail_next(count, status=int(body.get("status", 503)), target=target)
    elif action == "drop":
        faults.drop_next(count, target=target)
    elif action == "slow":
        faults.slow_next(float(body.get("seconds", 1.0)), count, target=target)
    elif action == "truncate":
        faults.truncate_next_download(
            count,
            keep_fraction=float(body.get("keep_fraction", 0.5)),
            content_length=bool(body.get("content_length", True)),
        )
    elif action == "clear":
        faults.clear()
    else:
        msg = "action must be one of fail, drop, slow, truncate, clear"
        raise ValueError(msg)
