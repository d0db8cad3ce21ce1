"""What is due for deletion at an instant: the rules applied to what is stored, minus what holds keep.

Read-only: ``retention run --dry-run`` prints exactly this plan. The real run rotates due key epochs first
and then plans; the dry run plans as if it had (an epoch due for rotation counts as superseded).

Guards, and why:

- Report jobs that are queued or running are never touched, and no ``report-data`` epoch is destroyed
  while any job is queued or running: a job may still store its artifacts under an epoch that was current
  when it started.
- An epoch is destroyed only when nothing it encrypted is kept: no remaining report row names it and (on
  PostgreSQL) no remaining chunk row is sealed under it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.db.models import AuditEntry, KeyEpoch, Report, ReportArtifactChunk
from odeus_compliance.keys.ring import KeyEncryptionKey, KeyKind
from odeus_compliance.reports.store import REPORT_ID
from odeus_compliance.retention.erase import work_root
from odeus_compliance.retention.holds import Hold
from odeus_compliance.retention_rules import DataClass, RetentionRules

__all__ = ["Plan", "due_rotations", "held_items", "make_plan", "rotation_due", "stray_plaintext"]

_OPEN_JOBS = ("queued", "running")
_DATA_KINDS = (KeyKind.AUDIT_DATA, KeyKind.REPORT_DATA)


@dataclass(slots=True)
class Plan:
    """Per data class, the identifiers due for deletion (sorted), and what holds kept."""

    due: dict[DataClass, list[str]] = field(default_factory=dict)
    held: dict[DataClass, int] = field(default_factory=dict)
    rotate: list[KeyKind] = field(default_factory=list)

    def count(self) -> int:
        """How many identifiers in all."""
        return sum(len(v) for v in self.due.values())


@dataclass(frozen=True, slots=True)
class _Epoch:
    key_id: str
    kind: KeyKind
    epoch: int
    created_at: dt.datetime
    destroyed: bool
    successor_at: dt.datetime | None


async def _epochs(session: AsyncSession) -> list[_Epoch]:
    rows = (
        await session.execute(
            select(KeyEpoch.key_id, KeyEpoch.kind, KeyEpoch.epoch, KeyEpoch.created_at, KeyEpoch.destroyed_at)
            .where(KeyEpoch.kind != KeyKind.CHECKPOINT_SIGNING.value)
            .order_by(KeyEpoch.kind, KeyEpoch.epoch)
        )
    ).all()
    out: list[_Epoch] = []
    for index, (key_id, kind, epoch, created_at, destroyed_at) in enumerate(rows):
        following = rows[index + 1] if index + 1 < len(rows) and rows[index + 1][1] == kind else None
        out.append(
            _Epoch(
                key_id,
                KeyKind(kind),
                int(epoch),
                created_at,
                destroyed_at is not None,
                None if following is None else following[3],
            )
        )
    return out


def rotation_due(epochs: Sequence[_Epoch], rules: RetentionRules, now: dt.datetime) -> list[KeyKind]:
    """The data-key kinds whose current epoch is older than the key-epoch period."""
    due = []
    for kind in _DATA_KINDS:
        current = [e for e in epochs if e.kind is kind and e.successor_at is None]
        if current and current[-1].created_at <= now - rules.key_epoch:
            due.append(kind)
    return due


async def due_rotations(*, session: AsyncSession, rules: RetentionRules, now: dt.datetime) -> list[KeyKind]:
    """The data-key kinds a run at ``now`` rotates before it plans."""
    return rotation_due(await _epochs(session), rules, now)


def _held(holds: Collection[Hold], data_class: DataClass) -> list[Hold]:
    return [h for h in holds if h.data_class is data_class]


async def _reports(
    session: AsyncSession, plan: Plan, rules: RetentionRules, holds: Collection[Hold], now: dt.datetime
) -> tuple[set[str], bool]:
    """Reports and datasets due; returns the report ids deleted and whether any job is open."""
    rows = (
        await session.execute(
            select(
                Report.id,
                Report.status,
                Report.period_start,
                Report.period_end,
                func.coalesce(Report.finished_at, Report.requested_at),
                Report.has_dataset,
            )
        )
    ).all()
    report_holds = _held(holds, DataClass.REPORTS)
    dataset_holds = _held(holds, DataClass.DATASETS)
    reports: list[str] = []
    datasets: list[str] = []
    held_reports = held_datasets = 0
    open_jobs = False
    for report_id, status, start, end, made, has_dataset in rows:
        if status in _OPEN_JOBS:
            open_jobs = True
            continue
        made_at = made if made.tzinfo is not None else made.replace(tzinfo=dt.UTC)
        if made_at <= now - rules.report:
            # deleting a report deletes its dataset too: a hold on the dataset keeps the whole report
            dataset_held = has_dataset and any(h.covers_report(report_id, start, end) for h in dataset_holds)
            if dataset_held or any(h.covers_report(report_id, start, end) for h in report_holds):
                held_reports += 1
            else:
                reports.append(report_id)
                continue
        if has_dataset and made_at <= now - rules.dataset:
            if any(h.covers_report(report_id, start, end) for h in dataset_holds):
                held_datasets += 1
            else:
                datasets.append(report_id)
    plan.due[DataClass.REPORTS] = sorted(reports)
    plan.due[DataClass.DATASETS] = sorted(datasets)
    plan.held[DataClass.REPORTS] = held_reports
    plan.held[DataClass.DATASETS] = held_datasets
    return set(reports), open_jobs


async def _report_epochs_due(
    session: AsyncSession, epochs: Sequence[_Epoch], superseded: set[str], deleted: set[str], open_jobs: bool
) -> list[str]:
    if open_jobs:
        return []
    kept_by_rows = {
        key_id
        for report_id, key_id in (
            await session.execute(
                select(Report.id, Report.artifact_key_id).where(Report.artifact_key_id.is_not(None))
            )
        ).all()
        if report_id not in deleted
    }
    kept_by_chunks = {
        key_id
        for report_id, key_id in (
            await session.execute(
                select(ReportArtifactChunk.report_id, ReportArtifactChunk.key_id).distinct()
            )
        ).all()
        if report_id not in deleted
    }
    return [
        e.key_id
        for e in epochs
        if e.kind is KeyKind.REPORT_DATA
        and not e.destroyed
        and e.key_id in superseded
        and e.key_id not in kept_by_rows | kept_by_chunks
    ]


async def _audit_epochs(  # noqa: PLR0917 - one private step of make_plan
    session: AsyncSession,
    plan: Plan,
    epochs: Sequence[_Epoch],
    superseded: set[str],
    rules: RetentionRules,
    holds: Collection[Hold],
    now: dt.datetime,
    kek: KeyEncryptionKey,
) -> None:
    stats = {
        key_id: (newest, count)
        for key_id, newest, count in (
            await session.execute(
                select(AuditEntry.key_id, func.max(AuditEntry.time), func.count()).group_by(AuditEntry.key_id)
            )
        ).all()
    }
    audit_holds = _held(holds, DataClass.AUDIT_PAYLOADS)
    due: list[str] = []
    held = 0
    for e in epochs:
        if e.kind is not KeyKind.AUDIT_DATA or e.destroyed or e.key_id not in superseded:
            continue
        newest, _count = stats.get(e.key_id, (None, 0))
        if newest is not None:
            newest_at = newest if newest.tzinfo is not None else newest.replace(tzinfo=dt.UTC)
            if newest_at > now - rules.audit:
                continue
        if await _audit_epoch_held(session, e.key_id, audit_holds, kek):
            held += 1
            continue
        due.append(e.key_id)
    plan.due[DataClass.AUDIT_PAYLOADS] = sorted(due)
    plan.held[DataClass.AUDIT_PAYLOADS] = held


async def _audit_epoch_held(
    session: AsyncSession, key_id: str, holds: Collection[Hold], kek: KeyEncryptionKey
) -> bool:
    for hold in holds:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.key_id == key_id)
        if hold.report_id is not None:
            query = query.where(AuditEntry.resource_tag == kek.filter_tag(f"report:{hold.report_id}"))
        if hold.period_from is not None:
            query = query.where(AuditEntry.time >= hold.period_from)
        if hold.period_to is not None:
            query = query.where(AuditEntry.time < hold.period_to)
        if int((await session.execute(query)).scalar_one()) > 0:
            return True
    return False


def _pseudonym_epochs_due(
    epochs: Sequence[_Epoch], rules: RetentionRules, holds: Collection[Hold], now: dt.datetime
) -> tuple[list[str], int]:
    due: list[str] = []
    held = 0
    for e in epochs:
        if e.kind is not KeyKind.PSEUDONYMISATION or e.destroyed or e.successor_at is None:
            continue
        if e.successor_at > now - rules.dataset:
            continue  # datasets tokenised under it may still be kept
        if any(h.covers_period(e.created_at, e.successor_at) for h in holds):
            held += 1
            continue
        due.append(e.key_id)
    return due, held


async def held_items(
    *,
    session: AsyncSession,
    data_class: DataClass,
    items: Sequence[str],
    holds: Collection[Hold],
    kek: KeyEncryptionKey,
    now: dt.datetime,
) -> list[str]:
    """Which of ``items`` (a pending receipt's identifiers) that still exist an active hold covers now.

    A hold placed after a run recorded its intent and crashed still wins: the pending receipt waits.
    An item already deleted (no row, or a destroyed key) has nothing left to hold.
    """
    scoped = _held(holds, data_class)
    datasets = _held(holds, DataClass.DATASETS) if data_class is DataClass.REPORTS else []
    if not (scoped or datasets) or not items:
        return []
    if data_class in {DataClass.REPORTS, DataClass.DATASETS}:
        rows = (
            await session.execute(
                select(Report.id, Report.period_start, Report.period_end, Report.has_dataset).where(
                    Report.id.in_(items)
                )
            )
        ).all()
        return sorted(
            rid
            for rid, start, end, has_dataset in rows
            if any(h.covers_report(rid, start, end) for h in scoped)
            or (
                has_dataset and any(h.covers_report(rid, start, end) for h in datasets)
            )  # kept with its report
        )
    live = {e.key_id: e for e in await _epochs(session) if not e.destroyed}
    if data_class is DataClass.AUDIT_PAYLOADS:
        return sorted([k for k in items if k in live and await _audit_epoch_held(session, k, scoped, kek)])
    if data_class is DataClass.KEY_EPOCHS:
        return sorted(
            k
            for k in items
            if k in live
            and any(h.covers_period(live[k].created_at, live[k].successor_at or now) for h in scoped)
        )
    return []  # raw exports cannot be held


async def make_plan(
    *,
    session: AsyncSession,
    rules: RetentionRules,
    holds: Collection[Hold],
    now: dt.datetime,
    kek: KeyEncryptionKey,
    data_dir: Path,
    assume_rotated: Collection[KeyKind] = (),
) -> Plan:
    """The plan at ``now``. ``assume_rotated``: kinds whose current epoch counts as superseded (dry run)."""
    plan = Plan()
    epochs = await _epochs(session)
    plan.rotate = rotation_due(epochs, rules, now)
    superseded = {e.key_id for e in epochs if e.successor_at is not None or e.kind in assume_rotated}
    open_ids = {
        report_id
        for (report_id,) in (
            await session.execute(select(Report.id).where(Report.status.in_(_OPEN_JOBS)))
        ).all()
    }
    plan.due[DataClass.RAW_EXPORTS] = await asyncio.to_thread(_stray_work, work_root(data_dir), open_ids)
    deleted, open_jobs = await _reports(session, plan, rules, holds, now)
    key_holds = _held(holds, DataClass.KEY_EPOCHS)
    report_epochs = [
        k
        for k in await _report_epochs_due(session, epochs, superseded, deleted, open_jobs)
        if not any(
            h.covers_period(e.created_at, e.successor_at or now)
            for e in epochs
            if e.key_id == k
            for h in key_holds
        )
    ]
    pseudonym_epochs, held_pseudonym = _pseudonym_epochs_due(epochs, rules, key_holds, now)
    plan.due[DataClass.KEY_EPOCHS] = sorted(report_epochs + pseudonym_epochs)
    plan.held[DataClass.KEY_EPOCHS] = held_pseudonym
    await _audit_epochs(session, plan, epochs, superseded, rules, holds, now, kek)
    return plan


def _stray_work(root: Path, open_ids: set[str]) -> list[str]:
    """Work folders of report jobs that are not queued or running (a crashed process left them)."""
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and REPORT_ID.match(p.name) and p.name not in open_ids
    )


def stray_plaintext(data_dir: Path) -> list[str]:
    """Plaintext export-like files (CSV, JSON lines) anywhere in the data dir, relative paths: the service
    never writes one outside a running job's work folder, so each is a finding for an operator."""
    if not data_dir.is_dir():
        return []
    work = work_root(data_dir)
    suffixes = {".csv", ".ndjson", ".jsonl"}
    return sorted(
        path.relative_to(data_dir).as_posix()
        for path in data_dir.rglob("*")
        if path.suffix.lower() in suffixes and path.is_file() and work not in path.parents
    )
