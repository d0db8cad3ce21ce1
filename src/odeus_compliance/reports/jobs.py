"""Report jobs in the database: request, claim with a lease, progress, succeed or fail, recover.

The database decides who runs a job, so any number of processes (CLI runs, replicas) can work side by side:

- **claim** takes the oldest job that is queued, or running with a lapsed lease (its runner died), with one
  conditional ``UPDATE ... WHERE id = (SELECT ...) AND <still claimable> RETURNING id``: of two claimers
  exactly one changes the row. On PostgreSQL the inner select is ``FOR UPDATE SKIP LOCKED`` so concurrent
  claimers pick different jobs instead of queuing on one row.
- **lease**: a claim lasts ``lease_seconds``; every progress update renews it. An update that finds the
  lease gone (another runner took the job over) raises :class:`LeaseLost` and the old runner stops.
- **attempts**: a job is claimed at most ``max_attempts`` times; an interrupted job with no attempt left is
  marked failed with that reason instead of being claimed again.
- **recover** (at start-up): every job left ``running`` whose runner is gone (lease lapsed, or a process of
  this host that no longer exists) is queued again (resumed from the start: nothing of an unfinished run is
  kept), or marked failed when its attempts are used up. No job is left ``running`` by a dead runner.
"""

from __future__ import annotations

import asyncio
import builtins
import enum
import os
import random
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.core.leases import host_name
from odeus_compliance.core.periods import ReportPeriod
from odeus_compliance.db.models import Report, utcnow
from odeus_compliance.keys.ring import KeyEncryptionKey
from odeus_compliance.reports.purposes import seal_purpose

__all__ = [
    "CANCELLED_REASON",
    "CANCELLED_STAGE",
    "DEFAULT_LEASE_SECONDS",
    "JobsBusy",
    "LeaseLost",
    "ReportJobs",
    "ReportPeriod",
    "ReportRecord",
    "ReportStatus",
    "new_report_id",
]

DEFAULT_LEASE_SECONDS: Final = 60.0
DEFAULT_REQUEST_SECONDS: Final = 20.0
CANCELLED_STAGE: Final = "cancelled"
"""The stage of a job an officer cancelled (its status is ``failed``, its error :data:`CANCELLED_REASON`)."""
CANCELLED_REASON: Final = "cancelled by a compliance officer; nothing was kept"
_MAX_ERROR: Final = 500
_RUNNER: Final = re.compile(r"^(?P<host>[^:]+):(?P<pid>\d+):[0-9a-f]+$")


