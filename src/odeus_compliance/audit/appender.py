"""The append path: group commit of audit records into the log, with checkpoints on a schedule.

One :class:`AuditAppender` per process (the app's lifespan owns it; CLI commands open one briefly). Callers
``await appender.append(...)``; the call returns only after the transaction holding the record has
committed, so an acknowledged record is durable.

Group commit: a single writer task takes everything queued (up to ``max_batch`` records) and writes it in
one transaction: take the append lock (:func:`~odeus_compliance.audit.store.lock_head`), read the size and
the compact range, give each record the next sequence number, seal it (AES-256-GCM under the current
audit-data key, see :mod:`~odeus_compliance.audit.leaf`), append its leaf hash, insert all rows, sign any
checkpoint that fell due, store the new head, commit (one fsync), then wake every caller of the batch. While
one batch commits the next one queues up, so 32 concurrent writers cost about one fsync per batch, not one
per record. The batch itself is computed by :func:`~odeus_compliance.audit.batch.prepare_batch`.

Two writers: on PostgreSQL (and an in-memory SQLite database) the batch is prepared under the lock and
written through the engine. On a SQLite file the appender has its own connection in its own thread
(:mod:`~odeus_compliance.audit.sqlite_channel`): each batch is prepared ahead of the lock against the head
the previous batch leaves, and committed in one trip to that thread, which checks the head under the lock
and prepares the batch again there if it was not the expected one; up to ``pipeline_depth`` batches are in
flight, acknowledged in order.

Durability: on PostgreSQL a commit is durable (``synchronous_commit`` on, the server default). On SQLite the
appender's connections run ``PRAGMA synchronous=FULL``: in WAL mode that syncs the WAL on every commit, so
an acknowledged record survives power loss too, not only a crashed process (the rest of the app keeps
``NORMAL``, which survives a crash of the process but may lose the last commits on power loss).

Checkpoints: at least every ``every_records`` records (signed at exactly that size, inside the batch) or
``every_seconds`` while the log grows (checked at each batch and by a ticker task), and on demand with
:meth:`AuditAppender.checkpoint`. Only the lock holder signs, from the size and peaks it read under the
lock, and ``audit_checkpoints`` has one row per size: the log never signs two inconsistent checkpoints.

If the transaction fails, every caller of the batch gets :class:`AuditWriteError` and nothing of the batch
is stored (sequence numbers are taken under the lock, so a failed batch leaves no gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from odeus_compliance.audit.batch import HeadRead, PreparedBatch, prepare_batch
from odeus_compliance.audit.checkpoint import Checkpoint, CheckpointSchedule, sign_checkpoint
from odeus_compliance.audit.leaf import DataKey
from odeus_compliance.audit.merkle import MerkleAccumulator
from odeus_compliance.audit.records import Action, ActorRole, AuditRecord, DetailValue, Outcome
from odeus_compliance.audit.sqlite_channel import Ahead, SqliteAppendChannel
from odeus_compliance.audit.store import (
    insert_checkpoint,
    insert_entries,
    latest_checkpoint,
    lock_head,
    lock_head_with_key,
    store_head,
)
from odeus_compliance.core.service_metrics import ServiceMetrics
from odeus_compliance.db.engine import create_engine_for
from odeus_compliance.db.models import utcnow
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.keys.ring import (
    KeyEncryptionKey,
    KeyKind,
    KeyRingError,
    LogIdentity,
    load_identity,
)
from odeus_compliance.logging_setup import log_event
from odeus_compliance.settings import Settings

__all__ = ["ANONYMOUS", "SYSTEM_CLI", "SYSTEM_SERVICE", "Actor", "AuditAppender", "AuditWriteError"]

_log = logging.getLogger(__name__)
MAX_BATCH: Final = 1024
PIPELINE_DEPTH: Final = 2
"""SQLite: batches in flight at once (one committing, the next one sealed meanwhile and queued behind it)."""


class AuditWriteError(OdeusComplianceError):
    """The audit record could not be written; whatever it was to record must not happen."""


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an API key (id and name at event time, role), a system job, or anonymous."""

    key_id: str | None
    name: str | None
    role: ActorRole


ANONYMOUS: Final = Actor(None, None, ActorRole.ANONYMOUS)
SYSTEM_CLI: Final = Actor("system:cli", "odeus-compliance command line", ActorRole.SYSTEM)
"""The actor of records the command line writes (an operator at the console)."""
SYSTEM_SERVICE: Final = Actor("system:service", "odeus-compliance service", ActorRole.SYSTEM)
"""The actor of records the service writes on its own (start-up)."""


@dataclasses.dataclass(slots=True)
class _Pending:
    record: AuditRecord
    resource_tag: str
    future: asyncio.Future[AuditRecord]


