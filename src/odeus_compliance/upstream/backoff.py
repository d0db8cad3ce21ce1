"""When to try a failed Odeus call again, and how long to wait first.

Exponential backoff with *full jitter* (a uniformly random wait between 0 and the exponential cap), so many
clients that failed together do not come back together. A ``Retry-After`` from Odeus (seconds or an
HTTP-date) replaces the computed wait. Every retry is bounded twice: by a number of attempts and by the total
time spent, so a struggling upstream costs at most ``max_total_seconds``. The sleep function, the random
source and both clocks are injected, which keeps tests fast and deterministic.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from odeus_compliance.core.clock import utcnow
from odeus_compliance.upstream.errors import UpstreamError, UpstreamRateLimited

logger = logging.getLogger("odeus_compliance.upstream.retry")

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
WallClock = Callable[[], datetime]


class RetryObserver(Protocol):
    """Told of every failed attempt and every retry (the service's metrics); names an error class only."""

    def upstream_error(self, error: str) -> None:
        """An attempt failed with the error class ``error``."""
        ...

    def upstream_retry(self, error: str) -> None:
        """The call is tried again after ``error``."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The retry budget: at most ``max_attempts`` tries in at most ``max_total_seconds``, waits growing from
    ``base_delay`` by doubling up to ``max_delay``."""

    max_attempts: int = 6
    max_total_seconds: float = 120.0
    base_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = "max_attempts must be at least 1"
            raise ValueError(msg)
        if self.max_total_seconds < 0 or self.base_delay < 0 or self.max_delay < self.base_delay:
            msg = "retry delays must be non-negative and max_delay at least base_delay"
            raise ValueError(msg)

    def backoff_cap(self, attempt: int) -> float:
        """The upper bound of the wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1)))

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """A full-jitter wait after failed attempt ``attempt``: uniform in ``[0, backoff_cap(attempt)]``."""
        return float(rng.uniform(0.0, self.backoff_cap(attempt)))


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or ``None`` when absent or unreadable.

    Both forms of RFC 9110 are accepted: delay-seconds (``"7"``) and an HTTP-date; a date in the past
    means "now" (0 seconds).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(slots=True)
class Retrier:
    """Runs an operation under a :class:`RetryPolicy`.

    The operation signals "worth another try" by raising an :class:`UpstreamError` whose ``retryable`` is
    true (429, 5xx, connection trouble, an incomplete download); anything else propagates at once. When the
    budget runs out the last error propagates, its message extended with the attempts made.
    """

    policy: RetryPolicy
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    clock: Clock = time.monotonic
    wall_clock: WallClock = utcnow
    observer: RetryObserver | None = None

    def failed(self, error: UpstreamError, *, retrying: bool) -> None:
        """Tell the observer (if any) that an attempt failed with ``error`` and whether it is retried."""
        if self.observer is not None:
            self.observer.upstream_error(type(error).__name__)
            if retrying:
                self.observer.upstream_retry(type(error).__name__)

    def delay_for(self, error: UpstreamError, attempt: int) -> float:
        """How long to wait before the next try after ``error`` ended attempt ``attempt``."""
        if isinstance(error, UpstreamRateLimited) and error.retry_after is not None:
            return error.retry_after
        return self.policy.backoff(attempt, self.rng)

    async def run(self, operation: Callable[[int], Awaitable[T]], *, event: str) -> T:
        """Call ``operation(attempt)`` until it succeeds, fails for good, or the budget is spent."""
        started = self.clock()
        attempt = 1
        while True:
            try:
                return await operation(attempt)
            except UpstreamError as error:
                if not error.retryable:
                    self.failed(error, retrying=False)
                    raise
                elapsed = self.clock() - started
                delay = self.delay_for(error, attempt)
                if attempt >= self.policy.max_attempts or elapsed + delay > self.policy.max_total_seconds:
                    self.failed(error, retrying=False)
                    logger.warning(
                        "%s.gave_up",
                        event,
                        extra={"attempts": attempt, "status": error.status, "elapsed_s": round(elapsed, 3)},
                    )
                    _extend(error, f"gave up after {attempt} attempt(s) in {elapsed:.1f} s")
                    raise
                self.failed(error, retrying=True)
                logger.info(
                    "%s.retry",
                    event,
                    extra={"attempt": attempt, "status": error.status, "delay_s": round(delay, 3)},
                )
                await self.sleep(delay)
                attempt += 1


def _extend(error: UpstreamError, note: str) -> None:
    error.message = f"{error.message} ({note})"
    error.args = (error.message,)
