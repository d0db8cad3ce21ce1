"""Bounds on a report's export pull: an overall deadline and a minimum throughput.

The upstream client bounds the gap between two chunks (``read``, 60 s), not the whole download: an upstream
that drips one row every few seconds would keep a job running for hours. Two more bounds stop that:

- :func:`fetch_deadline`: the whole pull (requests, retries, the download, the policy engine consuming it)
  ends by ``ODEUS_COMPLIANCE_FETCH_DEADLINE_SECONDS``;
- :class:`ThroughputTransport`: every response body must bring at least
  ``ODEUS_COMPLIANCE_FETCH_MIN_BYTES_PER_SECOND`` on average over the last
  ``ODEUS_COMPLIANCE_FETCH_THROUGHPUT_WINDOW_SECONDS`` (a body shorter than the window is never too slow;
  no byte for a whole window is).

Either raises :class:`FetchTooSlow`, whose message (safe to show, it names only the limit) becomes the failed
job's reason. The transport sits under the upstream client as :class:`~.rawdigest.DigestingTransport` does,
so the upstream package itself needs no change.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.settings import Settings

__all__ = ["FetchLimits", "FetchTooSlow", "ThroughputTransport", "fetch_deadline"]


class FetchTooSlow(OdeusComplianceError):
    """The export pull broke a deadline or throughput bound; the message names the bound, not the data."""


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How long a pull may take and how slowly its bodies may arrive."""

    deadline_seconds: float = 1800.0
    min_bytes_per_second: float = 1024.0
    window_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        """The limits configured in ``settings``."""
        return cls(
            deadline_seconds=settings.fetch_deadline_seconds,
            min_bytes_per_second=settings.fetch_min_bytes_per_second,
            window_seconds=settings.fetch_throughput_window_seconds,
        )

    def too_slow(self) -> FetchTooSlow:
        """The error of a body below the minimum throughput."""
        return FetchTooSlow(
            f"the Odeus export arrived slower than {self.min_bytes_per_second:g} bytes/s over "
            f"{self.window_seconds:g} s (ODEUS_COMPLIANCE_FETCH_MIN_BYTES_PER_SECOND), "
            "so the pull was stopped"
        )

    def too_late(self) -> FetchTooSlow:
        """The error of a pull past its deadline."""
        return FetchTooSlow(
            f"the Odeus export was not fetched within {self.deadline_seconds:g} s "
            "(ODEUS_COMPLIANCE_FETCH_DEADLINE_SECONDS), so the pull was stopped"
        )


@asynccontextmanager
async def fetch_deadline(limits: FetchLimits) -> AsyncIterator[None]:
    """The block must end within the deadline: it is cancelled then, and :class:`FetchTooSlow` raised."""
    try:
        async with asyncio.timeout(limits.deadline_seconds):
            yield
    except TimeoutError:
        raise limits.too_late() from None


class _PacedStream(httpx.AsyncByteStream):
    """A response body that must keep up the minimum throughput over a sliding window."""

    def __init__(self, inner: httpx.AsyncByteStream, limits: FetchLimits) -> None:
        self._inner = inner
        self._limits = limits

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limits = self._limits
        needed = limits.min_bytes_per_second * limits.window_seconds
        started = time.monotonic()
        recent: deque[tuple[float, int]] = deque()  # (arrival, size) of the chunks inside the window
        in_window = 0
        chunks = aiter(self._inner)
        while True:
            try:
                async with asyncio.timeout(limits.window_seconds):  # no byte for a whole window: too slow
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise limits.too_slow() from None
            now = time.monotonic()
            recent.append((now, len(chunk)))
            in_window += len(chunk)
            while recent and recent[0][0] <= now - limits.window_seconds:
                in_window -= recent.popleft()[1]
            if now - started >= limits.window_seconds and in_window < needed:
                raise limits.too_slow()
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class ThroughputTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; every response body it returns must keep up :class:`FetchLimits`' throughput."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None, limits: FetchLimits) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._limits = limits

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _PacedStream(response.stream, self._limits)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
