"""One report's console pages: its figures (HTML and SVG charts, the same numbers as the PDF), its
verification and its downloads.

The page mirrors ``GET /api/v1/reports/{id}`` (recorded as ``report.viewed``) and adds the report's stored
figures (``figures.json``: what the figures-only PDF was rendered from, never a per-person row, so every
reader may see them). Downloads mirror ``GET .../pdf`` and ``GET .../data.csv``: the same purpose rule, the
same role rule (auditors get the figures-only PDF only, refusals recorded as the API records them) and the
same audited hand-out (``report.downloaded`` / ``dataset.downloaded`` before the first byte).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Stream
from litestar.types import ControllerRouterHandler

from odeus_compliance.audit.recording import record_denial, recorder_of
from odeus_compliance.console.report_verify_pages import (
    REPORT_VERIFY_PAGES,
    UPLOAD_FIELD,
)
from odeus_compliance.console.report_view import (
    BREAKDOWN_COLUMNS,
    FiguresView,
    report_facts,
    stored_figures,
)
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import is_quiet_refresh, note_read, page
from odeus_compliance.errors import PermissionDenied, ValidationFailed
from odeus_compliance.reports import actions, service
from odeus_compliance.reports.jobs import ReportRecord
from odeus_compliance.security import Role

__all__ = ["REPORT_PAGES", "download_report_file", "report_page"]

READERS: Final = (Role.OFFICER, Role.AUDITOR)
_FILES: Final = {
    "figures": (service.PDF_FILE, "download a report"),
    "full": (service.FULL_PDF_FILE, "download a report"),
    "dataset": (service.DATASET_FILE, "download a dataset"),
}
"""The ``file`` choice of the download form -> the stored file and what the purpose is required for."""
_OFFICERS_ONLY: Final = frozenset({"full", "dataset"})


def _offered_files(request: Request[Any, Any, Any], record: ReportRecord) -> list[tuple[str, str]]:
    """The files the signed-in person may download (value, label)."""
    offered = [("figures", "Figures-only PDF (no per-person rows)")]
    if request.user.role is Role.OFFICER and record.has_dataset:
        offered += [
            ("full", "Full PDF with the per-person dataset attached"),
            ("dataset", "Pseudonymised dataset (CSV)"),
        ]
    return offered


async def _show(
    request: Request[Any, Any, Any],
    report_id: str,
    *,
    status: int = 200,
    chosen: str = "figures",
    errors: Mapping[str, str] | None = None,
) -> Response[str]:
    """The report's page, recorded as ``report.viewed`` as the API records a status read; the page's own
    status refreshes (htmx, every 2 s while the job runs: metadata only) are not recorded each time, as
    long as the same session keeps refreshing it (:mod:`.recent_reads`: the header alone skips nothing)."""
    runtime = service.runtime_of(request)
    read = f"report:{report_id}"
    if is_quiet_refresh(request, read):
        record = await service.get_report(jobs=runtime.jobs, report_id=report_id)
    else:
        record = await actions.view_report(recorder_of(request), jobs=runtime.jobs, report_id=report_id)
    note_read(request, read)
    current = await service.current_versions(jobs=runtime.jobs, records=[record])
    facts = report_facts(record, current=record.id in current)
    if request.headers.get("hx-request") == "true" and not facts.live:
        # a poll saw the job end: load the whole page once (its figures and downloads appear)
        return Response("", status_code=200, headers={"HX-Refresh": "true", "cache-control": "no-store"})
    figures = await stored_figures(runtime.store, record) if facts.succeeded else FiguresView(None)
    return page(
        request,
        "report/report.html",
        title=f"Report {record.period.label}",
        status=status,
        report=facts,
        view=figures,
        figures=figures.figures,
        breakdown_columns=BREAKDOWN_COLUMNS,
        offered_files=_offered_files(request, record),
        chosen_file=chosen,
        errors=dict(errors or {}),
        upload_field=UPLOAD_FIELD,
        upload_error=None,
        max_upload_mib=service.MAX_VERIFY_BYTES // 2**20,
    )


@get("/console/reports/{report_id:str}", opt=console_page(*READERS), include_in_schema=False)
async def report_page(request: Request[Any, Any, Any], report_id: FromPath[str]) -> Response[str]:
    """A report's status, provenance and (once it has succeeded) its figures, downloads and verification;
    while it is queued or running the status refreshes itself every 2 seconds."""
    return await _show(request, report_id)


def _message(error: ValidationFailed) -> str:
    listed = error.extra.get("errors") or [{}]
    return str(listed[0].get("message") or error.detail)


@get("/console/reports/{report_id:str}/download", opt=console_page(*READERS), include_in_schema=False)
async def download_report_file(
    request: Request[Any, Any, Any],
    report_id: FromPath[str],
    file: FromQuery[str | None] = None,
    purpose: FromQuery[str | None] = None,
) -> Response[str] | Stream:
    """One of the report's files as an attachment, for the purpose given in the form: the figures-only PDF
    for every reader; the full PDF and the dataset for officers (a refusal is recorded as the API records
    it). A missing or refused purpose shows the page again with the message beside the field (400)."""
    choice = file or "figures"
    if choice not in _FILES:
        return await _show(request, report_id, status=400, errors={"file": "must be one of the files listed"})
    if choice in _OFFICERS_ONLY and request.user.role is not Role.OFFICER:
        await record_denial(request, 403, "wrong_role")
        raise PermissionDenied("Only compliance officers may download the per-person rows of a report.")
    name, doing = _FILES[choice]
    try:
        why = service.check_purpose(purpose, required_for=doing)
    except ValidationFailed as invalid:
        return await _show(
            request, report_id, status=400, chosen=choice, errors={"purpose": _message(invalid)}
        )
    runtime = service.runtime_of(request)
    record = await service.get_report(jobs=runtime.jobs, report_id=report_id)
    artifact = await actions.hand_out(
        recorder_of(request), store=runtime.store, record=record, name=name, purpose=why
    )
    return Stream(artifact.chunks(), media_type=artifact.media_type, headers=artifact.headers())


REPORT_PAGES: Sequence[ControllerRouterHandler] = (report_page, download_report_file, *REPORT_VERIFY_PAGES)
"""Every page of this area (the console router registers them)."""
