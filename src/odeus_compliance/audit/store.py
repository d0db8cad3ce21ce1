"""Storage of the audit log: the locked head row, leaves, checkpoints, and the reads the auditor API needs.

Plain SQLAlchemy Core on a session or connection handed in; the caller owns the transaction. Nothing here
decrypts or signs (see :mod:`~odeus_compliance.audit.appender` and :mod:`~odeus_compliance.audit.service`).

The append lock (:func:`lock_head`): on PostgreSQL ``SELECT ... FOR UPDATE`` of the single
``audit_log_state`` row, which serialises appenders across processes and replicas; on SQLite a no-op
``UPDATE`` of that row as the transaction's first statement, which takes SQLite's write lock at once (the
driver opens a deferred transaction before it, so this is ``BEGIN IMMEDIATE`` in effect) and waits up to the
busy timeout for another process's writer. Either way, the size read under the lock is the next sequence
number, so sequence numbers are unique and gap-free.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    LargeBinary,
    Select,
    String,
    Text,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from odeus_compliance.db.models import AuditCheckpoint, AuditEntry, AuditLogState, UtcDateTime

__all__ = [
    "SQLITE_INSERT_CHECKPOINT",
    "SQLITE_INSERT_ENTRIES",
    "SQLITE_LOCK_WITH_KEY",
    "SQLITE_STORE_HEAD",
    "EntryFilter",
    "Head",
    "checkpoint_at",
    "checkpoint_notes",
    "dialect_name",
    "entries_in_range",
    "insert_checkpoint",
    "insert_entries",
    "iter_leaves",
    "latest_checkpoint",
    "leaf_batch",
    "leaf_hashes",
    "lock_head",
    "lock_head_with_key",
    "query_entries",
    "read_head",
    "scrub_filters",
    "seq_range_between",
    "sqlite_checkpoint_params",
    "sqlite_entry_params",
    "sqlite_head_params",
    "sqlite_insert_entries_rows",
    "sqlite_lock_row",
    "store_head",
]

Executor = AsyncSession | AsyncConnection
_STREAM_BATCH: Final = 20_000


@dataclasses.dataclass(frozen=True, slots=True)
class Head:
    """The head row: size, compact range (largest first), newest checkpoint's size and time."""

    size: int
    peaks: tuple[bytes, ...]
    checkpoint_size: int
    checkpoint_at: dt.datetime | None


def _head(row: Any) -> Head:
    peaks = tuple(base64.b64decode(p) for p in json.loads(row[1]))
    at = row[3]
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return Head(size=int(row[0]), peaks=peaks, checkpoint_size=int(row[2]), checkpoint_at=at)


_HEAD_COLUMNS: Final = (
    AuditLogState.size,
    AuditLogState.peaks,
    AuditLogState.checkpoint_size,
    AuditLogState.checkpoint_at,
)


def dialect_name(executor: Executor) -> str:
    """``sqlite`` or ``postgresql``."""
    if isinstance(executor, AsyncConnection):
        return executor.dialect.name
    return executor.get_bind().dialect.name


async def lock_head(executor: Executor) -> Head:
    """Take the append lock (see the module docstring) and read the head row inside the transaction."""
    if dialect_name(executor) == "sqlite":
        await executor.execute(text("UPDATE audit_log_state SET size = size WHERE id = 1"))
        row = (await executor.execute(select(*_HEAD_COLUMNS).where(AuditLogState.id == 1))).first()
    else:
        row = (
            await executor.execute(select(*_HEAD_COLUMNS).where(AuditLogState.id == 1).with_for_update())
        ).first()
    if row is None:
        msg = "the audit log's head row is missing (the database was altered)"
        raise LookupError(msg)
    return _head(row)


_LOCK_SQLITE: Final = (
    "UPDATE audit_log_state SET size = size WHERE id = 1 "
    "RETURNING size, peaks, checkpoint_size, checkpoint_at, {key_columns}"
)
_LOCK_POSTGRES: Final = (
    "SELECT size, peaks, checkpoint_size, checkpoint_at, {key_columns} "
    "FROM audit_log_state WHERE id = 1 FOR UPDATE"
)
_KEY_COLUMNS: Final = (
    "(SELECT key_id FROM key_epochs WHERE kind = :kind ORDER BY epoch DESC LIMIT 1) AS key_id, "
    "(SELECT wrapped FROM key_epochs WHERE kind = :kind ORDER BY epoch DESC LIMIT 1) AS wrapped"
)


