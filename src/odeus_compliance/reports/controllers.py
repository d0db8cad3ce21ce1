"""The officers' report API: ``/api/v1/reports/...``.

Thin handlers: validate through :mod:`~odeus_compliance.reports.service`, act through the audited flows of
:mod:`~odeus_compliance.reports.actions` (which record the access *before* anything is queued or handed out:
a record that cannot be written is a 503 and no byte goes out), answer with msgspec Structs or a streamed
file.

Who may do what (README.md, HTTP API): officers request (and cancel) reports and download the PDF and the
dataset; auditors read the list and the status and download the PDF; anyone with a key may verify a PDF.
A download needs a purpose, given as the query parameter ``purpose``; it is recorded in the audit log with
the download.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import InternalServerException
from litestar.openapi.spec import (
    Example,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    RequestBody,
    Schema,
)
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.response import Stream

from odeus_compliance.audit.recording import record_denial, recorder_of
from odeus_compliance.errors import PermissionDenied, ValidationFailed
from odeus_compliance.problem_schema import ProblemOperation, problem_responses
from odeus_compliance.reports import actions, service
from odeus_compliance.reports.schemas import (
    MAX_PURPOSE_LENGTH,
    ReportCancelIn,
    ReportOut,
    ReportPage,
    ReportRequestIn,
)
from odeus_compliance.reports.verifier import verifier_of_state
from odeus_compliance.security import ALL_ROLES, ApiKeyIdentity, Role, requires_role
from odeus_compliance.settings import Settings
from odeus_compliance.state_keys import REPORT_VERIFIER

__all__ = [
    "cancel_report",
    "download_report_dataset",
    "download_report_pdf",
    "get_report",
    "list_reports",
    "request_report",
    "verify_report",
]

_TAGS: Final = ["reports"]
OFFICER: Final = requires_role(Role.OFFICER)
READERS: Final = requires_role(Role.OFFICER, Role.AUDITOR)
ReportRequest = Request[ApiKeyIdentity, Any, State]
ReportId = Annotated[
    str, Parameter(description="The report's id (`rpt_...`): the `id` in the answer to its request.")
]
DownloadPurpose = Annotated[
    str,
    QueryParameter(
        name="purpose",
        min_length=1,
        max_length=MAX_PURPOSE_LENGTH,
        description="Why the file is downloaded: not blank, no control, format, bidi or invisible "
        "characters; recorded in the audit record of the download.",
        examples=[Example(value="quarterly review with the works council")],
    ),
]


_DOWNLOAD_WHY: Final = {
    400: "No purpose, or one that is not accepted (`errors` says which rule); or an unknown `variant`.",
    404: "No report with that id, or it has no such file (no per-person dataset, or retention removed it).",
    409: "The report has not succeeded (yet): see its status.",
    503: "The audit record of the download could not be written (or the database is not reachable): "
    "nothing was sent.",
}


@post(
    "/api/v1/reports",
    operation_id="requestReport",
    tags=_TAGS,
    opt=OFFICER,
    status_code=202,
    request_max_body_size=16 * 1024,
    responses=problem_responses(
        OFFICER,
        400,
        413,
        why={
            400: "No valid period, zone, policy or purpose: `errors` names the field and what it must be, "
            "never its value.",
            413: "The body is larger than 16 KiB.",
            503: "The audit record of the request could not be written, or the database stayed busy: no job "
            "was queued; retry after `Retry-After` seconds.",
        },
    ),
    response_description="The report job, queued; poll its 'links.self' (also the Location header)",
)
async def request_report(
    request: ReportRequest, settings: NamedDependency[Settings], data: JSONBody[ReportRequestIn]
) -> Response[ReportOut]:
    """Request a report: ``{"month": "YYYY-MM", "timezone": "Europe/Berlin", "policy": "default",
    "purpose": "..."}``, or Odeus-style ``from``/``to`` objects (``{"date": "2026-10-01T00:00:00.000Z",
    "timezone": "Europe/Berlin"}``, ``to`` inclusive to the millisecond) instead of ``month``. The purpose
    is required. Recorded as ``report.requested`` (with the purpose) before the job is queued; answers 202
    with the job and its URL in ``Location``. A bad month, zone or policy is a 400 that names the field; so
    is a period that has not ended yet, unless ``"partial": true`` asks for a report of the data so far (its
    cover then says "Partial period: data up to ...")."""
    wanted = service.parse_request(data, settings=settings)
    runtime = service.runtime_of(request)
    record = await actions.request_report(
        recorder_of(request), jobs=runtime.jobs, wanted=wanted, requested_by=request.user.key_id
    )
    runtime.wake()
    out = service.report_out(record)
    return Response(out, status_code=202, headers={"Location": out.links.self})


@dataclass
class _OptionalBodyOperation(ProblemOperation):
    """The cancel route's body may be left out (the purpose can come as a query parameter)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


