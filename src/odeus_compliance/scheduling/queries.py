"""What the scheduler reads before it acts: the newest run of each period, and whether a tick has work."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.db.schedule_tables import Schedule, ScheduleRun
from odeus_compliance.scheduling.periods import periods_due
from odeus_compliance.scheduling.service import spec_of

__all__ = ["has_due_work", "is_actionable", "newest_runs"]


async def newest_runs(
    sessions: async_sessionmaker[AsyncSession], schedule_id: uuid.UUID, starts: Sequence[dt.datetime]
) -> dict[dt.datetime, ScheduleRun]:
    """The newest version's run of each period (by start instant) that has one."""
    async with sessions() as session:
        newest_version = (
            select(ScheduleRun.period_start, func.max(ScheduleRun.version).label("version"))
            .where(ScheduleRun.schedule_id == schedule_id, ScheduleRun.period_start.in_(starts))
            .group_by(ScheduleRun.period_start)
            .subquery()
        )
        query = (
            select(ScheduleRun)
            .join(
                newest_version,
                (ScheduleRun.period_start == newest_version.c.period_start)
                & (ScheduleRun.version == newest_version.c.version),
            )
            .where(ScheduleRun.schedule_id == schedule_id)
        )
        rows = (await session.execute(query)).scalars().all()
    return {row.period_start: row for row in rows}


def is_actionable(run: ScheduleRun, now: dt.datetime) -> bool:
    """Whether a tick at ``now`` would work on this existing run (take it over, retry it, redeliver)."""
    if run.status in {"claimed", "running"}:
        return run.lease_expires_at is not None and run.lease_expires_at < now
    if run.status == "failed":
        return run.next_retry_at is not None and run.next_retry_at <= now
    if run.status == "succeeded" and run.delivery_status == "failed":
        return run.delivery_next_at is not None and run.delivery_next_at <= now
    if run.status == "succeeded" and run.delivery_status == "sending":
        return run.lease_expires_at is not None and run.lease_expires_at < now
    return False


async def has_due_work(sessions: async_sessionmaker[AsyncSession], now: dt.datetime) -> bool:
    """Whether :meth:`Scheduler.run_due` at ``now`` would do anything: lets a command skip starting the report
    runtime (seconds of imports and set-up) on the many ticks with nothing to do."""
    async with sessions() as session:
        schedules = (await session.execute(select(Schedule).where(Schedule.enabled))).scalars().all()
    for schedule in schedules:
        spec = spec_of(schedule)
        due = periods_due(
            spec.every, day=spec.day, time=spec.time, timezone=spec.timezone, now=now,
            active_from=schedule.active_from,
        )  # fmt: skip
        if not due:
            continue
        runs = await newest_runs(sessions, schedule.id, [p.start.astimezone(dt.UTC) for p in due])
        for period in due:
            run = runs.get(period.start.astimezone(dt.UTC))
            if run is None or is_actionable(run, now):
                return True
    return False