_LOCK_WITH_KEY: Final = {
    dialect: text(template.format(key_columns=_KEY_COLUMNS)).columns(
        size=BigInteger,
        peaks=Text,
        checkpoint_size=BigInteger,
        checkpoint_at=UtcDateTime,
        key_id=String,
        wrapped=LargeBinary,
    )
    for dialect, template in (("sqlite", _LOCK_SQLITE), ("postgresql", _LOCK_POSTGRES))
}
"""Built once: statement construction and its cache key cost as much as the round trip's Python side."""
SQLITE_LOCK_WITH_KEY: Final = _LOCK_SQLITE.format(key_columns=_KEY_COLUMNS)
"""The SQLite lock statement for the driver (named parameter ``kind``); see :func:`sqlite_lock_row`."""
_LOCK_RESULT_TYPES: Final = (BigInteger(), Text(), BigInteger(), UtcDateTime(), String(), LargeBinary())
_RESULT_PROCESSORS: dict[Any, tuple[Any, ...]] = {}


def _lock_result_processors(dialect: Any) -> tuple[Any, ...]:
    """The result processors SQLAlchemy applies to the lock statement's typed columns (cached)."""
    procs = _RESULT_PROCESSORS.get(dialect)
    if procs is None:
        procs = _RESULT_PROCESSORS[dialect] = tuple(
            t.dialect_impl(dialect).result_processor(dialect, None) for t in _LOCK_RESULT_TYPES
        )
    return procs


_INSERT_ENTRIES: Final = insert(AuditEntry)
_STORE_HEAD: Final = (
    update(AuditLogState)
    .where(AuditLogState.id == 1)
    .values(
        size=bindparam("h_size"),
        peaks=bindparam("h_peaks"),
        checkpoint_size=bindparam("h_checkpoint_size"),
        checkpoint_at=bindparam("h_checkpoint_at"),
    )
)


def sqlite_lock_row(dialect: Any, raw: Sequence[Any]) -> tuple[Head, str | None, bytes | None]:
    """Head and key from the raw driver row of :data:`SQLITE_LOCK_WITH_KEY` (result processors applied)."""
    procs = _lock_result_processors(dialect)
    values = tuple(v if proc is None or v is None else proc(v) for v, proc in zip(raw, procs, strict=True))
    return _head(values), values[4], None if values[5] is None else bytes(values[5])


async def lock_head_with_key(executor: Executor, kind: str) -> tuple[Head, str | None, bytes | None]:
    """:func:`lock_head` and, in the same round trip, the newest key of ``kind`` (id, wrapped material).

    The append path's first statement: one database round trip instead of three per batch.
    """
    driver = await _sqlite_driver(executor)
    if driver is not None:
        assert isinstance(executor, AsyncConnection)
        raw = await driver.execute_fetchall(SQLITE_LOCK_WITH_KEY, {"kind": kind})
        if not raw:
            msg = "the audit log's head row is missing (the database was altered)"
            raise LookupError(msg)
        return sqlite_lock_row(executor.dialect, raw[0])
    statement = _LOCK_WITH_KEY["sqlite" if dialect_name(executor) == "sqlite" else "postgresql"]
    row = (await executor.execute(statement, {"kind": kind})).first()
    if row is None:
        msg = "the audit log's head row is missing (the database was altered)"
        raise LookupError(msg)
    return _head(row), row[4], None if row[5] is None else bytes(row[5])


async def read_head(executor: Executor) -> Head:
    """The head row without locking (a snapshot)."""
    row = (await executor.execute(select(*_HEAD_COLUMNS).where(AuditLogState.id == 1))).first()
    if row is None:
        msg = "the audit log's head row is missing (the database was altered)"
        raise LookupError(msg)
    return _head(row)


SQLITE_STORE_HEAD: Final = (
    "UPDATE audit_log_state SET size = ?, peaks = ?, checkpoint_size = ?, checkpoint_at = ? WHERE id = 1"
)


