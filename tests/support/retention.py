"""Helpers for retention tests: a database with the key ring, an appender, the artifact store and report
jobs, and reports made with real encrypted artifacts (no rendering: retention never reads a PDF)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from odeus_compliance.audit.appender import SYSTEM_CLI, AuditAppender
from odeus_compliance.audit.records import Action
from odeus_compliance.audit.service import verify_stored_log
from odeus_compliance.core.leases import lease_owner_id
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.models import KeyEpoch
from odeus_compliance.keys.ring import (
    KeyEncryptionKey,
    KeyKind,
    KeyRing,
    LogIdentity,
    ensure_key_ring,
    load_identity,
    rotate_key,
)
from odeus_compliance.reports.jobs import ReportJobs, ReportPeriod
from odeus_compliance.reports.store import ArtifactStore
from odeus_compliance.retention.purge import Purge
from odeus_compliance.settings import Settings

__all__ = ["FAR", "World", "run", "world"]

T = TypeVar("T")
FAR = dt.timedelta(days=11 * 366)


@dataclass
class World:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    appender: AuditAppender
    store: ArtifactStore
    jobs: ReportJobs
    kek: KeyEncryptionKey

    async def report(self, month: int, *, dataset: bool = True) -> str:
        """A succeeded report with real encrypted artifacts and its audit record."""
        record = await self.jobs.request(
            period=ReportPeriod.month(2026, month, "Europe/Berlin"),
            policy="default",
            purpose="retention test",
            requested_by="cli",
        )
        owner = lease_owner_id()
        assert await self.jobs.claim(owner, report_id=record.id) is not None
        stored = await self.store.put(record.id, "report.pdf", f"%PDF-1.7 {record.id}".encode())
        if dataset:
            await self.store.put(record.id, "data.csv", b"person,count\nu1_abc,3\n")
        await self.store.put(record.id, "figures.json", b'{"users": 7}')
        await self.appender.append(
            actor=SYSTEM_CLI,
            action=Action.REPORT_GENERATED,
            resource=f"report:{record.id}",
            purpose="retention test",
            details={"report_id": record.id},
        )
        await self.jobs.succeed(
            record.id, owner, pdf_sha256=stored.sha256, has_dataset=dataset, artifact_key_id=stored.key_id
        )
        return record.id

    async def rotate(self, kind: KeyKind) -> str:
        async with self.sessions() as session:
            return await rotate_key(session=session, kek=self.kek, kind=kind)

    async def identity(self) -> LogIdentity:
        async with self.sessions() as session:
            return await load_identity(executor=session, kek=self.kek)

    async def scalar(self, query: Any) -> Any:
        async with self.sessions() as session:
            return (await session.execute(query)).scalar()

    async def destroyed(self, key_id: str) -> bool:
        async with self.sessions() as session:
            row = await session.get(KeyEpoch, key_id, populate_existing=True)
            assert row is not None
            return row.wrapped is None and row.destroyed_at is not None

    async def verify(self) -> tuple[bool, int, tuple[str, ...]]:
        async with self.sessions() as session:
            report = await verify_stored_log(session=session, kek=self.kek, identity=await self.identity())
        return report.valid, len(report.pruned), tuple(str(p) for p in report.problems)

    def purge(self, hook: Callable[[str, object], None] | None = None) -> Purge:
        return Purge(settings=self.settings, engine=self.engine, appender=self.appender, crash_hook=hook)


@asynccontextmanager
async def world(settings: Settings) -> AsyncIterator[World]:
    engine = create_engine_for(settings)
    sessions = session_factory(engine)
    kek = KeyEncryptionKey(settings.require_master_key())
    async with sessions() as session:
        await ensure_key_ring(session=session, kek=kek)
    try:
        async with AuditAppender.open(settings) as appender:
            store = ArtifactStore.for_database(
                ring=KeyRing(sessions, kek),
                sessions=sessions,
                data_dir=settings.data_dir,
                dialect=engine.dialect.name,
            )
            yield World(settings, engine, sessions, appender, store, ReportJobs(sessions), kek)
    finally:
        await engine.dispose()


def run(body: Callable[[World], Awaitable[T]], settings: Settings) -> T:
    async def go() -> T:
        async with world(settings) as w:
            return await body(w)

    return asyncio.run(go())
