"""The artifact store on SQLite (files) and PostgreSQL (chunk rows): round trip, tampering, shredding."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.models import ReportArtifactChunk
from odeus_compliance.keys.ring import KeyEncryptionKey, KeyKind, KeyRing
from odeus_compliance.reports.jobs import new_report_id
from odeus_compliance.reports.store import (
    CHUNK_BYTES,
    ArtifactCorrupt,
    ArtifactMissing,
    ArtifactShredded,
    ArtifactStore,
    FileChunks,
)
from odeus_compliance.settings import Settings


@pytest.fixture
async def store(migrated_settings: Settings) -> AsyncIterator[ArtifactStore]:
    engine = create_engine_for(migrated_settings)
    sessions = session_factory(engine)
    ring = KeyRing(sessions, KeyEncryptionKey(migrated_settings.require_master_key()))
    await ring.ensure()
    try:
        yield ArtifactStore.for_database(
            ring=ring, sessions=sessions, data_dir=migrated_settings.data_dir, dialect=engine.dialect.name
        )
    finally:
        await engine.dispose()


async def _stored_bytes(store: ArtifactStore, report_id: str, name: str) -> bytes:
    """Everything of the artifact as stored (ciphertext), file or rows."""
    backend = store.backend
    if isinstance(backend, FileChunks):
        return backend.path(report_id, name).read_bytes()
    async with backend.sessions() as session:  # type: ignore[attr-defined]
        query = select(ReportArtifactChunk.data).order_by(ReportArtifactChunk.seq)
        rows = (await session.scalars(query)).all()
    return b"".join(rows)


async def test_round_trip_of_small_empty_and_multi_chunk_artifacts(store: ArtifactStore) -> None:
    report_id = new_report_id()
    big = secrets.token_bytes(2 * CHUNK_BYTES + 123)
    marker = b"pseudonymised,dataset\nu1_abc,42\n"
    stored = await store.put(report_id, "data.csv", marker)
    await store.put(report_id, "report.pdf", big)
    await store.put(report_id, "figures.json", b"")

    assert stored.size == len(marker)
    assert stored.key_id.startswith("report-data:1:")
    assert await store.read(report_id, "data.csv") == marker
    assert await store.read(report_id, "report.pdf") == big
    chunks = [c async for c in store.open(report_id, "report.pdf")]
    assert [len(c) for c in chunks] == [CHUNK_BYTES, CHUNK_BYTES, 123]
    assert await store.read(report_id, "figures.json") == b""
    assert await store.exists(report_id, "report.pdf")
    assert marker not in await _stored_bytes(store, report_id, "data.csv")  # encrypted at rest

    await store.put(report_id, "data.csv", b"replaced")
    assert await store.read(report_id, "data.csv") == b"replaced"


async def test_missing_and_malformed_names_are_refused(store: ArtifactStore) -> None:
    report_id = new_report_id()
    assert not await store.exists(report_id, "report.pdf")
    with pytest.raises(ArtifactMissing):
        await store.read(report_id, "report.pdf")
    with pytest.raises(ArtifactMissing):
        await store.read("../../etc", "report.pdf")
    with pytest.raises(ArtifactMissing):
        await store.put(report_id, "../evil.pdf", b"x")


async def test_a_flipped_byte_or_a_dropped_chunk_is_refused(store: ArtifactStore) -> None:
    report_id = new_report_id()
    data = secrets.token_bytes(CHUNK_BYTES + 10)
    await store.put(report_id, "report.pdf", data)
    backend = store.backend
    if isinstance(backend, FileChunks):
        path = backend.path(report_id, "report.pdf")
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[len(original) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))
        with pytest.raises(ArtifactCorrupt):
            await store.read(report_id, "report.pdf")
        header = original.index(b"\n") + 1
        path.write_bytes(original[: header + 4 + 12 + CHUNK_BYTES + 16])  # header + only the first chunk
        with pytest.raises(ArtifactCorrupt):
            await store.read(report_id, "report.pdf")
    else:
        async with backend.sessions() as session:  # type: ignore[attr-defined]
            table = ReportArtifactChunk
            first = select(table.data).where(table.report_id == report_id, table.seq == 0)
            blob = await session.scalar(first)
            assert blob is not None
            tampered = bytearray(blob)
            tampered[100] ^= 0x01
            await session.execute(
                update(table).where(table.report_id == report_id, table.seq == 0).values(data=bytes(tampered))
            )
            await session.commit()
        with pytest.raises(ArtifactCorrupt):
            await store.read(report_id, "report.pdf")
        await store.put(report_id, "report.pdf", data)
        async with backend.sessions() as session:  # type: ignore[attr-defined]
            await session.execute(
                ReportArtifactChunk.__table__.delete().where(ReportArtifactChunk.seq == 1)  # type: ignore[attr-defined]
            )
            await session.commit()
        with pytest.raises(ArtifactCorrupt):
            await store.read(report_id, "report.pdf")


async def test_an_artifact_moved_to_another_report_does_not_open(store: ArtifactStore) -> None:
    first, second = new_report_id(), new_report_id()
    await store.put(first, "report.pdf", b"first")
    await store.put(second, "report.pdf", b"second")
    backend = store.backend
    if isinstance(backend, FileChunks):
        backend.path(second, "report.pdf").write_bytes(backend.path(first, "report.pdf").read_bytes())
    else:
        async with backend.sessions() as session:  # type: ignore[attr-defined]
            table = ReportArtifactChunk
            blob = await session.scalar(select(table.data).where(table.report_id == first))
            await session.execute(update(table).where(table.report_id == second).values(data=blob))
            await session.commit()
    with pytest.raises(ArtifactCorrupt):
        await store.read(second, "report.pdf")


async def test_destroying_the_epoch_shreds_its_artifacts(store: ArtifactStore) -> None:
    report_id = new_report_id()
    old = await store.put(report_id, "report.pdf", b"old epoch")
    new_key = await store.ring.rotate(KeyKind.REPORT_DATA)
    later = new_report_id()
    await store.put(later, "report.pdf", b"new epoch")
    assert await store.ring.destroy(old.key_id)

    with pytest.raises(ArtifactShredded):
        await store.read(report_id, "report.pdf")
    assert await store.read(later, "report.pdf") == b"new epoch"
    assert new_key.startswith("report-data:2:")


def test_a_file_write_killed_midway_leaves_no_artifact(tmp_path: Path) -> None:
    """A crash while writing leaves only a hidden partial file, never the artifact at its path."""
    backend = FileChunks(tmp_path)
    report_id = new_report_id()

    class Boom(Exception):
        pass

    class Exploding(list[bytes]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield b"first chunk"
            raise Boom

    with pytest.raises(Boom):
        asyncio.run(backend.write(report_id, "report.pdf", "report-data:1:00", Exploding()))
    assert not backend.path(report_id, "report.pdf").exists()
    assert list((tmp_path / report_id).iterdir()) == []
