"""``run_due(now)``: the flow that turns due periods into exactly one report each.

For each enabled schedule it lists the periods that fell due between the schedule's ``active_from`` and
``now`` (:func:`~odeus_compliance.scheduling.periods.periods_due`), applies the catch-up policy, and for each
period either claims a new run (:func:`~odeus_compliance.scheduling.claims.claim_new`), takes over a run
whose owner died (lease lapsed), or retries a failed run whose retry time came. A claimed run requests the
report job (``ReportJobs.request``) and follows it to the end, renewing its lease; when the job fails (the
upstream is down, say) it tries again with backoff, a bounded number of times per tick, and then records the
run as ``failed`` with the reason and the time of the next try: the next tick retries it. Nothing is lost
silently: every period that fell due has a row - succeeded, failed (with why), skipped (with why) or in
progress.

Time: ``now`` comes from the caller; while a run is in progress, the lease is renewed against a clock that
starts at ``now`` and advances with the monotonic clock, so a test (or ``run-due --now``) controls it fully.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.audit.appender import Actor, AuditAppender
from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action, ActorRole, Outcome
from odeus_compliance.core.leases import lease_owner_id
from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.db.models import Report
from odeus_compliance.db.schedule_tables import Schedule, ScheduleRun
from odeus_compliance.errors import ValidationFailed
from odeus_compliance.keys.sealed_text import TextSealer
from odeus_compliance.logging_setup import log_event
from odeus_compliance.notify.mail import MailSender
from odeus_compliance.notify.webhook import WebhookSender
from odeus_compliance.reports.actions import request_report
from odeus_compliance.reports.jobs import ReportJobs, ReportRecord, ReportStatus
from odeus_compliance.reports.service import resolve_request
from odeus_compliance.reports.store import ArtifactStore
from odeus_compliance.scheduling import claims
from odeus_compliance.scheduling.claims import Lease
from odeus_compliance.scheduling.delivery import Deliverer, RunTarget
from odeus_compliance.scheduling.model import CatchUp, ScheduleError, ScheduleSpec
from odeus_compliance.scheduling.periods import Period, due_at, period_containing, periods_due
from odeus_compliance.scheduling.queries import newest_runs
from odeus_compliance.scheduling.recipients import RecipientHasher
from odeus_compliance.scheduling.run_settings import Clock, RunSettings, offset_clock
from odeus_compliance.scheduling.service import load_spec

__all__ = [
    "SCHEDULER",
    "Clock",
    "RunOutcome",
    "RunSettings",
    "Scheduler",
    "offset_clock",
]

_log = logging.getLogger(__name__)
SCHEDULER: Final = Actor("system:scheduler", "odeus-compliance scheduler", ActorRole.SYSTEM)
"""The actor of ``schedule.run`` records."""
SKIPPED_REASON: Final = "missed while no replica ran; skipped by the schedule's catch-up policy"

Sleep = Callable[[float], Awaitable[None]]
RunJob = Callable[[str], Awaitable[object]]
"""Runs a queued report job in the foreground (``ReportRuntime.run_job``); without one, a runtime loop of
some process picks the job up and the run follows it."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a tick did with one (schedule, period, version)."""

    schedule: str
    period: str
    version: int
    run_id: uuid.UUID
    status: str
    report_id: str | None
    error: str | None


