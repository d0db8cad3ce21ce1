"""The HTTP exchanges with Odeus, one attempt each, with the contract's statuses turned into typed errors.

Requests are built by hand (``httpx.Request``) rather than with the client's ``build_request``, so nothing
the caller configured on a shared ``httpx.AsyncClient`` leaks into them: no default headers, no cookie jar,
no client-level auth. The API call carries ``Authorization``; the download of the signed URL carries no
credential of ours at all, follows no redirect, and goes only to an allowed host and port, connected at
the address that was checked (:mod:`odeus_compliance.upstream.download_target`). Neither ever sends
``Origin`` (Odeus refuses browser-like requests). Messages name hosts and statuses, never a signed URL,
the key, or any text of a response body: at most an error code from the contract's known list
(:mod:`odeus_compliance.upstream.error_codes`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import msgspec

from odeus_compliance import __version__
from odeus_compliance.upstream.address_guard import IPAddress, literal_address, refusal
from odeus_compliance.upstream.backoff import parse_retry_after
from odeus_compliance.upstream.config import OdeusClientConfig
from odeus_compliance.upstream.download_target import DownloadTarget, shown_host
from odeus_compliance.upstream.download_target import check_download_url as _check_url
from odeus_compliance.upstream.error_codes import ErrorBody, known_error, parse_error_body
from odeus_compliance.upstream.errors import (
    DownloadExpired,
    DownloadIncomplete,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNoData,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTooLarge,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)

logger = logging.getLogger("odeus_compliance.upstream.http")

USER_AGENT = f"odeus-compliance/{__version__}"
MAX_ERROR_BODY = 16 << 10
_ROW_COUNT = re.compile(r"(\d[\d,.\s]*\d|\d)")
_CONNECTION_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def timeout_extension(config: OdeusClientConfig) -> dict[str, Any]:
    """The per-request timeout httpx reads from a hand-built request."""
    t = config.timeouts
    return {"timeout": httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool).as_dict()}


def api_request(config: OdeusClientConfig, path: str, body: dict[str, Any]) -> httpx.Request:
    """The POST to an export route."""
    return httpx.Request(
        "POST",
        config.base_url.rstrip("/") + path,
        headers={
            "Authorization": f"Bearer {config.api_key}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        },
        content=msgspec.json.encode(body),
        extensions=timeout_extension(config),
    )


def download_request(
    config: OdeusClientConfig, url: str, *, address: IPAddress | None = None
) -> httpx.Request:
    """The GET of a signed download URL: no Authorization, no cookies, only to an allowed host and port.

    With ``address`` (from :func:`~odeus_compliance.upstream.download_target.pinned_address`) the
    connection goes to that address, with the URL's own ``Host`` header and TLS server name.
    """
    target = check_download_url(config, url)
    headers = {"Accept": "text/csv", "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    extensions = timeout_extension(config)
    if address is None:
        return httpx.Request("GET", target.url, headers=headers, extensions=extensions)
    headers["Host"] = target.url.netloc.decode("ascii")
    if literal_address(target.host) is None:
        extensions["sni_hostname"] = target.host
    pinned = target.url.copy_with(host=str(address))
    return httpx.Request("GET", pinned, headers=headers, extensions=extensions)


def check_download_url(config: OdeusClientConfig, url: str) -> DownloadTarget:
    """The checked target of a download URL; raises ``DownloadRefused`` (an ``UpstreamProtocolError``)
    when the URL rules of :mod:`odeus_compliance.upstream.download_target` refuse it."""
    return _check_url(config.base_url, config.allow_entries, url)


def connection_error(error: Exception, *, where: str) -> UpstreamError:
    """A network failure as a retryable error that names only its kind.

    httpx reports a redirect whose ``Location`` is not a URL as a ``RemoteProtocolError`` even though it
    follows no redirect; that is a contract breach of the answer, not connection trouble: not retried.
    """
    if isinstance(error, httpx.RemoteProtocolError) and "location header" in str(error).lower():
        return UpstreamProtocolError(
            f"{where}: a redirect with a malformed Location (redirects are not followed); refused"
        )
    return UpstreamUnavailable(f"{where}: {type(error).__name__} (connection refused, dropped or timed out)")


class RedactUrlQueries(logging.Filter):
    """Rewrites log records of the HTTP libraries so that no URL keeps its query string.

    httpx logs every request URL at INFO (``HTTP Request: GET https://...?...&signature=...``) and httpcore
    logs response headers (a redirect's ``Location``) at DEBUG: a signed download URL is a bearer credential,
    so whatever logging the embedding application configures, its query never reaches a log line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        redacted = _URL_QUERY.sub(r"\1?<redacted>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_URL_QUERY = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s?#\"'<>]*)\?[^\s\"'<>]*")
_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


def redact_http_library_logs() -> None:
    """Install :class:`RedactUrlQueries` on the loggers of httpx and httpcore (once; idempotent).

    A logger's filter sees only records logged on that very logger, so each httpcore module logger gets one.
    """
    for name in _HTTP_LOGGERS:
        library_logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrlQueries) for f in library_logger.filters):
            library_logger.addFilter(RedactUrlQueries())