def _sqlite_full_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def _sqlite_file(engine: AsyncEngine) -> str | None:
    """The database file of a SQLite engine (the append channel opens it), else ``None``: PostgreSQL, and
    in-memory or URI-named SQLite databases (another connection would not see the same database)."""
    database = engine.url.database
    if (
        engine.dialect.name != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        return None
    return database


class AuditAppender:
    """Appends records with group commit; see the module docstring. Use :meth:`open` or start/close."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        kek: KeyEncryptionKey,
        schedule: CheckpointSchedule,
        max_batch: int = MAX_BATCH,
        pipeline_depth: int = PIPELINE_DEPTH,
        owns_engine: bool = False,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._kek = kek
        self._schedule = schedule
        self._max_batch = max_batch
        self._pipeline_depth = pipeline_depth
        self._owns_engine = owns_engine
        self._queue: asyncio.Queue[_Pending] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self._identity: LogIdentity | None = None
        self._keys: dict[str, DataKey] = {}
        self._closed = False
        self._channel: SqliteAppendChannel | None = None
        self._expect: HeadRead | None = None
        """SQLite channel: the head the next batch appends to if every batch before it commits."""
        self._submitted = 0

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        *,
        max_batch: int = MAX_BATCH,
        pipeline_depth: int = PIPELINE_DEPTH,
        metrics: ServiceMetrics | None = None,
    ) -> AuditAppender:
        """An appender with its own engine (SQLite: ``synchronous=FULL``) for ``settings`` (``metrics``: the
        app's, timing each append)."""
        engine = create_engine_for(settings)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_full_sync)
        schedule = CheckpointSchedule(settings.audit_checkpoint_records, settings.audit_checkpoint_seconds)
        kek = KeyEncryptionKey(settings.require_master_key())
        return cls(
            engine=engine,
            kek=kek,
            schedule=schedule,
            max_batch=max_batch,
            pipeline_depth=pipeline_depth,
            owns_engine=True,
            metrics=metrics,
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, settings: Settings, *, max_batch: int = MAX_BATCH, pipeline_depth: int = PIPELINE_DEPTH
    ) -> AsyncIterator[AuditAppender]:
        """Start an appender for ``settings`` and close it (draining its queue) afterwards."""
        appender = cls.for_settings(settings, max_batch=max_batch, pipeline_depth=pipeline_depth)
        await appender.start()
        try:
            yield appender
        finally:
            await appender.close()

    @property
    def kek(self) -> KeyEncryptionKey:
        """The key-encryption key (for readers that must open records)."""
        return self._kek

    @property
    def sqlite_channel(self) -> SqliteAppendChannel | None:
        """The SQLite append channel once started on a SQLite file, else ``None``."""
        return self._channel

    async def start(self) -> None:
        """Start the writer and the checkpoint ticker in the running event loop."""
        self._queue = asyncio.Queue()
        self._lock = asyncio.Lock()
        database = _sqlite_file(self._engine)
        if database is not None:
            channel = SqliteAppendChannel(database, self._engine.dialect)
            await channel.open()
            self._channel = channel
            self._writer = asyncio.create_task(self._run_channel(channel), name="audit-appender")
        else:
            self._writer = asyncio.create_task(self._run(), name="audit-appender")
        self._ticker = asyncio.create_task(self._tick(), name="audit-checkpoint-ticker")

    async def close(self) -> None:
        """Refuse new records, write what is queued, stop the tasks, dispose of an own engine."""
        self._closed = True
        if self._queue is not None and self._writer is not None and not self._writer.done():
            await self._queue.join()
        for task in (self._writer, self._ticker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._channel is not None:
            await self._channel.close()
        if self._owns_engine:
            await self._engine.dispose()

    async def record_created_keys(self, created: tuple[str, ...], actor: Actor) -> None:
        """Record ``key.created`` for each key :func:`~odeus_compliance.keys.ring.ensure_key_ring` made."""
        for key_id in created:
            if key_id != "installation":
                await self.append(
                    actor=actor,
                    action=Action.KEY_CREATED,
                    resource=f"key:{key_id}",
                    details={"key_id": key_id, "key_kind": key_id.split(":", 1)[0]},
                )

    async def identity(self) -> LogIdentity:
        """The log's origin and signer (loaded once; raises ``KeyRingError`` before ``keys init``)."""
        if self._identity is None:
            async with self._engine.connect() as conn:
                self._identity = await load_identity(executor=conn, kek=self._kek)
        return self._identity

    def build_record(
        self,
        *,
        actor: Actor,
        action: Action,
        resource: str,
        purpose: str | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        request_id: str | None = None,
        client_address: str | None = None,
        details: Mapping[str, DetailValue] | None = None,
    ) -> AuditRecord:
        """A validated record (seq 0 until appended); raises ``RecordError`` on a broken rule."""
        return AuditRecord(
            seq=0,
            time=utcnow(),
            actor_key_id=actor.key_id,
            actor_name=actor.name,
            role=actor.role,
            action=action,
            resource=resource,
            purpose=purpose,
            outcome=outcome,
            request_id=request_id,
            client_address=client_address,
            details=dict(details or {}),
        )

    async def append(
        self,
        *,
        actor: Actor,
        action: Action,
        resource: str,
        purpose: str | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        request_id: str | None = None,
        client_address: str | None = None,
        details: Mapping[str, DetailValue] | None = None,
    ) -> AuditRecord:
        """Validate a record (fields of :meth:`build_record`), append it, return it with its seq once durable.

        Raises ``RecordError`` for an invalid record (nothing is written) and :class:`AuditWriteError` when
        the log cannot be written.
        """
        record = self.build_record(
            actor=actor,
            action=action,
            resource=resource,
            purpose=purpose,
            outcome=outcome,
            request_id=request_id,
            client_address=client_address,
            details=details,
        )
        return await self.append_record(record)

    async def append_record(self, record: AuditRecord) -> AuditRecord:
        """Append a validated record (its seq is replaced); see :meth:`append`."""
        if self._closed or self._queue is None:
            raise AuditWriteError("the audit log is closed")
        future: asyncio.Future[AuditRecord] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(record, self._kek.filter_tag(record.resource), future))
        if self._metrics is None:
            return await future
        started = time.monotonic()
        try:
            appended = await future
        except BaseException:
            self._metrics.audit_append(time.monotonic() - started, ok=False)
            raise
        self._metrics.audit_append(time.monotonic() - started, ok=True)
        return appended

    async def _run(self) -> None:
        """The writer on PostgreSQL (and in-memory SQLite): one batch at a time through the engine."""
        while True:
            batch = await self._next_batch()
            try:
                records = await self._write(batch)
            except Exception as exc:  # noqa: BLE001 - every failure fails the batch's callers, closed
                self._fail(batch, exc)
            else:
                for p, record in zip(batch, records, strict=True):
                    if not p.future.done():
                        p.future.set_result(record)
            finally:
                self._done(batch)

    async def _next_batch(self) -> list[_Pending]:
        assert self._queue is not None
        queue = self._queue
        batch = [await queue.get()]
        # let every caller that is ready to run enqueue its record first (the callers of the batch just
        # committed wake up together): without this yield, batches shrink to one or two records
        await asyncio.sleep(0)
        while len(batch) < self._max_batch and not queue.empty():
            batch.append(queue.get_nowait())
        return batch

    @staticmethod
    def _fail(batch: list[_Pending], exc: BaseException) -> None:
        log_event(_log, logging.ERROR, "audit_append_failed", error_type=type(exc).__name__, count=len(batch))
        for p in batch:
            if not p.future.done():
                p.future.set_exception(AuditWriteError("the audit record could not be written"))

    def _done(self, batch: list[_Pending]) -> None:
        assert self._queue is not None
        for _ in batch:
            self._queue.task_done()

    def _prepare(self, base: HeadRead, batch: list[_Pending], identity: LogIdentity) -> PreparedBatch:
        return prepare_batch(
            base=base,
            records=[p.record for p in batch],
            resource_tags=[p.resource_tag for p in batch],
            identity=identity,
            data_key=self._data_key,
            schedule=self._schedule,
            now=utcnow(),
        )

    async def _write(self, batch: list[_Pending]) -> list[AuditRecord]:
        """Write the batch in one transaction and acknowledge its callers as soon as it has committed:
        before the connection goes back to the pool (a reset round trip), so that the callers' next
        records are built while that happens."""
        assert self._lock is not None
        identity = await self.identity()
        async with self._lock, self._engine.connect() as conn:
            records = await self._commit_batch(conn, identity, batch)
            for p, record in zip(batch, records, strict=True):
                if not p.future.done():
                    p.future.set_result(record)
        return records

    async def _commit_batch(
        self, conn: AsyncConnection, identity: LogIdentity, batch: list[_Pending]
    ) -> list[AuditRecord]:
        """Lock, prepare from the locked head, insert and store the head in one transaction; returns once it
        has committed."""
        async with conn.begin():
            head, key_id, wrapped = await lock_head_with_key(conn, KeyKind.AUDIT_DATA.value)
            prepared = self._prepare(HeadRead(head, key_id, wrapped), batch, identity)
            await insert_entries(conn, prepared.rows)
            for cp in prepared.checkpoints:
                await insert_checkpoint(conn, size=cp.size, root=cp.root, note=cp.note, at=cp.at)
            await store_head(conn, prepared.head)
        return prepared.records

    async def _run_channel(self, channel: SqliteAppendChannel) -> None:
        """The writer on a SQLite file: batches are prepared ahead of the lock and committed through the
        channel, up to ``pipeline_depth`` at a time (the next one is sealed while the previous one commits);
        :meth:`_acknowledge` answers their callers in order."""
        slots = asyncio.Semaphore(self._pipeline_depth)
        in_flight: asyncio.Queue[tuple[int, list[_Pending], asyncio.Future[PreparedBatch]]] = asyncio.Queue()
        acknowledger = asyncio.create_task(self._acknowledge(in_flight, slots), name="audit-acknowledger")
        try:
            while True:
                await slots.acquire()
                batch = await self._next_batch()
                try:
                    identity = await self.identity()
                except Exception as exc:  # noqa: BLE001 - e.g. no key ring yet: this batch fails, closed
                    self._fail(batch, exc)
                    slots.release()
                    self._done(batch)
                    continue
                ahead: Ahead | None = None
                if self._expect is not None:
                    try:
                        prepared = self._prepare(self._expect, batch, identity)
                        ahead = Ahead(prepared, channel.expected(self._expect), channel.statements(prepared))
                    except Exception:  # noqa: BLE001 - prepared again under the lock, which reports it
                        ahead = None
                self._expect = None if ahead is None else ahead.prepared.after()
                self._submitted += 1
                again = functools.partial(self._prepare, batch=batch, identity=identity)
                in_flight.put_nowait((self._submitted, batch, channel.submit(ahead, again)))
        finally:
            acknowledger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acknowledger

    async def _acknowledge(
        self,
        in_flight: asyncio.Queue[tuple[int, list[_Pending], asyncio.Future[PreparedBatch]]],
        slots: asyncio.Semaphore,
    ) -> None:
        while True:
            number, batch, committed = await in_flight.get()
            try:
                prepared = await committed
            except Exception as exc:  # noqa: BLE001 - every failure fails the batch's callers, closed
                self._fail(batch, exc)
                if number == self._submitted:
                    self._expect = None  # read the head under the lock next time
            else:
                for p, record in zip(batch, prepared.records, strict=True):
                    if not p.future.done():
                        p.future.set_result(record)
                if number == self._submitted:
                    self._expect = prepared.after()
            finally:
                slots.release()
                self._done(batch)

    def _data_key(self, key_id: str | None, wrapped: bytes | None) -> DataKey:
        """The current audit-data key as read under the lock; unwrapped once per key id."""
        if key_id is None or wrapped is None:
            raise KeyRingError("no live audit-data key: run 'odeus-compliance keys init'")
        key = self._keys.get(key_id)
        if key is None:
            material = self._kek.unwrap(kind=KeyKind.AUDIT_DATA.value, key_id=key_id, wrapped=wrapped)
            key = self._keys[key_id] = DataKey(key_id, material)
        return key

    async def checkpoint(self, *, only_if_due: bool = False) -> tuple[int, str] | None:
        """Sign a checkpoint of the current size if the log grew since the last one (or none exists yet);
        return the newest ``(size, note)``. ``only_if_due``: only when the schedule says so (the ticker)."""
        assert self._lock is not None
        identity = await self.identity()
        async with self._lock, self._engine.connect() as conn, conn.begin():
            head = await lock_head(conn)
            latest = await latest_checkpoint(conn)
            now = utcnow()
            since = float("inf") if head.checkpoint_at is None else (now - head.checkpoint_at).total_seconds()
            grew = head.size > head.checkpoint_size or latest is None
            if only_if_due:
                grew = self._schedule.due(
                    size=head.size, last_size=head.checkpoint_size, seconds_since_last=since
                )
            if grew:
                acc = MerkleAccumulator.from_peaks(head.size, head.peaks)
                root = acc.root()
                note = sign_checkpoint(Checkpoint(identity.origin, head.size, root), identity.signer)
                await insert_checkpoint(conn, size=head.size, root=root, note=note, at=now)
                await store_head(
                    conn, dataclasses.replace(head, checkpoint_size=head.size, checkpoint_at=now)
                )
                latest = await latest_checkpoint(conn)
        return latest

    async def _tick(self) -> None:
        interval = self._schedule.every_seconds
        while True:
            await asyncio.sleep(interval)
            started = time.monotonic()
            try:
                await self.checkpoint(only_if_due=True)
            except Exception as exc:  # noqa: BLE001 - the next tick tries again; appends do too
                log_event(_log, logging.WARNING, "audit_checkpoint_failed", error_type=type(exc).__name__)
            await asyncio.sleep(max(0.0, 0.01 - (time.monotonic() - started)))
