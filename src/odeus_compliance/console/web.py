"""Answering with console pages: the signed-in person, their sections and CSRF token in every page's context,
the console's Content-Security-Policy, and no caching of pages that show personal or audit data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection

from odeus_compliance.console.identity import ConsoleIdentity
from odeus_compliance.console.navigation import sections_for
from odeus_compliance.console.runtime import console_of
from odeus_compliance.core.clock import utcnow

__all__ = ["CONSOLE_CSP", "PAGE_HEADERS", "identity_of", "is_quiet_refresh", "note_read", "page"]

CONSOLE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""No inline script or style anywhere in the console; everything comes from this service."""
PAGE_HEADERS: Final = {
    "content-security-policy": CONSOLE_CSP,
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
}


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleIdentity | None:
    """The signed-in person of this request, if any."""
    user = connection.scope.get("user")
    return user if isinstance(user, ConsoleIdentity) else None


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    title: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """Render a page (or, for an htmx request, the same template: it decides what to show) with the
    signed-in person, their sections and the CSRF token in its context."""
    user = identity_of(request)
    html = console_of(request).templates.render(
        template,
        {
            "title": title,
            "user": user,
            "csrf_token": user.csrf_token if user is not None else "",
            "sections": sections_for(user.role) if user is not None else (),
            "current_path": request.url.path,
            "is_htmx": request.headers.get("hx-request") == "true",
            **context,
        },
    )
    return Response(
        html,
        status_code=status,
        media_type=MediaType.HTML,
        headers={**PAGE_HEADERS, **(headers or {})},
    )


def is_quiet_refresh(request: Request[Any, Any, Any], resource: str) -> bool:
    """Whether this request is a page's htmx refresh of ``resource`` that this session read lately (then
    it is not recorded again); a first htmx request, or one after a pause, is recorded like a page view."""
    person = identity_of(request)
    return (
        person is not None
        and request.headers.get("hx-request") == "true"
        and console_of(request).recent_reads.is_fresh(person.session_id, resource, utcnow())
    )


def note_read(request: Request[Any, Any, Any], resource: str) -> None:
    """This session has read ``resource`` now (after its record was written, or in a quiet refresh)."""
    person = identity_of(request)
    if person is not None:
        console_of(request).recent_reads.mark(person.session_id, resource, utcnow())
