"""The per-workspace request limit: a sliding one-minute window, answered with 429 and ``Retry-After``."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class SlidingWindowLimiter:
    """At most ``limit`` requests in any window of ``WINDOW_SECONDS``."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> int | None:
        """Count one request: ``None`` if allowed, else the whole seconds until one is allowed again."""
        now = self._clock()
        with self._lock:
            while self._times and self._times[0] <= now - WINDOW_SECONDS:
                self._times.popleft()
            if len(self._times) >= self._limit:
                return max(1, math.ceil(self._times[0] + WINDOW_SECONDS - now))
            self._times.append(now)
            return None

    def reset(self) -> None:
        """Forget all counted requests."""
        with self._lock:
            self._times.clear()
