"""Scratch PostgreSQL databases: one fresh, uniquely named database per test, dropped afterwards.

The server is the one at ``127.0.0.1:5432`` (trust auth, user ``postgres``), overridable with
``ODEUS_TEST_POSTGRES_URL``. Unreachable: the test is skipped, or fails under ``CI=true`` (CI must not
silently lose half of the storage tests).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

DEFAULT_SERVER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The admin URL used to create and drop scratch databases."""
    return os.environ.get("ODEUS_TEST_POSTGRES_URL", DEFAULT_SERVER_URL)


def _connect_kwargs(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    return {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "password": parsed.password,
        "database": parsed.database or "postgres",
        "timeout": 5,
    }


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(**_connect_kwargs(server_url()))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def unreachable(reason: str) -> None:
    """Skip, or fail under ``CI=true``."""
    message = (
        f"PostgreSQL at {make_url(server_url()).render_as_string(hide_password=True)} unreachable: {reason}"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
    pytest.skip(message)


@contextmanager
def scratch_database() -> Iterator[str]:
    """Create ``oc_test_<random>``, yield its SQLAlchemy URL, drop it (``WITH (FORCE)``) afterwards."""
    name = f"oc_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unreachable(type(exc).__name__)
    try:
        yield make_url(server_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
