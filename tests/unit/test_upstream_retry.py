"""Backoff, Retry-After and the client-side rate limiter, with fake clocks: fast and deterministic."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from odeus_compliance.upstream.backoff import Retrier, RetryPolicy, parse_retry_after
from odeus_compliance.upstream.errors import (
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from odeus_compliance.upstream.ratelimit import RateLimiter

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)


class FakeTime:
    """A monotonic clock that only moves when somebody sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def test_backoff_cap_doubles_up_to_the_maximum() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert [policy.backoff_cap(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_full_jitter_stays_within_the_cap_and_is_reproducible() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    first = [policy.backoff(n, random.Random(7)) for n in range(1, 6)]
    again = [policy.backoff(n, random.Random(7)) for n in range(1, 6)]
    assert first == again
    for attempt, delay in enumerate(first, start=1):
        assert 0.0 <= delay <= policy.backoff_cap(attempt)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ((NOW + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT"), 30.0),
        ((NOW - timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT"), 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-3", None),
    ],
)
def test_retry_after_seconds_and_http_dates(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def _retrier(fake: FakeTime, **policy: float) -> Retrier:
    return Retrier(RetryPolicy(**policy), sleep=fake.sleep, rng=random.Random(1), clock=fake.clock)  # type: ignore[arg-type]


async def test_retries_until_success_and_honours_retry_after() -> None:
    fake = FakeTime()
    errors: list[UpstreamError] = [UpstreamRateLimited("429", retry_after=3.0), UpstreamUnavailable("503")]

    async def operation(attempt: int) -> str:
        if errors:
            raise errors.pop(0)
        return f"ok after {attempt}"

    assert await _retrier(fake).run(operation, event="test") == "ok after 3"
    assert fake.sleeps[0] == 3.0
    assert 0.0 <= fake.sleeps[1] <= RetryPolicy().backoff_cap(2)


async def test_gives_up_after_max_attempts_with_a_clear_message() -> None:
    fake = FakeTime()
    calls = 0

    async def operation(_: int) -> None:
        nonlocal calls
        calls += 1
        raise UpstreamRateLimited("Odeus rate-limited the request (429)", retry_after=None)

    with pytest.raises(UpstreamRateLimited, match=r"gave up after 4 attempt\(s\)"):
        await _retrier(fake, max_attempts=4).run(operation, event="test")
    assert calls == 4
    assert len(fake.sleeps) == 3


async def test_gives_up_when_the_time_budget_would_be_exceeded() -> None:
    fake = FakeTime()

    async def operation(_: int) -> None:
        raise UpstreamRateLimited("429", retry_after=50.0)

    with pytest.raises(UpstreamRateLimited):
        await _retrier(fake, max_attempts=10, max_total_seconds=120.0).run(operation, event="test")
    assert fake.sleeps == [50.0, 50.0]


async def test_client_errors_are_not_retried() -> None:
    fake = FakeTime()
    calls = 0

    async def operation(_: int) -> None:
        nonlocal calls
        calls += 1
        raise UpstreamBadRequest("400")

    with pytest.raises(UpstreamBadRequest):
        await _retrier(fake).run(operation, event="test")
    assert calls == 1
    assert fake.sleeps == []


async def test_rate_limiter_allows_the_limit_then_waits_for_the_window() -> None:
    fake = FakeTime()
    limiter = RateLimiter(3, 60.0, clock=fake.clock, sleep=fake.sleep)
    stamps = []
    for _ in range(7):
        await limiter.acquire()
        stamps.append(fake.now)
    assert stamps == pytest.approx([0.0, 0.0, 0.0, 60.001, 60.001, 60.001, 120.002])


async def test_rate_limiter_holds_for_many_coroutines_sharing_it() -> None:
    fake = FakeTime()
    limiter = RateLimiter(450, 60.0, clock=fake.clock, sleep=fake.sleep)
    stamps: list[float] = []

    async def worker() -> None:
        for _ in range(10):
            await limiter.acquire()
            stamps.append(fake.now)

    await asyncio.gather(*(worker() for _ in range(200)))
    stamps.sort()
    assert len(stamps) == 2000
    # No sliding 60-second window ever holds more than 450 requests (Odeus allows 500).
    start = 0
    for end, stamp in enumerate(stamps):
        while stamps[start] <= stamp - 60.0:
            start += 1
        assert end - start + 1 <= 450


def test_rate_limiter_reservations_never_exceed_the_limit_in_a_window() -> None:
    now = [0.0]
    limiter = RateLimiter(5, 10.0, clock=lambda: now[0])
    slots = []
    for step in range(40):
        now[0] = step * 0.7
        slots.append(now[0] + limiter.reserve())
    for slot in slots:
        assert sum(1 for other in slots if slot - 10.0 < other <= slot) <= 5