async def _sqlite_driver(executor: Executor) -> Any | None:
    """The aiosqlite connection under ``executor`` if it is a SQLite connection, else ``None``.

    Statements sent straight to it run in the transaction SQLAlchemy opened (one ``sqlite3`` connection) in
    one trip to aiosqlite's thread; through SQLAlchemy's adapter a statement costs three or four trips
    (open a cursor, execute, fetch, close), which on the append path cost more than the statements.
    """
    if isinstance(executor, AsyncConnection) and executor.dialect.name == "sqlite":
        return (await executor.get_raw_connection()).driver_connection
    return None


def _processed(dialect: Any, column: Any, value: Any) -> Any:
    proc = _bind_processor(dialect, column)
    return value if proc is None else proc(value)


_BIND_PROCESSORS: dict[tuple[Any, Any], Any] = {}


def _bind_processor(dialect: Any, column: Any) -> Any:
    """The bind processor SQLAlchemy itself applies to ``column`` on ``dialect`` (cached)."""
    key = (dialect, column)
    try:
        return _BIND_PROCESSORS[key]
    except KeyError:
        proc = _BIND_PROCESSORS[key] = column.type.dialect_impl(dialect).bind_processor(dialect)
        return proc


def sqlite_head_params(dialect: Any, head: Head) -> tuple[int, str, int, Any]:
    """The driver parameters of :data:`SQLITE_STORE_HEAD` for ``head``: exactly what the head row then holds,
    and what :data:`SQLITE_LOCK_WITH_KEY` reads back as its first four columns."""
    at = _processed(dialect, AuditLogState.__table__.c.checkpoint_at, head.checkpoint_at)
    peaks = json.dumps([base64.b64encode(p).decode("ascii") for p in head.peaks])
    return head.size, peaks, head.checkpoint_size, at


async def store_head(executor: Executor, head: Head) -> None:
    """Write the head row (under the lock)."""
    driver = await _sqlite_driver(executor)
    if driver is not None:
        assert isinstance(executor, AsyncConnection)
        await driver.execute(SQLITE_STORE_HEAD, sqlite_head_params(executor.dialect, head))
        return
    await executor.execute(
        _STORE_HEAD,
        {
            "h_size": head.size,
            "h_peaks": json.dumps([base64.b64encode(p).decode("ascii") for p in head.peaks]),
            "h_checkpoint_size": head.checkpoint_size,
            "h_checkpoint_at": head.checkpoint_at,
        },
    )


_ENTRY_COLUMNS: Final = tuple(AuditEntry.__table__.columns)
SQLITE_INSERT_ENTRIES: Final = (
    f"INSERT INTO {AuditEntry.__tablename__} ({', '.join(c.name for c in _ENTRY_COLUMNS)}) "  # noqa: S608 - the model's names
    f"VALUES ({', '.join('?' for _ in _ENTRY_COLUMNS)})"
)


