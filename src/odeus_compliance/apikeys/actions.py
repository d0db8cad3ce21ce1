"""The audited actions on API keys, called by every entry point (command line, demo, console): issuing a
key records ``apikey.created``, revoking one ``apikey.revoked``; neither record holds the key or its name."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.apikeys.service import create_api_key, revoke_api_key
from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action
from odeus_compliance.db.models import ApiKey
from odeus_compliance.security import ApiKeyPepper, Role

__all__ = ["issue_api_key", "withdraw_api_key"]


async def issue_api_key(
    recorder: Recorder, *, session: AsyncSession, pepper: ApiKeyPepper, name: str, role: Role
) -> tuple[ApiKey, str]:
    """Issue a key and record it; if the record cannot be written the key is revoked at once (no usable
    key without its record) and the error propagates. Returns the row and the plaintext key."""
    record, plaintext = await create_api_key(session=session, pepper=pepper, name=name, role=role)
    try:
        await recorder.record(
            action=Action.APIKEY_CREATED,
            resource=f"apikey:{record.id}",
            details={"key_id": str(record.id), "role": role.value},
        )
    except BaseException:
        await revoke_api_key(session=session, key_id=record.id)
        raise
    return record, plaintext


async def withdraw_api_key(recorder: Recorder, *, session: AsyncSession, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key (404 for an unknown id) and record it; revoking first means a failed record never
    leaves a key usable that its owner wanted gone."""
    record = await revoke_api_key(session=session, key_id=key_id)
    await recorder.record(
        action=Action.APIKEY_REVOKED,
        resource=f"apikey:{record.id}",
        details={"key_id": str(record.id), "role": record.role},
    )
    return record
