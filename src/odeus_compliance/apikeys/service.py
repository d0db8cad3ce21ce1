"""API-key service: keyword-only functions over an explicit session; each owns its transaction.

A key looks like ``oc_<role>_<43 characters of base64url>`` (32 random bytes). The role in the text is a hint
for humans; the stored role decides. Only ``key_prefix`` (the first characters of the random part, to find
the row) and an HMAC of the whole key are stored.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import uuid
from collections.abc import Sequence
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.db.models import ApiKey, utcnow
from odeus_compliance.errors import NotFound, ServiceUnavailable
from odeus_compliance.security import ApiKeyIdentity, ApiKeyPepper, Role

__all__ = [
    "HASH_SCHEME",
    "KEY_PREFIX_LENGTH",
    "SessionAuthenticator",
    "authenticate",
    "create_api_key",
    "list_api_keys",
    "revoke_api_key",
]

HASH_SCHEME: Final = "hmac-sha256-v1"
KEY_PREFIX_LENGTH: Final = 12
_RANDOM_BYTES: Final = 32
_MAX_NAME_LENGTH: Final = 200


def _random_part(presented: str) -> str | None:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "oc" or len(parts[2]) < KEY_PREFIX_LENGTH + 16:
        return None
    return parts[2]


async def create_api_key(
    *, session: AsyncSession, pepper: ApiKeyPepper, name: str, role: Role | str
) -> tuple[ApiKey, str]:
    """Issue a key; returns the stored record and the plaintext key, which exists nowhere else afterwards."""
    role = Role(role)
    name = name.strip()
    if not name or len(name) > _MAX_NAME_LENGTH or not name.isprintable():
        msg = f"the key name must be 1 to {_MAX_NAME_LENGTH} printable characters (no tabs or line breaks)"
        raise ValueError(msg)
    random_part = secrets.token_urlsafe(_RANDOM_BYTES)
    plaintext = f"oc_{role.value}_{random_part}"
    record = ApiKey(
        id=uuid.uuid4(),
        key_prefix=random_part[:KEY_PREFIX_LENGTH],
        key_hash=pepper.digest(plaintext),
        hash_scheme=HASH_SCHEME,
        name=name,
        role=role.value,
        created_at=utcnow(),
    )
    session.add(record)
    await session.commit()
    return record, plaintext


async def authenticate(
    *, session: AsyncSession, pepper: ApiKeyPepper, presented: str
) -> ApiKeyIdentity | None:
    """The identity of a presented key, or ``None`` if it is malformed, unknown or revoked.

    The hash is compared in constant time; a malformed or unknown key still costs one HMAC so the answer
    time does not tell which check failed.
    """
    digest = pepper.digest(presented)
    random_part = _random_part(presented)
    if random_part is None:
        return None
    record = await session.scalar(select(ApiKey).where(ApiKey.key_prefix == random_part[:KEY_PREFIX_LENGTH]))
    if record is None or record.hash_scheme != HASH_SCHEME:
        return None
    if not hmac.compare_digest(digest, record.key_hash) or record.revoked_at is not None:
        return None
    return ApiKeyIdentity(key_id=str(record.id), name=record.name, role=Role(record.role))


async def revoke_api_key(*, session: AsyncSession, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key (idempotent; the row stays so audit records keep naming it)."""
    record = await session.get(ApiKey, key_id)
    if record is None:
        raise NotFound("No API key with that id.")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        await session.commit()
    return record


async def list_api_keys(*, session: AsyncSession) -> Sequence[ApiKey]:
    """Every key, oldest first (hashes included: callers show only id, name, role and dates)."""
    return (await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all()


@dataclasses.dataclass(frozen=True, slots=True)
class SessionAuthenticator:
    """The :class:`~odeus_compliance.security.Authenticator` the app uses: one short session per lookup."""

    sessions: async_sessionmaker[AsyncSession]
    pepper: ApiKeyPepper

    async def __call__(self, presented: str) -> ApiKeyIdentity | None:
        """Look the key up in its own session (the request's session is not open yet).

        A database failure is a 503, not a 401: the client's key may well be fine.
        """
        try:
            async with self.sessions() as session:
                return await authenticate(session=session, pepper=self.pepper, presented=presented)
        except (SQLAlchemyError, OSError):
            raise ServiceUnavailable("Cannot check the API key now: the database is not reachable.") from None
