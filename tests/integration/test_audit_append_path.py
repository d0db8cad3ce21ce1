"""The append path: the SQLite channel (batches prepared ahead of the lock, checked against the locked head),
failed batches, and the engine path on PostgreSQL. Each test runs on SQLite and on PostgreSQL; the channel
tests check that PostgreSQL has no channel and behaves the same."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from odeus_compliance.audit.appender import SYSTEM_CLI, AuditAppender, AuditWriteError
from odeus_compliance.audit.records import Action, AuditRecord
from odeus_compliance.audit.store import sqlite_entry_params, sqlite_insert_entries_rows
from odeus_compliance.db.engine import create_engine_for
from odeus_compliance.db.migrate import upgrade
from odeus_compliance.db.models import AuditEntry
from odeus_compliance.settings import Settings
from tests.integration.test_audit_log import read_all, verify_stored
from tests.support.audit import init_ring, sql


@pytest.fixture
def ring_settings(migrated_settings: Settings) -> Settings:
    init_ring(migrated_settings)
    return migrated_settings


def _is_sqlite(settings: Settings) -> bool:
    return settings.database_url.startswith("sqlite")


async def _one(appender: AuditAppender, resource: str, action: Action = Action.REPORT_VIEWED) -> AuditRecord:
    return await appender.append(actor=SYSTEM_CLI, action=action, resource=resource)


def test_the_channel_syncs_every_commit(ring_settings: Settings) -> None:
    async def go() -> int | None:
        async with AuditAppender.open(ring_settings) as appender:
            channel = appender.sqlite_channel
            return None if channel is None else await channel.synchronous()

    level = asyncio.run(go())
    assert level == (2 if _is_sqlite(ring_settings) else None)  # 2 = FULL


def test_a_batch_prepared_against_a_stale_head_is_prepared_again(ring_settings: Settings) -> None:
    """Another appender (another connection, as another process would be) appends between two batches of
    the first: the first's next batch was prepared for the old head; it is prepared again under the lock,
    and the sequence stays gap-free."""

    async def go() -> tuple[list[int], tuple[int, int] | None]:
        async with AuditAppender.open(ring_settings) as first, AuditAppender.open(ring_settings) as second:
            seqs = [(await _one(first, "report:a")).seq, (await _one(first, "report:b")).seq]
            seqs.append((await _one(second, "report:c")).seq)
            seqs.append((await _one(first, "report:d")).seq)
            seqs.append((await _one(first, "report:e")).seq)
            channel = first.sqlite_channel
            shape = None if channel is None else (channel.prepared_ahead, channel.prepared_under_lock)
            return seqs, shape

    seqs, shape = asyncio.run(go())
    assert seqs == [0, 1, 2, 3, 4]
    if _is_sqlite(ring_settings):
        # first batch: nothing expected yet; second: ahead; fourth: stale (the other appender wrote seq 2),
        # prepared under the lock; fifth: ahead again
        assert shape == (2, 2)
    else:
        assert shape is None
    report = verify_stored(ring_settings)
    assert report.valid, report.summary()
    assert [e.record["resource"] for e in read_all(ring_settings) if e.record] == [
        f"report:{c}" for c in "abcde"
    ]


def test_two_appenders_at_once_give_one_sequence(ring_settings: Settings) -> None:
    async def go() -> list[int]:
        async with AuditAppender.open(ring_settings) as first, AuditAppender.open(ring_settings) as second:
            records = await asyncio.gather(
                *(_one(first if i % 2 else second, f"report:{i}") for i in range(300))
            )
            return [r.seq for r in records]

    seqs = asyncio.run(go())
    assert sorted(seqs) == list(range(300))
    report = verify_stored(ring_settings)
    assert report.valid, report.summary()
    assert report.disclosed == 300


def _refuse_policy_records(settings: Settings) -> None:
    """A trigger that makes the database refuse any batch holding a ``policy.changed`` row."""
    statement = (
        "CREATE TRIGGER refuse_policy BEFORE INSERT ON audit_entries WHEN NEW.action = 'policy.changed' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        if _is_sqlite(settings)
        else "CREATE FUNCTION refuse_policy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.action = 'policy.changed' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
    )
    statements: list[tuple[str, dict[str, Any]]] = [(statement, {})]
    if not _is_sqlite(settings):
        statements.append(
            (
                (
                    "CREATE TRIGGER refuse_policy BEFORE INSERT ON audit_entries FOR EACH ROW "
                    "EXECUTE FUNCTION refuse_policy()"
                ),
                {},
            )
        )
    sql(settings, statements)


def test_a_failed_batch_leaves_no_gap(ring_settings: Settings) -> None:
    _refuse_policy_records(ring_settings)

    async def go() -> tuple[list[int], bool]:
        async with AuditAppender.open(ring_settings) as appender:
            seqs = [(await _one(appender, "report:a")).seq, (await _one(appender, "report:b")).seq]
            failed = False
            try:
                await _one(appender, "policy:p", Action.POLICY_CHANGED)
            except AuditWriteError:
                failed = True
            seqs.append((await _one(appender, "report:c")).seq)
            seqs.append((await _one(appender, "report:d")).seq)
            return seqs, failed

    seqs, failed = asyncio.run(go())
    assert failed
    assert seqs == [0, 1, 2, 3]
    report = verify_stored(ring_settings)
    assert report.valid, report.summary()


def test_failures_among_concurrent_batches_leave_no_gap(ring_settings: Settings) -> None:
    """Batches fail while others are in flight (some prepared ahead on the failed one's head): every
    acknowledged record has a unique seq, together exactly 0..n-1, and the log verifies."""
    _refuse_policy_records(ring_settings)

    async def go() -> tuple[list[int], int]:
        async with AuditAppender.open(ring_settings) as appender:

            async def writer(w: int) -> tuple[list[int], int]:
                seqs: list[int] = []
                failures = 0
                for i in range(20):
                    action = Action.POLICY_CHANGED if w == 0 and i % 5 == 2 else Action.REPORT_VIEWED
                    try:
                        seqs.append((await _one(appender, f"report:{w}-{i}", action)).seq)
                    except AuditWriteError:
                        failures += 1
                return seqs, failures

            results = await asyncio.gather(*(writer(w) for w in range(16)))
            return [s for seqs, _ in results for s in seqs], sum(f for _, f in results)

    seqs, failures = asyncio.run(go())
    assert failures >= 4  # writer 0's own four, plus whoever shared their batches
    assert len(seqs) > 16 * 20 // 2
    assert sorted(seqs) == list(range(len(seqs)))
    report = verify_stored(ring_settings)
    assert report.valid, report.summary()
    assert report.entries == len(seqs)


def test_the_multi_row_insert_stores_what_the_orm_insert_stores(tmp_path: Path) -> None:
    """The channel inserts a batch with one multi-row statement through ``sqlite3`` (SQLite only; PostgreSQL
    inserts through the engine): the stored values and their SQLite storage classes are those of
    SQLAlchemy's own insert."""
    settings = Settings.for_tests(tmp_path)
    asyncio.run(upgrade(settings))
    when = dt.datetime(2026, 3, 1, 9, 30, 15, 123000, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    def row(seq: int) -> dict[str, Any]:
        return {
            "seq": seq,
            "leaf": '{"x":"é"}',
            "leaf_hash": bytes(range(32)),
            "time": when,
            "key_id": "audit-data:1:x",
            "action": "report.viewed",
            "outcome": None if seq % 2 else "success",
            "actor_key_id": None if seq % 2 else "system:cli",
            "resource_tag": "tag",
        }

    async def orm() -> Any:
        engine = create_engine_for(settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(AuditEntry), [row(0), row(1)])
            return engine.dialect
        finally:
            await engine.dispose()

    dialect = asyncio.run(orm())
    database = settings.database_url.split("///", 1)[1]
    conn = sqlite3.connect(database)
    try:
        params = sqlite_entry_params(dialect, [row(2), row(3)])
        with conn:
            conn.execute(sqlite_insert_entries_rows(2), [v for p in params for v in p])
    finally:
        conn.close()
    typeof = ", ".join(f"typeof({c.name}), {c.name}" for c in AuditEntry.__table__.columns)
    (stored,) = sql(settings, [(f"SELECT {typeof} FROM audit_entries ORDER BY seq", {})])
    assert len(stored) == 4
    assert stored[0][2:] == stored[2][2:]
    assert stored[1][2:] == stored[3][2:]


def test_appends_before_keys_init_fail_and_later_ones_succeed(migrated_settings: Settings) -> None:
    """No key ring yet: the append fails (closed) rather than hanging or killing the writer; once the ring
    exists the same appender writes seq 0."""

    async def go() -> tuple[bool, int]:
        async with AuditAppender.open(migrated_settings) as appender:
            failed = False
            try:
                await asyncio.wait_for(_one(appender, "report:early"), timeout=60)
            except AuditWriteError:
                failed = True
            await asyncio.to_thread(init_ring, migrated_settings)
            record = await asyncio.wait_for(_one(appender, "report:later"), timeout=60)
            return failed, record.seq

    failed, seq = asyncio.run(go())
    assert failed
    assert seq == 0
