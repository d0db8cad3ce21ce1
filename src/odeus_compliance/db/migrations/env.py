"""Alembic environment, configured from code (no alembic.ini): see ``odeus_compliance.db.migrate``.

``migrate.upgrade`` opens an async connection and hands its sync face to Alembic through
``config.attributes["connection"]``; when Alembic is driven some other way, the URL in
``config.attributes["database_url"]`` is used with a fresh async engine.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from odeus_compliance.db import console_tables as _console_tables  # noqa: F401 - registers its tables
from odeus_compliance.db import denial_tables as _denial_tables  # noqa: F401 - registers its tables
from odeus_compliance.db import schedule_tables as _schedule_tables  # noqa: F401 - registers its tables
from odeus_compliance.db.engine import create_engine_from_url
from odeus_compliance.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine_from_url(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run on a connection given by the caller, or on a fresh engine for the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("database_url")
    if not url:
        msg = "no connection or database_url in the Alembic config attributes"
        raise RuntimeError(msg)
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    msg = "offline (SQL script) migrations are not supported"
    raise RuntimeError(msg)
run_migrations_online()
