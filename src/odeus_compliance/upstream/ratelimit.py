"""A client-side request limit, so the client never earns Odeus's 429 on its own.

Odeus allows 500 requests a minute per workspace. A token bucket with a burst allowance can let ``burst +
rate`` requests through one sliding minute, so this is a *sliding-window* limiter instead: it guarantees at
most ``limit`` requests in any window of ``period`` seconds, which is exactly the property Odeus enforces.

Each caller reserves the earliest free slot synchronously (no ``await`` between reading and writing the
window, so coroutines sharing one limiter cannot race) and then sleeps until its slot. Memory is bounded by
the reservations in flight plus ``limit`` timestamps. The clock and the sleep function are injectable.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

EDGE_MARGIN = 0.001


class RateLimiter:
    """At most ``limit`` acquisitions in any ``period``-second window, for all coroutines of one loop."""

    def __init__(
        self,
        limit: int,
        period: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1 or period <= 0:
            msg = "a rate limit needs a positive limit and period"
            raise ValueError(msg)
        self._limit = limit
        self._period = period
        self._clock = clock
        self._sleep = sleep
        self._slots: deque[float] = deque()

    def reserve(self) -> float:
        """Book the earliest slot that keeps the window under the limit; return how long to wait for it."""
        now = self._clock()
        horizon = now - self._period
        while self._slots and self._slots[0] <= horizon:
            self._slots.popleft()
        if len(self._slots) < self._limit:
            slot = now
        else:  # a millisecond of margin: the upstream may count its window's edges inclusively
            slot = max(now, self._slots[-self._limit] + self._period + EDGE_MARGIN)
        self._slots.append(slot)
        return slot - now

    async def acquire(self) -> None:
        """Wait until one more request may go out."""
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)
