"""``GET/PUT /api/v1/schedules``, ``PUT /api/v1/schedules/{id}/delivery`` and
``GET /api/v1/schedules/{id}/runs``: thin handlers over the service.

Admins manage schedules; officers set who receives their reports, and may read schedules and their run
history. Every change goes through :func:`~odeus_compliance.scheduling.changes.change_schedule`, which
writes the ``schedule.changed`` audit record before the answer goes out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from typing import Any, Final

import msgspec
from litestar import Request, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit.recording import record_denial, recorder_of
from odeus_compliance.core.clock import utcnow
from odeus_compliance.db.schedule_tables import Schedule
from odeus_compliance.errors import NotFound, PermissionDenied, ValidationFailed
from odeus_compliance.keys.sealed_text import TextSealer
from odeus_compliance.problem_schema import problem_responses
from odeus_compliance.scheduling import service
from odeus_compliance.scheduling.changes import change_schedule, change_schedule_rule
from odeus_compliance.scheduling.model import Delivery, ScheduleError, ScheduleSpec
from odeus_compliance.scheduling.recipients import RecipientHasher
from odeus_compliance.scheduling.schemas import (
    DeliveryIn,
    RunList,
    ScheduleIn,
    ScheduleList,
    ScheduleOut,
    run_out,
    schedule_out,
)
from odeus_compliance.security import ApiKeyIdentity, Role, requires_role
from odeus_compliance.settings import Settings

__all__ = ["list_schedule_runs", "list_schedules", "put_schedule", "put_schedule_delivery"]

_TAGS: Final = ["schedules"]
_READERS: Final = requires_role(Role.ADMIN, Role.OFFICER)
_ADMIN: Final = requires_role(Role.ADMIN)
_OFFICER: Final = requires_role(Role.OFFICER)
_FIELD_FIRST: Final = re.compile(r"(?:delivery\.)?([a-z_]+) (.+)")
ScheduleRequest = Request[ApiKeyIdentity, Any, State]


def _invalid(exc: ScheduleError, fields: frozenset[str]) -> ValidationFailed:
    """A broken schedule rule as a 400 whose ``errors`` name the field (its message starts with it)."""
    text = str(exc)
    match = _FIELD_FIRST.fullmatch(text)
    key, rule = (match[1], match[2]) if match and match[1] in fields else ("body", text)
    return ValidationFailed(text, extra={"errors": [{"key": key, "source": "body", "message": rule}]})


@get(
    "/api/v1/schedules",
    operation_id="listSchedules",
    tags=_TAGS,
    opt=_READERS,
    responses=problem_responses(_READERS),
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
    opt=_ADMIN,
    status_code=200,
    responses=problem_responses(
        _ADMIN,
        400,
        413,
        why={
            400: "A field breaks its rule (an unknown zone or policy, a day out of range, a bad time): "
            "`errors` names the field and the rule, never the value.",
            403: "Not an admin, or the body names recipients (`delivery`): an officer sets those.",
        },
    ),
)
async def put_schedule(
    request: ScheduleRequest,
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    data: JSONBody[ScheduleIn],
) -> ScheduleOut:
    """Create the schedule called ``name``, or replace its definition (its run history is kept).

    Who receives the reports is not part of this: an officer sets it with
    ``PUT /api/v1/schedules/{id}/delivery``; a body with ``delivery`` is refused (403), and a changed
    schedule keeps the delivery it had. Refused with 400 and a message naming the field and the rule (never
    the value) for an unknown timezone or policy, a day out of range or a bad time.
    """
    if data.delivery is not None:
        await record_denial(request, 403, "wrong_role")
        raise PermissionDenied(
            "Recipients are set by a compliance officer: PUT /api/v1/schedules/{id}/delivery."
        )
    now = utcnow()
    try:
        if data.active_from is not None and data.active_from.tzinfo is None:
            raise ScheduleError("active_from needs a UTC offset")
        saved = await change_schedule_rule(
            recorder_of(request),
            session=db_session,
            rule=data,
            settings=settings,
            now=now,
            active_from=data.active_from,
        )
    except ScheduleError as exc:
        raise _invalid(exc, frozenset(ScheduleIn.__struct_encode_fields__)) from None
    return schedule_out(saved.schedule, now=now)


@put(
    "/api/v1/schedules/{schedule_id:uuid}/delivery",
    operation_id="putScheduleDelivery",
    tags=_TAGS,
    opt=_OFFICER,
    status_code=200,
    responses=problem_responses(
        _OFFICER,
        400,
        404,
        413,
        why={
            400: "A recipient the configuration does not allow (named by its position, never its address), "
            "or a webhook URL or secret variable that breaks its rule.",
            404: "No schedule with that id.",
        },
    ),
)
async def put_schedule_delivery(
    request: ScheduleRequest,
    schedule_id: FromPath[uuid.UUID],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    data: JSONBody[DeliveryIn],
) -> ScheduleOut:
    """Set who receives a schedule's reports (officers only): a webhook notified when a report is ready,
    and e-mail recipients, each an address or in a domain the configuration allows
    (``ODEUS_COMPLIANCE_MAIL_RECIPIENTS``); with ``email_attach_pdf`` they get the figures-only PDF, never
    per-person rows. Recorded as ``schedule.changed`` with the recipients as keyed hashes. 400 for a
    recipient that is not allowed (naming its position, not the address), 404 for an unknown schedule."""
    now = utcnow()
    row = await service.get_schedule(session=db_session, schedule_id=schedule_id)
    if row is None:
        raise NotFound("there is no schedule with that id")
    try:
        delivery = Delivery.from_json(msgspec.to_builtins(data))
        spec = dataclasses.replace(await _stored(request, db_session, row), delivery=delivery)
        saved = await _change(request, settings, db_session, spec, now=now, active_from=None)
    except ScheduleError as exc:
        raise _invalid(exc, frozenset(DeliveryIn.__struct_encode_fields__)) from None
    return schedule_out(saved.schedule, now=now)


async def _stored(request: ScheduleRequest, session: AsyncSession, row: Schedule) -> ScheduleSpec:
    """The stored definition, its e-mail recipients opened (they are kept sealed)."""
    sealer = TextSealer(recorder_of(request).appender.kek)
    return await service.load_spec(session=session, row=row, sealer=sealer)


async def _change(
    request: ScheduleRequest,
    settings: Settings,
    session: AsyncSession,
    spec: ScheduleSpec,
    *,
    now: dt.datetime,
    active_from: dt.datetime | None,
) -> service.SavedSchedule:
    return await change_schedule(
        recorder_of(request),
        session=session,
        spec=spec,
        policy_dir=settings.policy_dir,
        now=now,
        allowed_recipients=settings.mail_recipients,
        hasher=RecipientHasher(settings.require_master_key()),
        active_from=active_from,
    )


@get(
    "/api/v1/schedules/{schedule_id:uuid}/runs",
    operation_id="listScheduleRuns",
    tags=_TAGS,
    opt=_READERS,
    responses=problem_responses(_READERS, 404, why={404: "No schedule with that id."}),
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
