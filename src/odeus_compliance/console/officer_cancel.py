"""``/console/reports/{id}/cancel``: an officer cancels a queued or running report job, giving a purpose,
through the API's audited flow (``report.cancelled`` with the purpose, then the job ends and the run in
this process stops). A job that has already ended is a 409 page."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from odeus_compliance.audit.recording import recorder_of
from odeus_compliance.console.officer_rows import archive_row
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import page
from odeus_compliance.errors import ValidationFailed
from odeus_compliance.reports import actions, service
from odeus_compliance.reports.schemas import MAX_PURPOSE_LENGTH
from odeus_compliance.security import Role

__all__ = ["cancel_form", "submit_cancel"]


async def _cancel_page(
    request: Request[Any, Any, Any], report_id: str, *, purpose: str = "", error: str = "", status: int = 200
) -> Response[str]:
    """The confirmation form of a job that may still be cancelled (it shows the job's status, so it is
    recorded as a view, as ``GET /api/v1/reports/{id}`` is); 404 unknown, 409 already ended."""
    jobs = service.runtime_of(request).jobs
    record = await actions.view_report(recorder_of(request), jobs=jobs, report_id=report_id)
    service.check_cancellable(record)
    return page(
        request,
        "officer/cancel.html",
        title=f"Cancel report {record.id}",
        status=status,
        row=archive_row(service.report_out(record)),
        purpose=purpose,
        error=error,
        max_purpose=MAX_PURPOSE_LENGTH,
    )


@get("/console/reports/{report_id:str}/cancel", opt=console_page(Role.OFFICER), include_in_schema=False)
async def cancel_form(request: Request[Any, Any, Any], report_id: FromPath[str]) -> Response[str]:
    """Ask for the purpose of the cancellation."""
    return await _cancel_page(request, report_id)


@post(
    "/console/reports/{report_id:str}/cancel",
    opt=console_page(Role.OFFICER),
    include_in_schema=False,
    request_max_body_size=16 * 1024,
)
async def submit_cancel(request: Request[Any, Any, Any], report_id: FromPath[str]) -> Response[str]:
    """Cancel the job as ``POST /api/v1/reports/{id}/cancel`` does, then show the archive."""
    form = await request.form()
    given = form.get("purpose")
    text = given if isinstance(given, str) else ""
    try:
        why = service.check_purpose(text, required_for="cancel a report", source="body")
    except ValidationFailed as exc:
        items = exc.extra.get("errors")
        first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
        message = str(first.get("message") or exc.detail)
        return await _cancel_page(request, report_id, purpose=text, error=message, status=400)
    runtime = service.runtime_of(request)
    record = await service.get_report(jobs=runtime.jobs, report_id=report_id)
    await actions.cancel_report(
        recorder_of(request), jobs=runtime.jobs, record=record, purpose=why, stop=runtime.cancel
    )
    return Response("", status_code=303, headers={"Location": "/console/reports"})
