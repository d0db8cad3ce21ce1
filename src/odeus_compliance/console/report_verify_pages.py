"""Verifying report PDFs in the console, with the flow of ``POST /api/v1/reports/verify``
(``reports.actions.verify_report``: the app's capped verifier processes, ``report.verified`` recorded with
the verdict and the file's SHA-256): a report's stored figures-only PDF at the press of a button, or any
PDF uploaded through a form (at most ``service.MAX_VERIFY_BYTES``, spooled to disk as it arrives and fed to
the verifier in chunks). A file the verifier cannot judge is its 422 page; every slot taken, its 503."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from odeus_compliance.audit.recording import recorder_of
from odeus_compliance.console.routing import ANY_PERSON, console_page
from odeus_compliance.console.web import page
from odeus_compliance.errors import ValidationFailed
from odeus_compliance.reports import actions, service
from odeus_compliance.reports.verifier import verifier_of_state
from odeus_compliance.reports.verify import VerificationResult
from odeus_compliance.security import Role
from odeus_compliance.state_keys import REPORT_VERIFIER

__all__ = [
    "REPORT_VERIFY_PAGES",
    "UPLOAD_FIELD",
    "verify_stored_report",
    "verify_upload_form",
    "verify_uploaded_pdf",
]

UPLOAD_FIELD: Final = "pdf"
_READ_BYTES: Final = 1 << 16
_FORM_OVERHEAD: Final = 64 * 1024
"""Room for the multipart framing and the CSRF field around a PDF of the largest size verified."""


def _result_page(
    request: Request[Any, Any, Any], result: VerificationResult, *, subject: str, report_id: str | None
) -> Response[str]:
    return page(
        request,
        "report/verification.html",
        title="Verification result",
        result=service.verification_json(result),
        subject=subject,
        report_id=report_id,
    )


@post(
    "/console/reports/{report_id:str}/verify",
    opt=console_page(Role.OFFICER, Role.AUDITOR),
    include_in_schema=False,
    status_code=200,
    request_max_body_size=16 * 1024,
)
async def verify_stored_report(request: Request[Any, Any, Any], report_id: FromPath[str]) -> Response[str]:
    """Verify the report's stored figures-only PDF as a reader would verify a downloaded copy; the file
    goes nowhere but to the verifier. 409 while the report has not succeeded."""
    runtime = service.runtime_of(request)
    record = await service.get_report(jobs=runtime.jobs, report_id=report_id)
    verifier = verifier_of_state(request.app.state.get(REPORT_VERIFIER))
    artifact = await service.open_artifact(store=runtime.store, record=record, name=service.PDF_FILE)
    try:
        result = await actions.verify_report(
            recorder_of(request), verifier=verifier, upload=artifact.chunks()
        )
    finally:
        await artifact.close()  # also when the verifier was busy and read nothing
    return _result_page(request, result, subject="the stored figures-only PDF", report_id=record.id)


def _upload_form(
    request: Request[Any, Any, Any], *, status: int = 200, error: str | None = None
) -> Response[str]:
    return page(
        request,
        "report/verify_upload.html",
        title="Verify a report PDF",
        status=status,
        upload_error=error,
        upload_field=UPLOAD_FIELD,
        max_upload_mib=service.MAX_VERIFY_BYTES // 2**20,
    )


@get("/console/reports/verify", opt=console_page(*ANY_PERSON), include_in_schema=False)
async def verify_upload_form(request: Request[Any, Any, Any]) -> Response[str]:
    """The form to verify any report PDF (every role may verify, as through the API)."""
    return _upload_form(request)


async def _file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_READ_BYTES):
        yield chunk


@post(
    "/console/reports/verify",
    opt=console_page(*ANY_PERSON),
    include_in_schema=False,
    status_code=200,
    request_max_body_size=service.MAX_VERIFY_BYTES + _FORM_OVERHEAD,
)
async def verify_uploaded_pdf(request: Request[Any, Any, Any]) -> Response[str]:
    """Verify an uploaded PDF: the verdict and every check. No file chosen, or an empty one, shows the form
    again with the message beside the field (400); a larger file than the API accepts is a 413 page."""
    form = await request.form()
    upload = form.get(UPLOAD_FIELD)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _upload_form(request, status=400, error="Choose a PDF file to verify.")
    verifier = verifier_of_state(request.app.state.get(REPORT_VERIFIER))
    try:
        result = await actions.verify_report(
            recorder_of(request), verifier=verifier, upload=_file_chunks(upload)
        )
    except ValidationFailed:  # the verifier's only one: the file is empty
        return _upload_form(request, status=400, error="The file is empty: choose the report's PDF.")
    finally:
        await upload.close()
    return _result_page(request, result, subject="the uploaded file", report_id=None)


REPORT_VERIFY_PAGES: Sequence[ControllerRouterHandler] = (
    verify_upload_form,
    verify_uploaded_pdf,
    verify_stored_report,
)
"""The verification pages (part of ``report_pages.REPORT_PAGES``)."""
