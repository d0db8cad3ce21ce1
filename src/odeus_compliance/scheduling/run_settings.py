"""How scheduled runs are held and retried, and the clock a run advances by."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Clock", "RunSettings", "offset_clock"]

Clock = Callable[[], dt.datetime]


def offset_clock(start: dt.datetime) -> Clock:
    """A clock that reads ``start`` now and advances with the monotonic clock from here on."""
    if start.tzinfo is None:
        msg = "start must be timezone-aware"
        raise ValueError(msg)
    origin = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - origin)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How runs are held and retried."""

    lease_seconds: float = 120.0
    """A claim lapses this long after its last renewal (renewed at every poll of the report job)."""
    attempts_per_tick: int = 3
    """Report requests per run in one tick before the run is recorded as failed until the next tick."""
    backoff_seconds: float = 10.0
    """Wait before the second attempt of a tick; doubled before each further one."""
    retry_after_seconds: float = 3600.0
    """The longest wait before a failed run (or delivery) is tried again; see :meth:`retry_delay`."""
    retry_backoff_seconds: float = 60.0
    """The wait after the second failed tick; it doubles after each further one, up to the longest."""
    max_attempts: int = 30
    """Attempts over all ticks; after that a failed run waits for a re-run by an admin."""
    poll_seconds: float = 0.5
    """How often a run reads its report job's state (and renews its lease)."""
    follow_timeout_seconds: float = 4 * 3600.0
    """A report job still unfinished after this long counts as a failed attempt."""

    def retry_delay(self, attempts: int) -> float:
        """How long after a failed tick the run is tried again, given its attempts so far: after the first
        failed tick not at all (the next tick retries it, so an outage on the due day is never a silent
        gap), then :attr:`retry_backoff_seconds`, doubling up to :attr:`retry_after_seconds` (an outage
        of hours is not hammered every minute, and ``max_attempts`` lasts)."""
        failed_ticks = max(1, -(-attempts // max(1, self.attempts_per_tick)))
        if failed_ticks == 1:
            return 0.0
        return float(min(self.retry_after_seconds, self.retry_backoff_seconds * 2 ** (failed_ticks - 2)))
