"""A :class:`~odeus_compliance.audit.recorder.Recorder` for a command (or a test set-up) outside the
service: the key ring completed if a kind is missing (and recorded), an appender of its own, closed after."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from odeus_compliance.audit.appender import Actor, AuditAppender
from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.db.engine import session_factory
from odeus_compliance.keys.ring import KeyEncryptionKey, ensure_key_ring
from odeus_compliance.settings import Settings

__all__ = ["standalone_recorder"]


@contextlib.asynccontextmanager
async def standalone_recorder(
    settings: Settings, engine: AsyncEngine, actor: Actor
) -> AsyncIterator[Recorder]:
    """``actor``'s recorder on the installation of ``settings`` (``engine`` is the caller's)."""
    async with session_factory(engine)() as session:
        kek = KeyEncryptionKey(settings.require_master_key())
        created = (await ensure_key_ring(session=session, kek=kek)).created
    async with AuditAppender.open(settings) as appender:
        await appender.record_created_keys(created, actor)
        yield Recorder(appender, actor)
