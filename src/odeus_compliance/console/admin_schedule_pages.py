"""The admins' schedule pages: every schedule with its next due time, a form to create one, and each
schedule's page (its form and its run history). They mirror ``scheduling/controllers.py``: the same input
(``ScheduleIn``), the same audited flow (``change_schedule``, recorded as ``schedule.changed`` with the
person as the actor), and the same view of delivery (whether there is a webhook and how many e-mail
recipients, never a URL or an address). Recipients are an officer's to set, so the form has none; a changed
schedule keeps the ones it had, as through the API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit.recording import recorder_of
from odeus_compliance.console.admin_format import zoned_time
from odeus_compliance.console.admin_schedule_form import (
    ScheduleForm,
    form_errors,
    read_form,
    schedule_input,
    schedule_refusal,
)
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import page
from odeus_compliance.core.clock import utcnow
from odeus_compliance.db.schedule_tables import Schedule
from odeus_compliance.errors import NotFound, ValidationFailed
from odeus_compliance.policy.service import list_policies
from odeus_compliance.scheduling import service
from odeus_compliance.scheduling.changes import change_schedule_rule
from odeus_compliance.scheduling.model import CatchUp, ScheduleError
from odeus_compliance.scheduling.periods import Every
from odeus_compliance.scheduling.schemas import RunOut, ScheduleIn, ScheduleOut, run_out, schedule_out
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings

__all__ = ["SCHEDULE_PAGES"]

_ADMIN: Final = console_page(Role.ADMIN)
_CATCH_UP_LABELS: Final = {
    CatchUp.RUN_MISSED_ONCE.value: "Run each missed period once, oldest first",
    CatchUp.SKIP_AND_RECORD.value: "Run only the latest; record the others as skipped",
}


def _delivery_text(summary: dict[str, Any]) -> str:
    """The API's delivery summary in words: channels and how many recipients, never who."""
    parts = ["archive"]
    if summary.get("webhook"):
        parts.append("webhook")
    count = int(summary.get("email_recipients") or 0)
    if count:
        attached = " (PDF attached)" if summary.get("email_attach_pdf") else " (link)"
        parts.append(f"e-mail to {count} recipient{'s' if count != 1 else ''}{attached}")
    if summary.get("email_recipients_shredded"):
        parts.append("e-mail recipients shredded")
    return ", ".join(parts)


def _listed(out: ScheduleOut) -> dict[str, Any]:
    return {
        "id": str(out.id),
        "name": out.name,
        "rule": f"every {out.every}, day {out.day}, {out.time}",
        "timezone": out.timezone,
        "policy": out.policy,
        "next_period": out.next_period,
        "next_due": zoned_time(out.next_due_at, out.timezone),
        "delivery": _delivery_text(out.delivery),
        "enabled": out.enabled,
    }


def _run_row(run: RunOut) -> dict[str, Any]:
    channels = ", ".join(run.delivered_channels)
    span = f"{zoned_time(run.period_from, run.timezone)} to {zoned_time(run.period_to, run.timezone)}"
    return {
        "period": run.period,
        "period_span": span,
        "version": run.version,
        "status": run.status,
        "due": zoned_time(run.due_at, run.timezone),
        "attempts": run.attempts,
        "next_retry": zoned_time(run.next_retry_at, run.timezone),
        "error": run.error or "",
        "report_id": run.report_id or "",
        "delivery": run.delivery_status or "",
        "delivery_detail": channels or (run.delivery_error or ""),
    }


def _choices(settings: Settings, current: str) -> dict[str, Any]:
    """The select options: the kinds of period, catch-up rules and the policies in force (the current one
    too, even when it is no longer valid: the form must show what is stored)."""
    policies = [e.name for e in list_policies(policy_dir=settings.policy_dir) if e.policy is not None]
    if current and current not in policies:
        policies.append(current)
    return {
        "every_options": [e.value for e in Every],
        "catch_up_options": list(_CATCH_UP_LABELS.items()),
        "policy_options": policies,
    }


async def _save(
    request: Request[Any, Any, Any], session: AsyncSession, settings: Settings, data: ScheduleIn
) -> service.SavedSchedule:
    """What ``PUT /api/v1/schedules`` does with ``data`` (the same flow: a changed schedule keeps its
    delivery)."""
    try:
        return await change_schedule_rule(
            recorder_of(request), session=session, rule=data, settings=settings, now=utcnow()
        )
    except ScheduleError as exc:
        raise schedule_refusal(exc) from None


