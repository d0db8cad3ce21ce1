"""The rules of the officers' report API: what a valid request is, who sees what, when a file may go out.

Controllers call these and record the access (:func:`~odeus_compliance.audit.recording.record_access`)
before they hand anything out. Every error here is an :class:`~odeus_compliance.errors.AppError` whose
detail names the field and the rule, never the submitted value (a purpose or a date may be personal data).
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from litestar.connection import ASGIConnection

from odeus_compliance import purpose as purpose_rule
from odeus_compliance.core.periods import zone
from odeus_compliance.errors import AppError, Conflict, NotFound, ServiceUnavailable, ValidationFailed
from odeus_compliance.policy.service import PolicyEntry, find_policy
from odeus_compliance.reports import verifier
from odeus_compliance.reports.jobs import ReportJobs, ReportPeriod, ReportRecord, ReportStatus
from odeus_compliance.reports.schemas import (
    PeriodEndIn,
    PeriodOut,
    PolicyRef,
    ReportLinks,
    ReportOut,
    ReportPage,
    ReportRequestIn,
)
from odeus_compliance.reports.store import ArtifactCorrupt, ArtifactMissing, ArtifactShredded, ArtifactStore
from odeus_compliance.reports.verify import VerificationResult
from odeus_compliance.settings import Settings
from odeus_compliance.state_keys import REPORT_RUNTIME

__all__ = [
    "DATASET_FILE",
    "FULL_PDF_FILE",
    "MAX_PAGE",
    "MAX_VERIFY_BYTES",
    "PDF_FILE",
    "Artifact",
    "ArtifactUnreadable",
    "ReportBackend",
    "RequestedReport",
    "check_cancellable",
    "check_purpose",
    "check_report_id",
    "check_upload",
    "current_versions",
    "get_report",
    "is_report_id",
    "list_reports",
    "open_artifact",
    "parse_request",
    "period_has_ended",
    "report_out",
    "report_page",
    "resolve_request",
    "runtime_of",
    "runtime_of_state",
    "verification_json",
]

PDF_FILE: Final = "report.pdf"
"""The figures-only PDF: no per-person row, no dataset; every role that may read reports gets this one."""
FULL_PDF_FILE: Final = "report-full.pdf"
"""The PDF with the per-person dataset (and person table) where the policy releases them: officers only."""
DATASET_FILE: Final = "data.csv"
MAX_PAGE: Final = 200
_FIRST_YEAR: Final = 2000  # as a report month
_LAST_YEAR: Final = 9998
MAX_VERIFY_BYTES: Final = verifier.MAX_VERIFY_BYTES
"""The largest PDF ``POST /api/v1/reports/verify`` accepts."""
MAX_PERIOD: Final = timedelta(days=366)
"""The longest period one report covers (Odeus keeps 12 months of history)."""
API_PREFIX: Final = "/api/v1/reports"

_REPORT_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MONTH: Final = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_UNKNOWN_REPORT: Final = "There is no report with that id."


async def _close(chunks: AsyncIterator[bytes]) -> None:
    """Close an artifact's chunk generator (it holds a file or a database session)."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


class ArtifactUnreadable(AppError):
    """A stored file failed its integrity check: nothing is sent (an operator must look at the store)."""

    status = 500
    code = "artifact-unreadable"
    title = "Stored file unreadable"


