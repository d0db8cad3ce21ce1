"""``GET/PUT /api/v1/schedules`` and ``GET /api/v1/schedules/{id}/runs``: thin handlers over the service.

Admins manage schedules; officers may read them and their run history. Changing a schedule writes a
``schedule.changed`` audit record before the answer goes out.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from litestar import Request, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit.recording import recorder_of
from odeus_compliance.core.clock import utcnow
from odeus_compliance.errors import NotFound, ValidationFailed
from odeus_compliance.scheduling import service
from odeus_compliance.scheduling.changes import change_schedule
from odeus_compliance.scheduling.model import ScheduleError, ScheduleSpec
from odeus_compliance.scheduling.schemas import (
    RunList,
    ScheduleIn,
    ScheduleList,
    ScheduleOut,
    run_out,
    schedule_out,
)
from odeus_compliance.security import ApiKeyIdentity, Role, requires_role
from odeus_compliance.settings import Settings

__all__ = ["list_schedule_runs", "list_schedules", "put_schedule"]

_TAGS: Final = ["schedules"]
ScheduleRequest = Request[ApiKeyIdentity, Any, State]


@get(
    "/api/v1/schedules",
    operation_id="listSchedules",
    tags=_TAGS,
    opt=requires_role(Role.ADMIN, Role.OFFICER),
)
async def list_schedules(db_session: NamedDependency[AsyncSession]) -> ScheduleList:
    """Every schedule with its next due period and time. Delivery is summarised (no URL, no addresses)."""
    now = utcnow()
    rows = await service.list_schedules(session=db_session)
    return ScheduleList(schedules=[schedule_out(row, now=now) for row in rows])


@put(
    "/api/v1/schedules",
    operation_id="putSchedule",
    tags=_TAGS,
    opt=requires_role(Role.ADMIN),
    status_code=200,
)
async def put_schedule(
    request: ScheduleRequest,
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    data: JSONBody[ScheduleIn],
) -> ScheduleOut:
    """Create the schedule called ``name``, or replace its definition (its run history is kept).

    Refused with 400 and a message naming the field and the rule (never the value) for an unknown timezone
    or policy, a day out of range, a bad time or delivery setting.
    """
    now = utcnow()
    try:
        spec = ScheduleSpec.build(
            name=data.name,
            every=data.every,
            day=data.day,
            time=data.time,
            timezone=data.timezone,
            policy=data.policy,
            catch_up=data.catch_up,
            delivery=data.delivery,
            enabled=data.enabled,
        )
        if data.active_from is not None and data.active_from.tzinfo is None:
            raise ScheduleError("active_from needs a UTC offset")
        saved = await change_schedule(
            recorder_of(request),
            session=db_session,
            spec=spec,
            policy_dir=settings.policy_dir,
            now=now,
            active_from=data.active_from,
        )
    except ScheduleError as exc:
        raise ValidationFailed(str(exc)) from None
    return schedule_out(saved.schedule, now=now)


@get(
    "/api/v1/schedules/{schedule_id:uuid}/runs",
    operation_id="listScheduleRuns",
    tags=_TAGS,
    opt=requires_role(Role.ADMIN, Role.OFFICER),
)
async def list_schedule_runs(
    schedule_id: FromPath[uuid.UUID], db_session: NamedDependency[AsyncSession]
) -> RunList:
    """The schedule's run history, newest period first: every period that fell due has a run (succeeded,
    failed with its reason and next retry, skipped with its reason, or in progress); re-runs are further
    versions of the same period."""
    if await service.get_schedule(session=db_session, schedule_id=schedule_id) is None:
        raise NotFound("there is no schedule with that id")
    runs = await service.list_runs(session=db_session, schedule_id=schedule_id)
    return RunList(schedule_id=schedule_id, runs=[run_out(run) for run in runs])
