"""The audited action of starting a new key epoch, called by ``keys rotate`` and by retention's rotation of
due epochs: it rotates the key and records ``key.rotated``. (Keys the ring creates are recorded by
:meth:`~odeus_compliance.audit.appender.AuditAppender.record_created_keys`.)"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action, DetailValue
from odeus_compliance.keys.ring import KeyEncryptionKey, KeyKind, rotate_key

__all__ = ["rotate_epoch"]


async def rotate_epoch(
    recorder: Recorder,
    *,
    session: AsyncSession,
    kek: KeyEncryptionKey,
    kind: KeyKind,
    origin: Mapping[str, DetailValue] | None = None,
) -> str:
    """Start a new epoch of ``kind``, record it, and return the new key's id. ``origin``: the retention run
    that rotated it (``run_id``)."""
    key_id = await rotate_key(session=session, kek=kek, kind=kind)
    await recorder.record(
        action=Action.KEY_ROTATED,
        resource=f"key:{key_id}",
        details={"key_id": key_id, "key_kind": kind.value, **(origin or {})},
    )
    return key_id
