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
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    Index,
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

from odeus_compliance.core.clock import utcnow  # re-exported: stored times are aware UTC

__all__ = [
    "NAMING_CONVENTION",
    "ApiKey",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditLogState",
    "Base",
    "DeletionReceipt",
    "Installation",
    "KeyEpoch",
    "LegalHold",
    "Report",
    "ReportArtifactChunk",
    "RetentionRun",
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
        CheckConstraint("role IN ('officer', 'auditor', 'admin', 'metrics')", name="role"),
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
    role: Mapped[str] = mapped_column(String(16), comment="officer, auditor, admin or metrics")
    """The key's one role: ``officer``, ``auditor``, ``admin`` or ``metrics`` (a scraper's)."""
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


class Report(Base):
    """One report: the job that makes it (status, stage, lease) and, once done, what it produced.

    No personal data: ids, the period, the policy, the purpose the requester gave, hashes. The artifacts
    themselves (PDF, dataset, figures) are encrypted in the artifact store, never here in clear.
    """

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index("ix_reports_status_requested_at", "status", "requested_at"),
        # one version number per period and policy, even with several replicas requesting at once
        UniqueConstraint(
            "policy_name", "timezone", "period_start", "period_end", "version", name="uq_reports_version"
        ),
        {"comment": "Report jobs and the archive of reports: status, period, policy, lease, results"},
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, comment="Report id (rpt_ + random hex)")
    """The report's id, ``rpt_`` and 24 random hex digits; named on the cover and in the manifest."""
    status: Mapped[str] = mapped_column(String(16), comment="queued, running, succeeded, failed")
    """Where the job is: ``queued`` -> ``running`` -> ``succeeded`` or ``failed``."""
    stage: Mapped[str] = mapped_column(String(32), comment="The step the job is at (or ended in)")
    """The step of the flow (``fetch``, ``policy``, ``render``, ...), for progress displays."""
    progress: Mapped[float] = mapped_column(Float, default=0.0, comment="0..1")
    """Rough share of the work done, 0 to 1."""
    period_start: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="Start of the period (UTC)")
    """First instant of the period (inclusive)."""
    period_end: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="End of the period (UTC, exclusive)")
    """First instant after the period (exclusive)."""
    timezone: Mapped[str] = mapped_column(String(64), comment="IANA zone the period is a calendar month of")
    """The IANA zone the period and the report's dates are shown in."""
    policy_name: Mapped[str] = mapped_column(String(64), comment="Policy file name (without .toml)")
    """The policy the report applies."""
    policy_hash: Mapped[str | None] = mapped_column(
        String(80), nullable=True, comment="Canonical hash of the policy, once loaded"
    )
    """The canonical hash of the policy as applied (set when the job loads it)."""
    purpose: Mapped[str] = mapped_column(Text, comment="Why the report was requested (audited)")
    """The purpose the requester gave; it also goes into the audit records."""
    requested_by: Mapped[str] = mapped_column(
        String(128), comment="API key id, or cli / demo / schedule:<id>; never a person's name"
    )
    """Who asked: an API key id, ``cli``, ``demo`` or ``schedule:<id>``."""
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="When it was requested (UTC)")
    """When the job was queued."""
    started_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When the last attempt started"
    )
    """When the current (or last) attempt was claimed."""
    finished_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When it succeeded or failed"
    )
    """When the job ended."""
    error: Mapped[str | None] = mapped_column(
        Text, nullable=True, comment="Why it failed: a reason safe to show (no personal data)"
    )
    """Why the job failed, in words safe to show to any caller."""
    version: Mapped[int] = mapped_column(Integer, default=1, comment="1, 2, ... per period and policy")
    """Version of the report for its period and policy (a re-run is a new version)."""
    supersedes: Mapped[str | None] = mapped_column(
        String(40), nullable=True, comment="Id of the earlier version this one replaces"
    )
    """The earlier report of the same period and policy that this one replaces, if any."""
    lease_owner: Mapped[str | None] = mapped_column(
        String(128), nullable=True, comment="host:pid:random of the runner holding the job"
    )
    """Who runs the job now (``host:pid:token``); ``None`` unless running."""
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="The claim ends unless renewed by then"
    )
    """When the claim lapses without renewal; another runner may then take the job over."""
    attempt: Mapped[int] = mapped_column(Integer, default=0, comment="How many times the job was started")
    """How many times the job was claimed (a takeover after a crash is another attempt)."""
    pdf_sha256: Mapped[str | None] = mapped_column(
        String(64), nullable=True, comment="SHA-256 of the signed PDF (hex)"
    )
    """SHA-256 of the signed PDF, once stored."""
    has_dataset: Mapped[bool] = mapped_column(
        Boolean, default=False, comment="Whether the pseudonymised dataset (data.csv) is stored"
    )
    """Whether ``data.csv`` is stored with the report (the policy gives per-person rows)."""
    artifact_key_id: Mapped[str | None] = mapped_column(
        String(64), nullable=True, comment="report-data key the artifacts are encrypted under"
    )
    """The key-ring key (``report-data`` epoch) the stored artifacts are encrypted under."""
    data_until: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime,
        nullable=True,
        comment="Partial report: when its data was fetched, before the period ended (UTC)",
    )
    """Set on a *partial* report only: the instant its data was fetched, which was before the period ended
    (the request asked for a period still running). ``None``: the report covers its whole period."""


