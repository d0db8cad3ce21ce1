"""Exactly-once claims of schedule runs, on SQLite and PostgreSQL alike.

- :func:`claim_new` inserts the run row; the unique constraint on (schedule, period start, version) lets
  exactly one of several racing replicas succeed (the others get ``None``).
- :func:`take_over` moves a run to a new owner with one conditional ``UPDATE`` whose ``WHERE`` says why it
  may be taken: its lease lapsed (the owner died) or it failed and its retry time came. The winner sets a
  fresh lease, which makes the condition false for everyone after it: one taker wins. (PostgreSQL re-checks
  the ``WHERE`` of a row another transaction just changed; SQLite runs one writer at a time.)
- :func:`renew`, :func:`mark_running`, :func:`record_report` and :func:`finish` change a run only while the
  caller still holds its lease (``lease_owner`` matches), so a replica that lost its lease - paused too long,
  taken over - cannot overwrite the new owner's work.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.db.schedule_tables import ScheduleRun
from odeus_compliance.scheduling.periods import Period

__all__ = [
    "Lease",
    "claim_new",
    "finish",
    "finish_delivery",
    "mark_running",
    "record_report",
    "renew",
    "take_delivery",
    "take_over",
]


@dataclass(frozen=True, slots=True)
class Lease:
    """Who claims, and for how long a claim holds without renewal."""

    owner: str
    seconds: float

    def expiry(self, now: dt.datetime) -> dt.datetime:
        """The lease's end if taken or renewed at ``now``."""
        return now + dt.timedelta(seconds=self.seconds)


async def claim_new(
    *,
    session: AsyncSession,
    schedule_id: uuid.UUID,
    period: Period,
    due_at: dt.datetime,
    version: int,
    lease: Lease,
    now: dt.datetime,
    requested_by: str = "schedule",
    supersedes_run_id: uuid.UUID | None = None,
    skipped_reason: str | None = None,
) -> ScheduleRun | None:
    """Insert the run (schedule, period, version) under ``lease``; ``None`` if another process has it.

    With ``skipped_reason`` the run is recorded as ``skipped`` (no lease): the catch-up policy's trace.
    """
    skipped = skipped_reason is not None
    run = ScheduleRun(
        id=uuid.uuid4(),
        schedule_id=schedule_id,
        period_start=period.start.astimezone(dt.UTC),
        period_end=period.end.astimezone(dt.UTC),
        period_label=period.label,
        timezone=period.timezone,
        version=version,
        status="skipped" if skipped else "claimed",
        due_at=due_at,
        lease_owner=None if skipped else lease.owner,
        lease_expires_at=None if skipped else lease.expiry(now),
        attempts=0,
        delivery_attempts=0,
        error=skipped_reason,
        requested_by=requested_by,
        supersedes_run_id=supersedes_run_id,
        claimed_at=now,
        finished_at=now if skipped else None,
    )
    session.add(run)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return None
    return run


async def take_over(*, session: AsyncSession, run_id: uuid.UUID, lease: Lease, now: dt.datetime) -> bool:
    """Take ``run_id`` if its lease lapsed or its retry is due; ``True`` if this caller won it."""
    takeable = or_(
        and_(ScheduleRun.status.in_(("claimed", "running")), ScheduleRun.lease_expires_at < now),
        and_(ScheduleRun.status == "failed", ScheduleRun.next_retry_at <= now),
    )
    result = await session.execute(
        update(ScheduleRun)
        .where(ScheduleRun.id == run_id, takeable)
        .values(
            status="claimed", lease_owner=lease.owner, lease_expires_at=lease.expiry(now), next_retry_at=None
        )
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return _one_row(result)


def _one_row(result: object) -> bool:
    return getattr(result, "rowcount", 0) == 1


async def _update_held(session: AsyncSession, run_id: uuid.UUID, owner: str, **values: object) -> bool:
    result = await session.execute(
        update(ScheduleRun)
        .where(ScheduleRun.id == run_id, ScheduleRun.lease_owner == owner)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return _one_row(result)


async def renew(*, session: AsyncSession, run_id: uuid.UUID, lease: Lease, now: dt.datetime) -> bool:
    """Extend the lease; ``False`` if the caller no longer holds it (it must stop working on the run)."""
    return await _update_held(session, run_id, lease.owner, lease_expires_at=lease.expiry(now))


async def mark_running(*, session: AsyncSession, run_id: uuid.UUID, lease: Lease, now: dt.datetime) -> bool:
    """Start one attempt: status ``running``, one more attempt, a fresh lease."""
    return await _update_held(
        session,
        run_id,
        lease.owner,
        status="running",
        attempts=ScheduleRun.attempts + 1,
        lease_expires_at=lease.expiry(now),
        error=None,
    )


async def record_report(
    *, session: AsyncSession, run_id: uuid.UUID, lease: Lease, now: dt.datetime, report_id: str
) -> bool:
    """Remember the attempt's report job (a taker-over follows it rather than asking again)."""
    return await _update_held(
        session, run_id, lease.owner, report_id=report_id, lease_expires_at=lease.expiry(now)
    )


async def finish(
    *,
    session: AsyncSession,
    run_id: uuid.UUID,
    lease: Lease,
    now: dt.datetime,
    status: str,
    error: str | None = None,
    next_retry_at: dt.datetime | None = None,
    delivery: Mapping[str, object] | None = None,
) -> bool:
    """End the run (``succeeded`` or ``failed``, with its webhook delivery columns) and release the lease."""
    return await _update_held(
        session,
        run_id,
        lease.owner,
        status=status,
        error=error,
        next_retry_at=next_retry_at,
        lease_owner=None,
        lease_expires_at=None,
        finished_at=now,
        **(delivery or {}),
    )


async def take_delivery(*, session: AsyncSession, run_id: uuid.UUID, lease: Lease, now: dt.datetime) -> bool:
    """Take a succeeded run's webhook delivery: a failed one whose retry is due, or one whose sender died
    (``sending`` with a lapsed lease); ``True`` if this caller won it."""
    takeable = or_(
        and_(ScheduleRun.delivery_status == "failed", ScheduleRun.delivery_next_at <= now),
        and_(ScheduleRun.delivery_status == "sending", ScheduleRun.lease_expires_at < now),
    )
    result = await session.execute(
        update(ScheduleRun)
        .where(ScheduleRun.id == run_id, ScheduleRun.status == "succeeded", takeable)
        .values(delivery_status="sending", lease_owner=lease.owner, lease_expires_at=lease.expiry(now))
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return _one_row(result)


async def finish_delivery(
    *, session: AsyncSession, run_id: uuid.UUID, lease: Lease, delivery: Mapping[str, object]
) -> bool:
    """Store the delivery's outcome and release the lease."""
    return await _update_held(
        session, run_id, lease.owner, lease_owner=None, lease_expires_at=None, **delivery
    )
