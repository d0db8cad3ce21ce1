"""Calendar periods (month, quarter, ISO week) in a schedule's IANA timezone, and when each falls due.

A period runs from local midnight of its first day to local midnight of the day after its last day (end
exclusive), in the schedule's zone. Its length therefore follows the zone's daylight-saving changes:
Europe/Berlin's October has 745 hours, its March 743, any other 31-day month 744.

Local wall times are turned into instants with PEP 495 rules: an ambiguous time (clocks went back) takes its
first occurrence (``fold=0``), and a time that does not exist (clocks went forward) is the instant the same
distance past the jump, as zoneinfo gives it with ``fold=0`` (02:30 on a spring-forward night is 03:30 new
time). A period that would start at a nonexistent midnight thus starts at the first instant of its day.

All comparisons are made in UTC: Python compares and subtracts two datetimes of the same ``tzinfo`` by their
wall clock, ignoring the offset, which is wrong across a change.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from odeus_compliance.core.periods import ReportPeriod, local_instant

__all__ = [
    "MAX_DAY",
    "Every",
    "Period",
    "due_at",
    "local_instant",
    "period_containing",
    "periods_due",
    "previous_closed_period",
]

MAX_DAY: Final = {"month": 28, "quarter": 28, "week": 7}
"""Largest allowed ``day`` per kind: day 1-28 of the month after the period (every month has it), or ISO
weekday 1 (Monday) - 7 (Sunday) of the week after."""
MAX_CATCH_UP_PERIODS: Final = 120
"""How far back :func:`periods_due` looks: ten years of months, so a wrong ``active_from`` cannot flood."""


class Every(enum.StrEnum):
    """How often a schedule runs: one report per calendar month, quarter or ISO week."""

    MONTH = "month"
    QUARTER = "quarter"
    WEEK = "week"


@dataclass(frozen=True, slots=True)
class Period:
    """One calendar period in ``timezone``: ``[start, end)``, both aware in that zone."""

    every: Every
    first_day: dt.date
    """The local date the period starts on (1st of a month or quarter, a Monday)."""
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        """The period's zone."""
        return ZoneInfo(self.timezone)

    @property
    def next_first_day(self) -> dt.date:
        """The local date the next period starts on."""
        if self.every is Every.WEEK:
            return self.first_day + dt.timedelta(days=7)
        months = 1 if self.every is Every.MONTH else 3
        index = self.first_day.year * 12 + self.first_day.month - 1 + months
        return dt.date(index // 12, index % 12 + 1, 1)

    @property
    def start(self) -> dt.datetime:
        """The first instant (local midnight of the first day), aware in the zone."""
        return local_instant(self.first_day, dt.time(0, 0), self.zone)

    @property
    def end(self) -> dt.datetime:
        """The instant after the last one (exclusive end), aware in the zone."""
        return local_instant(self.next_first_day, dt.time(0, 0), self.zone)

    @property
    def duration(self) -> dt.timedelta:
        """Real elapsed time from start to end (computed in UTC, so daylight saving counts)."""
        return self.end.astimezone(dt.UTC) - self.start.astimezone(dt.UTC)

    @property
    def label(self) -> str:
        """``2026-10``, ``2026-Q4`` or ``2026-W43`` (ISO week-numbering year)."""
        if self.every is Every.MONTH:
            return f"{self.first_day.year:04d}-{self.first_day.month:02d}"
        if self.every is Every.QUARTER:
            return f"{self.first_day.year:04d}-Q{(self.first_day.month - 1) // 3 + 1}"
        year, week, _ = self.first_day.isocalendar()
        return f"{year:04d}-W{week:02d}"

    def report_period(self) -> ReportPeriod:
        """What a report of this period covers (the same instants, in UTC)."""
        return ReportPeriod(self.start.astimezone(dt.UTC), self.end.astimezone(dt.UTC), self.timezone)

    def previous(self) -> Period:
        """The period before this one."""
        if self.every is Every.WEEK:
            return Period(self.every, self.first_day - dt.timedelta(days=7), self.timezone)
        months = 1 if self.every is Every.MONTH else 3
        index = self.first_day.year * 12 + self.first_day.month - 1 - months
        return Period(self.every, dt.date(index // 12, index % 12 + 1, 1), self.timezone)

    def following(self) -> Period:
        """The period after this one."""
        return Period(self.every, self.next_first_day, self.timezone)


def _first_day_of(every: Every, day: dt.date) -> dt.date:
    if every is Every.MONTH:
        return day.replace(day=1)
    if every is Every.QUARTER:
        return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return day - dt.timedelta(days=day.weekday())


def period_containing(every: Every, moment: dt.datetime, timezone: str) -> Period:
    """The period of kind ``every`` in ``timezone`` that contains the aware instant ``moment``."""
    if moment.tzinfo is None:
        msg = "moment must be timezone-aware"
        raise ValueError(msg)
    zone = ZoneInfo(timezone)
    period = Period(every, _first_day_of(every, moment.astimezone(zone).date()), timezone)
    # a period starting at a nonexistent midnight starts a little later: step back if moment precedes it
    if moment.astimezone(dt.UTC) < period.start.astimezone(dt.UTC):  # pragma: no cover - zone oddity
        period = period.previous()
    return period


def previous_closed_period(every: Every, now: dt.datetime, timezone: str) -> Period:
    """The latest period that has ended at ``now`` (the one before the period containing ``now``)."""
    return period_containing(every, now, timezone).previous()


def due_at(period: Period, *, day: int, time: dt.time) -> dt.datetime:
    """When ``period``'s report falls due: day ``day`` at ``time`` after the period ends, in its zone.

    Month and quarter: day ``day`` (1-28) of the month the next period starts in. Week: ISO weekday ``day``
    (1 = Monday) of the following week.
    """
    if not 1 <= day <= MAX_DAY[period.every.value]:
        msg = f"day must be 1-{MAX_DAY[period.every.value]} for every {period.every.value}"
        raise ValueError(msg)
    return local_instant(period.next_first_day + dt.timedelta(days=day - 1), time, period.zone)


def _backwards(start: Period) -> Iterator[Period]:
    period = start
    for _ in range(MAX_CATCH_UP_PERIODS):
        yield period
        period = period.previous()


def periods_due(
    every: Every, *, day: int, time: dt.time, timezone: str, now: dt.datetime, active_from: dt.datetime
) -> list[Period]:
    """Periods whose due instant lies in ``[active_from, now]``, oldest first (at most ten years of them)."""
    now_utc, from_utc = now.astimezone(dt.UTC), active_from.astimezone(dt.UTC)
    due: list[Period] = []
    for period in _backwards(previous_closed_period(every, now, timezone)):
        when = due_at(period, day=day, time=time).astimezone(dt.UTC)
        if when < from_utc:
            break
        if when <= now_utc:
            due.append(period)
    due.reverse()
    return due
