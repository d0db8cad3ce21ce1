"""The application's errors: each with its HTTP meaning, which :mod:`odeus_compliance.problems` renders.

This module imports no web framework, so the CLI and the settings can raise these cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AppError",
    "ConfigurationError",
    "Conflict",
    "NotAuthenticated",
    "NotFound",
    "OdeusComplianceError",
    "PayloadTooLarge",
    "PermissionDenied",
    "ServiceUnavailable",
    "TooManyRequests",
    "ValidationFailed",
]


class OdeusComplianceError(Exception):
    """Root of every error this package raises on purpose; its message is safe to show (no personal data)."""


class ConfigurationError(OdeusComplianceError):
    """The configuration is missing or invalid; the message names the variable, never its value."""


class AppError(OdeusComplianceError):
    """An error with an HTTP meaning. Subclasses fix ``status``, ``code`` (the problem type) and ``title``.

    ``detail`` must be written for the client and hold no personal data; ``extra`` adds problem members.
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.detail)


class NotAuthenticated(AppError):
    """No API key, or one that is unknown or revoked."""

    status = 401
    code = "not-authenticated"
    title = "Not authenticated"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="odeus-compliance"')


class SignInRequired(NotAuthenticated):
    """A console page without a live session: the browser is sent to the sign-in page (not recorded as a
    refusal: no credential was presented)."""


class PermissionDenied(AppError):
    """The key is valid but its role may not do this."""

    status = 403
    code = "permission-denied"
    title = "Permission denied"


class NotFound(AppError):
    """The resource does not exist (or the caller may not know that it does)."""

    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(AppError):
    """The request conflicts with the current state (a duplicate, a job already running)."""

    status = 409
    code = "conflict"
    title = "Conflict"


class ValidationFailed(AppError):
    """The request is well-formed but its content is not acceptable (a bad month, an unknown policy)."""

    status = 400
    code = "validation-failed"
    title = "Request is not valid"

    @classmethod
    def at(cls, key: str, expected: str, *, source: str = "body") -> ValidationFailed:
        """A refusal of one field that names it and what it must be (``expected``), never the value sent;
        the problem's ``errors`` member carries the same, for a client to show next to the field."""
        return cls(
            f"'{key}' {expected}.", extra={"errors": [{"key": key, "source": source, "message": expected}]}
        )


class PayloadTooLarge(AppError):
    """The request body is larger than the route accepts."""

    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class TooManyRequests(AppError):
    """The client was refused too often in the current window; ``Retry-After`` says when the window ends."""

    status = 429
    code = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", str(max(1, retry_after)))


class ServiceUnavailable(AppError):
    """A dependency (database, upstream, key ring) is not available right now; retrying may help."""

    status = 503
    code = "service-unavailable"
    title = "Service unavailable"
