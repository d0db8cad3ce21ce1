"""Errors on console routes answer with a page, never a stack trace or a problem document: the same status,
title and message the API would give (:mod:`odeus_compliance.problems` decides them), in the console's
layout. A page without a live session sends the browser to the sign-in page instead."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from odeus_compliance.console.web import page
from odeus_compliance.errors import AppError, SignInRequired
from odeus_compliance.problems import exception_handlers

__all__ = ["app_exception_handlers", "console_exception_handlers", "sign_in_redirect"]

_API_HANDLERS = exception_handlers()


def sign_in_redirect(request: Request[Any, Any, Any]) -> Response[str]:
    """To the sign-in page, coming back here afterwards (htmx: a full-page redirect)."""
    back = request.url.path if request.method == "GET" else "/console/"
    target = f"/console/sign-in?next={quote(back, safe='/')}"
    if request.headers.get("hx-request") == "true":
        return Response("", status_code=204, headers={"HX-Redirect": target})
    return Response("", status_code=303, headers={"Location": target})


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, SignInRequired):
        return sign_in_redirect(request)
    handler = _API_HANDLERS[
        AppError
        if isinstance(exc, AppError)
        else HTTPException
        if isinstance(exc, HTTPException)
        else Exception
    ]
    problem = handler(request, exc)
    content = problem.content if isinstance(problem.content, dict) else {}
    status = problem.status_code or 500
    headers = {k: v for k, v in problem.headers.items() if k.lower() in {"retry-after", "allow"}}
    return page(
        request,
        "error.html",
        title=str(content.get("title") or "Error"),
        status=status,
        headers=headers,
        status_code=status,
        detail=str(content.get("detail") or ""),
        errors=[e for e in content.get("errors", []) if isinstance(e, dict)],
    )


def console_exception_handlers() -> ExceptionHandlersMap:
    """Installed on the console's router: every error becomes a page."""
    return {AppError: _error_page, HTTPException: _error_page, Exception: _error_page}


def _routing_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    path = request.url.path
    if path == "/console" or path.startswith("/console/"):
        return _error_page(request, exc)
    return _API_HANDLERS[HTTPException](request, exc)


def app_exception_handlers() -> ExceptionHandlersMap:
    """The app's handlers: problem documents, except that an HTTP error under ``/console/`` that no console
    route saw (Litestar's routing decides 404 and 405 before any route: ``/console/sign-in/a/b``) is a page
    too."""
    return {**_API_HANDLERS, HTTPException: _routing_error}
