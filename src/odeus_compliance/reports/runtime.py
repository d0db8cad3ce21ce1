"""The report runtime of one process: jobs, the artifact store, the worker, and the loop that runs jobs.

The app's lifespan builds it after the audit appender and keeps it in ``app.state[REPORT_RUNTIME]``::

    runtime = ReportRuntime.from_settings(settings, engine=engine, appender=appender)
    await runtime.start()      # recover jobs left running by a dead process, then pick queued jobs
    ...
    await runtime.stop()       # stop picking; jobs in progress go back to the queue; stop the worker

The loop runs up to ``ODEUS_COMPLIANCE_REPORT_CONCURRENCY`` jobs at once, each in its own task: a job held
up by a slow upstream takes one slot and the others go on. :meth:`ReportRuntime.cancel` stops a job this
process runs at once (its slot is free again); a job another process runs stops at its next lease renewal.

Any number of processes may run a runtime on one database: the database hands each job to exactly one of
them (see :mod:`.jobs`). The CLI (``report run``, ``demo``) runs one job in the foreground with
:meth:`ReportRuntime.run_job` instead of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Final

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from odeus_compliance.audit.appender import Actor, AuditAppender
from odeus_compliance.audit.records import ActorRole
from odeus_compliance.core.leases import lease_owner_id
from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.keys.ring import KeyEncryptionKey, KeyRing, ensure_key_ring
from odeus_compliance.logging_setup import log_event
from odeus_compliance.policy.memory import use_lean_arrow_pool
from odeus_compliance.reports.flow import ReportFlow, sweep_work_dirs
from odeus_compliance.reports.jobs import LeaseLost, ReportJobs, ReportRecord
from odeus_compliance.reports.store import ArtifactStore
from odeus_compliance.reports.worker import ReportWorker
from odeus_compliance.settings import Settings

__all__ = ["REPORT_JOB_ACTOR", "ReportRuntime", "standalone_runtime"]

REPORT_JOB_ACTOR: Final = Actor("system:reports", "odeus-compliance report job", ActorRole.SYSTEM)
"""The actor of the records a report job writes (the requester is named by ``report.requested``)."""
_log = logging.getLogger(__name__)


class ReportRuntime:
    """See the module docstring. ``jobs`` and ``store`` are what the HTTP API uses."""

    def __init__(
        self,
        *,
        jobs: ReportJobs,
        store: ArtifactStore,
        worker: ReportWorker,
        flow: ReportFlow,
        poll_seconds: float = 1.0,
        concurrency: int = 1,
    ) -> None:
        self._jobs = jobs
        self._store = store
        self.worker = worker
        self.flow = flow
        self.poll_seconds = poll_seconds
        self.concurrency = max(1, concurrency)
        self.owner = lease_owner_id()
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._running: set[asyncio.Task[None]] = set()

    @property
    def jobs(self) -> ReportJobs:
        """The report jobs."""
        return self._jobs

    @property
    def store(self) -> ArtifactStore:
        """The reports' encrypted files."""
        return self._store

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        engine: AsyncEngine,
        appender: AuditAppender,
        actor: Actor = REPORT_JOB_ACTOR,
        poll_seconds: float = 1.0,
        metrics: ServiceMetrics | None = None,
    ) -> ReportRuntime:
        """Build the runtime on ``engine`` (owned by the caller) with the process's started ``appender``
        (``metrics``: the app's, counting jobs, stages and upstream retries)."""
        sessions = session_factory(engine)
        kek = KeyEncryptionKey(settings.require_master_key())
        ring = KeyRing(sessions, kek)
        jobs = ReportJobs(
            sessions,
            lease_seconds=settings.report_lease_seconds,
            max_attempts=settings.report_max_attempts,
            kek=kek,  # purposes stored sealed
        )
        store = ArtifactStore.for_database(
            ring=ring, sessions=sessions, data_dir=settings.data_dir, dialect=engine.dialect.name
        )
        worker = ReportWorker(
            memory_mb=settings.report_worker_memory_mb, timeout_seconds=settings.report_timeout_seconds
        )
        flow = ReportFlow(
            settings=settings,
            jobs=jobs,
            store=store,
            worker=worker,
            appender=appender,
            actor=actor,
            metrics=metrics,
        )
        return cls(
            jobs=jobs,
            store=store,
            worker=worker,
            flow=flow,
            poll_seconds=poll_seconds,
            concurrency=settings.report_concurrency,
        )

    async def recover(self) -> int:
        """Requeue or fail the jobs that dead processes left running (see :meth:`ReportJobs.recover`) and
        remove the work folders they left."""
        recovered = await self._jobs.recover()
        await sweep_work_dirs(self._jobs, self.flow.settings.data_dir)
        if recovered:
            log_event(_log, logging.WARNING, "report.jobs_recovered", count=recovered)
        return recovered

    async def start(self) -> None:
        """Recover interrupted jobs, then run queued ones in the background (an unreachable database is
        logged and retried by the loop, not fatal: health/ready reports it)."""
        use_lean_arrow_pool()  # the policy engine runs in this process
        try:
            await self.recover()
        except (SQLAlchemyError, OSError) as exc:
            log_event(_log, logging.WARNING, "report.recover_failed", error_type=type(exc).__name__)
        self._loop_task = asyncio.create_task(self._loop(), name="report-jobs")

    def wake(self) -> None:
        """Look for queued jobs now instead of at the next poll."""
        self._wake.set()

    def cancel(self, report_id: str) -> bool:
        """Stop this process's run of ``report_id`` now (the job was cancelled in the database); whether
        one ran here."""
        return self.flow.interrupt(report_id)

    async def stop(self) -> None:
        """Stop the loop (jobs in progress are put back in the queue) and the worker process."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = list(self._running)
        for job in running:
            job.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self.worker.close()

    async def run_job(self, report_id: str) -> ReportRecord | None:
        """Claim exactly this job and run it here, in the foreground; ``None`` if another runner has it."""
        record = await self._jobs.claim(self.owner, report_id=report_id)
        if record is None:
            return None
        try:
            return await self.flow.run(record, self.owner)
        except LeaseLost:
            return await self._jobs.get(report_id)

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()  # a free slot first: at most `concurrency` jobs at once
            record: ReportRecord | None = None
            try:
                record = await self._jobs.claim(self.owner)
            except asyncio.CancelledError:
                self._slots.release()
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must survive a database outage
                log_event(_log, logging.WARNING, "report.loop_error", error_type=type(exc).__name__)
            if record is not None:
                job = asyncio.create_task(self._run_claimed(record), name=f"report-job-{record.id}")
                self._running.add(job)
                job.add_done_callback(self._job_done)
                continue
            self._slots.release()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    async def _run_claimed(self, record: ReportRecord) -> None:
        try:
            await self.flow.run(record, self.owner)
        except LeaseLost:
            pass  # cancelled, or another runner has it now
        except Exception as exc:  # noqa: BLE001 - one job's failure must not end the loop
            log_event(_log, logging.WARNING, "report.loop_error", error_type=type(exc).__name__)

    def _job_done(self, job: asyncio.Task[None]) -> None:
        self._running.discard(job)
        self._slots.release()


@contextlib.asynccontextmanager
async def standalone_runtime(settings: Settings, *, actor: Actor) -> AsyncIterator[ReportRuntime]:
    """A runtime for a command (``report run``, ``demo``): its own engine, key ring (completed if a kind is
    missing, and recorded), appender and worker; jobs left running by dead processes are recovered first.
    No background loop: the command runs its job with :meth:`ReportRuntime.run_job`."""
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            created = (
                await ensure_key_ring(session=session, kek=KeyEncryptionKey(settings.require_master_key()))
            ).created
        async with AuditAppender.open(settings) as appender:
            await appender.record_created_keys(created, actor)
            runtime = ReportRuntime.from_settings(settings, engine=engine, appender=appender, actor=actor)
            use_lean_arrow_pool()  # the policy engine runs in this process
            try:
                await runtime.recover()
                yield runtime
            finally:
                await runtime.stop()
    finally:
        await engine.dispose()
