"""ORM models. Every table and column says what it holds and why, for the reviewer of a data inventory.

The naming convention gives every constraint a stable name, which Alembic needs to alter constraints on
SQLite (batch mode recreates the table and must name what it recreates).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "NAMING_CONVENTION",
    "ApiKey",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditLogState",
    "Base",
    "Installation",
    "KeyEpoch",
    "UtcDateTime",
    "utcnow",
]

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


class Installation(Base):
    """This installation's identity: one row, made once, naming the audit log (its origin)."""

    __tablename__ = "installation"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        {"comment": "One row: the installation id that names this service's audit log"},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, comment="Always 1")
    """Always 1: the table has a single row."""
    install_id: Mapped[str] = mapped_column(String(64), comment="Random id made by 'keys init'; not secret")
    """Random id made once; the audit log's origin is ``odeus-compliance/<install_id>``."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, comment="When it was made")
    """When the installation id was made (UTC)."""


class KeyEpoch(Base):
    """One epoch of one kind of key in the key ring, wrapped under a KEK derived from the master key."""

    __tablename__ = "key_epochs"
    __table_args__ = (
        UniqueConstraint("kind", "epoch", name="uq_key_epochs_kind_epoch"),
        {
            "comment": "The key ring: data keys and the checkpoint signer, wrapped (AES-256-GCM) by the master key"  # noqa: E501
        },
    )

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True, comment="<kind>:<epoch>:<random hex>")
    """The key's id: ``<kind>:<epoch>:<8 random hex digits>``; leaves name their data key by it."""
    kind: Mapped[str] = mapped_column(String(32), comment="audit-data, pseudonymisation, checkpoint-signing")
    """What the key is for."""
    epoch: Mapped[int] = mapped_column(Integer, comment="1, 2, ...: the newest live epoch is current")
    """Epoch number within the kind; the newest epoch is the current key."""
    wrapped: Mapped[bytes | None] = mapped_column(
        LargeBinary, nullable=True, comment="nonce || AES-256-GCM(KEK, key); null once destroyed"
    )
    """``nonce (12) || AES-256-GCM(KEK, key material, ad=key_id)``; ``None`` after destruction (shredded)."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, comment="When it was made")
    """When the epoch began (UTC)."""
    destroyed_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, default=None, comment="When the key material was destroyed (UTC)"
    )
    """When the key was destroyed; everything encrypted under it is shredded from then on."""


class AuditLogState(Base):
    """The audit log's head, one row: its size and compact range. Locked by every append."""

    __tablename__ = "audit_log_state"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        {"comment": "One row: audit log size and Merkle peaks; the append lock"},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, comment="Always 1")
    """Always 1."""
    size: Mapped[int] = mapped_column(BigInteger, comment="Number of leaves: the next seq")
    """Number of leaves so far, i.e. the next sequence number."""
    peaks: Mapped[str] = mapped_column(Text, comment="JSON list of base64 subtree roots (compact range)")
    """The Merkle compact range as a JSON list of base64 hashes, largest subtree first."""
    checkpoint_size: Mapped[int] = mapped_column(BigInteger, comment="Size of the newest checkpoint")
    """Tree size of the newest signed checkpoint (0: none yet)."""
    checkpoint_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When the newest checkpoint was signed"
    )
    """When the newest checkpoint was signed."""


class AuditEntry(Base):
    """One leaf of the audit log, plus plaintext-free columns the auditor API filters on."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        {"comment": "Audit log leaves (encrypted records) and filter columns without personal data"},
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, comment="Leaf index")
    """Sequence number, the leaf's index in the Merkle tree."""
    leaf: Mapped[str] = mapped_column(Text, comment="The leaf text (canonical JSON; encrypted record inside)")
    """The leaf text exactly as hashed into the tree."""
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), comment="SHA-256(0x00 || leaf)")
    """The RFC 9162 leaf hash (for proofs without re-hashing every leaf)."""
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True, comment="Record time (UTC)")
    """The record's time (as in the leaf)."""
    key_id: Mapped[str] = mapped_column(String(64), index=True, comment="Data key (epoch) of the ciphertext")
    """The data key the record is encrypted under."""
    action: Mapped[str | None] = mapped_column(
        String(32), nullable=True, index=True, comment="Action (filter)"
    )
    """The record's action, for filtering; cleared when the epoch is shredded."""
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True, comment="Outcome (filter)")
    """The record's outcome, for filtering; cleared when the epoch is shredded."""
    actor_key_id: Mapped[str | None] = mapped_column(
        String(128), nullable=True, index=True, comment="Actor's API key id (filter); never the key"
    )
    """The actor's API key id, for filtering; cleared when the epoch is shredded."""
    resource_tag: Mapped[str | None] = mapped_column(
        String(64), nullable=True, index=True, comment="HMAC of the resource under a key-ring key (filter)"
    )
    """Keyed hash of the resource (resources might name a pseudonym); cleared when the epoch is shredded."""


class AuditCheckpoint(Base):
    """A signed checkpoint (C2SP signed note) of the audit log."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = ({"comment": "Signed checkpoints of the audit log: one per tree size"},)

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, comment="Tree size")
    """Tree size; one checkpoint per size, so the log can never sign two roots for one size."""
    root: Mapped[bytes] = mapped_column(LargeBinary(32), comment="Merkle root at that size")
    """The root the note signs."""
    note: Mapped[str] = mapped_column(Text, comment="The signed note text")
    """The C2SP signed note."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, comment="When it was signed")
    """When it was signed (UTC)."""
