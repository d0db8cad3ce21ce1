"""key ring and audit log: installation, key_epochs, audit_log_state, audit_entries, audit_checkpoints.

Revision ID: 0002_key_ring_and_audit_log
Revises: 0001_api_keys
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_key_ring_and_audit_log"
down_revision: str | None = "0001_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the key-ring and audit-log tables, and the audit log's empty head row."""
    op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False, comment="Always 1"),
        sa.Column(
            "install_id",
            sa.String(length=64),
            nullable=False,
            comment="Random id made by 'keys init'; not secret",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, comment="When it was made"),
        sa.CheckConstraint("id = 1", name=op.f("ck_installation_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
        comment="One row: the installation id that names this service's audit log",
    )
    op.create_table(
        "key_epochs",
        sa.Column("key_id", sa.String(length=64), nullable=False, comment="<kind>:<epoch>:<random hex>"),
        sa.Column(
            "kind",
            sa.String(length=32),
            nullable=False,
            comment="audit-data, pseudonymisation, checkpoint-signing",
        ),
        sa.Column(
            "epoch", sa.Integer(), nullable=False, comment="1, 2, ...: the newest live epoch is current"
        ),
        sa.Column(
            "wrapped",
            sa.LargeBinary(),
            nullable=True,
            comment="nonce || AES-256-GCM(KEK, key); null once destroyed",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, comment="When it was made"),
        sa.Column(
            "destroyed_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the key material was destroyed (UTC)",
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_epochs")),
        sa.UniqueConstraint("kind", "epoch", name="uq_key_epochs_kind_epoch"),
        comment="The key ring: data keys and the checkpoint signer, wrapped (AES-256-GCM) by the master key",
    )
    state = op.create_table(
        "audit_log_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False, comment="Always 1"),
        sa.Column("size", sa.BigInteger(), nullable=False, comment="Number of leaves: the next seq"),
        sa.Column(
            "peaks", sa.Text(), nullable=False, comment="JSON list of base64 subtree roots (compact range)"
        ),
        sa.Column(
            "checkpoint_size", sa.BigInteger(), nullable=False, comment="Size of the newest checkpoint"
        ),
        sa.Column(
            "checkpoint_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the newest checkpoint was signed",
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_log_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log_state")),
        comment="One row: audit log size and Merkle peaks; the append lock",
    )
    op.bulk_insert(state, [{"id": 1, "size": 0, "peaks": "[]", "checkpoint_size": 0, "checkpoint_at": None}])
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False, comment="Leaf index"),
        sa.Column(
            "leaf",
            sa.Text(),
            nullable=False,
            comment="The leaf text (canonical JSON; encrypted record inside)",
        ),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False, comment="SHA-256(0x00 || leaf)"),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False, comment="Record time (UTC)"),
        sa.Column(
            "key_id", sa.String(length=64), nullable=False, comment="Data key (epoch) of the ciphertext"
        ),
        sa.Column("action", sa.String(length=32), nullable=True, comment="Action (filter)"),
        sa.Column("outcome", sa.String(length=16), nullable=True, comment="Outcome (filter)"),
        sa.Column(
            "actor_key_id",
            sa.String(length=128),
            nullable=True,
            comment="Actor's API key id (filter); never the key",
        ),
        sa.Column(
            "resource_tag",
            sa.String(length=64),
            nullable=True,
            comment="HMAC of the resource under a key-ring key (filter)",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
        comment="Audit log leaves (encrypted records) and filter columns without personal data",
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entries_time"), ["time"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_key_id"), ["key_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_actor_key_id"), ["actor_key_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_resource_tag"), ["resource_tag"], unique=False)
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False, comment="Tree size"),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False, comment="Merkle root at that size"),
        sa.Column("note", sa.Text(), nullable=False, comment="The signed note text"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, comment="When it was signed"),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_checkpoints")),
        comment="Signed checkpoints of the audit log: one per tree size",
    )


def downgrade() -> None:
    """Drop the audit-log and key-ring tables (this destroys the log and every key)."""
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        for name in ("resource_tag", "actor_key_id", "action", "key_id", "time"):
            batch_op.drop_index(batch_op.f(f"ix_audit_entries_{name}"))
    op.drop_table("audit_entries")
    op.drop_table("audit_log_state")
    op.drop_table("key_epochs")
    op.drop_table("installation")
