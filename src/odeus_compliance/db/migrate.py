"""Apply and inspect migrations from code (Alembic configured programmatically, no alembic.ini).

The service never migrates on start-up: a schema change deserves an operator's decision. ``serve`` refuses to
start unless the schema is at head and says to run ``odeus-compliance init`` (migrations, key ring, signing
check) or ``db upgrade``; the demo and the tests call :func:`upgrade` themselves. On PostgreSQL a migration
holds an advisory lock, so several ``init`` processes started at once (one per replica) do not race.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from odeus_compliance.db.engine import create_engine_for
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.settings import Settings

__all__ = [
    "MIGRATIONS_DIR",
    "MigrationError",
    "SchemaStatus",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "schema_status",
    "upgrade",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK: Final = 0x6F646575_73_6D67  # PostgreSQL advisory lock key of migrations ("odeus", "mg")


class MigrationError(OdeusComplianceError):
    """A migration finished but left the database inconsistent (the message holds no data)."""


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at the migrations inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - there is always at least one revision
        msg = "no migrations found"
        raise RuntimeError(msg)
    return head


def _run_command(connection: Connection, name: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if name == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


async def _run(engine: AsyncEngine, name: str, revision: str) -> None:
    """Run one Alembic command on one connection.

    On SQLite, foreign keys are off while migrations run, as Alembic's batch mode needs: it rebuilds a table
    by copy, drop and rename, and dropping a referenced table with enforcement on would delete (or refuse)
    the rows that refer to it. Afterwards ``PRAGMA foreign_key_check`` must come back empty, and enforcement
    is back on before the connection returns to the pool (or the connection is discarded).
    """
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if connection.dialect.name == "postgresql":
            # several replicas may run 'init' at once: one migrates, the others wait here and then find the
            # schema at head (a session lock: it outlives the commits below, and ends with the connection)
            await connection.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
            await connection.commit()
        if sqlite:
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()
        restored = False
        try:
            await connection.run_sync(_run_command, name, revision)
            await connection.commit()
            if sqlite:
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                await connection.commit()
                restored = True
                if broken:
                    msg = f"the migration left {len(broken)} rows whose foreign keys point nowhere"
                    raise MigrationError(msg)
        finally:
            if sqlite and not restored:
                await connection.invalidate()
            elif connection.dialect.name == "postgresql":
                await _unlock(connection)


async def _unlock(connection: AsyncConnection) -> None:
    """Release the migration lock; a connection that cannot is discarded (which releases it too)."""
    try:
        await connection.rollback()
        await connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")
        await connection.commit()
    except Exception:  # noqa: BLE001 - closing the connection ends its session, and so the lock
        await connection.invalidate()


async def upgrade(settings: Settings, revision: str = "head", *, engine: AsyncEngine | None = None) -> None:
    """Migrate the configured database up to ``revision`` (default: head)."""
    await _with_engine(settings, engine, "upgrade", revision)


async def downgrade(settings: Settings, revision: str, *, engine: AsyncEngine | None = None) -> None:
    """Migrate down to ``revision`` (``base`` removes every table)."""
    await _with_engine(settings, engine, "downgrade", revision)


async def _with_engine(settings: Settings, engine: AsyncEngine | None, name: str, revision: str) -> None:
    if engine is not None:
        await _run(engine, name, revision)
        return
    own = create_engine_for(settings)
    try:
        await _run(own, name, revision)
    finally:
        await own.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    async with engine.connect() as connection:
        return await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


@dataclasses.dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where the database is against the code's head revision."""

    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        """Whether the schema is exactly what the code expects."""
        return self.current == self.head


async def schema_status(engine: AsyncEngine) -> SchemaStatus:
    """Compare the database's revision with the code's head (raises if the database is unreachable)."""
    return SchemaStatus(current=await current_revision(engine), head=head_revision())
