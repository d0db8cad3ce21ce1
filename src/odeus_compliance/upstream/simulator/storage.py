"""The storage host: export files held in memory, served only through signed, unexpired URLs.

It is a separate Litestar app on its own port, as Odeus's downloads come from a storage host, not the API.
Like the API it refuses any request that carries an ``Origin`` header (403).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar import Litestar, Request, get
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath
from litestar.response import Response, Stream

from odeus_compliance.upstream.simulator.errors import OdeusError
from odeus_compliance.upstream.simulator.faults import FaultInjector, FaultMiddleware
from odeus_compliance.upstream.simulator.guard import BrowserGuard
from odeus_compliance.upstream.simulator.signing import UrlSigner, Verdict

CHUNK_BYTES = 256 * 1024
MAX_FILES = 64


class BlobStore:
    """Rendered export files by path; expired and surplus (oldest first) files are forgotten."""

    def __init__(self, clock: Callable[[], float], max_files: int = MAX_FILES) -> None:
        self._clock = clock
        self._max_files = max_files
        self._files: OrderedDict[str, tuple[bytes, int]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, path: str, data: bytes, expires: int) -> None:
        """Keep ``data`` until ``expires``."""
        now = self._clock()
        with self._lock:
            for stale in [p for p, (_, until) in self._files.items() if until < now]:
                del self._files[stale]
            self._files[path] = (data, expires)
            while len(self._files) > self._max_files:
                self._files.popitem(last=False)

    def get(self, path: str) -> bytes | None:
        """The file's bytes, if still held."""
        with self._lock:
            held = self._files.get(path)
        return held[0] if held else None


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), CHUNK_BYTES):
        yield bytes(view[start : start + CHUNK_BYTES])


def _error_response(error: OdeusError) -> Response[Any]:
    return Response(error.body(), status_code=error.status, headers=error.headers)


def create_storage_app(
    store: BlobStore,
    signer: UrlSigner,
    faults: FaultInjector,
    exception_handlers: dict[Any, Any],
) -> Litestar:
    """The storage app: ``GET /files/{path}?expires=...&signature=...``."""

    @get("/files/{file_path:path}", operation_id="downloadExport", sync_to_thread=False)
    def download(request: Request[Any, Any, Any], file_path: FromPath[str]) -> Response[Any] | Stream:
        """Stream one export file (CSV) to the holder of a valid signed URL."""
        path = file_path.lstrip("/")
        verdict = signer.check(
            path, request.query_params.get("expires"), request.query_params.get("signature")
        )
        if verdict is Verdict.EXPIRED:
            return _error_response(OdeusError(403, "Forbidden", "The download link has expired"))
        if verdict is Verdict.INVALID:
            return _error_response(OdeusError(403, "Forbidden", "The download link is not valid"))
        data = store.get(path)
        if data is None:
            return _error_response(OdeusError(404, "Not Found", "No such file"))
        return Stream(
            _chunks(data),
            media_type="text/csv",
            headers={"content-length": str(len(data))},
        )

    return Litestar(
        route_handlers=[download],
        middleware=[
            DefineMiddleware(BrowserGuard, target="storage"),
            DefineMiddleware(FaultMiddleware, injector=faults, target="storage"),
        ],
        exception_handlers=exception_handlers,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
