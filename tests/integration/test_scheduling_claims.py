"""Exactly-once claims on SQLite and PostgreSQL: racing inserts, lease takeover, fencing of a lost lease."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.schedule_tables import ScheduleRun
from odeus_compliance.scheduling import claims
from odeus_compliance.scheduling.claims import Lease
from odeus_compliance.scheduling.model import ScheduleSpec
from odeus_compliance.scheduling.periods import Every, Period, due_at
from odeus_compliance.scheduling.service import save_schedule
from odeus_compliance.settings import Settings

NOW = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)
OCTOBER = Period(Every.MONTH, dt.date(2026, 10, 1), "Europe/Berlin")


@asynccontextmanager
async def sessions_for(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A separate engine (its own connections), as another process would have."""
    engine = create_engine_for(settings)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def make_schedule(settings: Settings) -> uuid.UUID:
    spec = ScheduleSpec.build(
        name="monthly", every="month", day=1, time="06:00", timezone="Europe/Berlin", policy="default"
    )
    async with sessions_for(settings) as sessions, sessions() as session:
        saved = await save_schedule(
            session=session, spec=spec, policy_dir=settings.policy_dir, now=NOW - dt.timedelta(days=60)
        )
    return saved.schedule.id


async def claim(
    settings: Settings,
    schedule_id: uuid.UUID,
    owner: str,
    *,
    version: int = 1,
    period: Period = OCTOBER,
    then: str | None = None,
) -> ScheduleRun | None:
    """Claim ``period`` (due 06:00 on its first day) at NOW; ``then``: finish the run with that status."""
    async with sessions_for(settings) as sessions, sessions() as session:
        run = await claims.claim_new(
            session=session,
            schedule_id=schedule_id,
            period=period,
            due_at=due_at(period, day=1, time=dt.time(6, 0)),
            version=version,
            lease=Lease(owner, 60),
            now=NOW,
        )
        if run is not None and then is not None:
            assert await claims.finish(
                session=session, run_id=run.id, lease=Lease(owner, 60), now=NOW, status=then
            )
        return run


async def count_runs(settings: Settings) -> int:
    async with sessions_for(settings) as sessions, sessions() as session:
        return int((await session.execute(select(func.count()).select_from(ScheduleRun))).scalar_one())


async def test_racing_claims_give_exactly_one_run(migrated_settings: Settings) -> None:
    schedule_id = await make_schedule(migrated_settings)
    owners = [f"replica-{n}" for n in range(6)]
    results = await asyncio.gather(*(claim(migrated_settings, schedule_id, owner) for owner in owners))
    winners = [run for run in results if run is not None]
    assert len(winners) == 1
    assert winners[0].lease_owner in owners
    assert winners[0].period_start == dt.datetime(2026, 9, 30, 22, 0, tzinfo=dt.UTC)
    assert await count_runs(migrated_settings) == 1
    # a second version of the same period is another claim, also exactly once
    again = await asyncio.gather(*(claim(migrated_settings, schedule_id, o, version=2) for o in owners))
    assert sum(run is not None for run in again) == 1
    assert await count_runs(migrated_settings) == 2


async def test_a_live_lease_is_not_taken_a_lapsed_one_is_taken_once(migrated_settings: Settings) -> None:
    schedule_id = await make_schedule(migrated_settings)
    run = await claim(migrated_settings, schedule_id, "dead-replica")
    assert run is not None

    async def take(owner: str, at: dt.datetime) -> bool:
        async with sessions_for(migrated_settings) as sessions, sessions() as session:
            return await claims.take_over(session=session, run_id=run.id, lease=Lease(owner, 60), now=at)

    # while the lease holds (60 s from NOW), nobody takes the run
    assert not await take("replica-b", NOW + dt.timedelta(seconds=59))
    # after it lapsed, of several racing takers exactly one wins
    later = NOW + dt.timedelta(seconds=61)
    won = await asyncio.gather(*(take(f"taker-{n}", later) for n in range(5)))
    assert sum(won) == 1
    winner = f"taker-{won.index(True)}"
    async with sessions_for(migrated_settings) as sessions, sessions() as session:
        row = await session.get(ScheduleRun, run.id)
        assert row is not None
        assert row.lease_owner == winner
        assert row.lease_expires_at == later + dt.timedelta(seconds=60)
        # the dead owner, should it wake up, can no longer change the run (fenced by the owner check)
        stale = Lease("dead-replica", 60)
        assert not await claims.renew(session=session, run_id=run.id, lease=stale, now=later)
        assert not await claims.finish(
            session=session, run_id=run.id, lease=stale, now=later, status="succeeded"
        )
        assert await claims.mark_running(session=session, run_id=run.id, lease=Lease(winner, 60), now=later)


async def test_a_failed_run_is_taken_again_only_when_its_retry_is_due(migrated_settings: Settings) -> None:
    schedule_id = await make_schedule(migrated_settings)
    run = await claim(migrated_settings, schedule_id, "replica-a")
    assert run is not None
    retry_at = NOW + dt.timedelta(hours=1)
    async with sessions_for(migrated_settings) as sessions, sessions() as session:
        lease = Lease("replica-a", 60)
        assert await claims.finish(
            session=session,
            run_id=run.id,
            lease=lease,
            now=NOW,
            status="failed",
            error="x",
            next_retry_at=retry_at,
        )
        early = await claims.take_over(
            session=session, run_id=run.id, lease=Lease("b", 60), now=retry_at - dt.timedelta(seconds=1)
        )
        assert not early
        assert await claims.take_over(session=session, run_id=run.id, lease=Lease("b", 60), now=retry_at)
        assert not await claims.take_over(session=session, run_id=run.id, lease=Lease("c", 60), now=retry_at)


