"""The flow of a retention run: ``odeus-compliance retention run`` and the daily run call :class:`Purge`.

Order of a run, and why it is safe to crash anywhere (the data or a receipt remains, never neither):

1. Claim the run: a ``retention_runs`` row (a daily run's row is unique per UTC day, so one replica runs it).
2. Finish the receipts an earlier run left ``pending`` (it crashed mid-deletion): delete their identifiers
   again (every deletion is idempotent), log them, mark them done. A pending receipt that a legal hold
   placed since covers (some of its identifiers still exist and are held) waits, still pending, until the
   hold ends: a hold always wins, and the data or the receipt remains.
3. Rotate the ``audit-data``/``report-data`` key epochs that are older than the key-epoch period
   (``key.rotated`` is recorded), so older epochs can be shredded once their data is past retention.
4. Plan (:mod:`~odeus_compliance.retention.plan`): the rules, minus what legal holds keep. Each class is
   planned again just before it is deleted, and only what is still due is deleted: a hold placed while the
   run works wins, and key epochs follow what the earlier classes really deleted.
5. Per data class with something due, in the order raw exports, reports, datasets, key epochs, audit
   payloads (reports before key epochs: an epoch is destroyed only once its reports are gone):

   a. ``retention.purge`` (status ``pending``) is appended to the audit log; if it cannot be written
      nothing is deleted (fail closed);
   b. the signed receipt is stored ``pending`` (its identifiers with it);
   c. the data is deleted;
   d. ``retention.purge`` (status ``done``) is appended, and the receipt is signed ``done``.

   A crash between (b) and (d) leaves a pending receipt that step 2 of the next run finishes; a crash
   before (b) leaves the data. A crash between the ``done`` record and marking the receipt done makes the
   next run log ``done`` a second time (the record names the receipt, so the repeat is recognisable).
6. ``retention.purge`` (status ``succeeded``) sums the run up; the run row is marked.

A dry run (``--dry-run``) writes nothing at all: it plans (as if the due rotations had happened) and
reports what a run would delete and what it would finish.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from odeus_compliance.audit.appender import Actor, AuditAppender
from odeus_compliance.audit.key_actions import rotate_epoch
from odeus_compliance.audit.note import Signer
from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action, ActorRole, format_time
from odeus_compliance.db.engine import session_factory
from odeus_compliance.db.models import RetentionRun, utcnow
from odeus_compliance.keys.ring import KeyEncryptionKey, KeyRing
from odeus_compliance.logging_setup import log_event
from odeus_compliance.reports.store import ArtifactStore
from odeus_compliance.retention.erase import METHODS, WHAT, erase
from odeus_compliance.retention.holds import active_holds
from odeus_compliance.retention.plan import due_rotations, held_items, make_plan, stray_plaintext
from odeus_compliance.retention.receipts import Receipt, complete_receipt, pending_receipts, write_pending
from odeus_compliance.retention_rules import DataClass, RetentionRules
from odeus_compliance.settings import Settings

__all__ = ["ORDER", "RETENTION_ACTOR", "CrashHook", "Purge", "RunResult", "run_daily"]

_log = logging.getLogger(__name__)

RETENTION_ACTOR: Final = Actor("system:retention", "odeus-compliance retention", ActorRole.SYSTEM)
"""The actor of the records a retention run writes."""
PURPOSE: Final = "storage limitation (GDPR Art. 5(1)(e)): configured retention rules"
ORDER: Final = (
    DataClass.RAW_EXPORTS,
    DataClass.REPORTS,
    DataClass.DATASETS,
    DataClass.KEY_EPOCHS,
    DataClass.AUDIT_PAYLOADS,
)

CrashHook = Callable[[str, Receipt], None]
"""Called at ``"receipt-pending"`` (after 5b) and ``"deleted"`` (after 5c); tests raise from it to
simulate a crash there."""


@dataclass(slots=True)
class RunResult:
    """What a run did (or, dry, would do)."""

    as_of: dt.datetime
    dry_run: bool
    rules: Mapping[str, str]
    run_id: str | None = None
    skipped: bool = False
    """A daily run found its day already claimed by another process."""
    rotated: list[str] = field(default_factory=list)
    """Kinds rotated (dry: that would be)."""
    due: dict[str, list[str]] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)
    finished: list[Receipt] = field(default_factory=list)
    """Receipts an earlier run left pending (finished now, or dry: that would be)."""
    waiting: list[Receipt] = field(default_factory=list)
    """Receipts an earlier run left pending that a legal hold placed since covers: kept pending (the data
    stays) until the hold ends."""
    findings: list[str] = field(default_factory=list)
    """Plaintext export-like files in the data dir (never deleted: an operator must look)."""

    def to_json(self) -> dict[str, Any]:
        """For ``retention run --json``."""
        return {
            "run_id": self.run_id,
            "as_of": format_time(self.as_of),
            "dry_run": self.dry_run,
            "skipped": self.skipped,
            "rules": dict(self.rules),
            "rotated": self.rotated,
            "due": self.due,
            "held": self.held,
            "receipts": [r.to_json() for r in self.receipts],
            "finished_pending": [r.to_json() for r in self.finished],
            "pending_held": [r.to_json() for r in self.waiting],
            "raw_findings": self.findings,
        }

    def render_text(self) -> str:
        """Plain lines for the terminal (ids and counts only)."""
        name = "dry run" if self.dry_run else f"run {self.run_id}"
        head = f"retention {name} as of {format_time(self.as_of)}"
        if self.skipped:
            return head + ": skipped, today's daily run was already claimed"
        rotate = "would rotate" if self.dry_run else "rotated"
        finish = "would finish" if self.dry_run else "finished"
        lines = [head]
        lines += [f"key epochs: {rotate} {kind}" for kind in self.rotated]
        lines += [f"{finish} pending receipt {r.id} ({r.data_class}, {r.count})" for r in self.finished]
        lines += [
            f"pending receipt {r.id} ({r.data_class}, {r.count}) waits: a legal hold covers some of it"
            for r in self.waiting
        ]
        lines += [self._class_line(data_class) for data_class in ORDER]
        lines += [
            f"receipt {r.id}: {r.data_class}, {r.count}, sha256 {r.items_sha256}" for r in self.receipts
        ]
        if self.findings:
            lines.append(
                f"raw-exports: {len(self.findings)} plaintext export-like file(s) in the data dir that the "
                "service did not write (not deleted: check them): " + ", ".join(self.findings[:20])
            )
        return "\n".join(lines)

    def _class_line(self, data_class: DataClass) -> str:
        items = self.due.get(data_class.value, [])
        held = self.held.get(data_class.value, 0)
        verb = "would delete" if self.dry_run else "deleted"
        line = f"{data_class.value}: {verb} {len(items)} ({METHODS[data_class]})"
        if held:
            line += f", {held} kept by legal holds"
        if items:
            more = f", ... ({len(items) - 20} more)" if len(items) > 20 else ""
            line += ": " + ", ".join(items[:20]) + more
        return line


class Purge:
    """Runs retention on one database with a started audit appender (the service's, or a command's)."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: AsyncEngine,
        appender: AuditAppender | None,
        actor: Actor = RETENTION_ACTOR,
        crash_hook: CrashHook | None = None,
    ) -> None:
        self.settings = settings
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._appender = appender
        self.actor = actor
        self.crash_hook = crash_hook
        self.kek = KeyEncryptionKey(settings.require_master_key())
        self.rules = RetentionRules.from_settings(settings)
        self.store = ArtifactStore.for_database(
            ring=KeyRing(self.sessions, self.kek),
            sessions=self.sessions,
            data_dir=settings.data_dir,
            dialect=engine.dialect.name,
        )

    @property
    def appender(self) -> AuditAppender:
        """The started appender (a dry run needs none)."""
        if self._appender is None:
            msg = "a retention run that deletes needs the audit log's appender"
            raise ValueError(msg)
        return self._appender

    async def run(
        self, *, now: dt.datetime, dry_run: bool = False, trigger: str = "cli", daily_key: str | None = None
    ) -> RunResult:
        """One run at the retention clock ``now`` (see the module docstring)."""
        if now.tzinfo is None:
            msg = "the retention clock must be timezone-aware"
            raise ValueError(msg)
        result = RunResult(as_of=now, dry_run=dry_run, rules=self.rules.describe())
        if dry_run:
            await self._plan_into(result, now, rotated=None)
            result.finished, result.waiting = await self._split_pending(now)
            return result
        signer = (await self.appender.identity()).signer
        run_id = await self._claim(now, trigger, daily_key)
        if run_id is None:
            result.skipped = True
            return result
        result.run_id = run_id
        try:
            result.finished, result.waiting = await self._finish_pending(signer, now)
            result.rotated = await self._rotate(now, run_id)
            await self._plan_into(result, now, rotated=result.rotated)
            for data_class in ORDER:
                items = result.due.get(data_class.value, [])
                if items:
                    items = await self._still_due(result, data_class, items, now)
                if items:
                    result.receipts.append(await self._delete(signer, run_id, data_class, items, now))
            if result.receipts or result.rotated or result.finished:
                # a run that changed nothing leaves only its run row: the daily run of every idle service
                # would otherwise fill the audit log with empty records
                await self._record(
                    f"retention:{run_id}",
                    run_id=run_id,
                    status="succeeded",
                    purged_count=sum(r.count for r in result.receipts),
                    count=len(result.receipts),
                )
        except BaseException as exc:
            await self._end(run_id, "failed", error=f"the run stopped ({type(exc).__name__}); run it again")
            raise
        await self._end(run_id, "succeeded", summary={k: len(v) for k, v in result.due.items()})
        log_event(
            _log,
            logging.INFO,
            "retention.run",
            job_id=run_id,
            count=sum(r.count for r in result.receipts),
        )
        return result

    async def _plan_into(self, result: RunResult, now: dt.datetime, *, rotated: Sequence[str] | None) -> None:
        async with self.sessions() as session:
            holds = await active_holds(session=session, now=now)
            if rotated is None:  # dry run: plan as if the due rotations had happened
                assume = await due_rotations(session=session, rules=self.rules, now=now)
                result.rotated = [k.value for k in assume]
            else:
                assume = []
            plan = await make_plan(
                session=session,
                rules=self.rules,
                holds=holds,
                now=now,
                kek=self.kek,
                data_dir=self.settings.data_dir,
                assume_rotated=assume,
            )
        result.due = {k.value: v for k, v in plan.due.items()}
        result.held = {k.value: v for k, v in plan.held.items()}
        result.findings = await asyncio.to_thread(stray_plaintext, self.settings.data_dir)

    async def _still_due(
        self, result: RunResult, data_class: DataClass, items: Sequence[str], now: dt.datetime
    ) -> list[str]:
        """``items`` that a plan made now still has due: a hold placed since the run planned wins, and key
        epochs are judged on what the earlier classes really deleted (a report kept by a new hold keeps its
        epoch's key)."""
        async with self.sessions() as session:
            fresh = await make_plan(
                session=session,
                rules=self.rules,
                holds=await active_holds(session=session, now=now),
                now=now,
                kek=self.kek,
                data_dir=self.settings.data_dir,
            )
        still = set(fresh.due.get(data_class, []))
        kept = [item for item in items if item in still]
        result.due[data_class.value] = kept
        result.held[data_class.value] = fresh.held.get(data_class, 0)
        return kept

    async def _claim(self, now: dt.datetime, trigger: str, daily_key: str | None) -> str | None:
        run_id = "ret_" + secrets.token_hex(12)
        async with self.sessions() as session:
            session.add(
                RetentionRun(
                    id=run_id,
                    trigger=trigger,
                    daily_key=daily_key,
                    as_of=now,
                    status="running",
                    started_at=utcnow(),
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return None  # another process claimed today's daily run
        return run_id

    async def _end(
        self, run_id: str, status: str, *, summary: Mapping[str, int] | None = None, error: str | None = None
    ) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(RetentionRun)
                .where(RetentionRun.id == run_id)
                .values(
                    # a failed daily run gives its day back, so the next tick tries again
                    **({"daily_key": None} if status == "failed" else {}),
                    status=status,
                    finished_at=utcnow(),
                    summary=None if summary is None else json.dumps(dict(summary), sort_keys=True),
                    error=error,
                )
            )

    async def _rotate(self, now: dt.datetime, run_id: str) -> list[str]:
        async with self.sessions() as session:
            kinds = await due_rotations(session=session, rules=self.rules, now=now)
        rotated: list[str] = []
        for kind in kinds:
            async with self.sessions() as session:
                await rotate_epoch(
                    Recorder(self.appender, self.actor),
                    session=session,
                    kek=self.kek,
                    kind=kind,
                    origin={"run_id": run_id},
                )
            rotated.append(kind.value)
        return rotated

    async def _record(self, resource: str, **details: str | int) -> None:
        await self.appender.append(
            actor=self.actor,
            action=Action.RETENTION_PURGE,
            resource=resource,
            purpose=PURPOSE,
            details=details,
        )

    def _crash_point(self, point: str, receipt: Receipt) -> None:
        if self.crash_hook is not None:
            self.crash_hook(point, receipt)

    async def _delete(
        self, signer: Signer, run_id: str, data_class: DataClass, items: Sequence[str], now: dt.datetime
    ) -> Receipt:
        # (a) the intent is on record before anything else: no record, no deletion
        await self._record(
            f"retention:{run_id}",
            run_id=run_id,
            status="pending",
            retention_rule=data_class.value,
            method=METHODS[data_class],
            purged_count=len(items),
        )
        async with self.sessions() as session:  # (b)
            receipt = await write_pending(
                session=session,
                signer=signer,
                run_id=run_id,
                data_class=data_class,
                what=WHAT[data_class],
                method=METHODS[data_class],
                items=items,
                as_of=now,
                now=utcnow(),
            )
        self._crash_point("receipt-pending", receipt)
        return await self._complete(signer, receipt)

    async def _complete(self, signer: Signer, receipt: Receipt) -> Receipt:
        await erase(  # (c)
            receipt.data_class,
            receipt.items,
            sessions=self.sessions,
            store=self.store,
            data_dir=self.settings.data_dir,
        )
        self._crash_point("deleted", receipt)
        await self._record(  # (d)
            f"receipt:{receipt.id}",
            run_id=receipt.run_id,
            status="done",
            retention_rule=receipt.data_class.value,
            method=receipt.method,
            purged_count=receipt.count,
            sha256=receipt.items_sha256,
        )
        async with self.sessions() as session:
            return await complete_receipt(session=session, signer=signer, receipt=receipt, now=utcnow())

    async def _split_pending(self, now: dt.datetime) -> tuple[list[Receipt], list[Receipt]]:
        """Pending receipts to finish now, and those a legal hold placed since their run covers (they wait:
        retention never deletes what an active hold keeps, even to finish an interrupted deletion)."""
        ready: list[Receipt] = []
        waiting: list[Receipt] = []
        async with self.sessions() as session:
            holds = await active_holds(session=session, now=now)
            for receipt in await pending_receipts(session=session):
                held = await held_items(
                    session=session,
                    data_class=receipt.data_class,
                    items=receipt.items,
                    holds=holds,
                    kek=self.kek,
                    now=now,
                )
                (waiting if held else ready).append(receipt)
        return ready, waiting

    async def _finish_pending(self, signer: Signer, now: dt.datetime) -> tuple[list[Receipt], list[Receipt]]:
        ready, waiting = await self._split_pending(now)
        for receipt in waiting:
            log_event(
                _log, logging.WARNING, "retention.pending_held", job_id=receipt.run_id, count=receipt.count
            )
        finished = []
        for receipt in ready:
            log_event(
                _log, logging.WARNING, "retention.finish_pending", job_id=receipt.run_id, count=receipt.count
            )
            finished.append(await self._complete(signer, receipt))
        return finished, waiting


async def run_daily(
    settings: Settings, *, engine: AsyncEngine, appender: AuditAppender, now: dt.datetime | None = None
) -> RunResult:
    """The daily run for the service's scheduler: at most one per UTC day across every replica (the run row
    of the day is unique); a replica that finds the day claimed returns a ``skipped`` result."""
    moment = now or utcnow()
    purge = Purge(settings=settings, engine=engine, appender=appender)
    return await purge.run(
        now=moment, trigger="daily", daily_key=moment.astimezone(dt.UTC).date().isoformat()
    )