@dataclass(frozen=True, slots=True)
class RequestedReport:
    """A validated request: the period, the policy in force (with its hash) and the purpose."""

    period: ReportPeriod
    policy: PolicyEntry
    purpose: str

    @property
    def policy_hash(self) -> str:
        """The canonical hash of the policy (valid by construction)."""
        digest = self.policy.hash
        assert digest is not None  # parse_request admits only valid policies
        return digest


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file of a finished report, ready to stream: its bytes (lazily) and what its headers say."""

    first: bytes
    rest: AsyncIterator[bytes]
    file_name: str
    media_type: str
    sha256: str | None

    async def chunks(self) -> AsyncIterator[bytes]:
        """Every chunk, the first one included (a later chunk that fails to open ends the stream short)."""
        try:
            yield self.first
            async for chunk in self.rest:
                yield chunk
        finally:
            await _close(self.rest)

    async def close(self) -> None:
        """Release the file when nothing will be sent (the audit record failed)."""
        await _close(self.rest)

    def headers(self) -> dict[str, str]:
        """Download headers: an attachment, never cached, with its digest where known (RFC 9530)."""
        out = {
            "Content-Disposition": f'attachment; filename="{self.file_name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        if self.sha256 is not None:
            out["ETag"] = f'"{self.sha256}"'
            digest = base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")
            out["Repr-Digest"] = f"sha-256=:{digest}:"
        return out


@runtime_checkable
class ReportBackend(Protocol):
    """What the API needs of the app's :class:`~odeus_compliance.reports.runtime.ReportRuntime`."""

    @property
    def jobs(self) -> ReportJobs:
        """The report jobs."""
        ...

    @property
    def store(self) -> ArtifactStore:
        """The reports' stored files."""
        ...

    def wake(self) -> None:
        """Look for queued jobs now."""
        ...

    def cancel(self, report_id: str) -> bool:
        """Stop this process's run of a job cancelled in the database; whether one ran here."""
        ...


def runtime_of_state(runtime: object) -> ReportBackend:
    """The app's report runtime (from ``app.state``), or a 503 while it is not running."""
    if not isinstance(runtime, ReportBackend):
        raise ServiceUnavailable("The report service is not running.")
    return runtime


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ReportBackend:
    """The report runtime of the app serving ``connection`` (API routes and console pages alike)."""
    return runtime_of_state(connection.app.state.get(REPORT_RUNTIME))


def check_purpose(value: str | None, *, required_for: str, source: str = "query") -> str:
    """The purpose, stripped: the one rule of :mod:`odeus_compliance.purpose` (required here)."""
    return purpose_rule.check_purpose(value, required_for=required_for, source=source)


def check_cancellable(record: ReportRecord) -> None:
    """Only a job that has not finished can be cancelled: 409 (with its status) otherwise."""
    if record.finished:
        raise Conflict(
            f"The report job has already ended ({'cancelled' if record.cancelled else record.status.value}); "
            "only a queued or running job can be cancelled.",
            extra={"report_status": record.status.value},
        )


def is_report_id(text: str) -> bool:
    """Whether ``text`` has the form of a report id (short, identifier-like)."""
    return _REPORT_ID.fullmatch(text) is not None


def check_report_id(report_id: str) -> str:
    """A report id can only be short and identifier-like; anything else names no report (404)."""
    if not _REPORT_ID.fullmatch(report_id):
        raise NotFound(_UNKNOWN_REPORT)
    return report_id


def _invalid(key: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"'{key}' {message}.", extra={"errors": [{"key": key, "source": "body", "message": message}]}
    )


def _zone_name(name: str | None, key: str) -> str:
    if name is None:
        raise _invalid(key, "is required")
    try:
        zone(name)
    except ValueError:
        raise _invalid(key, "is not a known IANA time zone") from None
    return name


def period_has_ended(period: ReportPeriod, now: datetime) -> bool:
    """Whether ``period`` is over at ``now``. A report of a period still running covers only part of it:
    every entry point refuses one unless it is asked for explicitly (``partial``; ``--partial``)."""
    return period.end <= now


def _check_ended(period: ReportPeriod, *, partial: bool, now: datetime, key: str) -> None:
    if not partial and not period_has_ended(period, now):
        raise _invalid(key, 'has not ended yet; send "partial": true for a report of the data so far')


def _month_period(month: str, timezone: str, today: date) -> ReportPeriod:
    match = _MONTH.fullmatch(month)
    if match is None:
        raise _invalid("month", "must be YYYY-MM")
    year, number = int(match[1]), int(match[2])
    if not 2000 <= year <= today.year or (year, number) > (today.year, today.month):
        raise _invalid("month", "must not be in the future")
    return ReportPeriod.month(year, number, timezone)