@post(
    "/api/v1/reports/{report_id:str}/cancel",
    operation_id="cancelReport",
    tags=_TAGS,
    opt=OFFICER,
    status_code=200,
    request_max_body_size=16 * 1024,
    responses=problem_responses(
        OFFICER,
        400,
        404,
        409,
        413,
        why={
            400: "No purpose given (in the body or as the query parameter `purpose`), or one not accepted.",
            404: "No report with that id.",
            409: "The job has already ended (succeeded, failed or cancelled).",
            413: "The body is larger than 16 KiB.",
            503: "The audit record of the cancellation could not be written: nothing was cancelled.",
        },
    ),
    response_description="The job, ended: status 'failed', stage 'cancelled'",
    operation_class=_OptionalBodyOperation,
)
async def cancel_report(
    request: ReportRequest,
    report_id: ReportId,
    purpose: Annotated[
        str | None,
        QueryParameter(
            name="purpose",
            max_length=MAX_PURPOSE_LENGTH,
            required=False,
            description="Why the job is cancelled (or give it in the body); recorded in the audit log.",
        ),
    ] = None,
    data: JSONBody[ReportCancelIn | None] = None,
) -> ReportOut:
    """Cancel a queued or running report job: ``{"purpose": "..."}`` (or ``?purpose=``; required). Recorded
    as ``report.cancelled`` (with the purpose) before the job is stopped; the job ends at once with status
    ``failed``, stage ``cancelled``, and nothing of it is kept (no stored file, no work file). A job running
    in another replica stops at its next lease renewal. Officers only. 409 if the job has already ended,
    404 for an unknown id."""
    given = data.purpose if data is not None and data.purpose is not None else purpose
    why = service.check_purpose(given, required_for="cancel a report", source="body")
    runtime = service.runtime_of(request)
    record = await service.get_report(jobs=runtime.jobs, report_id=report_id)
    cancelled = await actions.cancel_report(
        recorder_of(request), jobs=runtime.jobs, record=record, purpose=why, stop=runtime.cancel
    )
    return service.report_out(cancelled)


@get(
    "/api/v1/reports",
    operation_id="listReports",
    tags=_TAGS,
    opt=READERS,
    responses=problem_responses(
        READERS,
        400,
        why={400: "A `limit` out of range or a `before` that is not a report id from `next_before`."},
    ),
)
async def list_reports(
    request: ReportRequest,
    limit: Annotated[
        int, QueryParameter(name="limit", ge=1, le=service.MAX_PAGE, description="Reports per page.")
    ] = 50,
    before: Annotated[
        str | None,
        QueryParameter(
            name="before",
            max_length=64,
            required=False,
            description="Only reports older than this one: the previous page's `next_before`.",
        ),
    ] = None,
) -> ReportPage:
    """The reports, newest first, with their status; page with ``before`` (the previous page's
    ``next_before``). Metadata only (no personal data); recorded as ``report.viewed``."""
    runtime = service.runtime_of(request)
    records, next_before = await actions.view_reports(
        recorder_of(request), jobs=runtime.jobs, limit=limit, before=before
    )
    current = await service.current_versions(jobs=runtime.jobs, records=records)
    return service.report_page(records, next_before, current)


@get(
    "/api/v1/reports/{report_id:str}",
    operation_id="getReport",
    tags=_TAGS,
    opt=READERS,
    responses=problem_responses(READERS, 404, why={404: "No report with that id."}),
)
async def get_report(request: ReportRequest, report_id: ReportId) -> ReportOut:
    """One report job: status (``queued``, ``running``, ``succeeded``, ``failed``), stage and progress
    (0 to 1), its period and policy, the reason if it failed, and links to its PDF and dataset once it has
    succeeded. 404 for an unknown id. Recorded as ``report.viewed``."""
    jobs = service.runtime_of(request).jobs
    record = await actions.view_report(recorder_of(request), jobs=jobs, report_id=report_id)
    current = await service.current_versions(jobs=jobs, records=[record])
    return service.report_out(record, current=record.id in current)


@get(
    "/api/v1/reports/{report_id:str}/pdf",
    operation_id="downloadReportPdf",
    tags=_TAGS,
    opt=READERS,
    media_type="application/pdf",
    responses=problem_responses(
        READERS,
        400,
        404,
        409,
        why={
            **_DOWNLOAD_WHY,
            403: "The key's role may not read reports, or an auditor asked for `variant=full`.",
        },
    ),
    response_description="The signed PDF/A-3b report (PAdES), as an attachment",
)
async def download_report_pdf(
    request: ReportRequest,
    report_id: ReportId,
    purpose: DownloadPurpose,
    variant: Annotated[
        Literal["figures", "full"],
        QueryParameter(
            name="variant",
            description="`figures` (default): the figures-only PDF, no per-person row or dataset, for every "
            "reader. `full`: with the per-person dataset attached, where the policy releases one; officers "
            "only, recorded as `dataset.downloaded`.",
        ),
    ] = "figures",
) -> Stream:
    """The signed PDF of a finished report, streamed as an attachment; ``ETag`` and ``Repr-Digest`` carry
    its SHA-256. Auditors get the figures-only PDF; officers may ask for ``variant=full`` (404 where the
    policy releases no per-person rows). The query parameter ``purpose`` is required: the download is
    recorded (``report.downloaded``, or ``dataset.downloaded`` for the full PDF) before the first byte goes
    out (503 and nothing sent if the record cannot be written). 409 while the report is not finished, 404
    for an unknown id."""
    if variant == "full":
        if request.user.role is not Role.OFFICER:
            await record_denial(request, 403, "wrong_role")
            raise PermissionDenied("Only compliance officers may download the PDF with per-person rows.")
        return await _hand_out(
            request, report_id, purpose, name=service.FULL_PDF_FILE, doing="download a report"
        )
    return await _hand_out(request, report_id, purpose, name=service.PDF_FILE, doing="download a report")


