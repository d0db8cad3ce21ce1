"""Reports whose periods overlap another's: every one of them is a release a reader can subtract from it.

Versions of one period are not the only such releases. The same month in another time zone, or under
another policy whose tables share dimensions, or a custom range inside a month, covers nearly the same
people: a cell that differs by 1 to k-1 people between the two singles those people out just as a re-run
would. The version check (``versions.small_changes``) therefore compares a new report with every succeeded
report whose period overlaps its own, whatever the zone or policy.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.core.periods import ReportPeriod
from odeus_compliance.db.models import Report
from odeus_compliance.reports.jobs import ReportStatus

__all__ = ["overlapping_report_ids"]


async def overlapping_report_ids(
    sessions: async_sessionmaker[AsyncSession], period: ReportPeriod, *, exclude: str
) -> list[str]:
    """Ids of succeeded reports whose period overlaps ``period`` (half-open intervals), ``exclude`` aside."""
    async with sessions() as session:
        rows = await session.scalars(
            select(Report.id).where(
                Report.status == ReportStatus.SUCCEEDED.value,
                Report.period_start < period.end,
                Report.period_end > period.start,
                Report.id != exclude,
            )
        )
        return list(rows.all())