def _wall_time(end: PeriodEndIn, key: str) -> datetime:
    text = end.date.removesuffix("Z")
    try:
        wall = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(f"{key}.date", "must be a date-time such as 2026-10-01T00:00:00.000Z") from None
    if wall.tzinfo is not None:
        raise _invalid(
            f"{key}.date", "is wall-clock time in its time zone: no offset (a trailing Z is ignored)"
        )
    if not _FIRST_YEAR <= wall.year <= _LAST_YEAR:  # and so every zone's offset stays within datetime's
        raise _invalid(f"{key}.date", f"must be in the years {_FIRST_YEAR} to {_LAST_YEAR}")
    tz = zone(_zone_name(end.timezone, f"{key}.timezone"))
    return wall.replace(tzinfo=tz)


def _range_period(start: PeriodEndIn, end: PeriodEndIn, timezone: str | None, now: datetime) -> ReportPeriod:
    first = _wall_time(start, "from")
    last = _wall_time(end, "to")
    name = _zone_name(timezone or start.timezone, "timezone")
    tz = zone(name)
    begin = first.astimezone(tz)
    stop = (last + timedelta(milliseconds=1)).astimezone(tz)  # Odeus' 'to' is inclusive to the millisecond
    if stop <= begin:
        raise _invalid("to", "must be after 'from'")
    if stop - begin > MAX_PERIOD:
        raise _invalid("to", "must be at most 366 days after 'from'")
    if begin > now:
        raise _invalid("from", "must not be in the future")
    return ReportPeriod(start=begin, end=stop, timezone=name)


def parse_request(
    body: ReportRequestIn, *, settings: Settings, now: datetime | None = None
) -> RequestedReport:
    """Validate a report request: exactly one of ``month`` or ``from``/``to``, a known zone, a valid policy
    of the policy folder, a purpose. 400 with the field's name (never its value) otherwise."""
    purpose = check_purpose(body.purpose, required_for="request a report", source="body")
    moment = now or datetime.now(UTC)
    has_range = body.start is not None or body.end is not None
    if body.month is not None and has_range:
        raise _invalid("month", "and 'from'/'to' exclude each other: send one of them")
    if body.month is not None:
        timezone = _zone_name(body.timezone, "timezone")
        period = _month_period(body.month, timezone, moment.astimezone(zone(timezone)).date())
    elif body.start is not None and body.end is not None:
        period = _range_period(body.start, body.end, body.timezone, moment)
    elif has_range:
        raise _invalid("from" if body.start is None else "to", "is required with the other end of the period")
    else:
        raise _invalid("month", "or 'from'/'to' is required")
    _check_ended(period, partial=body.partial, now=moment, key="month" if body.month is not None else "to")
    return resolve_request(period=period, policy=body.policy, purpose=purpose, policy_dir=settings.policy_dir)


def resolve_request(*, period: ReportPeriod, policy: str, purpose: str, policy_dir: Path) -> RequestedReport:
    """A request made by name (a command, the demo, a schedule) checked as the API checks one: the policy
    must be a valid file of the policy folder (its hash is recorded), the purpose not blank."""
    checked = check_purpose(purpose, required_for="request a report", source="body")
    entry = find_policy(policy_dir=policy_dir, name=policy)
    if entry is None or entry.policy is None:
        raise _invalid("policy", "must name a valid policy of the policy folder (GET /api/v1/policies)")
    return RequestedReport(period=period, policy=entry, purpose=checked)


async def get_report(*, jobs: ReportJobs, report_id: str) -> ReportRecord:
    """The report ``report_id``, or 404."""
    record = await jobs.get(check_report_id(report_id))
    if record is None:
        raise NotFound(_UNKNOWN_REPORT)
    return record


async def current_versions(*, jobs: ReportJobs, records: list[ReportRecord]) -> set[str]:
    """The ids of ``records`` that are the current version of their period (newest succeeded one)."""
    return await jobs.current_ids(records)


