"""The async SQLAlchemy engine for the configured database, created per app (never at import time).

SQLite gets WAL (readers do not block the writer), enforced foreign keys and a busy timeout, set on every
new connection because SQLite keeps them per connection. PostgreSQL goes through asyncpg with pre-ping so a
replica survives a database restart.
"""

from __future__ import annotations

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


def create_engine_from_url(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for ``database_url`` (SQLite: creates the parent folder of the database file)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            from pathlib import Path  # noqa: PLC0415

            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
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