@get(
    "/api/v1/reports/{report_id:str}/data.csv",
    operation_id="downloadReportDataset",
    tags=_TAGS,
    opt=OFFICER,
    media_type="text/csv; charset=utf-8",
    responses=problem_responses(OFFICER, 400, 404, 409, why=_DOWNLOAD_WHY),
    response_description="The pseudonymised dataset as CSV (formula cells neutralised), as an attachment",
)
async def download_report_dataset(
    request: ReportRequest, report_id: ReportId, purpose: DownloadPurpose
) -> Stream:
    """The pseudonymised per-person dataset of a finished report (the policy engine's output), streamed as
    CSV. Safe to open in a spreadsheet: a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
    return carries a leading apostrophe. The query parameter ``purpose`` is required: recorded as
    ``dataset.downloaded`` with it before the first byte goes out. 409 while the report is not finished; 404
    for an unknown id or when the policy gives no per-person dataset."""
    return await _hand_out(request, report_id, purpose, name=service.DATASET_FILE, doing="download a dataset")


async def _hand_out(request: ReportRequest, report_id: str, purpose: str, *, name: str, doing: str) -> Stream:
    why = service.check_purpose(purpose, required_for=doing)
    runtime = service.runtime_of(request)
    record = await service.get_report(jobs=runtime.jobs, report_id=report_id)
    artifact = await actions.hand_out(
        recorder_of(request), store=runtime.store, record=record, name=name, purpose=why
    )
    return Stream(artifact.chunks(), media_type=artifact.media_type, headers=artifact.headers())


@dataclass
class _PdfUploadOperation(ProblemOperation):
    """The verify route reads its body raw: document it as a PDF upload (Litestar would assume JSON)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.request_body = RequestBody(
            required=True,
            description=f"The PDF file as the raw body (at most {service.MAX_VERIFY_BYTES // 2**20} MiB).",
            content={
                "application/pdf": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                )
            },
        )


@post(
    "/api/v1/reports/verify",
    operation_id="verifyReport",
    tags=_TAGS,
    opt=requires_role(*ALL_ROLES),
    status_code=200,
    request_max_body_size=service.MAX_VERIFY_BYTES,
    responses=problem_responses(
        requires_role(*ALL_ROLES),
        400,
        413,
        422,
        why={
            400: "The body is not a PDF upload (`Content-Type: application/pdf`), or it is empty.",
            413: "The PDF is larger than 64 MiB.",
            422: "The PDF could not be judged within the verifier's limits (objects, nesting, memory, time): "
            "`reason` names the limit.",
            503: "Every verification slot is taken (retry after `Retry-After` seconds), or the audit record "
            "could not be written.",
        },
    ),
    operation_class=_PdfUploadOperation,
    response_description="The verification result: 'valid' and every check with its outcome",
)
async def verify_report(request: ReportRequest) -> dict[str, Any]:
    """Verify a report PDF, sent as the raw body with ``Content-Type: application/pdf`` (at most 64 MiB):
    the signature and that it covers the whole file, the signing certificate against the configured trust
    anchors, and the embedded manifest's hashes against the attachments. ``valid`` is true only if every
    check passed. Recorded as ``report.verified`` (with the verdict and the file's SHA-256).

    The file is parsed in a process of its own with limits on memory, time, objects and nesting: a file
    that passes one is refused with a 422 problem naming the limit (recorded with outcome ``failure``).
    Only a few files are verified at once; when every slot and the queue are taken the answer is 503 with
    ``Retry-After``."""
    service.check_upload(request.headers.get("content-type"))
    verifier = verifier_of_state(request.app.state.get(REPORT_VERIFIER))
    upload = _until_disconnect(request.stream())
    result = await actions.verify_report(recorder_of(request), verifier=verifier, upload=upload)
    return service.verification_json(result)


async def _until_disconnect(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The request body; a client that goes away mid-upload is its own mistake (400), not a server error
    (Litestar reports it as a 500)."""
    try:
        async for chunk in stream:
            yield chunk
    except InternalServerException:
        raise ValidationFailed.at("body", "must be sent whole (the client went away)") from None