async def list_reports(
    *, jobs: ReportJobs, limit: int, before: str | None
) -> tuple[list[ReportRecord], str | None]:
    """One page of reports, newest first, and the cursor of the next page (``None``: last page)."""
    if before is not None and not _REPORT_ID.fullmatch(before):
        raise _invalid("before", "must be a report id from 'next_before'")
    records = await jobs.list(limit=limit + 1, before=before)
    more = len(records) > limit
    page = records[:limit]
    return page, (page[-1].id if more and page else None)


async def open_artifact(*, store: ArtifactStore, record: ReportRecord, name: str) -> Artifact:
    """A file of a succeeded report, its first chunk already decrypted (so a missing, shredded or altered file
    is an error before any header goes out): 409 while the job is not finished (or failed), 404 when the
    report has no such file (a policy without per-person data has no dataset, retention removed it)."""
    if record.status is not ReportStatus.SUCCEEDED:
        raise Conflict(
            f"The report is {record.status.value}; its files exist once it has succeeded.",
            extra={"report_status": record.status.value},
        )
    if name in {DATASET_FILE, FULL_PDF_FILE} and not record.has_dataset:
        raise NotFound(
            "This report has no per-person dataset (its policy gives none, or retention removed it)."
        )
    chunks = store.open(record.id, name)
    try:
        first = await anext(chunks)
    except (ArtifactMissing, ArtifactShredded, StopAsyncIteration):
        await _close(chunks)
        raise NotFound("The report's file is no longer kept (retention).") from None
    except ArtifactCorrupt:
        await _close(chunks)
        raise ArtifactUnreadable("The report's stored file failed its integrity check.") from None
    if name == PDF_FILE:
        return Artifact(first, chunks, f"report-{record.id}.pdf", "application/pdf", record.pdf_sha256)
    if name == FULL_PDF_FILE:
        return Artifact(first, chunks, f"report-{record.id}-full.pdf", "application/pdf", None)
    return Artifact(first, chunks, f"report-{record.id}-data.csv", "text/csv; charset=utf-8", None)


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def report_out(record: ReportRecord, *, current: bool = False) -> ReportOut:
    """The API form of a job record, with links to its files once they exist; ``current`` from
    :func:`current_versions`."""
    base = f"{API_PREFIX}/{record.id}"
    done = record.status is ReportStatus.SUCCEEDED
    return ReportOut(
        id=record.id,
        status=record.status.value,
        stage=record.stage,
        progress=record.progress,
        period=PeriodOut(
            start=record.period.local_start.isoformat(),
            end=record.period.local_end.isoformat(),
            timezone=record.period.timezone,
        ),
        policy=PolicyRef(name=record.policy_name, hash=record.policy_hash),
        requested_by=record.requested_by,
        requested_at=record.requested_at.isoformat(),
        started_at=_stamp(record.started_at),
        finished_at=_stamp(record.finished_at),
        error=record.error,
        version=record.version,
        supersedes=record.supersedes,
        pdf_sha256=record.pdf_sha256,
        has_dataset=record.has_dataset,
        links=ReportLinks(
            self=base,
            pdf=f"{base}/pdf" if done else None,
            dataset=f"{base}/data.csv" if done and record.has_dataset else None,
            pdf_full=f"{base}/pdf?variant=full" if done and record.has_dataset else None,
        ),
        partial=record.partial,
        data_until=_stamp(record.data_until),
        current=current,
    )


def report_page(
    records: list[ReportRecord], next_before: str | None, current: set[str] | frozenset[str] = frozenset()
) -> ReportPage:
    """A page of the list; ``current`` from :func:`current_versions`."""
    return ReportPage(
        reports=[report_out(r, current=r.id in current) for r in records], next_before=next_before
    )


def check_upload(content_type: str | None) -> None:
    """An upload to verify is sent as ``application/pdf`` (emptiness and size are checked as it streams)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/pdf":
        raise ValidationFailed(
            "Send the PDF as the raw request body with 'Content-Type: application/pdf'.",
            extra={"errors": [{"key": "body", "source": "body", "message": "must be application/pdf"}]},
        )


def verification_json(result: VerificationResult) -> dict[str, Any]:
    """The verifier's own JSON form of its result."""
    return result.to_json()
