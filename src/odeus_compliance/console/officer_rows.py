"""The report archive's rows as people read them: built from the API's :class:`ReportOut` (so the console
shows exactly what ``GET /api/v1/reports`` gives the same role), times in the report's own zone with the
offset (``2026-10-31 23:59 +01:00``)."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlencode

from odeus_compliance.core.periods import zone
from odeus_compliance.reports.schemas import ReportOut

__all__ = ["ArchiveRow", "archive_row", "local_stamp"]

_MONTH_START: Final = re.compile(r"([0-9]{4})-([0-9]{2})-01T00:00:00")
_LIVE: Final = frozenset({"queued", "running"})
_DONE: Final = frozenset({"succeeded", "failed"})


def local_stamp(moment: datetime) -> str:
    """``2026-10-31 23:59 +01:00``: minutes, with the offset of the zone ``moment`` is in."""
    text = moment.isoformat(timespec="minutes")  # 2026-10-31T23:59+01:00
    return f"{text[:10]} {text[11:16]} {text[16:] or '+00:00'}"


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveRow:
    """One report of the archive, ready to show."""

    id: str
    month: str | None
    """``YYYY-MM`` when the period is a calendar month (what the request form asks for), else ``None``."""
    period_from: str
    period_to: str
    timezone: str
    policy: str
    version: int
    current: bool
    status: str
    stage: str
    percent: int
    requested_at: str
    partial: bool

    @property
    def live(self) -> bool:
        """Whether the job is queued or running (the page polls while one is)."""
        return self.status in _LIVE

    @property
    def finished(self) -> bool:
        """Whether the job has ended (it may be requested again)."""
        return self.status in _DONE

    @property
    def again_url(self) -> str | None:
        """The request form filled in with this report's month, zone and policy (never its purpose)."""
        if self.month is None:
            return None
        query = urlencode({"month": self.month, "timezone": self.timezone, "policy": self.policy})
        return f"/console/reports/new?{query}"


def _month_of(start: datetime, end: datetime) -> str | None:
    """The month a period is, if it runs from a 1st at midnight to the next month's 1st at midnight."""
    match = _MONTH_START.match(start.isoformat())
    if match is None:
        return None
    year, month = int(match[1]), int(match[2])
    following = (year + month // 12, month % 12 + 1)
    if end.isoformat().startswith(f"{following[0]:04d}-{following[1]:02d}-01T00:00:00"):
        return f"{year:04d}-{month:02d}"
    return None


def archive_row(report: ReportOut) -> ArchiveRow:
    """The row of one report (its ``period`` times are already in the report's zone)."""
    start = datetime.fromisoformat(report.period.start)
    end = datetime.fromisoformat(report.period.end)
    tz = zone(report.period.timezone)
    last = (end - timedelta(milliseconds=1)).astimezone(tz)  # the period's end is exclusive
    return ArchiveRow(
        id=report.id,
        month=_month_of(start, end),
        period_from=local_stamp(start),
        period_to=local_stamp(last),
        timezone=report.period.timezone,
        policy=report.policy.name,
        version=report.version,
        current=report.current,
        status=report.status,
        stage=report.stage,
        percent=round(max(0.0, min(1.0, report.progress)) * 100),
        requested_at=local_stamp(datetime.fromisoformat(report.requested_at).astimezone(tz)),
        partial=report.partial,
    )
