"""Storage on both databases: migrations up and down, SQLite pragmas, API keys stored as hashes only."""

from __future__ import annotations

import asyncio
import base64
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url

from odeus_compliance.apikeys.service import (
    KEY_PREFIX_LENGTH,
    authenticate,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.migrate import current_revision, downgrade, head_revision, schema_status, upgrade
from odeus_compliance.errors import NotFound
from odeus_compliance.security import ApiKeyPepper, Role
from odeus_compliance.settings import Settings
from tests.support.postgres import scratch_database


async def test_migrations_up_and_down(settings: Settings) -> None:
    engine = create_engine_for(settings)
    try:
        assert await current_revision(engine) is None
        assert not (await schema_status(engine)).at_head
        await upgrade(settings)
        assert (await schema_status(engine)).at_head
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "api_keys" in tables
        await upgrade(settings)  # idempotent
        await downgrade(settings, "base")
        assert await current_revision(engine) is None
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "api_keys" not in tables
        await upgrade(settings, engine=engine)
        assert (await schema_status(engine)).at_head
    finally:
        await engine.dispose()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    settings = Settings.for_tests(tmp_path / "data")
    engine = create_engine_for(settings)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == 5000
    finally:
        await engine.dispose()
    assert (tmp_path / "data" / "odeus-compliance.sqlite3").exists()


async def test_api_key_lifecycle(migrated_settings: Settings) -> None:
    pepper = ApiKeyPepper.from_master_key(migrated_settings.require_master_key())
    engine = create_engine_for(migrated_settings)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            record, plaintext = await create_api_key(
                session=session, pepper=pepper, name="Ann's key", role="auditor"
            )
        assert plaintext.startswith("oc_auditor_")
        assert len(plaintext) >= len("oc_auditor_") + 43
        async with sessions() as session:
            identity = await authenticate(session=session, pepper=pepper, presented=plaintext)
            assert identity is not None
            assert identity.key_id == str(record.id)
            assert identity.role is Role.AUDITOR
            assert identity.name == "Ann's key"
            # a near miss, a malformed key, another pepper: refused
            near = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
            assert await authenticate(session=session, pepper=pepper, presented=near) is None
            assert await authenticate(session=session, pepper=pepper, presented="garbage") is None
            assert await authenticate(session=session, pepper=pepper, presented="oc_admin_") is None
            other = ApiKeyPepper.from_master_key(b"\x00" * 32)
            assert await authenticate(session=session, pepper=other, presented=plaintext) is None
        async with sessions() as session:
            revoked = await revoke_api_key(session=session, key_id=record.id)
            assert revoked.revoked_at is not None
            assert revoked.revoked_at.tzinfo is not None
        async with sessions() as session:
            assert await authenticate(session=session, pepper=pepper, presented=plaintext) is None
            listed = await list_api_keys(session=session)
            assert [k.id for k in listed] == [record.id]
            assert listed[0].created_at.tzinfo is not None
            with pytest.raises(NotFound):
                await revoke_api_key(session=session, key_id=uuid.uuid4())
    finally:
        await engine.dispose()


async def test_only_a_hash_is_stored(migrated_settings: Settings) -> None:
    pepper = ApiKeyPepper.from_master_key(migrated_settings.require_master_key())
    engine = create_engine_for(migrated_settings)
    try:
        async with session_factory(engine)() as session:
            _record, plaintext = await create_api_key(
                session=session, pepper=pepper, name="ci", role=Role.ADMIN
            )
        secret_part = plaintext.split("_", 2)[2]
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM api_keys"))).all()
        dump = repr(rows)
        assert plaintext not in dump
        assert secret_part not in dump
        assert secret_part[:12] in dump  # the lookup prefix is stored, and only that
    finally:
        await engine.dispose()
    if migrated_settings.is_sqlite:
        db_file = Path(migrated_settings.database_url.removeprefix("sqlite+aiosqlite:///"))
        for path in db_file.parent.glob(db_file.name + "*"):  # the file, its WAL and shared memory
            assert secret_part.encode() not in path.read_bytes()


async def test_role_check_constraint(migrated_settings: Settings) -> None:
    engine = create_engine_for(migrated_settings)
    try:
        with pytest.raises(Exception, match=r"(?i)constraint|check"):
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO api_keys (id, key_prefix, key_hash, hash_scheme, name, role, "
                        "created_at) VALUES (:id, 'p', 'h', 's', 'n', 'root', CURRENT_TIMESTAMP)"
                    ),
                    {
                        "id": "0" * 32
                        if migrated_settings.is_sqlite
                        else "00000000-0000-0000-0000-000000000000"
                    },
                )
    finally:
        await engine.dispose()


