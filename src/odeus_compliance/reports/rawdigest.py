"""The SHA-256 and size of the raw export exactly as received, for the report's manifest.

The upstream client streams and parses the export; it never holds the raw file. This httpx transport sits
under it and hashes every successful response body as the bytes go by (nothing is kept), so the manifest
can name the export file a report was computed from, and an auditor holding that file can check it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["BodyDigest", "DigestingTransport"]


@dataclass(slots=True)
class BodyDigest:
    """One response body: method, SHA-256 so far, bytes, and whether it was read to its end."""

    method: str
    hasher: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    complete: bool = False


class _DigestingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, digest: BodyDigest) -> None:
        self._inner = inner
        self._digest = digest

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._digest.hasher.update(chunk)
            self._digest.size += len(chunk)
            yield chunk
        self._digest.complete = True

    async def aclose(self) -> None:
        await self._inner.aclose()


class DigestingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; records a :class:`BodyDigest` of every 200 response."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self.bodies: list[BodyDigest] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code == 200 and isinstance(response.stream, httpx.AsyncByteStream):
            digest = BodyDigest(request.method)
            self.bodies.append(digest)
            response.stream = _DigestingStream(response.stream, digest)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def export_facts(self) -> dict[str, Any]:
        """``{"sha256", "bytes", "downloads"}`` of the export file(s) read to their end.

        The CSV route's file is the body of the download (GET); the JSON route has only the API answer
        (POST). A split export has several files: the digest is then over their bytes in download order.
        """
        complete = [b for b in self.bodies if b.complete]
        files = [b for b in complete if b.method == "GET"] or [b for b in complete if b.method == "POST"]
        if len(files) == 1:
            return {"sha256": files[0].hasher.hexdigest(), "bytes": files[0].size, "downloads": 1}
        combined = hashlib.sha256()
        for body in files:
            combined.update(bytes.fromhex(body.hasher.hexdigest()))
        return {
            "sha256": combined.hexdigest() if files else None,
            "sha256_of": "the SHA-256 digests of the parts, in order" if files else "nothing received",
            "bytes": sum(b.size for b in files),
            "downloads": len(files),
        }
