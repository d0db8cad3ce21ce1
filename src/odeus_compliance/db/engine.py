"""The async SQLAlchemy engine for the configured database, created per app (never at import time).

SQLite gets WAL (readers do not block the writer), enforced foreign keys and a busy timeout, set on every
new connection because SQLite keeps them per connection. PostgreSQL goes through asyncpg with pre-ping so a
replica survives a database restart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from odeus_compliance.settings import Settings

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "create_engine_for", "create_engine_from_url", "session_factory"]

SQLITE_BUSY_TIMEOUT_MS: Final = 5_000


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _create_private_sqlite_file(database: str) -> None:
    """Create the database's folder (``0700``) and an empty database file (``0600``) if they are missing.

    SQLite would create the file with the process umask (usually world-readable), and its ``-wal`` and
    ``-shm`` files copy the main file's mode; the file holds key hashes and, later, pseudonymised data.
    An existing file or folder is left as the operator made it.
    """
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)  # an empty file is an empty SQLite database


def sqlite_database_path(database_url: str) -> Path:
    """The file of a SQLite database URL (a file database, not ``:memory:``)."""
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        msg = "not a SQLite file database"
        raise ValueError(msg)
    return Path(database)


def create_engine_from_url(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for ``database_url`` (SQLite: creates the database file and its folder, private to us)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            _create_private_sqlite_file(url.database)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def create_engine_for(settings: Settings, **kwargs: Any) -> AsyncEngine:
    """The engine for ``settings.database_url``; the caller disposes of it (the app's lifespan does)."""
    return create_engine_from_url(settings.database_url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (services return them to controllers)."""
    return async_sessionmaker(engine, expire_on_commit=False)
