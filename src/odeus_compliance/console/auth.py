"""Who is signed in, and whether a form really comes from their console.

:func:`authenticate_session` is the app's :class:`~odeus_compliance.security.ConsoleSessionResolver`: it reads
the session cookie of a console page and gives the person's identity (the role guard then checks the
page's roles as for an API key). :func:`check_csrf` runs before every console route: a state-changing
request must carry the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``), or it is
refused (403, recorded as a refusal) before anything happens.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Request
from litestar.connection import ASGIConnection
from sqlalchemy.exc import SQLAlchemyError

from odeus_compliance.audit.recording import record_denial
from odeus_compliance.console import store
from odeus_compliance.console.identity import ConsoleIdentity, actor_id
from odeus_compliance.console.runtime import console_of
from odeus_compliance.console.tokens import TOKEN_SHAPE
from odeus_compliance.core.clock import utcnow
from odeus_compliance.errors import PermissionDenied, ServiceUnavailable
from odeus_compliance.security import Role

__all__ = ["CSRF_FIELD", "authenticate_session", "check_csrf", "session_token"]

CSRF_FIELD: Final = "csrf_token"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def session_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The session cookie's token, if it has the shape of one."""
    token = connection.cookies.get(console_of(connection).session_cookie)
    return token if token is not None and TOKEN_SHAPE.fullmatch(token) else None


async def authenticate_session(connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleIdentity | None:
    """The person of a live session, or ``None`` (no cookie, unknown, idle or expired)."""
    token = session_token(connection)
    if token is None:
        return None
    console = console_of(connection)
    try:
        async with console.sessions() as session:
            row = await store.find_session(
                session, keys=console.keys, token=token, idle=console.idle, now=utcnow()
            )
    except (SQLAlchemyError, OSError):  # as for an API key: the session may well be fine
        raise ServiceUnavailable("Cannot check the session now: the database is not reachable.") from None
    if row is None:
        return None
    return ConsoleIdentity(
        key_id=actor_id(row.principal),
        name=row.person_name,
        role=Role(row.role),
        session_id=row.session_id,
        csrf_token=console.keys.csrf_token(token),
        method=row.method,
    )


async def check_csrf(request: Request[Any, Any, Any]) -> None:
    """Refuse a state-changing console request without the session's CSRF token."""
    if request.method in _SAFE_METHODS:
        return
    token = session_token(request)
    presented = request.headers.get("x-csrf-token")
    if presented is None and (request.headers.get("content-type") or "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if token is not None and presented and console_of(request).keys.csrf_matches(token, presented):
        return
    await record_denial(request, 403, "csrf_token")
    raise PermissionDenied(
        "This form has expired or did not come from the console: reload the page and try again."
    )
