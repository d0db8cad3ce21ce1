"""bench/audit: durable appends per second (1 and 32 writers, SQLite and PostgreSQL), full verification of a
1,000,000-record log, inclusion-proof verifications per second. Each figure has a baseline measured in the
same run (see README.md). Results: printed, and written to bench/results/audit.json.

    .venv/bin/python bench/audit/run.py [--records 1000000] [--stored-records 1000000] [--skip-postgres]
                                        [--appends-only]

Profiling the SQLite append path: bench/audit/profile_appends.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import event, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.audit import init_ring  # noqa: E402
from tests.support.postgres import scratch_database  # noqa: E402

from odeus_compliance.audit import service  # noqa: E402
from odeus_compliance.audit.appender import SYSTEM_CLI, AuditAppender  # noqa: E402
from odeus_compliance.audit.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from odeus_compliance.audit.leaf import DataKey, associated_data, leaf_checker, open_leaf  # noqa: E402
from odeus_compliance.audit.log_verify import verify_log  # noqa: E402
from odeus_compliance.audit.merkle import (  # noqa: E402
    MerkleAccumulator,
    MerkleTree,
    inclusion_proof,
    leaf_hash,
    verify_inclusion,
)
from odeus_compliance.audit.note import Signer  # noqa: E402
from odeus_compliance.audit.records import Action, canonical_json  # noqa: E402
from odeus_compliance.audit.store import (  # noqa: E402
    SQLITE_INSERT_CHECKPOINT,
    SQLITE_INSERT_ENTRIES,
    sqlite_checkpoint_params,
    sqlite_entry_params,
)
from odeus_compliance.db.engine import create_engine_for, session_factory  # noqa: E402
from odeus_compliance.db.migrate import upgrade  # noqa: E402
from odeus_compliance.keys.ring import (  # noqa: E402
    KeyEncryptionKey,
    KeyKind,
    LogIdentity,
    current_data_key,
    load_identity,
)
from odeus_compliance.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "audit.json"


async def _appends(settings: Settings, writers: int, each: int) -> tuple[float, tuple[int, int] | None]:
    """Acked appends/s, and (SQLite) the batches prepared ahead of the lock / again under it."""
    async with AuditAppender.open(settings) as appender:
        await appender.append(actor=SYSTEM_CLI, action=Action.REPORT_VIEWED, resource="warm:up")

        async def writer(w: int) -> None:
            for i in range(each):
                await appender.append(
                    actor=SYSTEM_CLI,
                    action=Action.REPORT_VIEWED,
                    resource=f"report:{w}-{i}",
                    details={"count": i},
                )

        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        # getattr: the same script also measures the previous code (no such property) for a before/after
        channel = getattr(appender, "sqlite_channel", None)
        shape = None if channel is None else (channel.prepared_ahead, channel.prepared_under_lock)
        return writers * each / (time.perf_counter() - started), shape


def _full_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


async def _baseline(settings: Settings, writers: int, each: int) -> float:
    """Plain INSERTs of rows shaped like audit rows (a pre-made leaf text), one transaction each, same
    durability (SQLite synchronous=FULL), no crypto, no tree, no lock row."""
    engine = create_engine_for(settings, pool_size=writers, max_overflow=0)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _full_sync)
    leaf = "x" * 560
    now = dt.datetime.now(dt.UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE bench_plain (seq BIGINT PRIMARY KEY, leaf TEXT, h BLOB, t TEXT)")
                if engine.dialect.name == "sqlite"
                else text(
                    "CREATE TABLE bench_plain (seq BIGINT PRIMARY KEY, leaf TEXT, h BYTEA, t TIMESTAMPTZ)"
                )
            )
        counter = iter(range(10**9))

        async def writer() -> None:
            for _ in range(each):
                async with engine.begin() as conn:
                    await conn.execute(
                        text("INSERT INTO bench_plain (seq, leaf, h, t) VALUES (:s, :l, :h, :t)"),
                        {
                            "s": next(counter),
                            "l": leaf,
                            "h": os.urandom(32),
                            "t": now.isoformat() if engine.dialect.name == "sqlite" else now,
                        },
                    )

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        return writers * each / (time.perf_counter() - started)
    finally:
        await engine.dispose()


def appends(label: str) -> dict[str, float]:
    """Each measurement on a fresh database (a SQLite file in a temporary folder, or a scratch PG db)."""
    out: dict[str, float] = {}
    for writers, each in ((1, 1500), (32, 150)):
        with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
            url = stack.enter_context(scratch_database()) if label == "postgres" else None
            settings = Settings.for_tests(Path(tmp), database_url=url)
            asyncio.run(upgrade(settings))
            init_ring(settings)
            load = os.getloadavg()[0]
            rate, prepared = asyncio.run(_appends(settings, writers, each))
            shape = (
                ""
                if prepared is None
                else f" (batches prepared ahead/under the lock: {prepared[0]}/{prepared[1]})"
            )
            print(
                f"{label}: {writers:2d} writers: {rate:8.0f} acked appends/s{shape}; load {load:.2f}",
                flush=True,
            )
            try:
                base = asyncio.run(_baseline(settings, writers, each))
            except Exception as exc:  # noqa: BLE001 - e.g. SQLite's busy timeout on a loaded machine
                print(f"{label}: {writers:2d} writers: plain INSERT baseline failed: {exc!s:.80}", flush=True)
                base = float("nan")
        out[f"{label}_appends_{writers}w"] = rate
        out[f"{label}_baseline_{writers}w"] = base
        out[f"{label}_load_{writers}w"] = load
        print(
            f"{label}: {writers:2d} writers: plain INSERT baseline {base:8.0f}/s; ratio {rate / base:.2f}",
            flush=True,
        )
    return out


def make_log(
    n: int,
    *,
    origin: str = "odeus-compliance/bench",
    signer: Signer | None = None,
    key: DataKey | None = None,
) -> tuple[list[bytes], str, str, DataKey, list[str]]:
    """n leaf texts in canonical schema-1 form (sealed with AES-256-GCM like the appender, with a fast
    record template), and checkpoints every 1000 leaves."""
    signer = signer or Signer.generate(origin)
    key = key or DataKey("audit-data:1:bench", secrets.token_bytes(32))
    aead = AESGCM(key.key)
    time_text = "2026-12-01T10:00:00.000Z"
    template = {
        "action": "report.viewed",
        "actor_key_id": "0f9a0c1e-6d55-4b4e-9a63-5d0c2c4f9a11",
        "actor_name": "auditor",
        "client_address": "10.0.0.7",
        "details": {"count": 1},
        "outcome": "success",
        "purpose": None,
        "request_id": "5b1c1b5e-3f0e-4c8b-8d7e-0c1f5a2b9d33",
        "resource": "report:abc",
        "role": "auditor",
        "seq": 0,
        "time": time_text,
    }
    leaves: list[bytes] = []
    acc = MerkleAccumulator()
    notes: list[str] = []
    for seq in range(n):
        template["seq"] = seq
        plaintext = canonical_json(template)
        salt = os.urandom(32)
        nonce = os.urandom(12)
        ad = associated_data(origin=origin, seq=seq, key_id=key.key_id, time=time_text)
        ct = aead.encrypt(nonce, salt + plaintext, ad)
        commitment = hashlib.sha256(salt + plaintext).digest()
        leaf = canonical_json(
            {
                "ciphertext": base64.b64encode(ct).decode(),
                "commitment": base64.b64encode(commitment).decode(),
                "key_id": key.key_id,
                "nonce": base64.b64encode(nonce).decode(),
                "schema": 1,
                "seq": seq,
                "time": time_text,
            }
        )
        leaves.append(leaf)
        acc.append(leaf_hash(leaf))
        if acc.size % 1000 == 0 or acc.size == n:
            notes.append(sign_checkpoint(Checkpoint(origin, acc.size, acc.root()), signer))
    return leaves, origin, signer.verifier.vkey, key, notes


def verification(n: int) -> dict[str, float]:
    started = time.perf_counter()
    leaves, origin, vkey, key, notes = make_log(n)
    print(
        f"made a {n:,}-leaf log in {time.perf_counter() - started:.1f} s ({len(notes)} checkpoints)",
        flush=True,
    )
    started = time.perf_counter()
    for leaf in leaves:
        hashlib.sha256(b"\x00" + leaf).digest()
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    report = verify_log(leaves, origin=origin, vkey=vkey, checkpoints=notes)
    full = time.perf_counter() - started
    assert report.valid, report.summary()
    print(
        f"verify_log over {n:,} leaves (form, order, tree, {len(notes)} signed checkpoints): {full:.2f} s; "
        f"baseline (one SHA-256 per leaf, nothing else) {baseline:.2f} s; ratio {full / baseline:.2f}",
        flush=True,
    )
    sample = min(n, 100_000)
    started = time.perf_counter()
    report = verify_log(
        leaves[:sample],
        origin=origin,
        vkey=vkey,
        checkpoints=[],
        opener=lambda leaf: open_leaf(leaf, origin=origin, data_key=key),
    )
    opened = time.perf_counter() - started
    assert report.disclosed == sample, report.summary()
    print(
        f"with every record opened by open_leaf (decrypted, record parsed and validated): {sample:,} leaves "
        f"in {opened:.2f} s ({sample / opened:,.0f} leaves/s; 1M extrapolated {opened * n / sample:.1f} s)",
        flush=True,
    )
    started = time.perf_counter()
    report = verify_log(
        leaves,
        origin=origin,
        vkey=vkey,
        checkpoints=notes,
        checker=leaf_checker({key.key_id: key}, origin=origin),
    )
    checked = time.perf_counter() - started
    assert report.valid, report.summary()
    assert report.disclosed == n
    print(
        f"verify_log with every leaf authenticated by leaf_checker (what 'audit verify' runs): {n:,} leaves "
        f"in {checked:.2f} s ({n / checked:,.0f} leaves/s)",
        flush=True,
    )
    return {
        "verify_records": n,
        "verify_seconds": full,
        "verify_baseline_seconds": baseline,
        "decrypt_leaves_per_s": sample / opened,
        "verify_checked_seconds": checked,
    }


def stored_verification(n: int) -> dict[str, float]:
    """``verify_stored_log`` end to end (reads from SQLite, checks every leaf under the ring's keys) over a
    log of n leaves written straight into a fresh database (sealed under the ring's own key and identity)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.for_tests(Path(tmp))
        asyncio.run(upgrade(settings))
        init_ring(settings)
        kek = KeyEncryptionKey(settings.require_master_key())

        async def ring() -> tuple[LogIdentity, DataKey, Any]:
            engine = create_engine_for(settings)
            try:
                async with engine.connect() as conn:
                    identity = await load_identity(executor=conn, kek=kek)
                    key = await current_data_key(executor=conn, kek=kek, kind=KeyKind.AUDIT_DATA)
                    return identity, key, engine.dialect
            finally:
                await engine.dispose()

        identity, key, dialect = asyncio.run(ring())
        started = time.perf_counter()
        leaves, _origin, _vkey, _key, notes = make_log(
            n, origin=identity.origin, signer=identity.signer, key=key
        )
        when = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
        rows = [
            {
                "seq": seq,
                "leaf": leaf.decode(),
                "leaf_hash": leaf_hash(leaf),
                "time": when,
                "key_id": key.key_id,
                "action": "report.viewed",
                "outcome": "success",
                "actor_key_id": "bench",
                "resource_tag": "tag",
            }
            for seq, leaf in enumerate(leaves)
        ]
        database = settings.database_url.split("///", 1)[1]
        conn = sqlite3.connect(database)
        try:
            with conn:
                conn.executemany(SQLITE_INSERT_ENTRIES, sqlite_entry_params(dialect, rows))
                for note in notes:
                    _origin_line, size, root = note.split("\n")[:3]
                    conn.execute(
                        SQLITE_INSERT_CHECKPOINT,
                        sqlite_checkpoint_params(
                            dialect, size=int(size), root=base64.b64decode(root), note=note, at=when
                        ),
                    )
        finally:
            conn.close()
        print(f"stored a {n:,}-leaf log in {time.perf_counter() - started:.1f} s", flush=True)

        async def verify(with_keys: bool) -> float:
            engine = create_engine_for(settings)
            try:
                async with session_factory(engine)() as session:
                    started = time.perf_counter()
                    report = await service.verify_stored_log(
                        session=session, kek=kek if with_keys else None, identity=identity
                    )
                    elapsed = time.perf_counter() - started
                    assert report.valid, report.summary()
                    assert report.disclosed == (n if with_keys else 0)
                    return elapsed
            finally:
                await engine.dispose()

        keyless = asyncio.run(verify(with_keys=False))
        keyed = asyncio.run(verify(with_keys=True))
    print(
        f"verify_stored_log (SQLite, {n:,} leaves, reads included): without keys {keyless:.2f} s; "
        f"with every leaf authenticated (what 'audit verify' runs) {keyed:.2f} s",
        flush=True,
    )
    return {"stored_records": n, "stored_verify_keyless_seconds": keyless, "stored_verify_seconds": keyed}


def proofs(n: int, count: int = 20_000) -> dict[str, float]:
    hashes = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    tree = MerkleTree(hashes)
    root = tree.root()
    rng = random.Random(1)
    cases = []
    for _ in range(count):
        i = rng.randrange(n)
        cases.append((i, hashes[i], inclusion_proof(i, n, tree.subtree_hash)))
    started = time.perf_counter()
    ok = all(verify_inclusion(i, n, h, p, root) for i, h, p in cases)
    elapsed = time.perf_counter() - started
    assert ok
    hash_calls = sum(len(p) for _, _, p in cases)
    node = b"\x01" + bytes(64)
    started = time.perf_counter()
    for _ in range(hash_calls):
        hashlib.sha256(node).digest()
    baseline = time.perf_counter() - started
    rate = count / elapsed
    print(
        f"inclusion proofs in a {n:,}-leaf tree: {rate:,.0f} verifications/s; "
        f"baseline (the same number of bare "
        f"SHA-256 calls) {count / baseline:,.0f}/s; ratio {elapsed / baseline:.2f} of the baseline's time",
        flush=True,
    )
    return {"proofs_per_s": rate, "proofs_baseline_per_s": count / baseline}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--stored-records", type=int, default=1_000_000, help="size of the stored log 'audit verify' checks"
    )
    parser.add_argument(
        "--appends-only", action="store_true", help="only the append measurements (quick; no verification)"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load": os.getloadavg(),
    }
    results |= appends("sqlite")
    if not args.skip_postgres:
        results |= appends("postgres")
    if not args.appends_only:
        results |= proofs(args.records)
        results |= verification(args.records)
        results |= stored_verification(args.stored_records)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()
