"""Typed errors of the Odeus client.

Messages name what went wrong and what to do in the client's own words; they never repeat a response body
(at most an error code from the contract's known list, see :mod:`odeus_compliance.upstream.error_codes`),
and never carry row data, keys or signed URLs (a signed URL is a bearer credential). A message ends up in a
job's ``error``, a log line and the database, so each is also cleaned here: control and format characters
(ANSI escapes, bidi overrides) are dropped and the length is bounded.
"""

from __future__ import annotations

import unicodedata
from typing import Final

MAX_MESSAGE_CHARS: Final = 600


def clean_message(message: str) -> str:
    """``message`` without control or format characters (a line end becomes a space), at most
    :data:`MAX_MESSAGE_CHARS` long."""
    kept = "".join(
        " " if ch in "\t\n\r" else ch
        for ch in message
        if ch in "\t\n\r" or unicodedata.category(ch)[0] != "C"
    )
    return kept if len(kept) <= MAX_MESSAGE_CHARS else kept[: MAX_MESSAGE_CHARS - 3] + "..."


class UpstreamError(Exception):
    """Something went wrong talking to Odeus. ``retryable`` says whether trying again may help."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        message = clean_message(message)
        super().__init__(message)
        self.message = message
        self.status = status


class UpstreamUnauthorized(UpstreamError):
    """401: the API key is missing or invalid."""


class UpstreamForbidden(UpstreamError):
    """403: the key lacks the ``USAGE_EXPORT_API`` scope, the request looked like a browser's, or a signed
    download URL has expired."""


class UpstreamNoData(UpstreamError):
    """404: no usage data for the period."""


class UpstreamBadRequest(UpstreamError):
    """400 other than "Export too large": invalid range, unsupported group_by, history limit."""


class UpstreamTooLarge(UpstreamBadRequest):
    """400 ``Export too large``: the period holds more than the upstream's row cap."""

    def __init__(self, message: str, *, status: int | None = 400, row_count: int | None = None) -> None:
        super().__init__(message, status=status)
        self.row_count = row_count


class UpstreamRateLimited(UpstreamError):
    """429 after the retry budget ran out."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class UpstreamUnavailable(UpstreamError):
    """5xx, a refused or dropped connection, or a time-out, after the retry budget ran out."""

    retryable = True


class UpstreamProtocolError(UpstreamError):
    """Odeus answered something the contract does not allow (a malformed envelope, a download URL on a host
    that is not allowed, a redirect elsewhere)."""


class DownloadRefused(UpstreamProtocolError):
    """The download URL leads where the client may not go: off the allow-list, to a wrong port, or to a
    loopback, private, link-local, metadata or otherwise non-public address."""


class AnswerTooLarge(UpstreamError):
    """An answer (the export call's JSON, or the export file) is larger than the client accepts; reading
    stopped at the limit, so it never held more."""


class DownloadIncomplete(UpstreamError):
    """The export file ended early or held fewer or more rows than ``recordCount``."""

    retryable = True


class MalformedExport(UpstreamError):
    """The export file is not the CSV the contract describes (bad quoting, a cell that is not its type,
    a header without the columns every export starts with)."""


class DownloadExpired(UpstreamForbidden):
    """The storage host refused the signed download URL (it lives about 15 minutes): request the export
    again for a fresh URL."""