async def test_has_due_work_tells_when_a_tick_has_something_to_do(migrated_settings: Settings) -> None:
    from odeus_compliance.scheduling.queries import has_due_work  # noqa: PLC0415

    schedule_id = await make_schedule(migrated_settings)  # active from 60 days before NOW
    due = due_at(OCTOBER, day=1, time=dt.time(6, 0))  # 05:00 UTC on 1 November (CET)
    async with sessions_for(migrated_settings) as sessions:
        # 06:00 UTC on 1 November: October fell due an hour ago, September a month before (August was due
        # before the schedule existed)
        assert await has_due_work(sessions, NOW)
        # claim everything that is due; the claims' leases (60 s) make the runs nobody else's business
        for first_day in (dt.date(2026, 9, 1), dt.date(2026, 10, 1)):
            period = Period(Every.MONTH, first_day, "Europe/Berlin")
            then = "succeeded" if first_day.month != 10 else None
            run = await claim(migrated_settings, schedule_id, "a", period=period, then=then)
            assert run is not None
        assert due < NOW
        assert run is not None
        assert not await has_due_work(sessions, NOW + dt.timedelta(seconds=59))
        assert await has_due_work(sessions, NOW + dt.timedelta(seconds=61))  # October's lease lapsed
        async with sessions() as session:
            assert await claims.finish(
                session=session,
                run_id=run.id,
                lease=Lease("a", 60),
                now=NOW,
                status="failed",
                next_retry_at=NOW + dt.timedelta(hours=1),
            )
        assert not await has_due_work(sessions, NOW + dt.timedelta(minutes=59))
        assert await has_due_work(sessions, NOW + dt.timedelta(hours=1))


async def test_changing_the_zone_or_kind_does_not_run_past_periods_again(migrated_settings: Settings) -> None:
    """Periods already run under the old boundaries have no run under the new ones: without a fresh
    ``active_from`` every past period would be due again (a second report of each month)."""
    from odeus_compliance.scheduling.queries import has_due_work  # noqa: PLC0415

    schedule_id = await make_schedule(migrated_settings)
    later = NOW + dt.timedelta(days=3)
    async with sessions_for(migrated_settings) as sessions:
        for first_day in (dt.date(2026, 9, 1), dt.date(2026, 10, 1)):
            period = Period(Every.MONTH, first_day, "Europe/Berlin")
            assert (
                await claim(migrated_settings, schedule_id, "a", period=period, then="succeeded") is not None
            )
        assert not await has_due_work(sessions, later)
        for every, zone in (("month", "Europe/London"), ("quarter", "Europe/London"), ("week", "UTC")):
            spec = ScheduleSpec.build(
                name="monthly", every=every, day=1, time="06:00", timezone=zone, policy="default"
            )
            async with sessions() as session:
                saved = await save_schedule(
                    session=session, spec=spec, policy_dir=migrated_settings.policy_dir, now=later
                )
            assert saved.changed
            assert saved.schedule.active_from == later
            assert not await has_due_work(sessions, later)
        # a change of day or time keeps the period boundaries, so it keeps active_from
        spec = ScheduleSpec.build(
            name="monthly", every="week", day=2, time="07:00", timezone="UTC", policy="default"
        )
        async with sessions() as session:
            saved = await save_schedule(
                session=session,
                spec=spec,
                policy_dir=migrated_settings.policy_dir,
                now=later + dt.timedelta(hours=1),
            )
        assert saved.schedule.active_from == later
        # disabled for two months, then enabled again: the weeks of the pause were switched off, not missed
        for enabled, when in ((False, later + dt.timedelta(hours=2)), (True, later + dt.timedelta(days=60))):
            spec = ScheduleSpec.build(
                name="monthly",
                every="week",
                day=2,
                time="07:00",
                timezone="UTC",
                policy="default",
                enabled=enabled,
            )
            async with sessions() as session:
                saved = await save_schedule(
                    session=session,
                    spec=spec,
                    policy_dir=migrated_settings.policy_dir,
                    now=when,
                )
        assert saved.schedule.active_from == later + dt.timedelta(days=60)
        assert not await has_due_work(sessions, later + dt.timedelta(days=60))


async def test_a_rerun_is_refused_while_the_periods_newest_run_is_in_progress(
    migrated_settings: Settings,
) -> None:
    """Otherwise the new version would hide the running one from every tick (a dead owner's run would never be
    taken over) or two reports of the period would be made at once."""
    from odeus_compliance.keys.certificates import ensure_demo_certificate  # noqa: PLC0415
    from odeus_compliance.scheduling.model import ScheduleError  # noqa: PLC0415
    from odeus_compliance.scheduling.runtime import standalone_scheduler  # noqa: PLC0415
    from odeus_compliance.scheduling.service import get_schedule  # noqa: PLC0415

    ensure_demo_certificate(migrated_settings.data_dir, migrated_settings.require_master_key())
    schedule_id = await make_schedule(migrated_settings)
    run = await claim(migrated_settings, schedule_id, "replica-a")
    assert run is not None
    async with standalone_scheduler(migrated_settings) as scheduler:
        async with scheduler.sessions() as session:
            schedule = await get_schedule(session=session, schedule_id=schedule_id)
        assert schedule is not None
        for now in (NOW, NOW + dt.timedelta(hours=1)):  # a live lease, and a lapsed one (a tick takes it)
            with pytest.raises(ScheduleError, match="still in progress"):
                await scheduler.rerun(
                    schedule=schedule,
                    moment=OCTOBER.start + dt.timedelta(days=3),
                    now=now,
                    requested_by="cli",
                )
    assert await count_runs(migrated_settings) == 1
