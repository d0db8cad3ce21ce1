"""Store, read and list schedules and their runs. Keyword-only functions with an explicit session; each
function that writes commits its own transaction."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.db.schedule_tables import Schedule, ScheduleRun
from odeus_compliance.policy.service import find_policy
from odeus_compliance.scheduling.model import CatchUp, Delivery, ScheduleError, ScheduleSpec
from odeus_compliance.scheduling.periods import Every

__all__ = [
    "SavedSchedule",
    "check_policy",
    "find_schedule",
    "get_schedule",
    "list_runs",
    "list_schedules",
    "save_schedule",
    "spec_of",
]


@dataclass(frozen=True, slots=True)
class SavedSchedule:
    """The outcome of :func:`save_schedule`."""

    schedule: Schedule
    created: bool
    changed: bool
    """False when the stored definition already was exactly this one (nothing written)."""


def check_policy(*, policy_dir: Path, name: str) -> None:
    """Refuse a schedule whose policy is not a valid file of the policy folder."""
    entry = find_policy(policy_dir=policy_dir, name=name)
    if entry is None:
        raise ScheduleError(
            "policy is not a policy of the policy folder (see 'policy check' or GET /api/v1/policies)"
        )
    if entry.policy is None:
        raise ScheduleError("policy is not valid, so no report can use it (see 'policy check')")


def spec_of(row: Schedule) -> ScheduleSpec:
    """The definition stored in ``row``."""
    hours, minutes = row.time_of_day.split(":")
    return ScheduleSpec(
        name=row.name,
        every=Every(row.every),
        day=row.day,
        time=dt.time(int(hours), int(minutes)),
        timezone=row.timezone,
        policy=row.policy,
        catch_up=CatchUp(row.catch_up),
        delivery=Delivery.from_json(json.loads(row.delivery)),
        enabled=row.enabled,
    )


def _apply(row: Schedule, spec: ScheduleSpec) -> None:
    row.every = spec.every.value
    row.day = spec.day
    row.time_of_day = spec.time_text
    row.timezone = spec.timezone
    row.policy = spec.policy
    row.catch_up = spec.catch_up.value
    row.delivery = json.dumps(spec.delivery.to_json(), sort_keys=True)
    row.enabled = spec.enabled


async def save_schedule(
    *,
    session: AsyncSession,
    spec: ScheduleSpec,
    policy_dir: Path,
    now: dt.datetime,
    active_from: dt.datetime | None = None,
) -> SavedSchedule:
    """Create the schedule called ``spec.name`` or change it (upsert by name).

    ``active_from`` (default ``now`` for a new schedule, unchanged for an existing one unless its period kind
    or timezone changes or it is enabled again, then ``now``) is the earliest due instant that counts:
    periods that fell due before the schedule existed, before its periods were redefined or while it was
    disabled are not run.
    """
    check_policy(policy_dir=policy_dir, name=spec.policy)
    row = await find_schedule(session=session, name=spec.name)
    if row is None:
        row = Schedule(
            id=uuid.uuid4(),
            name=spec.name,
            active_from=active_from or now,
            revision=1,
            created_at=now,
            updated_at=now,
        )
        _apply(row, spec)
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise ScheduleError("a schedule of that name was created at the same time; try again") from None
        return SavedSchedule(row, created=True, changed=True)
    if spec_of(row) == spec and (active_from is None or active_from == row.active_from):
        return SavedSchedule(row, created=False, changed=False)
    old = spec_of(row)
    _apply(row, spec)
    if active_from is not None:
        row.active_from = active_from
    elif (old.every, old.timezone) != (spec.every, spec.timezone) or (spec.enabled and not old.enabled):
        # new period boundaries: the periods already run under the old ones would look unrun and be run a
        # second time (or recorded as skipped); re-enabled: the periods of the pause were switched off, not
        # missed. Either way only periods falling due from now on count
        row.active_from = now
    row.revision += 1
    row.updated_at = now
    await session.commit()
    return SavedSchedule(row, created=False, changed=True)


async def find_schedule(*, session: AsyncSession, name: str) -> Schedule | None:
    """The schedule called ``name``, or ``None``."""
    return (await session.execute(select(Schedule).where(Schedule.name == name))).scalar_one_or_none()


async def get_schedule(*, session: AsyncSession, schedule_id: uuid.UUID) -> Schedule | None:
    """The schedule with id ``schedule_id``, or ``None``."""
    return await session.get(Schedule, schedule_id)


async def list_schedules(*, session: AsyncSession) -> Sequence[Schedule]:
    """Every schedule, by name."""
    return (await session.execute(select(Schedule).order_by(Schedule.name))).scalars().all()


async def list_runs(
    *, session: AsyncSession, schedule_id: uuid.UUID, limit: int = 200
) -> Sequence[ScheduleRun]:
    """The schedule's runs, newest period first, newest version first within a period."""
    query = (
        select(ScheduleRun)
        .where(ScheduleRun.schedule_id == schedule_id)
        .order_by(ScheduleRun.period_start.desc(), ScheduleRun.version.desc())
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()
