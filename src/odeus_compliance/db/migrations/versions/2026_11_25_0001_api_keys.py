"""api_keys: API keys for the HTTP API (lookup prefix and keyed hash only).

Revision ID: 0001_api_keys
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_api_keys"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``api_keys``."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False, comment="Key id: shown in logs and the audit log"),
        sa.Column(
            "key_prefix",
            sa.String(length=16),
            nullable=False,
            comment="First characters of the random part, to find the row; not secret",
        ),
        sa.Column(
            "key_hash",
            sa.String(length=64),
            nullable=False,
            comment="HMAC-SHA-256 of the whole key under a pepper derived from the master key (hex)",
        ),
        sa.Column(
            "hash_scheme",
            sa.String(length=32),
            nullable=False,
            comment="How key_hash was computed, to allow a future change",
        ),
        sa.Column(
            "name",
            sa.String(length=200),
            nullable=False,
            comment="Who or what the key is for, as given by an admin",
        ),
        sa.Column("role", sa.String(length=16), nullable=False, comment="officer, auditor or admin"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, comment="When the key was issued (UTC)"
        ),
        sa.Column(
            "revoked_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the key was revoked (UTC); null while valid",
        ),
        sa.CheckConstraint("role IN ('officer', 'auditor', 'admin')", name=op.f("ck_api_keys_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_prefix", name=op.f("uq_api_keys_key_prefix")),
        comment="API keys for the HTTP API: lookup prefix and keyed hash only, never the key itself",
    )


def downgrade() -> None:
    """Drop ``api_keys``."""
    op.drop_table("api_keys")