def _form_page(
    request: Request[Any, Any, Any],
    settings: Settings,
    form: ScheduleForm,
    *,
    status: int = 200,
) -> Response[str]:
    return page(
        request,
        "admin/schedule_new.html",
        title="New schedule",
        status=status,
        form=form,
        form_is_new=True,
        **_choices(settings, form.values["policy"]),
    )


@get("/console/schedules", opt=_ADMIN, include_in_schema=False)
async def schedules_page(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Response[str]:
    """Every schedule (as ``GET /api/v1/schedules``), with its next due time in its own zone."""
    now = utcnow()
    rows = await service.list_schedules(session=db_session)
    return page(
        request,
        "admin/schedules.html",
        title="Schedules",
        schedules=[_listed(schedule_out(row, now=now)) for row in rows],
    )


@get("/console/schedules/new", opt=_ADMIN, include_in_schema=False)
async def new_schedule_page(
    request: Request[Any, Any, Any], settings: NamedDependency[Settings]
) -> Response[str]:
    """The form for a new schedule."""
    return _form_page(request, settings, ScheduleForm.blank())


@post("/console/schedules/new", opt=_ADMIN, include_in_schema=False, status_code=303)
async def create_schedule(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
) -> Response[str]:
    """Create a schedule; 400 with each message beside its field. A name already taken is refused here
    (the API would replace that schedule): it is changed on its own page."""
    form = read_form(await request.form())
    try:
        data = schedule_input(form)
        if await service.find_schedule(session=db_session, name=data.name) is not None:
            raise ValidationFailed.at("name", "is the name of another schedule: change that one on its page")
        saved = await _save(request, db_session, settings, data)
    except ValidationFailed as exc:
        failed = ScheduleForm(values=form.values, enabled=form.enabled, errors=form_errors(exc))
        return _form_page(request, settings, failed, status=400)
    return Response(
        "", status_code=303, headers={"Location": f"/console/schedules/{saved.schedule.id}?saved=1"}
    )


async def _schedule_or_404(session: AsyncSession, schedule_id: uuid.UUID) -> Schedule:
    row = await service.get_schedule(session=session, schedule_id=schedule_id)
    if row is None:
        raise NotFound("there is no schedule with that id")
    return row


async def _schedule_page(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    settings: Settings,
    row: Schedule,
    form: ScheduleForm | None = None,
    *,
    status: int = 200,
) -> Response[str]:
    out = schedule_out(row, now=utcnow())
    runs: Sequence[Any] = await service.list_runs(session=session, schedule_id=row.id)
    shown = form or ScheduleForm.of(out)
    return page(
        request,
        "admin/schedule.html",
        title=f"Schedule {out.name}",
        status=status,
        schedule=_listed(out),
        form=shown,
        form_is_new=False,
        runs=[_run_row(run_out(run)) for run in runs],
        saved=request.query_params.get("saved") if status == 200 else None,
        **_choices(settings, shown.values["policy"]),
    )


@get("/console/schedules/{schedule_id:uuid}", opt=_ADMIN, include_in_schema=False)
async def schedule_page(
    request: Request[Any, Any, Any],
    schedule_id: FromPath[uuid.UUID],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
) -> Response[str]:
    """One schedule: its form and its runs (as ``GET /api/v1/schedules/{id}/runs``), newest period first."""
    row = await _schedule_or_404(db_session, schedule_id)
    return await _schedule_page(request, db_session, settings, row)


@post("/console/schedules/{schedule_id:uuid}", opt=_ADMIN, include_in_schema=False, status_code=303)
async def change_schedule_page(
    request: Request[Any, Any, Any],
    schedule_id: FromPath[uuid.UUID],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
) -> Response[str]:
    """Change a schedule (its name stays: the API matches schedules by name); 400 with each message beside
    its field."""
    row = await _schedule_or_404(db_session, schedule_id)
    form = read_form(await request.form(), name=row.name)
    try:
        saved = await _save(request, db_session, settings, schedule_input(form))
    except ValidationFailed as exc:  # refused before anything was written: the row is as stored
        failed = ScheduleForm(values=form.values, enabled=form.enabled, errors=form_errors(exc))
        return await _schedule_page(request, db_session, settings, row, failed, status=400)
    outcome = "1" if saved.changed else "unchanged"
    return Response("", status_code=303, headers={"Location": f"/console/schedules/{row.id}?saved={outcome}"})


SCHEDULE_PAGES: Final = (
    schedules_page,
    new_schedule_page,
    create_schedule,
    schedule_page,
    change_schedule_page,
)