async def error_for_api_response(  # noqa: PLR0911 - one return per status of the contract
    response: httpx.Response, *, now: Any
) -> UpstreamError:
    """The typed error for a non-2xx answer of the export API (reads at most a small error body).

    Only a known error code of the contract is named, in our spelling; Odeus's free ``message`` text is
    never kept (it may quote personal data or carry terminal escapes), except the row count of "Export too
    large", read as a number.
    """
    status = response.status_code
    body = await _error_body(response)
    said = _said(body)
    if status == 400:
        if known_error(body.error) == "Export too large":
            row_count = _row_count(body.message)
            rows = f" ({row_count} rows)" if row_count is not None else ""
            return UpstreamTooLarge(f"Odeus refused the export as too large{rows}", row_count=row_count)
        return UpstreamBadRequest(f"Odeus refused the request (400){said}", status=status)
    if status == 401:
        msg = f"Odeus did not accept the API key (401){said}: check the configured key (ODEUS_API_KEY)"
        return UpstreamUnauthorized(msg, status=status)
    if status == 403:
        msg = (
            f"Odeus refused access (403){said}: the key may lack the USAGE_EXPORT_API scope (only workspace "
            "admins can create such keys)"
        )
        return UpstreamForbidden(msg, status=status)
    if status == 404:
        return UpstreamNoData(f"Odeus has no usage data for the period (404){said}", status=status)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return UpstreamRateLimited(f"Odeus rate-limited the request (429){said}", retry_after=retry_after)
    if status >= 500:
        return UpstreamUnavailable(f"Odeus is unavailable ({status})", status=status)
    if 300 <= status < 400:
        target = _redirect_target(response)
        msg = f"Odeus answered with a redirect ({status}) to {target}; redirects are not followed"
        return UpstreamProtocolError(msg, status=status)
    return UpstreamProtocolError(f"Odeus answered with unexpected status {status}", status=status)


def error_for_download_response(
    response: httpx.Response, *, now: Any, host: str | None = None
) -> UpstreamError:
    """The typed error for a non-200 answer of the storage host (its body is never read).

    ``host`` is the URL's host when the request went to a pinned address.
    """
    status = response.status_code
    host = shown_host(host or response.request.url.host)
    if 300 <= status < 400:
        msg = (
            f"the storage host {host} answered the download with a redirect ({status}) to "
            f"{_redirect_target(response)}; redirects are not followed, so it was refused"
        )
        return UpstreamProtocolError(msg, status=status)
    if status in (401, 403):
        msg = (
            f"the storage host {host} refused the signed download URL ({status}): it has probably "
            "expired (Odeus's URLs live about 15 minutes); request the export again"
        )
        return DownloadExpired(msg, status=status)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return UpstreamRateLimited(
            f"the storage host {host} rate-limited the download (429)", retry_after=retry_after
        )
    if status >= 500:
        return UpstreamUnavailable(f"the storage host {host} is unavailable ({status})", status=status)
    if status == 404:
        return DownloadIncomplete(
            f"the storage host {host} does not have the export file (404)", status=status
        )
    return UpstreamProtocolError(
        f"the storage host {host} answered with unexpected status {status}", status=status
    )


async def _error_body(response: httpx.Response) -> ErrorBody:
    data = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > MAX_ERROR_BODY:
                return ErrorBody()  # not the contract's short error shape
    except _CONNECTION_ERRORS:
        return ErrorBody()
    return parse_error_body(bytes(data))


def _said(body: ErrorBody) -> str:
    code = known_error(body.error)
    return f": {code}" if code is not None else ""


def _redirect_target(response: httpx.Response) -> str:
    """Where a redirect points, in words: its host when printable, and why it would be refused anyway."""
    try:
        location = httpx.URL(response.headers.get("Location", ""))
        host = location.raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeDecodeError):
        return "something that is not a URL"
    if not host:
        return "a path on the same host"
    address = literal_address(host)
    reason = refusal(address) if address is not None else None
    return f"host {shown_host(host)}" + (f" ({reason})" if reason is not None else "")


def _row_count(message: str) -> int | None:
    found = _ROW_COUNT.search(message)
    if not found:
        return None
    digits = re.sub(r"\D", "", found.group(1))
    return int(digits) if digits else None