def sqlite_entry_params(dialect: Any, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Driver parameters of :data:`SQLITE_INSERT_ENTRIES`: the columns' own bind processors applied."""
    procs = [(c.name, _bind_processor(dialect, c)) for c in _ENTRY_COLUMNS]
    return [tuple(row[name] if proc is None else proc(row[name]) for name, proc in procs) for row in rows]


@functools.lru_cache(maxsize=64)
def sqlite_insert_entries_rows(count: int) -> str:
    """One ``INSERT`` of ``count`` rows (parameters: the rows of :func:`sqlite_entry_params`, flattened).

    One statement is one ``sqlite3_step``: the driver releases and retakes the GIL around each step, and an
    ``executemany`` steps once per row, so on a busy machine each row could wait a whole GIL switch interval
    for the event loop's thread.
    """
    one = f"({', '.join('?' for _ in _ENTRY_COLUMNS)})"
    return (
        f"INSERT INTO {AuditEntry.__tablename__} ({', '.join(c.name for c in _ENTRY_COLUMNS)}) "  # noqa: S608 - the model's names
        f"VALUES {', '.join(itertools.repeat(one, count))}"
    )


_CHECKPOINT_COLUMNS: Final = tuple(AuditCheckpoint.__table__.columns)
SQLITE_INSERT_CHECKPOINT: Final = (
    f"INSERT INTO {AuditCheckpoint.__tablename__} ({', '.join(c.name for c in _CHECKPOINT_COLUMNS)}) "  # noqa: S608 - the model's names
    f"VALUES ({', '.join('?' for _ in _CHECKPOINT_COLUMNS)})"
)


def sqlite_checkpoint_params(
    dialect: Any, *, size: int, root: bytes, note: str, at: dt.datetime
) -> tuple[Any, ...]:
    """Driver parameters of :data:`SQLITE_INSERT_CHECKPOINT` (bind processors applied)."""
    values = {"size": size, "root": root, "note": note, "created_at": at}
    return tuple(_processed(dialect, c, values[c.name]) for c in _CHECKPOINT_COLUMNS)


async def insert_entries(executor: Executor, rows: Sequence[dict[str, Any]]) -> None:
    """Insert leaves (one executemany).

    On SQLite straight through the driver (see :func:`_sqlite_driver`) with the columns' own bind processors
    applied here, so the stored values are exactly those of SQLAlchemy's insert (a test compares them).
    """
    if not rows:
        return
    driver = await _sqlite_driver(executor)
    if driver is not None:
        assert isinstance(executor, AsyncConnection)
        await driver.executemany(SQLITE_INSERT_ENTRIES, sqlite_entry_params(executor.dialect, rows))
    else:
        await executor.execute(_INSERT_ENTRIES, list(rows))


async def insert_checkpoint(
    executor: Executor, *, size: int, root: bytes, note: str, at: dt.datetime
) -> None:
    """Insert a signed checkpoint."""
    await executor.execute(insert(AuditCheckpoint).values(size=size, root=root, note=note, created_at=at))


async def latest_checkpoint(executor: Executor) -> tuple[int, str] | None:
    """``(size, note)`` of the newest checkpoint."""
    row = (
        await executor.execute(
            select(AuditCheckpoint.size, AuditCheckpoint.note).order_by(AuditCheckpoint.size.desc()).limit(1)
        )
    ).first()
    return None if row is None else (int(row[0]), row[1])


async def checkpoint_at(executor: Executor, size: int) -> str | None:
    """The note of the checkpoint of exactly ``size``."""
    return (await executor.execute(select(AuditCheckpoint.note).where(AuditCheckpoint.size == size))).scalar()


async def checkpoint_notes(executor: Executor) -> list[str]:
    """Every stored checkpoint note, by size."""
    return list(
        (await executor.execute(select(AuditCheckpoint.note).order_by(AuditCheckpoint.size))).scalars()
    )


async def iter_leaves(executor: Executor, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
    """Leaf texts in storage (seq) order, in keyset-paged batches (bounded memory)."""
    after = start - 1
    while True:
        query = select(AuditEntry.seq, AuditEntry.leaf).where(AuditEntry.seq > after)
        if end is not None:
            query = query.where(AuditEntry.seq < end)
        rows = (await executor.execute(query.order_by(AuditEntry.seq).limit(_STREAM_BATCH))).all()
        for _seq, leaf in rows:
            yield leaf.encode("utf-8")
        if len(rows) < _STREAM_BATCH:
            return
        after = rows[-1][0]


_LEAF_BATCH_SQLITE: Final = (
    f"SELECT seq, CAST(leaf AS BLOB) FROM {AuditEntry.__tablename__} WHERE seq > ? ORDER BY seq LIMIT ?"  # noqa: S608 - the model's name
)


async def leaf_batch(executor: Executor, *, after: int, limit: int) -> list[tuple[int, bytes]]:
    """``(seq, leaf text)`` of up to ``limit`` leaves after seq ``after``, by seq (full-log verification).

    On SQLite straight through the driver, the text read as the UTF-8 bytes it is stored as: one trip to the
    driver's thread and no row objects or decoding per leaf, which were most of the cost of reading.
    """
    if isinstance(executor, AsyncSession):
        executor = await executor.connection()
    driver = await _sqlite_driver(executor)
    if driver is not None:
        rows = await driver.execute_fetchall(_LEAF_BATCH_SQLITE, (after, limit))
        return [(int(seq), bytes(leaf)) for seq, leaf in rows]
    result = await executor.execute(
        select(AuditEntry.seq, AuditEntry.leaf)
        .where(AuditEntry.seq > after)
        .order_by(AuditEntry.seq)
        .limit(limit)
    )
    return [(int(seq), leaf.encode("utf-8")) for seq, leaf in result.all()]


async def leaf_hashes(executor: Executor, size: int) -> list[bytes]:
    """The stored leaf hashes of seq ``0..size-1`` in order (proof generation; 32 bytes each)."""
    out: list[bytes] = []
    after = -1
    while True:
        rows = (
            await executor.execute(
                select(AuditEntry.seq, AuditEntry.leaf_hash)
                .where(AuditEntry.seq > after, AuditEntry.seq < size)
                .order_by(AuditEntry.seq)
                .limit(_STREAM_BATCH * 5)
            )
        ).all()
        out.extend(bytes(h) for _s, h in rows)
        if len(rows) < _STREAM_BATCH * 5:
            return out
        after = rows[-1][0]


@dataclasses.dataclass(frozen=True, slots=True)
class EntryFilter:
    """Filters of the entries listing; ``resource_tag`` is the keyed hash of the wanted resource."""

    actor_key_id: str | None = None
    action: str | None = None
    resource_tag: str | None = None
    outcome: str | None = None
    time_from: dt.datetime | None = None
    time_to: dt.datetime | None = None
    after_seq: int | None = None


def _filtered(query: Select[int, str, str], f: EntryFilter) -> Select[int, str, str]:
    if f.actor_key_id is not None:
        query = query.where(AuditEntry.actor_key_id == f.actor_key_id)
    if f.action is not None:
        query = query.where(AuditEntry.action == f.action)
    if f.resource_tag is not None:
        query = query.where(AuditEntry.resource_tag == f.resource_tag)
    if f.outcome is not None:
        query = query.where(AuditEntry.outcome == f.outcome)
    if f.time_from is not None:
        query = query.where(AuditEntry.time >= f.time_from)
    if f.time_to is not None:
        query = query.where(AuditEntry.time <= f.time_to)
    if f.after_seq is not None:
        query = query.where(AuditEntry.seq > f.after_seq)
    return query


async def query_entries(executor: Executor, f: EntryFilter, *, limit: int) -> list[tuple[int, str, str]]:
    """``(seq, leaf, key_id)`` of matching entries by ascending seq, at most ``limit``."""
    query = _filtered(select(AuditEntry.seq, AuditEntry.leaf, AuditEntry.key_id), f)
    rows = (await executor.execute(query.order_by(AuditEntry.seq).limit(limit))).all()
    return [(int(s), leaf, k) for s, leaf, k in rows]


async def seq_range_between(
    executor: Executor, start: dt.datetime, end: dt.datetime
) -> tuple[int, int] | None:
    """The smallest and largest seq whose time is within ``[start, end]``, or ``None``."""
    row = (
        await executor.execute(
            select(func.min(AuditEntry.seq), func.max(AuditEntry.seq)).where(
                AuditEntry.time >= start, AuditEntry.time <= end
            )
        )
    ).first()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


async def entries_in_range(executor: Executor, first: int, last: int) -> list[tuple[int, str, str]]:
    """``(seq, leaf, key_id)`` for ``first <= seq <= last``, ascending."""
    rows = (
        await executor.execute(
            select(AuditEntry.seq, AuditEntry.leaf, AuditEntry.key_id)
            .where(AuditEntry.seq >= first, AuditEntry.seq <= last)
            .order_by(AuditEntry.seq)
        )
    ).all()
    return [(int(s), leaf, k) for s, leaf, k in rows]


async def scrub_filters(executor: Executor, key_id: str) -> None:
    """Clear the filter columns of every entry under ``key_id`` (its epoch was shredded)."""
    await executor.execute(
        update(AuditEntry)
        .where(AuditEntry.key_id == key_id)
        .values(action=None, outcome=None, actor_key_id=None, resource_tag=None)
    )
