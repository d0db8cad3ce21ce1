"""Console sessions for tests: one-time links (also expired ones), a signed-in ``httpx.Client``, moving a
session's clock in the database, and the audit records as an auditor reads them through the API.

Each helper runs its own event loop and engine, so it can be called from a test while the server runs in its
thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import func, select, update

from odeus_compliance.audit.appender import SYSTEM_CLI
from odeus_compliance.audit.standalone import standalone_recorder
from odeus_compliance.console.actions import make_sign_in_link
from odeus_compliance.console.bootstrap import SIGN_IN_PATH, issue_sign_in_links
from odeus_compliance.console.tokens import ConsoleKeys
from odeus_compliance.core.clock import utcnow
from odeus_compliance.db.console_tables import ConsoleSession
from odeus_compliance.db.engine import create_engine_for, session_factory
from odeus_compliance.settings import Settings

__all__ = [
    "audit_records",
    "expired_link",
    "last_seen",
    "move_session",
    "session_count",
    "sign_in_link",
    "signed_in_client",
]


def sign_in_link(settings: Settings, base_url: str, name: str, role: str, *, minutes: int = 15) -> str:
    """A fresh one-time link for ``name`` with ``role`` (made as ``console link`` makes it)."""
    (url,) = asyncio.run(
        issue_sign_in_links(settings, people=[(name, role)], minutes=minutes, base_url=base_url)
    )
    return url


def expired_link(settings: Settings, base_url: str, name: str, role: str) -> str:
    """A link made an hour ago, valid for 15 minutes: expired now (made with the flow and a past ``now``)."""

    async def go() -> str:
        engine = create_engine_for(settings)
        try:
            async with (
                standalone_recorder(settings, engine, SYSTEM_CLI) as recorder,
                session_factory(engine)() as session,
            ):
                _link_id, token = await make_sign_in_link(
                    recorder,
                    session=session,
                    keys=ConsoleKeys(settings.require_master_key()),
                    name=name,
                    role=role,
                    minutes=15,
                    now=utcnow() - dt.timedelta(hours=1),
                )
        finally:
            await engine.dispose()
        return f"{base_url}{SIGN_IN_PATH}{token}"

    return asyncio.run(go())


@contextmanager
def signed_in_client(base_url: str, link: str) -> Iterator[httpx.Client]:
    """A client that has used ``link`` (it keeps the session cookie); the sign-in must succeed."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        answer = client.get(link)
        assert answer.status_code == 200, answer.text
        yield client


def move_session(
    settings: Settings,
    session_id: str,
    *,
    last_seen_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> None:
    """Set a session's ``last_seen_at`` / ``expires_at`` (the clock moved on, as far as it can tell)."""
    values: dict[str, Any] = {}
    if last_seen_at is not None:
        values["last_seen_at"] = last_seen_at
    if expires_at is not None:
        values["expires_at"] = expires_at

    async def go() -> None:
        engine = create_engine_for(settings)
        try:
            async with session_factory(engine)() as session:
                await session.execute(
                    update(ConsoleSession).where(ConsoleSession.session_id == session_id).values(**values)
                )
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(go())


def last_seen(settings: Settings, session_id: str) -> dt.datetime:
    """A session's ``last_seen_at``."""

    async def go() -> dt.datetime:
        engine = create_engine_for(settings)
        try:
            async with session_factory(engine)() as session:
                seen = await session.scalar(
                    select(ConsoleSession.last_seen_at).where(ConsoleSession.session_id == session_id)
                )
        finally:
            await engine.dispose()
        assert seen is not None
        return seen

    return asyncio.run(go())


def session_count(settings: Settings) -> int:
    """How many console sessions the database holds."""

    async def go() -> int:
        engine = create_engine_for(settings)
        try:
            async with session_factory(engine)() as session:
                return int(await session.scalar(select(func.count()).select_from(ConsoleSession)) or 0)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def audit_records(base_url: str, auditor_key: str, *, action: str | None = None) -> list[dict[str, Any]]:
    """Every audit record (of ``action``), read through ``GET /api/v1/audit/entries`` with an auditor key."""
    records: list[dict[str, Any]] = []
    after: int | None = None
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while True:
            params: dict[str, str | int] = {"limit": 1000}
            if action is not None:
                params["action"] = action
            if after is not None:
                params["after"] = after
            answer = client.get(
                "/api/v1/audit/entries", params=params, headers={"Authorization": f"Bearer {auditor_key}"}
            )
            assert answer.status_code == 200, answer.text
            page = answer.json()
            records += [e["record"] for e in page["entries"] if e["record"] is not None]
            after = page["next_after"]
            if after is None:
                return records
