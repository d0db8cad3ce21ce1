"""The upstream's error codes we recognise, so that an error message can name one without quoting Odeus.

Odeus answers an error as ``{"error", "message"}`` (CONTRACT.md). ``message`` is free text: it may quote
what was sent, name a person, or carry terminal escapes, so it is never kept. ``error`` is a short code;
it is kept only when it is one of the codes below, and then in *our* spelling, so not one character of
the upstream's body reaches a job's error, a log line or the database.
"""

from __future__ import annotations

from typing import Final

import msgspec

# The contract's codes and those its simulator (or any HTTP server in front of Odeus) uses.
KNOWN_ERRORS: Final = (
    "Bad Request",
    "Export too large",
    "Forbidden",
    "Internal Server Error",
    "Invalid date range",
    "Invalid group_by",
    "Invalid or missing API key",
    "Method Not Allowed",
    "No data found",
    "Not Found",
    "Service unavailable",
    "Too many requests",
    "Unauthorized",
)
_BY_KEY: Final = {" ".join(code.casefold().split()): code for code in KNOWN_ERRORS}
_MAX_CODE_CHARS: Final = 64


class ErrorBody(msgspec.Struct):
    """The contract's error shape; anything else decodes to empty strings."""

    error: str = ""
    message: str = ""


def known_error(text: str) -> str | None:
    """Our spelling of the error code ``text`` when it is a known one (case and spacing aside), else None."""
    if len(text) > _MAX_CODE_CHARS:
        return None
    return _BY_KEY.get(" ".join(text.casefold().split()))


def parse_error_body(data: bytes) -> ErrorBody:
    """The ``{"error", "message"}`` body, or an empty one when ``data`` is not that."""
    try:
        return msgspec.json.decode(data, type=ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorBody()
