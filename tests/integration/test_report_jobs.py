"""Report jobs on SQLite and PostgreSQL: request, claim races, leases, takeover, recovery, failures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from odeus_compliance.core.leases import lease_owner_id
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.models import Report
from odeus_compliance.reports.jobs import LeaseLost, ReportJobs, ReportPeriod, ReportStatus
from odeus_compliance.settings import Settings

PERIOD = ReportPeriod.month(2026, 10, "Europe/Berlin")


@pytest.fixture
async def jobs(migrated_settings: Settings) -> AsyncIterator[ReportJobs]:
    engine = create_engine_for(migrated_settings)
    try:
        yield ReportJobs(session_factory(engine), lease_seconds=30, max_attempts=2)
    finally:
        await engine.dispose()


async def _request(jobs: ReportJobs, period: ReportPeriod = PERIOD) -> str:
    record = await jobs.request(period=period, policy="default", purpose="monthly report", requested_by="cli")
    return record.id


def test_a_month_is_its_local_calendar_month() -> None:
    period = ReportPeriod.month(2026, 10, "Europe/Berlin")  # the clocks go back on 25 October
    assert period.start == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert period.end == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert period.label == "2026-10"
    assert ReportPeriod.month(2026, 12, "UTC").end == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown time zone"):
        ReportPeriod.month(2026, 1, "Mars/Base")


async def test_request_queues_versions_per_period_and_policy(jobs: ReportJobs) -> None:
    first = await jobs.request(period=PERIOD, policy="default", purpose=" audit ", requested_by="key-1")
    second = await jobs.request(period=PERIOD, policy="default", purpose="again", requested_by="key-1")
    other = await jobs.request(
        period=ReportPeriod.month(2026, 9, "Europe/Berlin"), policy="default", purpose="x", requested_by="cli"
    )

    assert (first.status, first.version, first.supersedes, first.purpose) == (
        ReportStatus.QUEUED,
        1,
        None,
        "audit",
    )
    assert (second.version, second.supersedes) == (2, first.id)
    assert other.version == 1
    fetched = await jobs.get(first.id)
    assert fetched is not None
    assert fetched.period == PERIOD
    assert [r.id for r in await jobs.list()] == [other.id, second.id, first.id]
    assert [r.id for r in await jobs.list(before=second.id)] == [first.id]
    with pytest.raises(ValueError, match="purpose"):
        await jobs.request(period=PERIOD, policy="default", purpose="  ", requested_by="cli")


async def test_two_concurrent_claimers_of_one_job_give_one_winner(jobs: ReportJobs) -> None:
    for _ in range(5):
        report_id = await _request(jobs)
        owners = [lease_owner_id() for _ in range(2)]
        won = await asyncio.gather(*(jobs.claim(owner, report_id=report_id) for owner in owners))
        winners = [record for record in won if record is not None]
        assert len(winners) == 1
        assert winners[0].status is ReportStatus.RUNNING
        assert winners[0].attempt == 1
        loser = owners[won.index(None)]
        with pytest.raises(LeaseLost):
            await jobs.progress(report_id, loser, stage="fetch", progress=0.1)


async def test_many_claimers_take_each_job_once(jobs: ReportJobs) -> None:
    ids = {await _request(jobs) for _ in range(6)}
    owners = [lease_owner_id() for _ in range(4)]

    async def drain(owner: str) -> list[str]:
        taken = []
        while (record := await jobs.claim(owner)) is not None:
            taken.append(record.id)
        return taken

    taken = [i for batch in await asyncio.gather(*(drain(o) for o in owners)) for i in batch]
    assert sorted(taken) == sorted(ids)


async def test_progress_succeed_and_fail_need_the_lease(jobs: ReportJobs) -> None:
    report_id = await _request(jobs)
    owner = lease_owner_id()
    assert await jobs.claim(owner) is not None
    await jobs.progress(report_id, owner, stage="render", progress=0.5, policy_hash="sha256:ab")
    record = await jobs.get(report_id)
    assert record is not None
    assert (record.stage, record.progress, record.policy_hash) == ("render", 0.5, "sha256:ab")
    await jobs.succeed(report_id, owner, pdf_sha256="00" * 32, has_dataset=True, artifact_key_id="k")
    done = await jobs.get(report_id)
    assert done is not None
    assert (done.status, done.progress, done.has_dataset) == (ReportStatus.SUCCEEDED, 1.0, True)
    assert done.finished_at is not None
    with pytest.raises(LeaseLost):
        await jobs.fail(report_id, owner, reason="too late")

    failing = await _request(jobs)
    assert await jobs.claim(owner) is not None
    await jobs.fail(failing, owner, reason="the Odeus API\nanswered 503")
    failed = await jobs.get(failing)
    assert failed is not None
    assert (failed.status, failed.error) == (ReportStatus.FAILED, "the Odeus API answered 503")


async def _expire(jobs: ReportJobs, report_id: str) -> None:
    async with jobs.sessions() as session:
        await session.execute(
            update(Report)
            .where(Report.id == report_id)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()


async def test_a_lapsed_lease_is_taken_over_and_the_old_runner_stops(jobs: ReportJobs) -> None:
    report_id = await _request(jobs)
    old, new = lease_owner_id(), lease_owner_id()
    assert await jobs.claim(old) is not None
    assert await jobs.claim(new) is None  # the lease holds
    await _expire(jobs, report_id)

    taken = await jobs.claim(new)
    assert taken is not None
    assert (taken.id, taken.attempt) == (report_id, 2)
    with pytest.raises(LeaseLost):
        await jobs.progress(report_id, old, stage="render", progress=0.9)
    await jobs.progress(report_id, new, stage="render", progress=0.9)

    await _expire(jobs, report_id)  # the second runner dies too: attempts (2) are used up
    assert await jobs.claim(old) is None
    record = await jobs.get(report_id)
    assert record is not None
    assert record.status is ReportStatus.FAILED
    assert record.error is not None
    assert "interrupted 2 time(s)" in record.error


async def test_recover_requeues_jobs_of_dead_runners_and_fails_exhausted_ones(jobs: ReportJobs) -> None:
    # a runner on this host whose process is gone: its lease has not lapsed, but recover sees it is dead
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(dead.stdout)
    host = lease_owner_id().split(":", 1)[0]
    dead_owner = f"{host}:{dead_pid}:abcd"
    resumable, exhausted, alive, lapsed = [await _request(jobs) for _ in range(4)]
    live_owner = lease_owner_id()  # this process: alive
    assert await jobs.claim(dead_owner, report_id=resumable) is not None
    assert await jobs.claim(live_owner, report_id=alive) is not None
    assert await jobs.claim(f"elsewhere:{os.getpid()}:ab", report_id=lapsed) is not None
    await _expire(jobs, lapsed)
    async with jobs.sessions() as session:
        await session.execute(update(Report).where(Report.id == exhausted).values(attempt=1))
        await session.commit()
    assert await jobs.claim(dead_owner, report_id=exhausted) is not None  # attempt 2 of 2

    assert await jobs.recover() == 3

    states = {i: await jobs.get(i) for i in (resumable, exhausted, alive, lapsed)}
    assert {i: r.status for i, r in states.items() if r is not None} == {
        resumable: ReportStatus.QUEUED,
        exhausted: ReportStatus.FAILED,
        alive: ReportStatus.RUNNING,
        lapsed: ReportStatus.QUEUED,
    }
    assert states[resumable] is not None
    assert states[resumable].stage == "requeued after interruption"  # type: ignore[union-attr]
    assert "interrupted" in (states[exhausted].error or "")  # type: ignore[union-attr]
    resumed = await jobs.claim(lease_owner_id(), report_id=resumable)
    assert resumed is not None
    assert resumed.attempt == 2


async def test_history_gives_earlier_succeeded_reports_newest_version_per_period(jobs: ReportJobs) -> None:
    owner = lease_owner_id()
    months = [ReportPeriod.month(2026, m, "Europe/Berlin") for m in (7, 8, 8, 9)]
    ids = []
    for period in months:
        report_id = await _request(jobs, period)
        assert await jobs.claim(owner, report_id=report_id) is not None
        await jobs.succeed(report_id, owner, pdf_sha256="0" * 64, has_dataset=False, artifact_key_id="k")
        ids.append(report_id)
    failed = await _request(jobs, ReportPeriod.month(2026, 6, "Europe/Berlin"))
    assert await jobs.claim(owner, report_id=failed) is not None
    await jobs.fail(failed, owner, reason="x")
    current = await jobs.request(period=PERIOD, policy="default", purpose="p", requested_by="cli")

    history = await jobs.history(current)
    assert [r.id for r in history] == [ids[0], ids[2], ids[3]]


async def test_claimers_with_their_own_engines_race_to_one_winner_per_job(
    migrated_settings: Settings,
) -> None:
    """As several processes would: each claimer has its own engine (own connections, own SQLite locks)."""
    engines = [create_engine_for(migrated_settings) for _ in range(3)]
    try:
        claimers = [ReportJobs(session_factory(engine), lease_seconds=30) for engine in engines]
        for _ in range(5):
            report_id = await _request(claimers[0])
            won = await asyncio.gather(*(jobs.claim(lease_owner_id()) for jobs in claimers))
            assert [record.id for record in won if record is not None] == [report_id]
    finally:
        for engine in engines:
            await engine.dispose()
