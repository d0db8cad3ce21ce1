"""The SQLite append channel: one batch, one trip to a dedicated thread, one transaction.

Through SQLAlchemy and aiosqlite a batch cost five hand-offs between the event loop and the driver's thread
(lock and read the head, insert the leaves, store the head, commit, and the pool's reset); each is cheap
alone, but on a busy machine every hand-off waits to be scheduled. Here the appender's own ``sqlite3``
connection lives in one thread, and :meth:`SqliteAppendChannel.commit` runs the whole transaction there in
one call: ``BEGIN IMMEDIATE`` (SQLite's write lock, waiting up to the busy timeout for another process),
the no-op ``UPDATE ... RETURNING`` that reads the head and the current audit-data key, one multi-row
``INSERT`` of the leaves, the due checkpoints, the head update, ``COMMIT``.

The batch arrives already prepared (sealed, hashed, checkpoints signed) against the head the appender
expects: the one its previous batch left. The head read under the lock is compared with that expectation,
byte for byte as stored; if anything differs (another process appended, a checkpoint was signed elsewhere,
the key was rotated, the previous batch failed) the batch is prepared again, there, under the lock, from the
head just read. So what commits is always built on the locked head: sequence numbers stay unique and
gap-free across writers and processes, and the work of sealing normally happens outside the lock, while the
previous batch is still committing.

Durability is unchanged: ``PRAGMA synchronous=FULL`` in WAL mode (the WAL is synced on every commit), and
the call returns, so callers are acknowledged, only after ``COMMIT`` has returned.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import itertools
import sqlite3
from collections.abc import Callable
from typing import Any, Final

from odeus_compliance.audit.batch import HeadRead, PreparedBatch
from odeus_compliance.audit.store import (
    SQLITE_INSERT_CHECKPOINT,
    SQLITE_LOCK_WITH_KEY,
    SQLITE_STORE_HEAD,
    sqlite_checkpoint_params,
    sqlite_entry_params,
    sqlite_head_params,
    sqlite_insert_entries_rows,
    sqlite_lock_row,
)
from odeus_compliance.db.engine import SQLITE_BUSY_TIMEOUT_MS
from odeus_compliance.keys.ring import KeyKind

__all__ = ["Ahead", "SqliteAppendChannel"]

_PRAGMAS: Final = ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=FULL")

Reprepare = Callable[[HeadRead], PreparedBatch]


@dataclasses.dataclass(frozen=True, slots=True)
class Ahead:
    """A batch prepared ahead of the lock: valid only if the lock statement returns ``expected``."""

    prepared: PreparedBatch
    expected: tuple[Any, ...]
    statements: list[tuple[str, tuple[Any, ...]]]


class SqliteAppendChannel:
    """The appender's own SQLite connection in its own thread; see the module docstring."""

    def __init__(self, database: str, dialect: Any) -> None:
        self._database = database
        self._dialect = dialect
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="audit-sqlite"
        )
        self._conn: sqlite3.Connection | None = None
        self.prepared_ahead = 0
        """Batches committed as prepared ahead of the lock (statistics for the benchmark)."""
        self.prepared_under_lock = 0
        """Batches that had to be prepared again under the lock."""

    async def open(self) -> None:
        """Open the connection in the channel's thread (and stop the thread if that fails)."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise

    def _open(self) -> None:
        conn = sqlite3.connect(
            self._database,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
            check_same_thread=False,  # opened and used in the channel's one thread, closed there too
        )
        try:
            for pragma in _PRAGMAS:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        """Close the connection (in its thread) and stop the thread."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._close)
        finally:
            self._executor.shutdown(wait=False)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def synchronous(self) -> int:
        """The connection's ``PRAGMA synchronous`` (2 is ``FULL``): what acknowledged durability rests on."""

        def read() -> int:
            assert self._conn is not None
            return int(self._conn.execute("PRAGMA synchronous").fetchone()[0])

        return await asyncio.get_running_loop().run_in_executor(self._executor, read)

    def expected(self, base: HeadRead) -> tuple[Any, ...]:
        """The lock statement's row that ``base`` stands for, as the driver returns it."""
        return (*sqlite_head_params(self._dialect, base.head), base.key_id, base.wrapped)

    def statements(self, prepared: PreparedBatch) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements that write ``prepared`` after the lock: one multi-row insert of the leaves, the due
        checkpoints, the head. Built on the event loop's thread when the batch is prepared ahead, so the
        channel's thread only steps them (see
        :func:`~odeus_compliance.audit.store.sqlite_insert_entries_rows`)."""
        dialect = self._dialect
        params = sqlite_entry_params(dialect, prepared.rows)
        out = [(sqlite_insert_entries_rows(len(params)), tuple(itertools.chain.from_iterable(params)))]
        out.extend(
            (
                SQLITE_INSERT_CHECKPOINT,
                sqlite_checkpoint_params(dialect, size=cp.size, root=cp.root, note=cp.note, at=cp.at),
            )
            for cp in prepared.checkpoints
        )
        out.append((SQLITE_STORE_HEAD, sqlite_head_params(dialect, prepared.head)))
        return out

    def submit(self, ahead: Ahead | None, reprepare: Reprepare) -> asyncio.Future[PreparedBatch]:
        """Run :meth:`_commit` in the channel's thread; the future is done once the batch has committed."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._commit, ahead, reprepare)

    def _commit(self, ahead: Ahead | None, reprepare: Reprepare) -> PreparedBatch:
        conn = self._conn
        if conn is None:
            msg = "the audit append channel is closed"
            raise RuntimeError(msg)
        conn.execute("BEGIN IMMEDIATE")
        try:
            raw = conn.execute(SQLITE_LOCK_WITH_KEY, {"kind": KeyKind.AUDIT_DATA.value}).fetchone()
            if raw is None:
                msg = "the audit log's head row is missing (the database was altered)"
                raise LookupError(msg)
            if ahead is not None and ahead.expected == tuple(raw):
                prepared, statements = ahead.prepared, ahead.statements
                self.prepared_ahead += 1
            else:
                head, key_id, wrapped = sqlite_lock_row(self._dialect, raw)
                prepared = reprepare(HeadRead(head, key_id, wrapped))
                statements = self.statements(prepared)
                self.prepared_under_lock += 1
            for sql, params in statements:
                conn.execute(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return prepared
