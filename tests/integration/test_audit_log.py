"""The stored audit log on both databases: appends, concurrency, tampering, key rotation and shredding, the
CLI verifier and export. (HTTP API: ``test_audit_http.py``; kill -9: ``test_audit_durability.py``.)"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text, update

from odeus_compliance.audit import service
from odeus_compliance.audit.appender import SYSTEM_CLI, AuditAppender
from odeus_compliance.audit.bundle_verify import verify_bundle
from odeus_compliance.audit.checkpoint import Checkpoint, sign_checkpoint
from odeus_compliance.audit.leaf import seal_record
from odeus_compliance.audit.merkle import MerkleAccumulator, leaf_hash
from odeus_compliance.audit.records import Action, AuditRecord
from odeus_compliance.audit.store import (
    EntryFilter,
    Head,
    insert_entries,
    lock_head_with_key,
    read_head,
    store_head,
)
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.models import AuditEntry, AuditLogState
from odeus_compliance.keys.ring import KeyEncryptionKey, KeyKind, KeyRing, current_data_key, load_identity
from odeus_compliance.settings import Settings
from tests.support.audit import append_records, cli, cli_env, init_ring, sql


@pytest.fixture
def ring_settings(migrated_settings: Settings) -> Settings:
    """A migrated database with an initialised key ring."""
    init_ring(migrated_settings)
    return migrated_settings


@pytest.fixture
def filled(ring_settings: Settings) -> Settings:
    """40 records and a checkpoint covering them."""
    seqs = asyncio.run(append_records(ring_settings, writers=4, each=10))
    assert sorted(seqs) == list(range(40))
    return ring_settings


def read_all(settings: Settings) -> list[service.EntryView]:
    async def go() -> list[service.EntryView]:
        engine = create_engine_for(settings)
        kek = KeyEncryptionKey(settings.require_master_key())
        try:
            async with session_factory(engine)() as session:
                identity = await load_identity(executor=session, kek=kek)
                entries, _ = await service.list_entries(
                    session=session, kek=kek, origin=identity.origin, filters=EntryFilter(), limit=100_000
                )
                return entries
        finally:
            await engine.dispose()

    return asyncio.run(go())


def verify_stored(settings: Settings) -> Any:
    async def go() -> Any:
        engine = create_engine_for(settings)
        kek = KeyEncryptionKey(settings.require_master_key())
        try:
            async with session_factory(engine)() as session:
                identity = await load_identity(executor=session, kek=kek)
                return await service.verify_stored_log(session=session, kek=kek, identity=identity)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_keys_init_is_idempotent_and_prints_the_vkey(migrated_settings: Settings) -> None:
    first = cli(migrated_settings, "keys", "init")
    assert first.returncode == 0, first.stderr
    second = cli(migrated_settings, "keys", "init")
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout
    assert "nothing created" in second.stderr
    origin, vkey = (line.split(": ", 1)[1] for line in first.stdout.splitlines())
    assert origin.startswith("odeus-compliance/")
    assert vkey.startswith(origin + "+")
    assert "PRIVATE" not in first.stdout + first.stderr
    # one key.created per kind of key the ring holds (the installation secret is not a key of a kind)
    assert [e.record["action"] for e in read_all(migrated_settings) if e.record] == ["key.created"] * len(
        KeyKind
    )
    refused = cli(migrated_settings, "keys", "rotate", "checkpoint-signing")
    assert refused.returncode == 2  # not a choice


def test_concurrent_writers_give_one_gap_free_sequence(ring_settings: Settings) -> None:
    seqs = asyncio.run(append_records(ring_settings, writers=32, each=20))
    assert sorted(seqs) == list(range(640))
    report = verify_stored(ring_settings)
    assert report.valid, report.summary()
    assert report.entries == 640
    assert report.disclosed == 640
    entries = read_all(ring_settings)
    assert [e.seq for e in entries] == list(range(640))
    assert all(e.record is not None and e.record["seq"] == e.seq for e in entries)


def test_two_processes_append_at_once(ring_settings: Settings, tmp_path: Path) -> None:
    script = tmp_path / "append.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, base64, os, sys
            from pathlib import Path
            from odeus_compliance.settings import Settings
            from tests.support.audit import append_records
            settings = Settings.from_env(os.environ)
            seqs = asyncio.run(append_records(settings, writers=8, each=25, checkpoint=False))
            print(",".join(map(str, seqs)))
            """
        )
    )
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script)],
            env={**cli_env(ring_settings), "PYTHONPATH": str(root)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _out, err in outputs]
    seqs = [int(s) for out, _err in outputs for s in out.strip().split(",")]
    assert sorted(seqs) == list(range(400))
    result = cli(ring_settings, "audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("valid\n")


def _tamper_modify(settings: Settings) -> None:
    (rows,) = sql(settings, [("SELECT leaf FROM audit_entries WHERE seq = 7", {})])
    leaf = json.loads(rows[0][0])
    leaf["nonce"] = "AAAAAAAAAAAAAAAA"
    text = json.dumps(leaf, sort_keys=True, separators=(",", ":"))
    sql(settings, [("UPDATE audit_entries SET leaf = :leaf WHERE seq = 7", {"leaf": text})])


def _tamper_delete(settings: Settings) -> None:
    sql(settings, [("DELETE FROM audit_entries WHERE seq = 7", {})])


def _tamper_swap(settings: Settings) -> None:
    (rows,) = sql(settings, [("SELECT seq, leaf FROM audit_entries WHERE seq IN (5, 9) ORDER BY seq", {})])
    (_, five), (_, nine) = rows
    sql(
        settings,
        [
            ("UPDATE audit_entries SET leaf = :leaf WHERE seq = 5", {"leaf": nine}),
            ("UPDATE audit_entries SET leaf = :leaf WHERE seq = 9", {"leaf": five}),
        ],
    )


def _tamper_truncate(settings: Settings) -> None:
    sql(settings, [("DELETE FROM audit_entries WHERE seq >= 35", {})])


TAMPERING = {
    # kind: (tampering, fragments the verdict must hold, fragments it must not hold)
    "modified": (_tamper_modify, ["modified: seq 7:"], ["missing:", "reordered:", "truncated:"]),
    # with the keys every remaining leaf is authenticated: the deletion is not also called a modification
    "missing": (_tamper_delete, ["missing: seq 7:"], ["modified:", "reordered:", "truncated:"]),
    # exactly the two swapped seqs (not the range between them); put back in order they give the signed root
    "reordered": (_tamper_swap, ["reordered: seq 5, 9:"], ["modified:", "missing:", "truncated:"]),
    "truncated": (
        _tamper_truncate,
        ["truncated:", "covers 40 leaves but the log holds 35"],
        ["modified:", "missing:", "reordered:"],
    ),
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_audit_verify_names_each_kind_of_tampering(filled: Settings, kind: str) -> None:
    clean = cli(filled, "audit", "verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.startswith("valid\n")
    tamper, expected, absent = TAMPERING[kind]
    # the clean run appended its own audit.verified record (seq 40); tampering happens below it
    tamper(filled)
    result = cli(filled, "audit", "verify")
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("INVALID"), result.stdout
    for fragment in expected:
        assert fragment in result.stdout, result.stdout
    for fragment in absent:
        assert fragment not in result.stdout, result.stdout


def _bundle_swap_entries(bundle: dict[str, Any]) -> None:
    entries = bundle["entries"]
    entries[5], entries[9] = entries[9], entries[5]


def _bundle_swap_leaves(bundle: dict[str, Any]) -> None:
    """The leaves (with their proofs and records) trade places under fixed seqs."""
    five, nine = bundle["entries"][5], bundle["entries"][9]
    for field in ("leaf", "proof", "record", "salt"):
        five[field], nine[field] = nine[field], five[field]


def _bundle_modify(bundle: dict[str, Any]) -> None:
    bundle["entries"][7]["record"]["purpose"] = "something else"


def _bundle_drop(bundle: dict[str, Any]) -> None:
    del bundle["entries"][7]


def _bundle_prune(bundle: dict[str, Any]) -> None:
    bundle["entries"][3].update(record=None, salt=None)


def _bundle_cut_tail(bundle: dict[str, Any]) -> None:
    del bundle["entries"][-1]


def _bundle_cut_head(bundle: dict[str, Any]) -> None:
    del bundle["entries"][0]


def _bundle_cut_tail_and_restate(bundle: dict[str, Any]) -> None:
    """The tail cut and the signed range statement edited to match (its signature no longer holds)."""
    del bundle["entries"][-1]
    bundle["range"] = bundle["range"].replace("\nlast 39\n", "\nlast 38\n")


def _bundle_as_format_1(bundle: dict[str, Any]) -> None:
    """What a bundle exported before range statements looks like (or one downgraded to it)."""
    del bundle["range"]
    bundle["format"] = "odeus-compliance-audit-bundle/1"


BUNDLE_TAMPERING = {
    "modified": (_bundle_modify, 1, ["modified: seq 7:"], ["missing:", "reordered:"]),
    "missing": (_bundle_drop, 1, ["missing: seq 7:"], ["modified:", "reordered:", "truncated:"]),
    "cut-tail": (
        _bundle_cut_tail,
        1,
        ["truncated: seq 39: 1 entries cut off at the tail: the range the bundle states ends at seq 39"],
        ["missing:", "modified:", "valid\n"],
    ),
    "cut-head": (
        _bundle_cut_head,
        1,
        ["truncated: seq 0: 1 entries cut off at the head: the range the bundle states starts at seq 0"],
        ["missing:", "modified:", "valid\n"],
    ),
    "restated-range": (
        _bundle_cut_tail_and_restate,
        1,
        ["bad-signature: the range statement is not signed by"],
        ["valid\n"],
    ),
    "format-1": (
        _bundle_as_format_1,
        1,
        ["unproven: the bundle does not state the range it covers"],
        ["modified:", "missing:", "valid\n"],
    ),
    "reordered-entries": (_bundle_swap_entries, 1, ["reordered: seq 5, 9:"], ["modified:", "missing:"]),
    "reordered-leaves": (
        _bundle_swap_leaves,
        1,
        ["reordered: seq 5: the entry for seq 5 holds the leaf of seq 9", "reordered: seq 9:"],
        ["modified:", "missing:"],
    ),
    # a withheld record is what retention's shredding looks like: listed, not a failure
    "pruned": (_bundle_prune, 0, ["valid\n", "pruned by policy: 1 entries (3)"], ["INVALID"]),
}


@pytest.mark.parametrize("kind", sorted(BUNDLE_TAMPERING))
def test_audit_verify_bundle_names_each_kind_of_tampering(
    filled: Settings, tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "bundle.json"
    exported = cli(filled, "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    data = json.loads(out.read_text())
    vkey = data["vkey"]
    clean = cli(None, "audit", "verify", "--bundle", str(out), "--vkey", vkey, cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout
    assert "range (signed): entries from 2000-01-01T00:00:00.000000Z to 2100-01-01T23:59:59.999999Z: " in (
        clean.stdout
    )
    assert "seq 0..39 of the tree of size 40" in clean.stdout
    tamper, code, expected, absent = BUNDLE_TAMPERING[kind]
    tamper(data)
    out.write_text(json.dumps(data))
    result = cli(None, "audit", "verify", "--bundle", str(out), "--vkey", vkey, cwd=tmp_path)
    assert result.returncode == code, result.stdout
    for fragment in expected:
        assert fragment in result.stdout, result.stdout
    for fragment in absent:
        assert fragment not in result.stdout, result.stdout


def test_audit_verify_bundle_names_a_truncated_tail(filled: Settings, tmp_path: Path) -> None:
    """The auditor holds a checkpoint newer than the bundle's: the bundle's log was cut off before it."""
    out = tmp_path / "bundle.json"
    exported = cli(filled, "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    asyncio.run(append_records(filled, writers=2, each=5))
    (rows,) = sql(filled, [("SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1", {})])
    held = tmp_path / "held.txt"
    held.write_text(rows[0][0], encoding="utf-8")
    vkey = json.loads(out.read_text())["vkey"]
    result = cli(None, "audit", "verify", "--bundle", str(out), "--vkey", vkey, "--checkpoint", str(held))
    assert result.returncode == 1, result.stdout
    assert "truncated:" in result.stdout, result.stdout


def test_a_fork_against_a_held_checkpoint_is_named(filled: Settings, tmp_path: Path) -> None:
    """An operator holding the master key rewrites history: re-seals seq 2, re-signs every checkpoint. The
    stored log is then self-consistent; only the checkpoint the auditor kept exposes it."""
    (rows,) = sql(filled, [("SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1", {})])
    held = tmp_path / "held.txt"
    held.write_text(rows[0][0], encoding="utf-8")

    async def rewrite() -> None:
        engine = create_engine_for(filled)
        kek = KeyEncryptionKey(filled.require_master_key())
        try:
            async with engine.begin() as conn:
                identity = await load_identity(executor=conn, kek=kek)
                key = await current_data_key(executor=conn, kek=kek, kind=KeyKind.AUDIT_DATA)
                old = (
                    await conn.exec_driver_sql("SELECT leaf FROM audit_entries WHERE seq = 2")
                ).scalar_one()
                appender = AuditAppender.for_settings(filled)
                record = appender.build_record(
                    actor=SYSTEM_CLI, action=Action.KEY_ROTATED, resource="key:forged"
                )
                await appender.close()
                forged = AuditRecord(
                    **{**{f: getattr(record, f) for f in record.__dataclass_fields__}, "seq": 2}
                )
                text = seal_record(forged, origin=identity.origin, data_key=key).text()
                assert text.decode() != old
                await conn.execute(
                    __import__("sqlalchemy").text(
                        "UPDATE audit_entries SET leaf = :leaf, leaf_hash = :h WHERE seq = 2"
                    ),
                    {"leaf": text.decode(), "h": leaf_hash(text)},
                )
                leaves = [
                    r[0].encode()
                    for r in (await conn.exec_driver_sql("SELECT leaf FROM audit_entries ORDER BY seq")).all()
                ]
                acc = MerkleAccumulator()
                acc.extend_leaves(leaves)
                note = sign_checkpoint(Checkpoint(identity.origin, acc.size, acc.root()), identity.signer)
                await conn.exec_driver_sql("DELETE FROM audit_checkpoints")
                await conn.execute(
                    __import__("sqlalchemy").text(
                        "INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES (:s, :r, :n, :t)"
                    ),
                    {"s": acc.size, "r": acc.root(), "n": note, "t": forged.time},
                )
        finally:
            await engine.dispose()

    asyncio.run(rewrite())
    alone = cli(filled, "audit", "verify")
    assert alone.returncode == 0, alone.stdout  # self-consistent: why auditors keep checkpoints
    result = cli(filled, "audit", "verify", "--checkpoint", str(held))
    assert result.returncode == 1, result.stdout
    assert "forked:" in result.stdout


def test_rotation_and_shredding_keep_the_log_verifiable(filled: Settings, tmp_path: Path) -> None:
    rotated = cli(filled, "keys", "rotate", "audit-data")
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert new_key.startswith("audit-data:2:")
    asyncio.run(append_records(filled, writers=2, each=5))
    entries = read_all(filled)
    old_key = entries[0].key_id
    old_seqs = [e.seq for e in entries if e.key_id == old_key]
    assert old_seqs == list(range(40))  # the key.rotated record (seq 40) is the new epoch's first
    assert {e.key_id for e in entries if e.seq >= 40} == {new_key}

    async def shred() -> None:
        engine = create_engine_for(filled)
        try:
            async with session_factory(engine)() as session:
                assert await service.shred_epoch(session=session, key_id=old_key)
            ring = KeyRing(session_factory(engine), KeyEncryptionKey(filled.require_master_key()))
            assert await ring.data_key(old_key) is None
            assert (await ring.data_key(new_key)) is not None
        finally:
            await engine.dispose()

    asyncio.run(shred())
    entries = read_all(filled)
    assert [e.seq for e in entries if e.pruned] == old_seqs
    assert all(e.record is not None for e in entries if e.seq >= 40)
    (leftover,) = sql(
        filled,
        [("SELECT count(*) FROM audit_entries WHERE key_id = :k AND action IS NOT NULL", {"k": old_key})],
    )
    assert leftover[0][0] == 0  # the filter columns went with the payloads
    result = cli(filled, "audit", "verify")
    assert result.returncode == 0, result.stdout
    assert "pruned by policy: 40 entries" in result.stdout

    out = tmp_path / "bundle.json"
    exported = cli(filled, "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    bundle = json.loads(out.read_text())
    assert [e["record"] is None for e in bundle["entries"]][:41] == [True] * 40 + [False]
    report = verify_bundle(out.read_bytes(), trusted_vkey=bundle["vkey"])
    assert report.valid, report.summary()
    assert list(report.pruned) == old_seqs


def test_export_and_offline_verify(filled: Settings, tmp_path: Path) -> None:
    (rows,) = sql(filled, [("SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1", {})])
    held = tmp_path / "held.txt"
    held.write_text(rows[0][0], encoding="utf-8")
    asyncio.run(append_records(filled, writers=3, each=4))
    out = tmp_path / "b.json"
    done = cli(
        filled,
        "audit", "export", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00+00:00",
        "--out", str(out), "--since-checkpoint", str(held),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    vkey = json.loads(out.read_text())["vkey"]
    # offline: no configuration at all, in an empty directory
    ok = cli(
        None, "audit", "verify", "--bundle", str(out), "--vkey", vkey, "--checkpoint", str(held), cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("valid\nVALID: 52 entries (seq 0..51)")
    other = "odeus-compliance/other+00000000+AddnL+zfYoSJmx8JxEsSE7qtBg4aFFYscJEVGyzxdbLG"
    bad_key = cli(None, "audit", "verify", "--bundle", str(out), "--vkey", other, cwd=tmp_path)
    assert bad_key.returncode == 1
    data = json.loads(out.read_text())
    data["entries"][3]["record"]["purpose"] = "edited"
    out.write_text(json.dumps(data))
    edited = cli(None, "audit", "verify", "--bundle", str(out), "--vkey", vkey, cwd=tmp_path)
    assert edited.returncode == 1
    assert "modified: seq 3:" in edited.stdout
    out.write_text("{not json")
    broken = cli(None, "audit", "verify", "--bundle", str(out), cwd=tmp_path)
    assert broken.returncode == 1
    assert "malformed" in broken.stdout
    actions = [e.record["action"] for e in read_all(filled) if e.record]
    assert actions.count("audit.exported") == 1


def test_driver_insert_stores_what_the_orm_insert_stores(migrated_settings: Settings) -> None:
    """SQLite inserts leaves through the driver with the columns' bind processors applied by hand: the stored
    values (and their SQLite storage classes) are those of SQLAlchemy's own insert."""
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
            "actor_key_id": "system:cli",
            "resource_tag": "tag",
        }

    async def run() -> list[Any]:
        engine = create_engine_for(migrated_settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(AuditEntry), [row(0), row(1)])
                await insert_entries(conn, [row(2), row(3)])
                typeof = ", ".join(f"typeof({c.name}), {c.name}" for c in AuditEntry.__table__.columns)
                query = (
                    f"SELECT {typeof} FROM audit_entries ORDER BY seq"
                    if engine.dialect.name == "sqlite"
                    else "SELECT * FROM audit_entries ORDER BY seq"
                )
                return [tuple(r) for r in (await conn.execute(text(query))).all()]
        finally:
            await engine.dispose()

    stored = asyncio.run(run())
    skip = 2 if migrated_settings.database_url.startswith("sqlite") else 1  # (typeof(seq),) seq
    assert stored[0][skip:] == stored[2][skip:]
    assert stored[1][skip:] == stored[3][skip:]


def test_driver_head_update_stores_what_the_orm_update_stores(migrated_settings: Settings) -> None:
    when = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    head = Head(size=7, peaks=(bytes(32), bytes(range(32))), checkpoint_size=4, checkpoint_at=when)

    async def run() -> tuple[Any, Any, Head]:
        engine = create_engine_for(migrated_settings)
        query = text("SELECT size, peaks, checkpoint_size, checkpoint_at FROM audit_log_state WHERE id = 1")
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    update(AuditLogState)
                    .where(AuditLogState.id == 1)
                    .values(
                        size=7,
                        peaks=json.dumps([base64.b64encode(p).decode("ascii") for p in head.peaks]),
                        checkpoint_size=4,
                        checkpoint_at=when,
                    )
                )
                by_orm = tuple((await conn.execute(query)).one())
                await conn.execute(text("UPDATE audit_log_state SET size = 0, checkpoint_at = NULL"))
                await store_head(conn, head)
                by_driver = tuple((await conn.execute(query)).one())
                return by_orm, by_driver, await read_head(conn)
        finally:
            await engine.dispose()

    by_orm, by_driver, read_back = asyncio.run(run())
    assert by_orm == by_driver
    assert read_back == head


def test_driver_lock_reads_what_the_orm_lock_reads(ring_settings: Settings) -> None:
    """On SQLite the lock statement goes straight to the driver from a connection; a session still takes
    SQLAlchemy's path: both read the same head and key."""
    when = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)
    head = Head(size=7, peaks=(bytes(32), bytes(range(32))), checkpoint_size=4, checkpoint_at=when)

    async def run() -> tuple[Any, Any, Any]:
        engine = create_engine_for(ring_settings)
        try:
            async with engine.begin() as conn:
                before = await lock_head_with_key(conn, KeyKind.AUDIT_DATA.value)
                await store_head(conn, head)
            async with engine.begin() as conn:
                by_connection = await lock_head_with_key(conn, KeyKind.AUDIT_DATA.value)
            async with session_factory(engine)() as session, session.begin():
                by_session = await lock_head_with_key(session, KeyKind.AUDIT_DATA.value)
            return before, by_connection, by_session
        finally:
            await engine.dispose()

    before, by_connection, by_session = asyncio.run(run())
    assert before[0].checkpoint_at is None
    assert by_connection == by_session
    assert by_connection[0] == head
    assert by_connection[0].checkpoint_at.tzinfo is not None
    assert by_connection[1] is not None
    assert isinstance(by_connection[2], bytes)
