"""A report's purpose at rest: sealed like the audit records that carry it, and shredded with them.

The requester's purpose is free text (it may name a person or a case). The audit log keeps it encrypted
under the current ``audit-data`` key epoch; the job's row keeps it too, because the job's own records
(``export.fetched``, ``report.generated``) repeat it. :func:`seal_purpose` stores it sealed under the same
epoch (:class:`~odeus_compliance.keys.sealed_text.TextSealer`, bound to the report id), and
:func:`open_purpose` reads it back for the job; once retention destroys the epoch's key it reads as ``None``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.keys.ring import KeyEncryptionKey
from odeus_compliance.keys.sealed_text import TextSealer

__all__ = ["open_purpose", "seal_purpose"]


def _context(report_id: str) -> str:
    return f"report-purpose:{report_id}"


async def seal_purpose(
    kek: KeyEncryptionKey, sessions: async_sessionmaker[AsyncSession], *, report_id: str, purpose: str
) -> str:
    """``purpose`` as the ``reports.purpose`` column stores it: sealed under the current audit-data key."""
    async with sessions() as session:
        return await TextSealer(kek).seal(session, purpose, context=_context(report_id))


async def open_purpose(
    kek: KeyEncryptionKey, sessions: async_sessionmaker[AsyncSession], *, report_id: str, stored: str
) -> str | None:
    """The purpose stored for ``report_id``; ``None`` once its key epoch was shredded by retention."""
    async with sessions() as session:
        return await TextSealer(kek).open(session, stored, context=_context(report_id))
