"""Storage on both databases: migrations up and down, SQLite pragmas, API keys stored as hashes only."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from odeus_compliance.apikeys.service import authenticate, create_api_key, list_api_keys, revoke_api_key
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.db.migrate import current_revision, downgrade, head_revision, schema_status, upgrade
from odeus_compliance.errors import NotFound
from odeus_compliance.security import ApiKeyPepper, Role
from odeus_compliance.settings import Settings


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
