"""The audited actions on reports, one function each, called by every entry point.

The HTTP API, the command line, the demo, the scheduler and the console call these and nothing else to
request a report, hand out one of its files or verify a report PDF; each writes its action's record (shape
in ``docs/audit-records.md``) through the caller's :class:`~odeus_compliance.audit.recorder.Recorder`
before anything is queued or handed out, and fails closed when the record cannot be written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action, DetailValue, Outcome
from odeus_compliance.reports.jobs import ReportJobs, ReportRecord, new_report_id
from odeus_compliance.reports.service import (
    DATASET_FILE,
    FULL_PDF_FILE,
    PDF_FILE,
    Artifact,
    RequestedReport,
    is_report_id,
    open_artifact,
    verify_upload,
)
from odeus_compliance.reports.store import ArtifactStore
from odeus_compliance.reports.verify import VerificationResult
from odeus_compliance.settings import Settings

__all__ = ["hand_out", "hand_out_bytes", "request_report", "verify_report"]

_FORMATS: Final = {PDF_FILE: "pdf", FULL_PDF_FILE: "pdf", DATASET_FILE: "csv"}
_PERSON_FILES: Final = frozenset({FULL_PDF_FILE, DATASET_FILE})  # handing these out is a dataset download
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
    existed without one; the error propagates. ``origin``: where a scheduled request comes from (schedule,
    run_id)."""
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
    except Exception:
        await recorder.record(
            action=Action.REPORT_REQUESTED,
            resource=resource,
            purpose=wanted.purpose,
            outcome=Outcome.FAILURE,
            details=details | {"error_code": "job_not_queued"},
        )
        raise


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


async def verify_report(recorder: Recorder | None, *, pdf: bytes, settings: Settings) -> VerificationResult:
    """Verify a report PDF (signature, trust, manifest and attachments) and record ``report.verified`` with
    the verdict and the file's SHA-256. ``recorder`` is ``None`` only for the offline command, which
    verifies a file with no installation (no audit log) at hand."""
    result = await verify_upload(pdf=pdf, settings=settings)
    if recorder is None:
        return result
    details: dict[str, DetailValue] = {
        "valid": result.valid,
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "byte_count": len(pdf),
    }
    resource = "report:upload"
    if result.report_id is not None and is_report_id(result.report_id):
        resource = _resource(result.report_id)
        details["report_id"] = result.report_id
    await recorder.record(action=Action.REPORT_VERIFIED, resource=resource, details=details)
    return result