class ReportStatus(enum.StrEnum):
    """Where a report job is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LeaseLost(Exception):
    """This runner no longer holds the job (its lease lapsed and another runner took it over, or an officer
    cancelled it)."""


class JobsBusy(Exception):
    """A job could not be queued in time: the database stayed too busy (concurrent requests, lock waits).
    Nothing was stored; asking again later may succeed."""

    def __init__(self, report_id: str) -> None:
        super().__init__("the report job could not be queued: the database is busy")
        self.report_id = report_id


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """A report job as callers see it (never an ORM object)."""

    id: str
    status: ReportStatus
    stage: str
    progress: float
    period: ReportPeriod
    policy_name: str
    policy_hash: str | None
    purpose: str
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    version: int
    supersedes: str | None
    pdf_sha256: str | None
    has_dataset: bool
    attempt: int = 0
    artifact_key_id: str | None = None
    data_until: datetime | None = None
    """Set on a partial report: when its data was fetched, before its period ended."""

    @property
    def partial(self) -> bool:
        """Whether the report covers only the part of its period that had passed when it was made."""
        return self.data_until is not None

    @property
    def finished(self) -> bool:
        """Whether the job has ended (succeeded, failed or cancelled): nothing runs it any more."""
        return self.status in {ReportStatus.SUCCEEDED, ReportStatus.FAILED}

    @property
    def cancelled(self) -> bool:
        """Whether an officer cancelled the job (it is ``failed`` at stage ``cancelled``)."""
        return self.status is ReportStatus.FAILED and self.stage == CANCELLED_STAGE


def new_report_id() -> str:
    """``rpt_`` and 24 random hex digits."""
    return "rpt_" + secrets.token_hex(12)


def _runner_is_dead(owner: str | None) -> bool:
    """Whether ``owner`` is a process of this host that no longer exists (so its lease need not lapse)."""
    if owner is None:
        return True
    match = _RUNNER.match(owner)
    if match is None or match["host"] != host_name():
        return False  # another machine's runner: only its lease tells
    pid = int(match["pid"])
    if pid == os.getpid():
        return False  # ourselves: a job we still run
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, someone else's
    return False


def _record(row: Report) -> ReportRecord:
    return ReportRecord(
        id=row.id,
        status=ReportStatus(row.status),
        stage=row.stage,
        progress=row.progress,
        period=ReportPeriod(row.period_start, row.period_end, row.timezone),
        policy_name=row.policy_name,
        policy_hash=row.policy_hash,
        purpose=row.purpose,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        version=row.version,
        supersedes=row.supersedes,
        pdf_sha256=row.pdf_sha256,
        has_dataset=row.has_dataset,
        attempt=row.attempt,
        artifact_key_id=row.artifact_key_id,
        data_until=row.data_until,
    )


def safe_reason(text: str) -> str:
    """A failure reason as stored: one line, bounded (callers pass only messages free of personal data)."""
    line = " ".join(text.split())
    return line[: _MAX_ERROR - 1] + "…" if len(line) > _MAX_ERROR else line


class ReportJobs:
    """The report jobs of one database. Each method runs its own transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_attempts: int = 3,
        request_seconds: float = DEFAULT_REQUEST_SECONDS,
        kek: KeyEncryptionKey | None = None,
    ) -> None:
        self.sessions = sessions
        self.kek = kek
        """Seals each new job's purpose under the audit log's current key epoch (:mod:`.purposes`); the
        runtime always has it. Without it (tests of the job table alone) a purpose is stored as given."""
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.request_seconds = request_seconds
        """How long :meth:`request` keeps retrying a version taken by a concurrent request (or a lock
        wait that ran out) before it raises :class:`JobsBusy`."""

    # --- requests and reads --------------------------------------------------------------------------

    async def request(
        self,
        *,
        period: ReportPeriod,
        policy: str,
        purpose: str,
        requested_by: str,
        report_id: str | None = None,
    ) -> ReportRecord:
        """Queue a new report (the next version for its period and policy). ``report_id`` (from
        :func:`new_report_id`) lets a caller name the job in the audit record it writes before queuing it."""
        if not purpose.strip():
            msg = "a report needs a purpose"
            raise ValueError(msg)
        new_id = report_id or new_report_id()
        stored = purpose.strip()
        if self.kek is not None:  # never in clear beside the encrypted audit log
            stored = await seal_purpose(self.kek, self.sessions, report_id=new_id, purpose=stored)
        give_up = time.monotonic() + self.request_seconds
        delay = 0.01
        while True:
            try:
                return await self._insert_next_version(
                    new_id, period=period, policy=policy, purpose=stored, requested_by=requested_by
                )
            except (IntegrityError, OperationalError) as exc:  # a collision or a lock wait that ran out
                if time.monotonic() + delay > give_up:
                    raise JobsBusy(new_id) from exc
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not cryptography
            delay = min(delay * 2, 1.0)

    async def _insert_next_version(
        self, report_id: str, *, period: ReportPeriod, policy: str, purpose: str, requested_by: str
    ) -> ReportRecord:
        """One transaction that takes the next version of the period and inserts the job.

        The version is read in the ``INSERT`` itself, so on SQLite (one writer at a time, the statement holds
        the write lock from its start) no other request can take it in between; on PostgreSQL a transaction
        advisory lock on the period and policy orders concurrent requests (read committed would let two of
        them read the same newest version)."""
        same = and_(
            Report.policy_name == policy,
            Report.timezone == period.timezone,
            Report.period_start == period.start,
            Report.period_end == period.end,
        )
        newest = select(func.max(Report.version)).where(same).correlate(None).scalar_subquery()
        previous = select(Report.id).where(same, Report.version == newest).correlate(None).scalar_subquery()
        async with self.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                key = (
                    f"reports:{policy}|{period.timezone}|{period.start.isoformat()}|{period.end.isoformat()}"
                )
                await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
            await session.execute(
                insert(Report).values(
                    id=report_id,
                    status=ReportStatus.QUEUED.value,
                    stage="queued",
                    progress=0.0,
                    period_start=period.start,
                    period_end=period.end,
                    timezone=period.timezone,
                    policy_name=policy,
                    purpose=purpose,
                    requested_by=requested_by,
                    requested_at=utcnow(),
                    version=func.coalesce(newest, 0) + 1,
                    supersedes=previous,
                    attempt=0,
                    has_dataset=False,
                )
            )
            await session.commit()
            row = await session.get(Report, report_id, populate_existing=True)
            assert row is not None
            return _record(row)

    async def get(self, report_id: str) -> ReportRecord | None:
        """The job, or ``None``."""
        async with self.sessions() as session:
            row = await session.get(Report, report_id)
            return _record(row) if row is not None else None

    async def list(self, *, limit: int = 50, before: str | None = None) -> list[ReportRecord]:
        """Newest first; ``before`` (a report id) pages on from that report."""
        async with self.sessions() as session:
            query = select(Report).order_by(Report.requested_at.desc(), Report.id.desc()).limit(limit)
            if before is not None:
                anchor = await session.get(Report, before)
                if anchor is None:
                    return []
                query = query.where(
                    or_(
                        Report.requested_at < anchor.requested_at,
                        and_(Report.requested_at == anchor.requested_at, Report.id < anchor.id),
                    )
                )
            return [_record(row) for row in (await session.scalars(query)).all()]

    async def current_ids(self, records: builtins.list[ReportRecord]) -> set[str]:
        """Which of ``records`` are the current version of their period: the newest succeeded version of the
        same period, zone and policy (an earlier version, or a failed or unfinished job, is not current)."""
        succeeded = [r for r in records if r.status is ReportStatus.SUCCEEDED]
        if not succeeded:
            return set()
        async with self.sessions() as session:
            rows = await session.execute(
                select(
                    Report.policy_name,
                    Report.timezone,
                    Report.period_start,
                    Report.period_end,
                    func.max(Report.version),
                )
                .where(
                    Report.status == ReportStatus.SUCCEEDED.value,
                    Report.policy_name.in_({r.policy_name for r in succeeded}),
                    Report.period_start.in_({r.period.start for r in succeeded}),
                )
                .group_by(Report.policy_name, Report.timezone, Report.period_start, Report.period_end)
            )
            newest = {(p, tz, start, end): version for p, tz, start, end, version in rows.all()}
        return {
            r.id
            for r in succeeded
            if newest.get((r.policy_name, r.period.timezone, r.period.start, r.period.end)) == r.version
        }

    async def history(self, record: ReportRecord, *, limit: int = 12) -> builtins.list[ReportRecord]:
        """Earlier succeeded reports of the same policy and zone, ending before this one starts, oldest first
        (for the trend); one per period, the newest version. A partial report is no point of a trend: its
        figures cover only part of its period."""
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(Report)
                    .where(
                        Report.status == ReportStatus.SUCCEEDED.value,
                        Report.policy_name == record.policy_name,
                        Report.timezone == record.period.timezone,
                        Report.period_end <= record.period.start,
                        Report.data_until.is_(None),
                    )
                    .order_by(Report.period_start.desc(), Report.version.desc())
                    .limit(limit * 4)
                )
            ).all()
        chosen: dict[tuple[datetime, datetime], Report] = {}
        for row in rows:
            chosen.setdefault((row.period_start, row.period_end), row)
        return [_record(row) for row in sorted(chosen.values(), key=lambda r: r.period_start)[-limit:]]

    # --- claiming and running --------------------------------------------------------------------------

    @staticmethod
    def _claimable(now: datetime) -> ColumnElement[bool]:
        return or_(
            Report.status == ReportStatus.QUEUED.value,
            and_(Report.status == ReportStatus.RUNNING.value, Report.lease_expires_at < now),
        )

    async def claim(self, owner: str, *, report_id: str | None = None) -> ReportRecord | None:
        """Take the oldest claimable job (or exactly ``report_id``) for ``owner``; ``None`` if there is none.

        One ``UPDATE ... WHERE id = (SELECT ...)`` statement, so the claim is a single write (SQLite never
        has to upgrade a read transaction, which a concurrent writer would make fail). Jobs whose attempts
        are used up are failed first instead of being handed out.
        """
        now = utcnow()
        async with self.sessions() as session:
            await session.execute(
                update(Report)
                .where(self._claimable(now), Report.attempt >= self.max_attempts)
                .values(
                    status=ReportStatus.FAILED.value,
                    error=self._interrupted_reason(),
                    finished_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            pick = (
                select(Report.id)
                .where(self._claimable(now))
                .order_by(Report.requested_at, Report.id)
                .limit(1)
            )
            if report_id is not None:
                pick = pick.where(Report.id == report_id)
            if session.get_bind().dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)  # concurrent claimers pick different jobs
            claimed = (
                await session.execute(
                    update(Report)
                    .where(Report.id == pick.scalar_subquery(), self._claimable(now))
                    .values(
                        status=ReportStatus.RUNNING.value,
                        stage="starting",
                        progress=0.0,
                        lease_owner=owner,
                        lease_expires_at=now + self.lease,
                        started_at=now,
                        attempt=Report.attempt + 1,
                        error=None,
                    )
                    .returning(Report.id)
                    .execution_options(synchronize_session=False)
                )
            ).scalar()
            await session.commit()
            if claimed is None:
                return None
            row = await session.get(Report, claimed, populate_existing=True)
            assert row is not None
            return _record(row)

    def _interrupted_reason(self) -> str:
        return (
            f"the job was interrupted {self.max_attempts} time(s) (the process running it stopped or "
            "crashed) and is not retried again; request the report anew"
        )

    async def progress(
        self, report_id: str, owner: str, *, stage: str, progress: float, policy_hash: str | None = None
    ) -> None:
        """Record the stage and renew the lease; :class:`LeaseLost` if ``owner`` no longer holds the job."""
        values: dict[str, object] = {
            "stage": stage[:32],
            "progress": max(0.0, min(1.0, progress)),
            "lease_expires_at": utcnow() + self.lease,
        }
        if policy_hash is not None:
            values["policy_hash"] = policy_hash
        await self._owned_update(report_id, owner, values)

    async def succeed(
        self,
        report_id: str,
        owner: str,
        *,
        pdf_sha256: str,
        has_dataset: bool,
        artifact_key_id: str,
        data_until: datetime | None = None,
    ) -> None:
        """Mark the job succeeded (its artifacts are stored); ``data_until`` for a partial report."""
        await self._owned_update(
            report_id,
            owner,
            {
                "status": ReportStatus.SUCCEEDED.value,
                "stage": "done",
                "progress": 1.0,
                "finished_at": utcnow(),
                "pdf_sha256": pdf_sha256,
                "has_dataset": has_dataset,
                "artifact_key_id": artifact_key_id,
                "data_until": data_until,
                "lease_owner": None,
                "lease_expires_at": None,
                "error": None,
            },
        )

    async def fail(self, report_id: str, owner: str, *, reason: str) -> None:
        """Mark the job failed with ``reason`` (shown to callers: it must hold no personal data)."""
        await self._owned_update(
            report_id,
            owner,
            {
                "status": ReportStatus.FAILED.value,
                "finished_at": utcnow(),
                "error": safe_reason(reason),
                "lease_owner": None,
                "lease_expires_at": None,
            },
        )

    async def cancel(self, report_id: str) -> ReportRecord | None:
        """End a queued or running job as cancelled (``failed`` at stage ``cancelled``) and drop its lease,
        so its runner's next renewal finds the job gone and stops; the cancelled job, or ``None`` when it
        had already finished (or there is no such job). One conditional ``UPDATE``: a job that finishes at
        the same moment is either cancelled or finished, never both."""
        async with self.sessions() as session:
            result = await session.execute(
                update(Report)
                .where(
                    Report.id == report_id,
                    Report.status.in_([ReportStatus.QUEUED.value, ReportStatus.RUNNING.value]),
                )
                .values(
                    status=ReportStatus.FAILED.value,
                    stage=CANCELLED_STAGE,
                    finished_at=utcnow(),
                    error=CANCELLED_REASON,
                    lease_owner=None,
                    lease_expires_at=None,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = await session.get(Report, report_id, populate_existing=True)
            return _record(row) if row is not None else None

    async def release(self, report_id: str, owner: str) -> None:
        """Give a job back to the queue (this runner is shutting down); another run resumes it."""
        await self._owned_update(
            report_id,
            owner,
            {
                "status": ReportStatus.QUEUED.value,
                "stage": "requeued after shutdown",
                "progress": 0.0,
                "lease_owner": None,
                "lease_expires_at": None,
            },
        )

    async def _owned_update(self, report_id: str, owner: str, values: dict[str, object]) -> None:
        async with self.sessions() as session:
            result = await session.execute(
                update(Report)
                .where(
                    Report.id == report_id,
                    Report.status == ReportStatus.RUNNING.value,
                    Report.lease_owner == owner,
                )
                .values(**values)
            )
            await session.commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(report_id)

    # --- after a restart ------------------------------------------------------------------------------

    async def recover(self) -> int:
        """Requeue (or fail, when out of attempts) every running job whose runner is gone; how many."""
        now = utcnow()
        changed = 0
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Report.id, Report.lease_owner, Report.lease_expires_at, Report.attempt).where(
                        Report.status == ReportStatus.RUNNING.value
                    )
                )
            ).all()
            for report_id, owner, expires, attempt in rows:
                lapsed = expires is None or expires < now
                if not (lapsed or _runner_is_dead(owner)):
                    continue
                values: dict[str, object]
                if attempt >= self.max_attempts:
                    values = {
                        "status": ReportStatus.FAILED.value,
                        "error": self._interrupted_reason(),
                        "finished_at": now,
                    }
                else:
                    values = {"status": ReportStatus.QUEUED.value, "stage": "requeued after interruption"}
                result = await session.execute(
                    update(Report)
                    .where(
                        Report.id == report_id,
                        Report.status == ReportStatus.RUNNING.value,
                        Report.lease_owner == owner if owner is not None else Report.lease_owner.is_(None),
                    )
                    .values(**values, lease_owner=None, lease_expires_at=None, progress=0.0)
                )
                changed += result.rowcount  # type: ignore[attr-defined]
            await session.commit()
        return changed

    async def count(self, status: ReportStatus) -> int:
        """How many jobs have ``status``."""
        async with self.sessions() as session:
            return int(
                (
                    await session.execute(
                        select(func.count()).select_from(Report).where(Report.status == status.value)
                    )
                ).scalar_one()
            )
