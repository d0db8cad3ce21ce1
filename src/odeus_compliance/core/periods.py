"""Time zones and report periods: one rule for turning local calendar dates into instants.

A :class:`ReportPeriod` is what a report covers: aware instants, ``end`` exclusive, and the IANA zone whose
calendar it follows. Schedules' calendar periods (month, quarter, week: which one comes next, when it falls
due) live in :mod:`odeus_compliance.scheduling.periods` and yield a ``ReportPeriod`` by the same
:func:`local_instant` rule: an ambiguous wall time takes its first occurrence, a wall time that does not
exist (clocks went forward) is the instant the same distance past the jump.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ReportPeriod", "local_instant", "zone"]


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or a ``ValueError`` that says which name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {name!r}"
        raise ValueError(msg) from None


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant of wall time ``day`` + ``at`` in ``tz`` (see the module docstring for gaps and folds)."""
    naive = datetime.combine(day, at.replace(tzinfo=None, fold=0))
    # normalise through UTC: a nonexistent wall time comes back as the real wall time past the jump
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """A report's period: aware instants, ``end`` exclusive, and the zone it is a calendar month of."""

    start: datetime
    end: datetime
    timezone: str

    def __post_init__(self) -> None:
        zone(self.timezone)
        if self.start.tzinfo is None or self.end.tzinfo is None:
            msg = "a report period needs aware datetimes"
            raise ValueError(msg)
        if self.start >= self.end:
            msg = "the period must end after it starts"
            raise ValueError(msg)

    @classmethod
    def month(cls, year: int, month: int, timezone: str) -> ReportPeriod:
        """The calendar month in ``timezone``: the 1st at 00:00 to the next month's 1st at 00:00."""
        tz = zone(timezone)
        first = local_instant(date(year, month, 1), time(0, 0), tz)
        following = local_instant(date(year + month // 12, month % 12 + 1, 1), time(0, 0), tz)
        return cls(first.astimezone(UTC), following.astimezone(UTC), timezone)

    @property
    def local_start(self) -> datetime:
        """The start in the period's zone."""
        return self.start.astimezone(zone(self.timezone))

    @property
    def local_end(self) -> datetime:
        """The (exclusive) end in the period's zone."""
        return self.end.astimezone(zone(self.timezone))

    @property
    def label(self) -> str:
        """``YYYY-MM`` for a calendar month, else ``<from date>..<to date>`` (local dates)."""
        start, end = self.local_start, self.local_end
        if self == ReportPeriod.month(start.year, start.month, self.timezone):
            return f"{start.year:04d}-{start.month:02d}"
        return f"{start.date().isoformat()}..{(end - timedelta(microseconds=1)).date().isoformat()}"