class ReportArtifactChunk(Base):
    """One encrypted chunk of a stored report artifact (the shared store on PostgreSQL)."""

    __tablename__ = "report_artifact_chunks"
    __table_args__ = (
        {"comment": "Encrypted report artifacts (PDF, dataset) in chunks: the store shared by replicas"},
    )

    report_id: Mapped[str] = mapped_column(String(40), primary_key=True, comment="The report")
    """The report the artifact belongs to."""
    name: Mapped[str] = mapped_column(String(32), primary_key=True, comment="report.pdf, data.csv, ...")
    """The artifact's name."""
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, comment="0, 1, ...")
    """Position of the chunk in the artifact."""
    key_id: Mapped[str] = mapped_column(String(64), comment="report-data key of the ciphertext")
    """The data key the chunk is encrypted under."""
    data: Mapped[bytes] = mapped_column(LargeBinary, comment="nonce || AES-256-GCM(chunk)")
    """``nonce (12) || ciphertext || tag``, with the report, name, position and last-chunk flag as AD."""


_RETENTION_CLASSES = "('raw-exports', 'datasets', 'reports', 'audit-payloads', 'key-epochs')"


class LegalHold(Base):
    """A legal hold: pauses the retention deletions of one data class that fall in its scope, until it
    expires or is released (GDPR Art. 17(3)(e): data needed for legal claims)."""

    __tablename__ = "legal_holds"
    __table_args__ = (
        CheckConstraint(f"data_class IN {_RETENTION_CLASSES}", name="data_class"),
        {"comment": "Legal holds: a data class, optionally one report or a period; reason; expiry"},
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, comment="Hold id (hold_ + random hex)")
    """The hold's id, ``hold_`` and 16 random hex digits."""
    data_class: Mapped[str] = mapped_column(String(32), comment="The data class whose deletion it pauses")
    """``datasets``, ``reports``, ``audit-payloads`` or ``key-epochs`` (raw exports are never stored)."""
    report_id: Mapped[str | None] = mapped_column(
        String(40), nullable=True, comment="Only this report (null: every report of the class)"
    )
    """Narrows the hold to one report (for audit payloads: the records about that report)."""
    period_from: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="Only data of/at or after this instant (UTC)"
    )
    """Start of the held period: reports whose period overlaps it, audit records whose time is in it."""
    period_to: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="Only data before this instant (UTC, exclusive)"
    )
    """End of the held period (exclusive)."""
    reason: Mapped[str] = mapped_column(Text, comment="Why (a case reference); never logged")
    """Why the data must be kept, e.g. a case reference; shown to admins, never written to a log line."""
    created_by: Mapped[str] = mapped_column(String(128), comment="API key id or cli; never a person's name")
    """Who placed the hold."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, comment="When it was placed")
    """When the hold was placed (UTC)."""
    expires_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When it stops pausing deletions (null: until released)"
    )
    """From this instant on the hold no longer blocks anything; ``None``: until released."""
    released_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When it was released early (null: not released)"
    )
    """When an admin released the hold; the row stays as a record."""


class RetentionRun(Base):
    """One retention run (not dry runs): when, on which clock, what it did. A daily run claims its day."""

    __tablename__ = "retention_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
        {"comment": "Retention runs: trigger, retention clock, outcome; one daily run per UTC day"},
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, comment="Run id (ret_ + random hex)")
    """The run's id, named by its receipts and audit records."""
    trigger: Mapped[str] = mapped_column(String(16), comment="cli or daily")
    """What started the run."""
    daily_key: Mapped[str | None] = mapped_column(
        String(10), nullable=True, unique=True, comment="UTC date of a daily run (unique: one per day)"
    )
    """For a daily run, the UTC date it ran for: the unique constraint lets one replica run it."""
    as_of: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="The retention clock (now, or --now)")
    """The instant the rules were applied at."""
    status: Mapped[str] = mapped_column(String(16), comment="running, succeeded, failed")
    """Where the run is."""
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="When it started (UTC)")
    """When the run started (real clock)."""
    finished_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When it ended (UTC)"
    )
    """When the run ended."""
    summary: Mapped[str | None] = mapped_column(
        Text, nullable=True, comment="JSON: counts per data class; ids only, no personal data"
    )
    """What the run deleted, per data class (JSON)."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True, comment="Why it failed (safe to show)")
    """The failure reason, safe to show."""


class DeletionReceipt(Base):
    """A signed deletion receipt: one data class of one run. Written ``pending`` before anything is
    deleted and marked ``done`` after, so a crash leaves the data or this receipt, never neither."""

    __tablename__ = "deletion_receipts"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'done')", name="status"),
        CheckConstraint(f"data_class IN {_RETENTION_CLASSES}", name="data_class"),
        Index("ix_deletion_receipts_status", "status"),
        {"comment": "Signed deletion receipts: class, what, how many, hash of the deleted ids, method, time"},
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, comment="Receipt id (rcp_ + random hex)")
    """The receipt's id."""
    run_id: Mapped[str] = mapped_column(String(40), index=True, comment="The retention run")
    """The run that wrote it."""
    data_class: Mapped[str] = mapped_column(String(32), comment="The data class deleted")
    """Which retention rule applied."""
    what: Mapped[str] = mapped_column(String(200), comment="What was deleted, in words")
    """What kind of thing the identifiers name (e.g. "report-data key epochs")."""
    method: Mapped[str] = mapped_column(String(64), comment="How: delete-ciphertext, crypto-shred, ...")
    """How it was deleted."""
    count: Mapped[int] = mapped_column(Integer, comment="How many identifiers")
    """How many things were deleted."""
    items: Mapped[str] = mapped_column(
        Text, comment="JSON list of the deleted identifiers, sorted (ids only)"
    )
    """The deleted identifiers (report ids, key ids, folder names), sorted: what a pending receipt still has
    to delete, and what an auditor hashes to check ``items_sha256``."""
    items_sha256: Mapped[str] = mapped_column(String(64), comment="SHA-256 of the sorted ids, one per line")
    """SHA-256 (hex) of the sorted identifiers, each followed by a newline."""
    as_of: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="The retention clock of the run")
    """The instant the rules were applied at."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="When it was written (UTC)")
    """When the receipt was written, before the deletion."""
    completed_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When the deletion completed (UTC)"
    )
    """When the deletion was complete."""
    status: Mapped[str] = mapped_column(String(16), comment="pending or done")
    """``pending`` until the deletion is complete and logged."""
    note: Mapped[str] = mapped_column(Text, comment="The receipt as a C2SP signed note (Ed25519)")
    """The receipt signed with the audit log's checkpoint key (re-signed when it is done)."""
