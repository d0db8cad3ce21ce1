"""Typed errors of the Odeus client.

Messages name what went wrong and what to do; they never repeat response bodies verbatim beyond Odeus's own
short error text, and never carry row data, keys or signed URLs (a signed URL is a bearer credential).
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Something went wrong talking to Odeus. ``retryable`` says whether trying again may help."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
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


class DownloadIncomplete(UpstreamError):
    """The export file ended early or held fewer or more rows than ``recordCount``."""

    retryable = True


class MalformedExport(UpstreamError):
    """The export file is not the CSV the contract describes (bad quoting, a cell that is not its type,
    a header without the columns every export starts with)."""


class DownloadExpired(UpstreamForbidden):
    """The storage host refused the signed download URL (it lives about 15 minutes): request the export
    again for a fresh URL."""
