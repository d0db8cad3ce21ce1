"""WeasyPrint's URL fetcher for reports: bundled assets only, everything else aborts the render.

WeasyPrint's default fetcher follows http(s), ftp, file and data URLs; a template (or anything injected into
one) could then read local files into the PDF or call out to the network. This fetcher never opens a socket
or a file at fetch time: at construction it reads an allow-list of the template folder's asset files into
memory and serves them under a made-up base URL (``.invalid`` never resolves). Any other URL, including
``file:``, ``data:``, a path that leaves the folder or a file that is not an asset, raises, and with
``fail_on_errors`` WeasyPrint turns that into :class:`weasyprint.urls.FatalURLFetchingError`: the render
stops instead of logging a warning.

The attachments of a report are served the same way, from memory, under their own prefix, so WeasyPrint
learns their media type from the response (it would otherwise guess it from the file name).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse

BASE_URL = "https://report-assets.invalid/"
ATTACHMENT_PREFIX = "_attachments/"
ASSET_TYPES: Mapping[str, str] = {
    ".css": "text/css",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
}
MAX_ASSET_BYTES = 4 * 1024 * 1024


class BlockedURL(ValueError):
    """A URL outside the bundled assets was requested (the message never repeats the URL)."""


def bundled_assets(template_dir: Path) -> dict[str, tuple[bytes, str]]:
    """The servable files under ``template_dir``: relative POSIX path -> (bytes, media type).

    Only regular files with an asset suffix, inside the folder after resolving symlinks, count.
    """
    root = template_dir.resolve()
    assets: dict[str, tuple[bytes, str]] = {}
    for path in sorted(root.rglob("*")):
        media_type = ASSET_TYPES.get(path.suffix.lower())
        if media_type is None or not path.is_file():
            continue
        real = path.resolve()
        if not real.is_relative_to(root) or real.stat().st_size > MAX_ASSET_BYTES:
            continue
        assets[real.relative_to(root).as_posix()] = (real.read_bytes(), media_type)
    return assets


class BundledAssetFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint ships no type hints
    """Serves the template folder's assets and in-memory attachments; refuses every other URL."""

    def __init__(
        self,
        template_dir: Path,
        *,
        attachments: Mapping[str, tuple[bytes, str]] | None = None,
        strict: bool = True,
    ) -> None:
        super().__init__(allowed_protocols=(), allow_redirects=False, fail_on_errors=strict, timeout=1)
        self._served: dict[str, tuple[bytes, str]] = {
            BASE_URL + path: asset for path, asset in bundled_assets(template_dir).items()
        }
        for name, (data, media_type) in (attachments or {}).items():
            self._served[attachment_url(name)] = (data, media_type)
        self.refused = 0  # how many URLs were refused (tests and logs count, never print them)

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        """The bundled bytes of ``url``, or :class:`BlockedURL`."""
        found = self._served.get(_normalised(url))
        if found is None:
            self.refused += 1
            msg = "the report asked for a resource that is not a bundled asset; refused"
            raise BlockedURL(msg)
        data, media_type = found
        return URLFetcherResponse(url, data, {"Content-Type": media_type})


def attachment_url(name: str) -> str:
    """The URL under which an attachment's bytes are served to WeasyPrint."""
    return BASE_URL + ATTACHMENT_PREFIX + name


def _normalised(url: str) -> str:
    """``url`` without its fragment (fonts are fetched as ``font.ttf#...``); anything odd maps to ``""``."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is no number (its message would repeat the URL)
    except ValueError:
        return ""
    if parts.scheme != "https" or parts.query or parts.username or parts.password or port:
        return ""
    path = unquote(parts.path)
    if "\\" in path or "/../" in f"{path}/" or "/./" in f"{path}/" or "//" in path:
        return ""
    return f"https://{parts.netloc}{path}"


def media_type_for(name: str) -> str:
    """A media type for a file name (used only when the caller gives none)."""
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
