"""The HTTP exchanges with Odeus, one attempt each, with the contract's statuses turned into typed errors.

Requests are built by hand (``httpx.Request``) rather than with the client's ``build_request``, so nothing
the caller configured on a shared ``httpx.AsyncClient`` leaks into them: no default headers, no cookie jar,
no client-level auth. The API call carries ``Authorization``; the download of the signed URL carries no
credential of ours at all, follows no redirect and goes only to an allowed host. Neither ever sends
``Origin`` (Odeus refuses browser-like requests). Messages name hosts and statuses, never a signed URL,
the key, or a response body beyond Odeus's short ``error``/``message`` text.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import msgspec

from odeus_compliance import __version__
from odeus_compliance.upstream.backoff import parse_retry_after
from odeus_compliance.upstream.config import OdeusClientConfig
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
_TEXT_LIMIT = 200
_ROW_COUNT = re.compile(r"(\d[\d,.\s]*\d|\d)")
_CONNECTION_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class _ErrorBody(msgspec.Struct):
    error: str = ""
    message: str = ""


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


def download_request(config: OdeusClientConfig, url: str) -> httpx.Request:
    """The GET of a signed download URL: no Authorization, no cookies, only to an allowed host."""
    check_download_url(config, url)
    return httpx.Request(
        "GET",
        url,
        headers={"Accept": "text/csv", "User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        extensions=timeout_extension(config),
    )


def check_download_url(config: OdeusClientConfig, url: str) -> None:
    """Refuse a download URL that is not ``https`` on an allowed host (or ``http`` on an allow-listed one).

    With an empty allow-list any ``https`` host is accepted; with a list, only its hosts (an entry starting
    with ``.`` also allows sub-domains). Plain ``http`` is only for allow-listed hosts (tests on loopback).
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        msg = "Odeus sent a download URL that is not a URL"
        raise UpstreamProtocolError(msg) from None
    host = parsed.host.lower()
    listed = _host_listed(host, config.download_hosts)
    allowed = (parsed.scheme == "https" and (listed or not config.download_hosts)) or (
        parsed.scheme == "http" and listed
    )
    if not allowed or not host:
        msg = (
            f"Odeus sent a download URL on host {host or '(none)'!r} over {parsed.scheme or '(none)'}, which "
            "is not allowed (only https, and only hosts on the download allow-list when one is configured)"
        )
        raise UpstreamProtocolError(msg)


def _host_listed(host: str, allowed: frozenset[str]) -> bool:
    return host in allowed or any(entry.startswith(".") and host.endswith(entry) for entry in allowed)


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
    response: httpx.Response, *, now: Any, api_key: str = ""
) -> UpstreamError:
    """The typed error for a non-2xx answer of the export API (reads at most a small error body).

    Odeus's own short ``error``/``message`` text is quoted, with ``api_key`` blanked out should it echo it.
    """
    status = response.status_code
    body = await _error_body(response)
    said = _said(body, api_key)
    if status == 400:
        if body.error.strip().lower() == "export too large":
            msg = f"Odeus refused the export as too large{said}"
            return UpstreamTooLarge(msg, row_count=_row_count(body.message))
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
        try:
            location = httpx.URL(response.headers.get("Location", "")).host or "(unknown host)"
        except httpx.InvalidURL:
            location = "(not a URL)"
        msg = f"Odeus answered with a redirect ({status}) to host {location!r}; redirects are not followed"
        return UpstreamProtocolError(msg, status=status)
    return UpstreamProtocolError(f"Odeus answered with unexpected status {status}", status=status)


def error_for_download_response(response: httpx.Response, *, now: Any) -> UpstreamError:
    """The typed error for a non-200 answer of the storage host (its body is never read)."""
    status = response.status_code
    host = response.request.url.host
    if 300 <= status < 400:
        msg = f"the storage host {host!r} answered the download with a redirect ({status}); refused"
        return UpstreamProtocolError(msg, status=status)
    if status in (401, 403):
        msg = (
            f"the storage host {host!r} refused the signed download URL ({status}): it has probably "
            "expired (Odeus's URLs live about 15 minutes); request the export again"
        )
        return DownloadExpired(msg, status=status)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return UpstreamRateLimited(
            f"the storage host {host!r} rate-limited the download (429)", retry_after=retry_after
        )
    if status >= 500:
        return UpstreamUnavailable(f"the storage host {host!r} is unavailable ({status})", status=status)
    if status == 404:
        return DownloadIncomplete(
            f"the storage host {host!r} does not have the export file (404)", status=status
        )
    return UpstreamProtocolError(
        f"the storage host {host!r} answered with unexpected status {status}", status=status
    )


async def _error_body(response: httpx.Response) -> _ErrorBody:
    data = b""
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > MAX_ERROR_BODY:
                break
    except _CONNECTION_ERRORS:
        return _ErrorBody()
    try:
        return msgspec.json.decode(data, type=_ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _ErrorBody()


def _said(body: _ErrorBody, api_key: str = "") -> str:
    parts = [text.strip()[:_TEXT_LIMIT] for text in (body.error, body.message) if text.strip()]
    said = f": {' - '.join(parts)}" if parts else ""
    return said.replace(api_key, "<redacted>") if api_key else said


def _row_count(message: str) -> int | None:
    found = _ROW_COUNT.search(message)
    if not found:
        return None
    digits = re.sub(r"\D", "", found.group(1))
    return int(digits) if digits else None
