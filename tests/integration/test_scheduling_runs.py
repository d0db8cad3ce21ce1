"""``run_due`` end to end on SQLite and PostgreSQL: the real report runtime pulling from the Odeus simulator.

Two schedulers racing the same due time make exactly one run and one report; an upstream outage makes
retries, then a failed run visible in the history, retried by a later tick; catch-up policies; re-runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.models import Report
from odeus_compliance.keys.certificates import ensure_demo_certificate
from odeus_compliance.reports.jobs import ReportStatus
from odeus_compliance.scheduling.model import ScheduleSpec
from odeus_compliance.scheduling.runner import RunOutcome, RunSettings
from odeus_compliance.scheduling.runtime import standalone_scheduler
from odeus_compliance.scheduling.service import list_runs, save_schedule
from odeus_compliance.scheduling.tables import ScheduleRun
from odeus_compliance.settings import Secret, Settings
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.server import RunningSimulator, run_simulator

FAST = RunSettings(
    lease_seconds=30, attempts_per_tick=2, backoff_seconds=0.05, retry_after_seconds=600, poll_seconds=0.05
)


def last_closed_month_start() -> dt.date:
    """The first day of last month (Odeus keeps only recent history, so tests stay near the real date)."""
    today = dt.datetime.now(dt.UTC).date().replace(day=1)
    return (today - dt.timedelta(days=1)).replace(day=1)


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(users=30, seed=5)) as running:
        yield running


@pytest.fixture
def upstream_settings(migrated_settings: Settings, sim: RunningSimulator) -> Settings:
    settings = dataclasses.replace(
        migrated_settings,
        odeus_base_url=sim.base_url,
        odeus_api_key=Secret(sim.api_key),
        download_hosts=frozenset({"127.0.0.1"}),
    )
    ensure_demo_certificate(settings.data_dir, settings.require_master_key())
    return settings


async def create_schedule(settings: Settings, *, active_from: dt.datetime, **changes: Any) -> uuid.UUID:
    fields: dict[str, Any] = {
        "name": "monthly",
        "every": "month",
        "day": 1,
        "time": "06:00",
        "timezone": "Europe/Berlin",
        "policy": "default",
        **changes,
    }
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            saved = await save_schedule(
                session=session,
                spec=ScheduleSpec.build(**fields),
                policy_dir=settings.policy_dir,
                now=active_from,
                active_from=active_from,
            )
            return saved.schedule.id
    finally:
        await engine.dispose()


async def run_due(settings: Settings, now: dt.datetime) -> list[RunOutcome]:
    async with standalone_scheduler(settings, run_settings=FAST) as scheduler:
        return await scheduler.run_due(now)


async def runs_of(settings: Settings, schedule_id: uuid.UUID) -> list[ScheduleRun]:
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            return list(await list_runs(session=session, schedule_id=schedule_id))
    finally:
        await engine.dispose()


async def reports_of(settings: Settings, schedule_id: uuid.UUID) -> list[Report]:
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            query = (
                select(Report)
                .where(Report.requested_by == f"schedule:{schedule_id}")
                .order_by(Report.requested_at)
            )
            return list((await session.execute(query)).scalars().all())
    finally:
        await engine.dispose()


async def audit_rows(settings: Settings, action: str) -> list[tuple[str, str]]:
    """(action, outcome) of the audit entries whose action starts with ``action``, in log order."""
    engine = create_engine_for(settings)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT action, outcome FROM audit_entries WHERE action LIKE :a ORDER BY seq"),
                {"a": action + "%"},
            )
            return [(row[0], row[1]) for row in result.all()]
    finally:
        await engine.dispose()


def berlin_due(first_of_next_month: dt.date) -> dt.datetime:
    """06:00 Berlin time on that day, as UTC."""
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    local = dt.datetime.combine(first_of_next_month, dt.time(6, 0), ZoneInfo("Europe/Berlin"))
    return local.astimezone(dt.UTC)


async def test_racing_schedulers_make_exactly_one_run_and_one_report(upstream_settings: Settings) -> None:
    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    schedule_id = await create_schedule(upstream_settings, active_from=due - dt.timedelta(days=20))
    # one minute before the due time: nothing
    assert await run_due(upstream_settings, due - dt.timedelta(minutes=1)) == []
    results = await asyncio.gather(*(run_due(upstream_settings, due) for _ in range(3)))
    outcomes = [o for result in results for o in result]
    assert [(o.status, o.version) for o in outcomes] == [("succeeded", 1)], outcomes
    runs = await runs_of(upstream_settings, schedule_id)
    assert len(runs) == 1
    run = runs[0]
    assert (run.status, run.attempts, run.report_id, run.lease_owner) == (
        "succeeded",
        1,
        outcomes[0].report_id,
        None,
    )
    assert run.period_label == f"{month.year:04d}-{month.month:02d}"
    reports = await reports_of(upstream_settings, schedule_id)
    assert [r.id for r in reports] == [run.report_id]
    report = reports[0]
    assert report.status == ReportStatus.SUCCEEDED.value
    assert report.purpose == "scheduled monthly report monthly"
    assert (report.period_start, report.period_end) == (run.period_start, run.period_end)
    assert report.timezone == "Europe/Berlin"
    # a later tick finds nothing to do
    assert await run_due(upstream_settings, due + dt.timedelta(hours=5)) == []
    # audited: the request (data access, with purpose) and the run
    assert await audit_rows(upstream_settings, "schedule.run") == [("schedule.run", "success")]
    assert ("report.requested", "success") in await audit_rows(upstream_settings, "report.requested")


async def test_upstream_outage_retries_then_fails_visibly_then_next_tick_succeeds(
    upstream_settings: Settings, sim: RunningSimulator
) -> None:
    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    schedule_id = await create_schedule(upstream_settings, active_from=due - dt.timedelta(days=1))
    sim.faults.fail_next(500, status=503)
    [outcome] = await run_due(upstream_settings, due)
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("the report job failed")
    [run] = await runs_of(upstream_settings, schedule_id)
    assert (run.status, run.attempts) == ("failed", 2)
    assert run.next_retry_at is not None
    assert run.next_retry_at >= due + dt.timedelta(seconds=600)
    failed_reports = await reports_of(upstream_settings, schedule_id)
    assert [r.status for r in failed_reports] == ["failed", "failed"]
    # the outage is over; a tick before the retry time leaves the failed run alone, the next one retries it
    sim.faults.clear()
    assert await run_due(upstream_settings, due + dt.timedelta(seconds=60)) == []
    [retried] = await run_due(upstream_settings, due + dt.timedelta(seconds=700))
    assert (retried.status, retried.run_id) == ("succeeded", run.id)
    [run] = await runs_of(upstream_settings, schedule_id)
    assert (run.status, run.attempts, run.error, run.next_retry_at) == ("succeeded", 3, None, None)
    statuses = [r.status for r in await reports_of(upstream_settings, schedule_id)]
    assert statuses == ["failed", "failed", "succeeded"]
    assert [o for _a, o in await audit_rows(upstream_settings, "schedule.run")] == ["failure", "success"]


async def test_catch_up_skip_records_missed_periods_and_rerun_supersedes(upstream_settings: Settings) -> None:
    month = last_closed_month_start()
    due = berlin_due((month + dt.timedelta(days=32)).replace(day=1))
    # weekly schedule, down for three weeks: skip-and-record runs only the latest week, records the others
    schedule_id = await create_schedule(
        upstream_settings,
        active_from=due - dt.timedelta(days=21, hours=1),
        name="weekly",
        every="week",
        day=1,
        catch_up="skip-and-record",
    )
    outcomes = await run_due(upstream_settings, due)
    assert [o.status for o in outcomes] == ["skipped", "skipped", "succeeded"], outcomes
    runs = await runs_of(upstream_settings, schedule_id)
    assert sorted(r.status for r in runs) == ["skipped", "skipped", "succeeded"]
    assert all(r.error and "catch-up policy" in r.error for r in runs if r.status == "skipped")
    assert len(await reports_of(upstream_settings, schedule_id)) == 1
    # a re-run of the closed latest week: version 2 supersedes version 1, both kept
    latest = next(r for r in runs if r.status == "succeeded")
    async with standalone_scheduler(upstream_settings, run_settings=FAST) as scheduler:
        async with scheduler.sessions() as session:
            from odeus_compliance.scheduling.service import get_schedule  # noqa: PLC0415

            schedule = await get_schedule(session=session, schedule_id=schedule_id)
        assert schedule is not None
        rerun = await scheduler.rerun(
            schedule=schedule, moment=latest.period_start + dt.timedelta(hours=1), now=due, requested_by="cli"
        )
    assert (rerun.status, rerun.version) == ("succeeded", 2)
    versions = [
        r for r in await runs_of(upstream_settings, schedule_id) if r.period_start == latest.period_start
    ]
    assert [(r.version, r.status) for r in versions] == [(2, "succeeded"), (1, "succeeded")]
    assert versions[0].supersedes_run_id == latest.id
    reports = await reports_of(upstream_settings, schedule_id)
    assert len(reports) == 2
    assert reports[1].supersedes == reports[0].id
    assert reports[1].version == 2
