"""``/console/reports``: the report archive for officers and auditors, newest first, paged like
``GET /api/v1/reports`` (``before`` = the previous page's ``next_before``). It calls the same service
functions and writes the same ``report.viewed`` record as the API's list. While a job on the page is queued
or running, the table refreshes itself with htmx every 2 seconds (the same URL, only the table swapped in)
and stops once none is."""

from __future__ import annotations

from typing import Annotated, Any, Final

from litestar import Request, Response, get
from litestar.params import QueryParameter

from odeus_compliance.audit.recording import recorder_of
from odeus_compliance.console.officer_rows import archive_row
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import is_quiet_refresh, note_read, page
from odeus_compliance.reports import actions, service
from odeus_compliance.security import Role

__all__ = ["PAGE_SIZE", "report_archive"]

PAGE_SIZE: Final = 50
"""Reports per page (the API's default page size)."""


@get(
    "/console/reports",
    opt=console_page(Role.OFFICER, Role.AUDITOR),
    include_in_schema=False,
)
async def report_archive(
    request: Request[Any, Any, Any],
    before: Annotated[str | None, QueryParameter(name="before", max_length=64, required=False)] = None,
) -> Response[str]:
    """The archive page, recorded as ``report.viewed`` like the API's list (for an htmx poll: only its
    table, not recorded again while the same session keeps refreshing the same page, see
    :mod:`.recent_reads`)."""
    jobs = service.runtime_of(request).jobs
    is_htmx = request.headers.get("hx-request") == "true"
    read = f"report:list?before={before or ''}"
    if is_quiet_refresh(request, read):
        records, next_before = await service.list_reports(jobs=jobs, limit=PAGE_SIZE, before=before)
    else:
        records, next_before = await actions.view_reports(
            recorder_of(request), jobs=jobs, limit=PAGE_SIZE, before=before
        )
    note_read(request, read)
    current = await service.current_versions(jobs=jobs, records=records)
    listing = service.report_page(records, next_before, current)
    rows = [archive_row(report) for report in listing.reports]
    self_url = "/console/reports" + (f"?before={before}" if before else "")
    return page(
        request,
        "officer/archive_table.html" if is_htmx else "officer/archive.html",
        title="Reports",
        rows=rows,
        live=sum(1 for row in rows if row.live),
        next_before=listing.next_before,
        first_page=before is None,
        self_url=self_url,
        can_act=request.user.role is Role.OFFICER,
    )
