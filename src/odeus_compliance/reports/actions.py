"""The audited actions on reports, one function each, called by every entry point.

The HTTP API, the command line, the demo, the scheduler and the console call these and nothing else to
request a report, cancel one, hand out one of its files or verify a report PDF; each writes its action's
record (shape in ``docs/audit-records.md``) through the caller's
:class:`~odeus_compliance.audit.recorder.Recorder` before anything is queued, cancelled or handed out, and
fails closed when the record cannot be written.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Mapping
from typing import Final

from sqlalchemy.exc import SQLAlchemyError

from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action, DetailValue, Outcome
from odeus_compliance.errors import Conflict, ServiceUnavailable
from odeus_compliance.reports.jobs import JobsBusy, ReportJobs, ReportRecord, new_report_id
from odeus_compliance.reports.service import (
    DATASET_FILE,
    FULL_PDF_FILE,
    PDF_FILE,
    Artifact,
    RequestedReport,
    check_cancellable,
    get_report,
    is_report_id,
    list_reports,
    open_artifact,
)
from odeus_compliance.reports.store import ArtifactStore
from odeus_compliance.reports.verifier import PdfRefused, PdfVerifier
from odeus_compliance.reports.verify import VerificationResult

__all__ = [
    "cancel_report",
    "hand_out",
    "hand_out_bytes",
    "request_report",
    "verify_report",
    "view_report",
    "view_reports",
]

_FORMATS: Final = {PDF_FILE: "pdf", FULL_PDF_FILE: "pdf", DATASET_FILE: "csv"}
_PERSON_FILES: Final = frozenset({FULL_PDF_FILE, DATASET_FILE})  # handing these out is a dataset download
REQUEST_RETRY_AFTER_SECONDS: Final = 2
"""``Retry-After`` of the 503 when a job could not be queued (the database stayed busy)."""
Extra = Mapping[str, DetailValue]


def _resource(report_id: str) -> str:
    return f"report:{report_id}"


async def request_report(
    recorder: Recorder,
    *,
    jobs: ReportJobs,
    wanted: RequestedReport,
    requested_by: str,
    origin: Extra | None = None,
) -> ReportRecord:
    """Record ``report.requested`` (naming the new report's id), then queue the job. If the job cannot be
    queued, a second record with outcome ``failure`` says so, so no record names a report that never
    existed without one; the error propagates, as :class:`ServiceUnavailable` (503 with ``Retry-After``)
    when the database stayed busy or is unreachable. ``origin``: where a scheduled request comes from
    (schedule, run_id)."""
    report_id = new_report_id()
    period = wanted.period
    details: dict[str, DetailValue] = {
        "report_id": report_id,
        "policy": wanted.policy.name,
        "policy_hash": wanted.policy_hash,
        "period_from": period.local_start.isoformat(),
        "period_to": period.local_end.isoformat(),
        "timezone": period.timezone,
        **(origin or {}),
    }
    resource = _resource(report_id)
    await recorder.record(
        action=Action.REPORT_REQUESTED, resource=resource, purpose=wanted.purpose, details=details
    )
    try:
        return await jobs.request(
            period=period,
            policy=wanted.policy.name,
            purpose=wanted.purpose,
            requested_by=requested_by,
            report_id=report_id,
        )
    except Exception as exc:
        await recorder.record(
            action=Action.REPORT_REQUESTED,
            resource=resource,
            purpose=wanted.purpose,
            outcome=Outcome.FAILURE,
            details=details | {"error_code": "job_not_queued"},
        )
        if isinstance(exc, (JobsBusy, SQLAlchemyError)):  # the database is busy or away: ask again later
            raise ServiceUnavailable(
                "The report job could not be queued right now; nothing was queued. Try again shortly.",
                headers={"Retry-After": str(REQUEST_RETRY_AFTER_SECONDS)},
            ) from None
        raise


async def cancel_report(
    recorder: Recorder,
    *,
    jobs: ReportJobs,
    record: ReportRecord,
    purpose: str,
    stop: Callable[[str], object] | None = None,
) -> ReportRecord:
    """Cancel a queued or running report job: record ``report.cancelled`` (with the purpose and the status
    the job had), then end it in the database (``failed`` at stage ``cancelled``); ``stop`` (the runtime's
    :meth:`~odeus_compliance.reports.runtime.ReportRuntime.cancel`) stops a run in this process at once,
    one in another process stops at its next lease renewal. Its files and work folder are removed by the
    run as it stops. 409 if the job has already ended; if it ended between the check and the update, a
    second record with outcome ``failure`` says so."""
    check_cancellable(record)
    details: dict[str, DetailValue] = {"report_id": record.id, "status": record.status.value}
    resource = _resource(record.id)
    await recorder.record(action=Action.REPORT_CANCELLED, resource=resource, purpose=purpose, details=details)
    cancelled = await jobs.cancel(record.id)
    if cancelled is None:
        await recorder.record(
            action=Action.REPORT_CANCELLED,
            resource=resource,
            purpose=purpose,
            outcome=Outcome.FAILURE,
            details=details | {"error_code": "already_ended"},
        )
        raise Conflict("The report job ended before it could be cancelled.", extra={"report_status": "ended"})
    if stop is not None:
        stop(record.id)
    return cancelled


async def hand_out(
    recorder: Recorder,
    *,
    store: ArtifactStore,
    record: ReportRecord,
    name: str,
    purpose: str,
    delivery: Extra | None = None,
) -> Artifact:
    """Open a finished report's file and record handing it out (``report.downloaded`` for the figures-only
    PDF, ``dataset.downloaded`` for anything with per-person rows: the dataset or the full PDF) before its
    first byte goes anywhere; if the record cannot be
    written the file is released and nothing goes out. ``delivery``: a scheduled delivery's schedule and
    channel. The caller streams the returned artifact."""
    artifact = await open_artifact(store=store, record=record, name=name)
    details: dict[str, DetailValue] = {"report_id": record.id, "format": _FORMATS[name]}
    if name == PDF_FILE and record.pdf_sha256 is not None:
        details["sha256"] = record.pdf_sha256
    action = Action.DATASET_DOWNLOADED if name in _PERSON_FILES else Action.REPORT_DOWNLOADED
    try:
        await recorder.record(
            action=action,
            resource=_resource(record.id),
            purpose=purpose,
            details=details | dict(delivery or {}),
        )
    except BaseException:
        await artifact.close()
        raise
    return artifact


async def hand_out_bytes(
    recorder: Recorder,
    *,
    store: ArtifactStore,
    record: ReportRecord,
    name: str,
    purpose: str,
    delivery: Extra | None = None,
) -> bytes:
    """:func:`hand_out`, read whole (for a file written to disk or attached to an e-mail)."""
    artifact = await hand_out(
        recorder, store=store, record=record, name=name, purpose=purpose, delivery=delivery
    )
    return b"".join([chunk async for chunk in artifact.chunks()])


async def verify_report(
    recorder: Recorder | None, *, verifier: PdfVerifier, upload: AsyncIterable[bytes]
) -> VerificationResult:
    """Verify a report PDF (signature, trust, manifest and attachments) in a capped process of its own
    (:class:`~odeus_compliance.reports.verifier.PdfVerifier`) and record ``report.verified`` with the
    verdict and the file's SHA-256. A file the verifier cannot judge within its limits is recorded with
    outcome ``failure`` (``error_code`` names the limit) and :class:`PdfRefused` propagates (422); with every
    slot taken, ``VerifierBusy`` (503) propagates before anything is read or recorded. ``recorder`` is
    ``None`` only for the offline command, which verifies a file with no installation (no audit log) at
    hand."""
    try:
        client = recorder.actor.key_id if recorder is not None else None
        verified = await verifier.verify(upload, client=client)
    except PdfRefused as refused:
        if recorder is not None:
            failed: dict[str, DetailValue] = {
                "valid": False,
                "byte_count": refused.byte_count,
                "error_code": f"pdf_{refused.reason}",
            }
            if refused.sha256 is not None:
                failed["sha256"] = refused.sha256
            await recorder.record(
                action=Action.REPORT_VERIFIED,
                resource="report:upload",
                outcome=Outcome.FAILURE,
                details=failed,
            )
        raise
    result = verified.result
    if recorder is None:
        return result
    details: dict[str, DetailValue] = {
        "valid": result.valid,
        "sha256": verified.sha256,
        "byte_count": verified.byte_count,
    }
    resource = "report:upload"
    if result.report_id is not None and is_report_id(result.report_id):
        resource = _resource(result.report_id)
        details["report_id"] = result.report_id
    await recorder.record(action=Action.REPORT_VERIFIED, resource=resource, details=details)
    return result


async def view_report(recorder: Recorder, *, jobs: ReportJobs, report_id: str) -> ReportRecord:
    """Read one report job's status and record ``report.viewed`` (metadata only; 404 for an unknown id)."""
    record = await get_report(jobs=jobs, report_id=report_id)
    await recorder.record(
        action=Action.REPORT_VIEWED,
        resource=_resource(record.id),
        details={"report_id": record.id, "status": record.status.value},
    )
    return record


async def view_reports(
    recorder: Recorder, *, jobs: ReportJobs, limit: int, before: str | None
) -> tuple[list[ReportRecord], str | None]:
    """A page of the archive, newest first, and the cursor of the next; recorded as ``report.viewed``."""
    records, next_before = await list_reports(jobs=jobs, limit=limit, before=before)
    await recorder.record(
        action=Action.REPORT_VIEWED,
        resource="report:list",
        details={"count": len(records), "page_size": limit},
    )
    return list(records), next_before
