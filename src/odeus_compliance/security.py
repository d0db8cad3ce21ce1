"""API-key authentication, roles and the guard that enforces them.

How a route declares who may call it (required: ``create_app`` refuses to build an app with a route that
declares neither, so a new route cannot silently be open or silently be closed)::

    @get("/api/v1/reports", opt=requires_role(Role.OFFICER, Role.AUDITOR))
    @get("/health/live", opt=public())

The authentication middleware answers 401 (problem+json) for a request without a valid key unless the route
is public (``opt["public"]``); :func:`role_guard`, installed once for the whole app, answers 403 for a role
the route does not list. Nothing is exempt by *path*: the probes are public through their controller's
``opt`` and the OpenAPI routes through the router ``create_app`` hands to Litestar, so a route that declares
roles is protected wherever it lives (a path-prefix exemption would open ``/schema/anything`` to everyone).

Two things are open to everyone on purpose: Litestar's automatic ``OPTIONS`` answer (204 and an ``Allow``
header, for CORS preflights) and the routing decision itself: an unknown path is a 404 and a wrong method a
405 whether or not a key is sent, because routing runs before authentication. That tells an anonymous caller
only which routes exist, which the public OpenAPI document at ``/schema`` says anyway; whether a *resource*
exists (``/api/v1/reports/{id}``) is never answered before the key and role are checked.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.routes import HTTPRoute

from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.errors import ConfigurationError, NotAuthenticated, PermissionDenied, SignInRequired
from odeus_compliance.state_keys import DENIAL_RECORDER_KEY, METRICS_KEY

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = [
    "ALL_ROLES",
    "AUTH_STATE_KEY",
    "PUBLIC_OPT",
    "ROLES_OPT",
    "SESSION_AUTH_STATE_KEY",
    "SESSION_OPT",
    "ApiKeyAuthenticationMiddleware",
    "ApiKeyIdentity",
    "ApiKeyPepper",
    "Authenticator",
    "ConsoleSessionResolver",
    "DenialRecorder",
    "Role",
    "check_routes_declare_access",
    "iter_http_routes",
    "public",
    "requires_role",
    "role_guard",
]

SESSION_OPT: Final = "console_session"
"""``opt`` key of console pages: authenticated by the session cookie (never by an API key)."""
SESSION_AUTH_STATE_KEY: Final = "session_authenticator"
"""``app.state`` key of the :class:`ConsoleSessionResolver` for console pages."""
PUBLIC_OPT: Final = "public"
"""``opt`` key marking a route open to everyone (also skips authentication)."""
ROLES_OPT: Final = "roles"
"""``opt`` key listing the roles that may call a route."""
AUTH_STATE_KEY: Final = "authenticator"
"""``app.state`` key of the :class:`Authenticator` the lifespan installs."""
OPENAPI_PATH: Final = "/schema"
"""Where the OpenAPI document and its renderers are served (public, through their router's ``opt``)."""
_BEARER: Final = "bearer "
_MAX_KEY_LENGTH: Final = 200


class Role(enum.StrEnum):
    """The one role an API key has."""

    OFFICER = "officer"
    """Compliance officer: requests and downloads reports."""
    AUDITOR = "auditor"
    """Auditor: reviews and verifies the audit log and the reports."""
    ADMIN = "admin"
    """Admin: manages keys, schedules and policies."""
    METRICS = "metrics"
    """A metrics scraper (Prometheus): reads ``GET /metrics`` and nothing else."""


ALL_ROLES: Final = (Role.OFFICER, Role.AUDITOR, Role.ADMIN)
"""The roles of people: what "every role" means for a route (``metrics`` is a scraper's role, not in it)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKeyIdentity:
    """Who is calling: the key's id, name and role (never the key itself). ``request.user`` holds it."""

    key_id: str
    name: str
    role: Role


class ApiKeyPepper:
    """The HMAC key for API-key hashes, derived from the master key with HKDF (its own purpose label).

    Deriving it keeps the master key itself out of this use; note that replacing the master key therefore
    invalidates every API key (issue new ones after a master-key change).
    """

    __slots__ = ("_key",)
    _INFO: Final = b"odeus-compliance/api-key-pepper/v1"

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_master_key(cls, master_key: bytes) -> ApiKeyPepper:
        """Derive the pepper from the 32-byte master key."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=cls._INFO)
        return cls(hkdf.derive(master_key))

    def digest(self, presented: str) -> str:
        """HMAC-SHA-256 of a presented key, as hex."""
        return hmac.new(self._key, presented.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "ApiKeyPepper('**********')"


class Authenticator(Protocol):
    """Resolves a presented key to an identity (``None``: unknown or revoked)."""

    async def __call__(self, presented: str) -> ApiKeyIdentity | None:
        """Look the key up."""
        ...


class ConsoleSessionResolver(Protocol):
    """Resolves a console request's session cookie to the person's identity (``None``: no live session)."""

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKeyIdentity | None:
        """Look the session up."""
        ...


def requires_role(*roles: Role | str) -> dict[str, Any]:
    """``opt`` for a route callable by ``roles`` only: ``@get(..., opt=requires_role(Role.AUDITOR))``."""
    if not roles:
        msg = "requires_role() needs at least one role"
        raise ValueError(msg)
    return {ROLES_OPT: tuple(Role(r) for r in roles)}


def public() -> dict[str, Any]:
    """``opt`` for a route without authentication (probes only; think twice)."""
    return {PUBLIC_OPT: True}


class DenialRecorder(Protocol):
    """Counts and records a refused request (``access.denied``); raises a 503 error if it cannot, and
    :class:`~odeus_compliance.errors.TooManyRequests` (429 with ``Retry-After``, answered instead of the
    401 or 403) when the client has been refused too often in the current window."""

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], status: int, reason: str
    ) -> None:
        """Record the refusal."""
        ...


async def _record_denial(connection: ASGIConnection[Any, Any, Any, Any], status: int, reason: str) -> None:
    """Record a 401/403 before it is answered (the app installs the recorder; fail closed: its 503 wins, and
    so does its 429 for a client over the limit)."""
    metrics: ServiceMetrics | None = connection.app.state.get(METRICS_KEY)
    if metrics is not None:
        metrics.access_denied(status, reason)
    recorder: DenialRecorder | None = connection.app.state.get(DENIAL_RECORDER_KEY)
    if recorder is not None:
        await recorder(connection, status, reason)


class ApiKeyAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Reads ``Authorization: Bearer <key>`` and puts the key's :class:`ApiKeyIdentity` on the connection.

    Every 401 is counted and recorded in the audit log as ``access.denied`` by an anonymous actor (never the
    key); a client refused too often in a window gets 429 instead (see ``odeus_compliance.audit.denials``)."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """401 without a valid, unrevoked key; the key is never logged or echoed. Console pages
        (``opt[SESSION_OPT]``) take the session cookie instead, and only it."""
        if connection.route_handler.opt.get(SESSION_OPT) is True:
            sessions: ConsoleSessionResolver = connection.app.state[SESSION_AUTH_STATE_KEY]
            person = await sessions(connection)
            if person is None:
                raise SignInRequired("Sign in to the console first.")
            return AuthenticationResult(user=person, auth=None)
        try:
            return await self._authenticate(connection)
        except NotAuthenticated as exc:
            await _record_denial(connection, 401, exc.extra.pop("_reason", "invalid_key"))
            raise

    @staticmethod
    async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        values = connection.headers.getall("authorization", [])
        if len(values) > 1:
            # which one counts would depend on the proxy chain: refuse rather than pick
            raise NotAuthenticated(
                "Send exactly one 'Authorization: Bearer <key>' header.", extra={"_reason": "several_keys"}
            )
        header = values[0] if values else ""
        if not header[: len(_BEARER)].lower() == _BEARER:
            raise NotAuthenticated(
                "Send an API key as 'Authorization: Bearer <key>'.", extra={"_reason": "no_key"}
            )
        presented = header[len(_BEARER) :].strip()
        if not presented or len(presented) > _MAX_KEY_LENGTH:
            raise NotAuthenticated("The API key is not valid.", extra={"_reason": "malformed_key"})
        authenticator: Authenticator = connection.app.state[AUTH_STATE_KEY]
        identity = await authenticator(presented)
        if identity is None:
            raise NotAuthenticated("The API key is not valid.", extra={"_reason": "invalid_key"})
        return AuthenticationResult(user=identity, auth=None)


async def role_guard(connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler) -> None:
    """App-wide guard: public routes pass; others need an identity whose role the route lists.

    A refusal is recorded in the audit log (``access.denied``) before it is answered."""
    opt = route_handler.opt
    if opt.get(PUBLIC_OPT) is True:
        return
    if _is_automatic_options(route_handler):
        return
    roles = opt.get(ROLES_OPT) or ()
    user = connection.scope.get("user")
    if not isinstance(user, ApiKeyIdentity):
        await _record_denial(connection, 401, "no_key")
        raise NotAuthenticated("Send an API key as 'Authorization: Bearer <key>'.")
    if user.role not in roles:
        await _record_denial(connection, 403, "wrong_role")
        raise PermissionDenied(f"This needs the role {' or '.join(sorted(str(r) for r in roles))}.")


def _is_automatic_options(handler: BaseRouteHandler) -> bool:
    """Litestar adds an ``OPTIONS`` handler to each path that answers 204 with an ``Allow`` header; it
    reveals only the method list and carries no ``opt``, so it counts as public."""
    fn = getattr(handler, "fn", None)
    return getattr(fn, "__qualname__", "").startswith("HTTPRoute.create_options_handler")


def iter_http_routes(
    app: Litestar, *, automatic_options: bool = False
) -> Iterator[tuple[str, str, HTTPRouteHandler]]:
    """Every (method, path template, handler) of ``app``, the OpenAPI routes included; Litestar's automatic
    ``OPTIONS`` handlers only with ``automatic_options=True``."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if _is_automatic_options(handler) and not automatic_options:
                continue
            for method in sorted(handler.http_methods):
                yield method, route.path, handler


def check_routes_declare_access(app: Litestar) -> None:
    """Refuse an app with a route that declares neither ``public`` nor a non-empty ``roles``."""
    for method, path, handler in iter_http_routes(app):
        is_public = handler.opt.get(PUBLIC_OPT) is True
        roles = handler.opt.get(ROLES_OPT) or ()
        has_roles = bool(roles) and all(isinstance(r, Role) for r in roles)
        if is_public == has_roles:
            msg = (
                f"route {method} {path} must declare exactly one of opt=requires_role(...) or opt=public() "
                "(see odeus_compliance.security)"
            )
            raise ConfigurationError(msg)
