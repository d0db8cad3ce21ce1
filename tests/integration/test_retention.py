"""Retention runs on SQLite and PostgreSQL: a far-future clock purges what is past retention and keeps what
legal holds keep; the audit log verifies afterwards with the shredded payloads pruned by policy; receipts
are signed and checkable; a dry run deletes nothing; a crash between steps leaves the data or a receipt and
the next run completes it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from odeus_compliance.audit.records import Action
from odeus_compliance.audit.service import list_entries
from odeus_compliance.audit.store import EntryFilter
from odeus_compliance.db.models import AuditEntry, DeletionReceipt, KeyEpoch, Report, RetentionRun, utcnow
from odeus_compliance.keys.ring import KeyKind
from odeus_compliance.reports.store import ArtifactMissing, ArtifactShredded
from odeus_compliance.retention.holds import HoldError, place_hold, release_hold
from odeus_compliance.retention.purge import Purge, run_daily
from odeus_compliance.retention.receipts import ReceiptError, list_receipts, verify_receipt
from odeus_compliance.retention.ticker import RetentionTicker
from odeus_compliance.retention_rules import DataClass
from odeus_compliance.settings import Settings
from tests.support.retention import FAR, World, run


class Crash(Exception):
    """What the test hook raises to stop a run between two steps."""


def test_far_future_run_purges_what_is_due_and_keeps_what_is_held(migrated_settings: Settings) -> None:
    async def body(w: World) -> None:
        held = await w.report(8)
        old_report_key = (await w.jobs.get(held)).artifact_key_id  # type: ignore[union-attr]
        await w.rotate(KeyKind.REPORT_DATA)
        expiring, plain = await w.report(9), await w.report(10, dataset=False)
        new_report_key = (await w.jobs.get(plain)).artifact_key_id  # type: ignore[union-attr]
        assert new_report_key != old_report_key
        old_audit_key = await w.scalar(select(AuditEntry.key_id).order_by(AuditEntry.seq).limit(1))
        audit_entries = int(await w.scalar(select(func.count()).select_from(AuditEntry)))
        now = utcnow()
        async with w.sessions() as session:
            await place_hold(
                session=session,
                data_class=DataClass.REPORTS,
                reason="case 4711",
                created_by="cli",
                now=now,
                report_id=held,
            )
            # expires long before the far-future run: it must no longer block
            await place_hold(
                session=session,
                data_class=DataClass.REPORTS,
                reason="case 4712",
                created_by="cli",
                now=now,
                report_id=expiring,
                expires_at=now + dt.timedelta(days=30),
            )

        result = await w.purge().run(now=now + FAR)

        assert result.due["reports"] == sorted([expiring, plain])
        assert result.held["reports"] == 1
        assert result.due["datasets"] == [held]  # a reports hold does not cover the dataset class
        assert result.due["key-epochs"] == [new_report_key]
        assert result.due["audit-payloads"] == [old_audit_key]
        assert sorted(result.rotated) == ["audit-data", "report-data"]
        # held: row, PDF and figures kept and readable; its dataset gone; its epoch key alive
        assert await w.store.read(held, "report.pdf") == f"%PDF-1.7 {held}".encode()
        assert not (await w.jobs.get(held)).has_dataset  # type: ignore[union-attr]
        with pytest.raises(ArtifactMissing):
            await w.store.read(held, "data.csv")
        assert not await w.destroyed(str(old_report_key))
        # the others: rows and files gone, their epoch key destroyed
        for report_id in (expiring, plain):
            assert await w.jobs.get(report_id) is None
            assert not await w.store.exists(report_id, "report.pdf")
        assert await w.destroyed(str(new_report_key))
        assert await w.destroyed(str(old_audit_key))
        # the audit log verifies, the old epoch's records shown as pruned by policy
        valid, pruned, problems = await w.verify()
        assert valid, problems
        assert pruned == audit_entries
        # receipts: signed, done, matching their identifiers
        identity = await w.identity()
        async with w.sessions() as session:
            receipts = await list_receipts(session=session)
        assert {r.data_class for r in receipts} == {
            DataClass.REPORTS,
            DataClass.DATASETS,
            DataClass.KEY_EPOCHS,
            DataClass.AUDIT_PAYLOADS,
        }
        for receipt in receipts:
            assert receipt.status == "done"
            assert receipt.completed_at is not None
            fields = verify_receipt(receipt.note, vkey=identity.vkey, items=receipt.items)
            assert fields["status"] == "done"
            assert fields["run_id"] == result.run_id
            assert fields["count"] == receipt.count
            assert fields["items_sha256"] == receipt.items_sha256
        reports_receipt = next(r for r in receipts if r.data_class is DataClass.REPORTS)
        assert list(reports_receipt.items) == sorted([expiring, plain])
        with pytest.raises(ReceiptError):  # a different identifier set does not match the signed hash
            verify_receipt(reports_receipt.note, vkey=identity.vkey, items=[expiring])
        with pytest.raises(ReceiptError):  # an altered receipt does not verify
            verify_receipt(reports_receipt.note.replace('"count":2', '"count":1'), vkey=identity.vkey)
        # every receipt is logged: pending before, done after, and the run's summary
        async with w.sessions() as session:
            entries, _ = await list_entries(
                session=session,
                kek=w.kek,
                origin=identity.origin,
                filters=EntryFilter(action=Action.RETENTION_PURGE.value),
                limit=100,
            )
        statuses = [e.record["details"]["status"] for e in entries if e.record is not None]
        assert statuses.count("pending") == 4
        assert statuses.count("done") == 4
        assert statuses[-1] == "succeeded"
        done_hashes = {e.record["details"].get("sha256") for e in entries if e.record is not None}
        assert {r.items_sha256 for r in receipts} <= done_hashes

        # a second run at the same clock: no report left to delete (the held one stays); on that clock the
        # first run's own epochs are old too, so they are rotated and shredded in turn
        again = await w.purge().run(now=now + FAR)
        assert again.due["reports"] == []
        assert again.due["datasets"] == []
        assert again.held["reports"] == 1
        assert await w.store.read(held, "report.pdf") == f"%PDF-1.7 {held}".encode()
        assert (await w.verify())[0]

    run(body, migrated_settings)


def test_dry_run_deletes_nothing_and_says_what_it_would(migrated_settings: Settings) -> None:
    async def body(w: World) -> None:
        first = await w.report(9)
        second = await w.report(10)

        async def snapshot() -> tuple[object, ...]:
            return (
                await w.scalar(select(func.count()).select_from(Report)),
                await w.scalar(select(func.count()).select_from(KeyEpoch)),
                await w.scalar(select(func.count()).select_from(KeyEpoch).where(KeyEpoch.wrapped.is_(None))),
                await w.scalar(select(func.count()).select_from(AuditEntry)),
                await w.scalar(select(func.count()).select_from(DeletionReceipt)),
                await w.scalar(select(func.count()).select_from(RetentionRun)),
            )

        before = await snapshot()
        purge = Purge(settings=w.settings, engine=w.engine, appender=None)
        result = await purge.run(now=utcnow() + FAR, dry_run=True)
        assert result.due["reports"] == sorted([first, second])
        assert sorted(result.rotated) == ["audit-data", "report-data"]
        assert len(result.due["audit-payloads"]) == 1
        assert len(result.due["key-epochs"]) == 1
        assert "would delete 2" in result.render_text()
        assert await snapshot() == before
        assert await w.store.read(first, "data.csv") == b"person,count\nu1_abc,3\n"
        # at today's clock nothing is due at all
        today = await purge.run(now=utcnow(), dry_run=True)
        assert all(items == [] for items in today.due.values())
        assert today.rotated == []

    run(body, migrated_settings)


@pytest.mark.parametrize(
    ("point", "data_class"),
    [("receipt-pending", DataClass.REPORTS), ("deleted", DataClass.AUDIT_PAYLOADS)],
)
def test_a_crash_between_steps_leaves_data_or_receipt_and_the_next_run_completes(
    migrated_settings: Settings, point: str, data_class: DataClass
) -> None:
    async def body(w: World) -> None:
        report_id = await w.report(10)
        audit_key = await w.scalar(select(AuditEntry.key_id).order_by(AuditEntry.seq).limit(1))
        now = utcnow() + FAR

        def hook(at: str, receipt: object) -> None:
            if at == point and getattr(receipt, "data_class", None) is data_class:
                raise Crash(at)

        with pytest.raises(Crash):
            await w.purge(hook).run(now=now)

        async with w.sessions() as session:
            pending = [r for r in await list_receipts(session=session) if r.status == "pending"]
        assert [r.data_class for r in pending] == [data_class]
        if data_class is DataClass.REPORTS:  # crashed before deleting: data and receipt both there
            assert await w.jobs.get(report_id) is not None
            assert await w.store.read(report_id, "report.pdf")
        else:  # crashed after shredding: the pending receipt says so
            assert await w.destroyed(str(audit_key))
            assert list(pending[0].items) == [audit_key]
        identity = await w.identity()
        assert (
            verify_receipt(pending[0].note, vkey=identity.vkey, items=pending[0].items)["status"] == "pending"
        )

        result = await w.purge().run(now=now)
        assert [r.id for r in result.finished] == [pending[0].id]
        async with w.sessions() as session:
            receipts = await list_receipts(session=session)
        assert receipts
        assert all(r.status == "done" for r in receipts)
        assert await w.jobs.get(report_id) is None
        with pytest.raises((ArtifactMissing, ArtifactShredded)):
            await w.store.read(report_id, "report.pdf")
        assert await w.destroyed(str(audit_key))
        valid, pruned, problems = await w.verify()
        assert valid, problems
        assert pruned > 0
        for receipt in receipts:
            verify_receipt(receipt.note, vkey=identity.vkey, items=receipt.items)

    run(body, migrated_settings)


def test_audit_payload_hold_keeps_an_epoch_until_it_expires(migrated_settings: Settings) -> None:
    async def body(w: World) -> None:
        report_id = await w.report(10)
        audit_key = await w.scalar(select(AuditEntry.key_id).order_by(AuditEntry.seq).limit(1))
        now = utcnow()
        async with w.sessions() as session:
            await place_hold(
                session=session,
                data_class=DataClass.AUDIT_PAYLOADS,
                reason="inquiry",
                created_by="cli",
                now=now,
                report_id=report_id,
                expires_at=now + dt.timedelta(days=5000),
            )
            with pytest.raises(HoldError):
                await place_hold(
                    session=session, data_class=DataClass.RAW_EXPORTS, reason="x", created_by="cli", now=now
                )
        kept = await w.purge().run(now=now + dt.timedelta(days=4000))
        assert kept.due["audit-payloads"] == []
        assert kept.held["audit-payloads"] == 1
        assert not await w.destroyed(str(audit_key))
        assert (await w.verify())[1] == 0
        later = await w.purge().run(now=now + dt.timedelta(days=5001))  # the hold has expired
        assert audit_key in later.due["audit-payloads"]
        assert await w.destroyed(str(audit_key))
        valid, pruned, _ = await w.verify()
        assert valid
        assert pruned > 0

    run(body, migrated_settings)


def test_daily_run_is_claimed_once_per_day(migrated_settings: Settings) -> None:
    async def body(w: World) -> None:
        moment = utcnow()
        day = moment.date().isoformat()
        await w.report(10)
        future = moment + FAR

        def crash(at: str, _receipt: object) -> None:
            raise Crash(at)

        # a daily run that fails gives its day back: the next tick of the same day runs again
        with pytest.raises(Crash):
            await w.purge(crash).run(now=future, trigger="daily", daily_key=day)
        first = await run_daily(w.settings, engine=w.engine, appender=w.appender, now=moment)
        second = await run_daily(w.settings, engine=w.engine, appender=w.appender, now=moment)
        assert not first.skipped
        assert len(first.finished) == 1  # the failed run's pending receipt
        assert second.skipped
        assert second.run_id is None
        tomorrow = await run_daily(
            w.settings, engine=w.engine, appender=w.appender, now=moment + dt.timedelta(days=1)
        )
        assert not tomorrow.skipped
        async with w.sessions() as session:
            runs = (await session.execute(select(RetentionRun.status, RetentionRun.daily_key))).all()
        assert sorted(runs, key=str) == sorted(
            [
                ("failed", None),
                ("succeeded", day),
                ("succeeded", (moment + dt.timedelta(days=1)).date().isoformat()),
            ],
            key=str,
        )

    run(body, migrated_settings)


def test_the_service_ticker_runs_the_daily_run(migrated_settings: Settings) -> None:
    async def body(w: World) -> None:
        ticker = RetentionTicker(settings=w.settings, engine=w.engine, appender=w.appender, interval=0.05)
        await ticker.start()
        try:
            for _ in range(
                400
            ):  # until the first tick has finished (bounded: a broken ticker fails the test)
                done = (
                    select(func.count()).select_from(RetentionRun).where(RetentionRun.status == "succeeded")
                )
                if await w.scalar(done):
                    break
                await asyncio.sleep(0.05)
        finally:
            await ticker.stop()
        async with w.sessions() as session:
            runs = (await session.execute(select(RetentionRun.trigger, RetentionRun.status))).all()
        assert runs == [("daily", "succeeded")]  # later ticks of the same day were skipped

    run(body, migrated_settings)


def test_leftover_work_folders_are_removed_and_stray_plaintext_reported(migrated_settings: Settings) -> None:
    async def body(w: World) -> None:
        data_dir: Path = w.settings.data_dir
        leftover = data_dir / "report-work" / ("rpt_" + "ab" * 12)
        leftover.mkdir(parents=True)
        (leftover / "dataset.csv").write_text("person,count\nu1_x,1\n")
        stray = data_dir / "export-users.csv"
        stray.write_text("name,email\n")
        dry = await Purge(settings=w.settings, engine=w.engine, appender=None).run(now=utcnow(), dry_run=True)
        assert dry.due["raw-exports"] == [leftover.name]
        assert leftover.is_dir()
        result = await w.purge().run(now=utcnow())
        assert result.due["raw-exports"] == [leftover.name]
        assert not leftover.exists()
        assert result.findings == ["export-users.csv"]
        assert stray.is_file()
        assert "name,email" not in json.dumps(result.to_json())
        assert result.receipts[0].data_class is DataClass.RAW_EXPORTS

    run(body, migrated_settings)


@pytest.mark.parametrize("hold_class", [DataClass.REPORTS, DataClass.DATASETS])
def test_a_pending_receipt_waits_while_a_hold_placed_after_the_crash_covers_it(
    migrated_settings: Settings, hold_class: DataClass
) -> None:
    """A hold on the report, or on its dataset (which goes with the report), placed after the crash."""

    async def body(w: World) -> None:
        report_id = await w.report(10)
        now = utcnow() + FAR

        def hook(at: str, receipt: object) -> None:
            if at == "receipt-pending" and getattr(receipt, "data_class", None) is DataClass.REPORTS:
                raise Crash(at)

        with pytest.raises(Crash):
            await w.purge(hook).run(now=now)
        async with w.sessions() as session:
            hold = await place_hold(
                session=session,
                data_class=hold_class,
                reason="case 99",
                created_by="cli",
                now=utcnow(),
                report_id=report_id,
            )

        dry = await w.purge().run(now=now, dry_run=True)
        assert dry.finished == []
        assert [r.data_class for r in dry.waiting] == [DataClass.REPORTS]
        held_run = await w.purge().run(now=now)
        assert held_run.finished == []
        assert [r.items for r in held_run.waiting] == [(report_id,)]
        assert held_run.due["reports"] == []
        assert await w.store.read(report_id, "report.pdf") == f"%PDF-1.7 {report_id}".encode()
        assert await w.jobs.get(report_id) is not None
        async with w.sessions() as session:
            assert [
                r.status for r in await list_receipts(session=session) if r.data_class is DataClass.REPORTS
            ] == ["pending"]
            assert await release_hold(session=session, hold_id=hold.id, now=utcnow())

        released = await w.purge().run(now=now)
        assert [r.items for r in released.finished] == [(report_id,)]
        assert released.waiting == []
        assert await w.jobs.get(report_id) is None
        assert (await w.verify())[0]

    run(body, migrated_settings)


def test_a_hold_placed_while_a_run_works_wins_over_its_plan(migrated_settings: Settings) -> None:
    """The run planned before the hold existed; the classes it deletes after the hold must respect it."""
    import threading  # noqa: PLC0415

    from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: PLC0415

    def place_elsewhere(data_class: DataClass) -> None:
        """Another process (an admin's ``retention hold add``) places an unscoped hold of ``data_class``."""

        async def place() -> None:
            engine = create_engine_for(migrated_settings)
            try:
                async with session_factory(engine)() as session:
                    await place_hold(
                        session=session,
                        data_class=data_class,
                        reason="case 7",
                        created_by="cli",
                        now=utcnow(),
                    )
            finally:
                await engine.dispose()

        thread = threading.Thread(target=lambda: asyncio.run(place()))
        thread.start()
        thread.join()

    async def body(w: World) -> None:
        await w.report(10)
        audit_key = str(await w.scalar(select(AuditEntry.key_id).order_by(AuditEntry.seq).limit(1)))
        now = utcnow() + FAR
        planned = await w.purge().run(now=now, dry_run=True)
        assert planned.due["audit-payloads"] == [audit_key]
        assert planned.due["key-epochs"]
        placed: list[str] = []

        def hook(at: str, receipt: object) -> None:
            if (
                at == "receipt-pending"
                and getattr(receipt, "data_class", None) is DataClass.REPORTS
                and not placed
            ):
                place_elsewhere(DataClass.AUDIT_PAYLOADS)
                place_elsewhere(DataClass.KEY_EPOCHS)
                placed.append("yes")

        result = await w.purge(hook).run(now=now)
        assert placed
        assert {r.data_class for r in result.receipts} == {DataClass.REPORTS}
        assert result.due["audit-payloads"] == []
        assert result.due["key-epochs"] == []
        assert result.held["audit-payloads"] == 1
        assert not await w.destroyed(audit_key)
        for key_id in planned.due["key-epochs"]:
            assert not await w.destroyed(key_id)
        valid, pruned, problems = await w.verify()
        assert valid, problems
        assert pruned == 0

    run(body, migrated_settings)


def test_a_held_dataset_keeps_its_report_past_the_reports_period(migrated_settings: Settings) -> None:
    """Deleting a report deletes its dataset: a datasets hold must keep the report (row and files) too."""

    async def body(w: World) -> None:
        report_id = await w.report(10)
        now = utcnow() + FAR
        async with w.sessions() as session:
            hold = await place_hold(
                session=session,
                data_class=DataClass.DATASETS,
                reason="case 31",
                created_by="cli",
                now=utcnow(),
                report_id=report_id,
            )
        result = await w.purge().run(now=now)
        assert result.due["reports"] == []
        assert result.due["datasets"] == []
        assert result.held["reports"] == 1
        assert result.held["datasets"] == 1
        assert await w.store.read(report_id, "data.csv") == b"person,count\nu1_abc,3\n"
        assert await w.jobs.get(report_id) is not None
        async with w.sessions() as session:
            assert await release_hold(session=session, hold_id=hold.id, now=utcnow())
        released = await w.purge().run(now=now)
        assert released.due["reports"] == [report_id]
        assert await w.jobs.get(report_id) is None

    run(body, migrated_settings)
