"""ORM models. Every table and column says what it holds and why, for the reviewer of a data inventory.

The naming convention gives every constraint a stable name, which Alembic needs to alter constraints on
SQLite (batch mode recreates the table and must name what it recreates).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, MetaData, String, TypeDecorator, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["NAMING_CONVENTION", "ApiKey", "Base", "UtcDateTime", "utcnow"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Now, timezone-aware in UTC (the only kind of timestamp we store)."""
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no timezone type and hands back naive values; this makes both databases behave the same.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Refuse naive datetimes (their zone is a guess) and normalise to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to a UtcDateTime column"
            raise ValueError(msg)
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        """Attach UTC to SQLite's naive values."""
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Base of every model; shares one ``MetaData`` with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiKey(Base):
    """An API key for the HTTP API. Only a keyed hash of the key is stored; the key is shown once."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('officer', 'auditor', 'admin')", name="role"),
        {"comment": "API keys for the HTTP API: lookup prefix and keyed hash only, never the key itself"},
    )

    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, default=uuid.uuid4, comment="Key id: shown in logs and the audit log"
    )
    """Key id (random UUID): what logs and audit records name instead of the key."""
    key_prefix: Mapped[str] = mapped_column(
        String(16), unique=True, comment="First characters of the random part, to find the row; not secret"
    )
    """First characters of the key's random part: finds the row without scanning every hash. They are too
    few to guess the rest (the remaining part still holds well over 128 random bits)."""
    key_hash: Mapped[str] = mapped_column(
        String(64), comment="HMAC-SHA-256 of the whole key under a pepper derived from the master key (hex)"
    )
    """HMAC-SHA-256 of the whole key, keyed with a pepper derived from the master key, as hex. A fast hash is
    right here: the key has 256 random bits, so there is nothing to brute-force that a slow hash would
    protect; the pepper means a stolen database alone does not even allow offline checking."""
    hash_scheme: Mapped[str] = mapped_column(
        String(32), default="hmac-sha256-v1", comment="How key_hash was computed, to allow a future change"
    )
    """How ``key_hash`` was computed (``hmac-sha256-v1``), so a later scheme can coexist with old keys."""
    name: Mapped[str] = mapped_column(String(200), comment="Who or what the key is for, as given by an admin")
    """Who or what the key is for (``--name``), for humans reading key lists and audit records."""
    role: Mapped[str] = mapped_column(String(16), comment="officer, auditor or admin")
    """The key's one role: ``officer``, ``auditor`` or ``admin``."""
    created_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, default=utcnow, comment="When the key was issued (UTC)"
    )
    """When the key was issued (UTC)."""
    revoked_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, default=None, comment="When the key was revoked (UTC); null while valid"
    )
    """When the key was revoked (UTC); a revoked key is refused but its row stays for the audit trail."""