class Scheduler:
    """Runs what is due. One per process; any number of processes may run it against one database."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        jobs: ReportJobs,
        appender: AuditAppender,
        settings: RunSettings | None = None,
        owner: str | None = None,
        sleep: Sleep = asyncio.sleep,
        policy_dir: Path,
        run_job: RunJob | None = None,
        webhooks: WebhookSender | None = None,
        mailer: MailSender | None = None,
        store: ArtifactStore | None = None,
        hasher: RecipientHasher | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self._appender = appender
        self._recorder = Recorder(appender, SCHEDULER)
        self._sealer = TextSealer(appender.kek)
        self._policy_dir = policy_dir
        self._settings = settings or RunSettings()
        self._lease = Lease(owner or lease_owner_id(), self._settings.lease_seconds)
        self._sleep = sleep
        self._run_job = run_job
        self._metrics = metrics
        self._deliverer = Deliverer(
            recorder=self._recorder,
            settings=self._settings,
            sleep=sleep,
            webhooks=webhooks,
            mailer=mailer,
            store=store,
            hasher=hasher,
            metrics=metrics,
        )

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The scheduler's sessions (commands read schedules with them)."""
        return self._sessions

    @property
    def owner(self) -> str:
        """This scheduler's lease owner id."""
        return self._lease.owner

    async def run_due(self, now: dt.datetime, *, clock: Clock | None = None) -> list[RunOutcome]:
        """Claim and run every due period of every enabled schedule at ``now``; what happened, in order."""
        if now.tzinfo is None:
            msg = "now must be timezone-aware"
            raise ValueError(msg)
        clock = clock or offset_clock(now)
        async with self._sessions() as session:
            schedules = (
                (await session.execute(select(Schedule).where(Schedule.enabled).order_by(Schedule.name)))
                .scalars()
                .all()
            )
        outcomes: list[RunOutcome] = []
        for schedule in schedules:
            outcomes.extend(await self._run_schedule(schedule, now, clock))
        return outcomes

    async def rerun(
        self, *, schedule: Schedule, moment: dt.datetime, now: dt.datetime, requested_by: str
    ) -> RunOutcome:
        """Run the closed period containing ``moment`` again as a new version that supersedes the newest one.

        Raises :class:`ScheduleError` if the period has not ended at ``now``, its newest run is still in
        progress, or another re-run of it got the same version first.
        """
        spec = await self._spec(schedule)
        period = period_containing(spec.every, moment, spec.timezone)
        if period.end.astimezone(dt.UTC) > now.astimezone(dt.UTC):
            raise ScheduleError("only a closed period can be run again (this one has not ended yet)")
        start = period.start.astimezone(dt.UTC)
        async with self._sessions() as session:
            newest = (
                await session.execute(
                    select(ScheduleRun)
                    .where(ScheduleRun.schedule_id == schedule.id, ScheduleRun.period_start == start)
                    .order_by(ScheduleRun.version.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if newest is not None and newest.status in {"claimed", "running"}:
                # a new version now would hide this one from every tick: if its owner died, nobody would
                # take it over, and if it lives, two reports of the period would be made side by side
                raise ScheduleError(
                    "the period's newest run is still in progress; wait until it ends (or until a tick takes "
                    "it over after its lease)"
                )
            run = await claims.claim_new(
                session=session,
                schedule_id=schedule.id,
                period=period,
                due_at=due_at(period, day=spec.day, time=spec.time),
                version=(newest.version + 1) if newest else 1,
                lease=self._lease,
                now=now,
                requested_by=requested_by,
                supersedes_run_id=newest.id if newest else None,
            )
        if run is None:
            raise ScheduleError("another re-run of this period started at the same time")
        return await self._execute(RunTarget(schedule, spec, run, period), offset_clock(now))

    # --- one schedule -------------------------------------------------------------------------------------

    async def _spec(self, schedule: Schedule) -> ScheduleSpec:
        """The schedule's definition with its e-mail recipients opened (they are stored sealed)."""
        async with self._sessions() as session:
            return await load_spec(session=session, row=schedule, sealer=self._sealer)

    async def _run_schedule(self, schedule: Schedule, now: dt.datetime, clock: Clock) -> list[RunOutcome]:
        spec = await self._spec(schedule)
        due = periods_due(
            spec.every,
            day=spec.day,
            time=spec.time,
            timezone=spec.timezone,
            now=now,
            active_from=schedule.active_from,
        )
        if not due:
            return []
        newest = await self._newest_runs(schedule.id, [p.start.astimezone(dt.UTC) for p in due])
        outcomes: list[RunOutcome] = []
        for index, period in enumerate(due):
            run = newest.get(period.start.astimezone(dt.UTC))
            latest = index == len(due) - 1
            if run is None:
                outcome = await self._claim_and_run(schedule, spec, period, latest=latest, clock=clock)
            else:
                outcome = await self._resume(schedule, spec, run, period, clock)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    async def _newest_runs(
        self, schedule_id: uuid.UUID, starts: Sequence[dt.datetime]
    ) -> dict[dt.datetime, ScheduleRun]:
        return await newest_runs(self._sessions, schedule_id, starts)

    async def _claim_and_run(
        self, schedule: Schedule, spec: ScheduleSpec, period: Period, *, latest: bool, clock: Clock
    ) -> RunOutcome | None:
        skip = spec.catch_up is CatchUp.SKIP_AND_RECORD and not latest
        now = clock()
        async with self._sessions() as session:
            run = await claims.claim_new(
                session=session,
                schedule_id=schedule.id,
                period=period,
                due_at=due_at(period, day=spec.day, time=spec.time),
                version=1,
                lease=self._lease,
                now=now,
                skipped_reason=SKIPPED_REASON if skip else None,
            )
        if run is None:
            return None  # another process claimed it first
        if skip:
            await self._audit(RunTarget(schedule, spec, run, period), Outcome.SUCCESS, "skipped")
            if self._metrics is not None:
                self._metrics.schedule_run("skipped")
            return _outcome(spec, run, "skipped")
        return await self._execute(RunTarget(schedule, spec, run, period), clock)

    async def _resume(
        self, schedule: Schedule, spec: ScheduleSpec, run: ScheduleRun, period: Period, clock: Clock
    ) -> RunOutcome | None:
        if run.status == "succeeded" and run.delivery_status in {"failed", "sending"}:
            return await self._redeliver(RunTarget(schedule, spec, run, period), clock)
        if run.status in {"succeeded", "skipped"}:
            return None
        if run.status == "failed" and run.next_retry_at is None:
            return None  # out of attempts: visible in the history, waits for a re-run
        async with self._sessions() as session:
            won = await claims.take_over(session=session, run_id=run.id, lease=self._lease, now=clock())
        if not won:
            return None  # its owner is alive, its retry is not due yet, or another process took it
        log_event(
            _log, logging.INFO, "schedule_run_taken_over", run_id=str(run.id), previous_status=run.status
        )
        follow = None
        if run.status in {"claimed", "running"}:
            # the dead owner may have queued a job without living to record it: adopt that one, never a second
            follow = await self._unrecorded_report(run) or run.report_id
        return await self._execute(RunTarget(schedule, spec, run, period), clock, follow_report=follow)

    async def _unrecorded_report(self, run: ScheduleRun) -> str | None:
        """A live (not failed) report job of this schedule and period that no run row names: one requested by
        an owner that died before recording it."""
        recorded = select(ScheduleRun.report_id).where(
            ScheduleRun.schedule_id == run.schedule_id, ScheduleRun.report_id.is_not(None)
        )
        query = (
            select(Report.id)
            .where(
                Report.requested_by == f"schedule:{run.schedule_id}",
                Report.period_start == run.period_start,
                Report.period_end == run.period_end,
                Report.status != ReportStatus.FAILED.value,
                Report.id.not_in(recorded),
            )
            .order_by(Report.requested_at.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            return (await session.execute(query)).scalar_one_or_none()

    # --- one run ------------------------------------------------------------------------------------------

    async def _execute(
        self, target: RunTarget, clock: Clock, *, follow_report: str | None = None
    ) -> RunOutcome:
        spec, run = target.spec, target.run
        settings = self._settings
        if follow_report is not None and follow_report != run.report_id:
            async with self._sessions() as session:  # an adopted job: name it on the run from now on
                if not await claims.record_report(
                    session=session, run_id=run.id, lease=self._lease, now=clock(), report_id=follow_report
                ):
                    return _outcome(spec, run, "lost", None, "the lease was lost to another process")
        attempts_done = run.attempts
        error: str | None = None
        report_id = follow_report
        for attempt in range(settings.attempts_per_tick):
            if follow_report is None:
                if attempts_done >= settings.max_attempts:
                    break
                if attempt > 0:
                    async with self._keep_alive(run, clock):  # a long backoff must not cost the lease
                        await self._sleep(settings.backoff_seconds * 2 ** (attempt - 1))
                report_id, error = await self._request(spec, run, target.period, clock)
                attempts_done += 1
                if report_id is None:
                    if error is None:
                        return _outcome(spec, run, "lost", None, "the lease was lost to another process")
                    continue
            record, error = await self._follow(report_id or "", run, clock)
            follow_report = None
            if record is not None and record.status is ReportStatus.SUCCEEDED:
                # delivery (timeouts, backoff) can outlast the lease: keep it, or another replica would take
                # the run over, notify a second time and fence this one's result out
                async with self._keep_alive(run, clock):
                    delivery = await self._deliver(target, record, clock, attempts_before=0)
                return await self._finish(target, clock, "succeeded", report_id=report_id, delivery=delivery)
            if error == _LEASE_LOST:
                return _outcome(spec, run, "lost", report_id, "the lease was lost to another process")
        retry = None
        if attempts_done < settings.max_attempts:
            retry = clock() + dt.timedelta(seconds=settings.retry_delay(attempts_done))
        reason = error or "no attempt left"
        first_failure = run.status != "failed"  # a retry of a failed run that fails again is not news
        outcome = await self._finish(target, clock, "failed", report_id=report_id, error=reason, retry=retry)
        if outcome.status == "failed" and (first_failure or retry is None):
            # the same channels as a success; the failure is recorded already, so a notice that cannot be
            # sent loses nothing (it is logged and counted)
            await self._deliverer.notify_failure(target, error=reason, retry=retry, failed_at=clock())
        return outcome

    async def _request(
        self, spec: ScheduleSpec, run: ScheduleRun, period: Period, clock: Clock
    ) -> tuple[str | None, str | None]:
        """Start one attempt; ``(report_id, None)``, ``(None, reason)`` on failure, ``(None, None)`` if the
        lease is gone."""
        async with self._sessions() as session:
            if not await claims.mark_running(session=session, run_id=run.id, lease=self._lease, now=clock()):
                return None, None
        try:
            wanted = resolve_request(
                period=period.report_period(),
                policy=spec.policy,
                purpose=spec.purpose,
                policy_dir=self._policy_dir,
            )
            record = await request_report(
                self._recorder,
                jobs=self._jobs,
                wanted=wanted,
                requested_by=f"schedule:{run.schedule_id}",
                origin={"schedule": spec.name, "run_id": str(run.id)},
            )
        except ValidationFailed:
            return None, "the schedule's policy is no longer a valid file of the policy folder"
        except Exception as exc:  # noqa: BLE001 - a failed request is a failed attempt, recorded by its kind
            return None, f"the report job could not be queued ({type(exc).__name__})"
        async with self._sessions() as session:
            held = await claims.record_report(
                session=session, run_id=run.id, lease=self._lease, now=clock(), report_id=record.id
            )
        return (record.id, None) if held else (None, None)

    async def _run_in_foreground(self, report_id: str, run: ScheduleRun, clock: Clock) -> None:
        """Run the queued job here (a command has no background loop), keeping the run's lease alive."""
        assert self._run_job is not None
        try:
            async with self._keep_alive(run, clock):
                await self._run_job(report_id)
        except Exception as exc:  # noqa: BLE001 - the job's own state tells what happened; follow it
            log_event(_log, logging.WARNING, "schedule_report_job_raised", error_type=type(exc).__name__)

    @contextlib.asynccontextmanager
    async def _keep_alive(self, run: ScheduleRun, clock: Clock) -> AsyncIterator[None]:
        """Renew the run's lease in the background while a long step (a foreground report job, a delivery)
        runs."""

        async def renew_forever() -> None:
            while True:
                await asyncio.sleep(self._settings.lease_seconds / 3)
                async with self._sessions() as session:
                    if not await claims.renew(session=session, run_id=run.id, lease=self._lease, now=clock()):
                        return

        task = asyncio.create_task(renew_forever(), name="schedule-run-lease")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(
        self, report_id: str, run: ScheduleRun, clock: Clock
    ) -> tuple[ReportRecord | None, str | None]:
        """Wait for the report job to end, renewing the lease: the record, or why it did not succeed."""
        deadline = time.monotonic() + self._settings.follow_timeout_seconds
        while True:
            record = await self._jobs.get(report_id)
            if record is None:
                return None, "the report job disappeared"
            if record.status is ReportStatus.SUCCEEDED:
                return record, None
            if record.status is ReportStatus.FAILED:
                return record, f"the report job failed: {record.error or 'no reason given'}"
            if time.monotonic() > deadline:
                return record, "the report job did not finish in time"
            if record.status is ReportStatus.QUEUED and self._run_job is not None:
                await self._run_in_foreground(report_id, run, clock)
            async with self._sessions() as session:
                if not await claims.renew(session=session, run_id=run.id, lease=self._lease, now=clock()):
                    return record, _LEASE_LOST
            await self._sleep(self._settings.poll_seconds)

    async def _finish(
        self,
        target: RunTarget,
        clock: Clock,
        status: str,
        *,
        report_id: str | None,
        error: str | None = None,
        retry: dt.datetime | None = None,
        delivery: dict[str, object] | None = None,
    ) -> RunOutcome:
        spec, run = target.spec, target.run
        async with self._sessions() as session:
            held = await claims.finish(
                session=session,
                run_id=run.id,
                lease=self._lease,
                now=clock(),
                status=status,
                error=error[:500] if error else None,
                next_retry_at=retry,
                delivery=delivery,
            )
        if not held:
            return _outcome(spec, run, "lost", report_id, "the lease was lost to another process")
        outcome = Outcome.SUCCESS if status == "succeeded" else Outcome.FAILURE
        await self._audit(target, outcome, status, report_id=report_id)
        if self._metrics is not None:
            self._metrics.schedule_run(status)
        log_event(
            _log,
            logging.INFO if status == "succeeded" else logging.WARNING,
            "schedule_run_finished",
            run_id=str(run.id),
            status=status,
            retry=retry is not None,
        )
        return _outcome(spec, run, status, report_id, error)

    async def _redeliver(self, target: RunTarget, clock: Clock) -> RunOutcome | None:
        """Try a succeeded run's failed (or orphaned) webhook delivery again, if it is due and still ours."""
        run = target.run
        async with self._sessions() as session:
            if not await claims.take_delivery(session=session, run_id=run.id, lease=self._lease, now=clock()):
                return None
        record = await self._jobs.get(run.report_id or "")
        delivery: dict[str, object] | None
        if record is None:
            delivery = {
                "delivery_status": "failed",
                "delivery_error": "the report is gone",
                "delivery_next_at": None,
            }
        else:
            done = frozenset(filter(None, (run.delivered_channels or "").split(",")))
            async with self._keep_alive(run, clock):
                delivery = await self._deliver(
                    target, record, clock, attempts_before=run.delivery_attempts, done_before=done
                )
        async with self._sessions() as session:
            held = await claims.finish_delivery(
                session=session, run_id=run.id, lease=self._lease, delivery=delivery or {}
            )
        status = "delivered" if delivery and delivery["delivery_status"] == "delivered" else "delivery_failed"
        if not held:
            return _outcome(target.spec, run, "lost", run.report_id, "the lease was lost to another process")
        error = None if status == "delivered" else str((delivery or {}).get("delivery_error"))
        return _outcome(target.spec, run, status, run.report_id, error)

    async def _deliver(
        self,
        target: RunTarget,
        record: ReportRecord,
        clock: Clock,
        *,
        attempts_before: int,
        done_before: frozenset[str] = frozenset(),
    ) -> dict[str, object] | None:
        """Deliver (see :class:`Deliverer`) and record the outcome as ``schedule.run``."""
        columns = await self._deliverer.deliver(
            target, record, clock, attempts_before=attempts_before, done_before=done_before
        )
        if columns is not None:
            delivered = columns["delivery_status"] == "delivered"
            status = "delivered" if delivered else "delivery_failed"
            outcome = Outcome.SUCCESS if delivered else Outcome.FAILURE
            extra = self._deliverer.recipients(target.spec)
            await self._audit(target, outcome, status, report_id=record.id, extra=extra)
        return columns

    async def _audit(
        self,
        target: RunTarget,
        outcome: Outcome,
        status: str,
        *,
        report_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        schedule, spec, run, period = target.schedule, target.spec, target.run, target.period
        details: dict[str, str | int | bool] = {
            "schedule": spec.name,
            "run_id": str(run.id),
            "status": status,
            "period_from": period.start.isoformat(),
            "period_to": period.end.isoformat(),
            "timezone": period.timezone,
            "policy": spec.policy,
        }
        if report_id is not None:
            details["report_id"] = report_id
        details.update(extra or {})
        await self._appender.append(
            actor=SCHEDULER,
            action=Action.SCHEDULE_RUN,
            resource=f"schedule:{schedule.id}",
            purpose=spec.purpose,
            outcome=outcome,
            details=details,
        )


_LEASE_LOST: Final = "lease lost"


def _outcome(
    spec: ScheduleSpec, run: ScheduleRun, status: str, report_id: str | None = None, error: str | None = None
) -> RunOutcome:
    return RunOutcome(
        schedule=spec.name,
        period=run.period_label,
        version=run.version,
        run_id=run.id,
        status=status,
        report_id=report_id if report_id is not None else run.report_id,
        error=error if error is not None else run.error,
    )