def test_concurrent_upgrade_is_not_needed_twice(migrated_settings: Settings) -> None:
    """A second ``db upgrade`` on a migrated database is a no-op."""
    asyncio.run(upgrade(migrated_settings))


async def test_sqlite_pragmas_on_every_pooled_connection(tmp_path: Path) -> None:
    settings = Settings.for_tests(tmp_path / "data")
    engine = create_engine_for(settings, pool_size=3, max_overflow=0)
    try:
        await upgrade(settings, engine=engine)  # migrations turn foreign keys off, and back on
        connections = [await engine.connect() for _ in range(3)]
        try:
            for conn in connections:
                assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
                assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
                assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == 5000
        finally:
            for conn in connections:
                await conn.close()
    finally:
        await engine.dispose()


async def test_migrations_run_with_sqlite_foreign_keys_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from odeus_compliance.db import migrate  # noqa: PLC0415

    seen: list[int] = []
    original = migrate._run_command

    def spy(connection: Any, name: str, revision: str) -> None:
        seen.append(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
        original(connection, name, revision)

    monkeypatch.setattr(migrate, "_run_command", spy)
    settings = Settings.for_tests(tmp_path / "data")
    engine = create_engine_for(settings, pool_size=1, max_overflow=0)
    try:
        await upgrade(settings, engine=engine)
        await downgrade(settings, "base", engine=engine)
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    finally:
        await engine.dispose()
    assert seen == [0, 0]


async def test_sqlite_file_and_folder_are_private(tmp_path: Path) -> None:
    settings = Settings.for_tests(tmp_path / "data")
    await upgrade(settings)
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.postgres
def test_postgres_url_forms_reach_the_same_database(tmp_path: Path) -> None:
    with scratch_database() as database_url:
        _upgrade_through_every_url_form(make_url(database_url), tmp_path)


def _upgrade_through_every_url_form(url: URL, tmp_path: Path) -> None:
    for scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        raw = url.set(drivername=scheme).render_as_string(hide_password=False)
        settings = Settings.from_env(
            {
                "ODEUS_COMPLIANCE_MASTER_KEY": base64.b64encode(bytes(32)).decode(),
                "ODEUS_API_KEY": "k",
                "ODEUS_COMPLIANCE_DATA_DIR": str(tmp_path),
                "ODEUS_COMPLIANCE_DATABASE_URL": raw,
            }
        )
        assert settings.database_url.startswith("postgresql+asyncpg://")
        asyncio.run(upgrade(settings))


async def test_the_plaintext_key_is_in_no_table(migrated_settings: Settings) -> None:
    pepper = ApiKeyPepper.from_master_key(migrated_settings.require_master_key())
    engine = create_engine_for(migrated_settings)
    try:
        async with session_factory(engine)() as session:
            _record, plaintext = await create_api_key(
                session=session, pepper=pepper, name="n", role="officer"
            )
        secret_part = plaintext.split("_", 2)[2]
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert tables
            for table in tables:
                rows = (await conn.execute(text(f'SELECT * FROM "{table}"'))).all()
                assert secret_part not in repr(rows), table
                assert secret_part[KEY_PREFIX_LENGTH:] not in repr(rows), table
    finally:
        await engine.dispose()
