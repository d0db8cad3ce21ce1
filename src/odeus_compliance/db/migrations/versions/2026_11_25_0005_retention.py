"""retention: legal holds, retention runs and signed deletion receipts.

Revision ID: 0005_retention
Revises: 0004_schedules
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_retention"
down_revision: str | None = "0004_schedules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLASSES = "data_class IN ('raw-exports', 'datasets', 'reports', 'audit-payloads', 'key-epochs')"


def _time(name: str, comment: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def upgrade() -> None:
    """Create the holds, the runs and the receipts."""
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.String(length=40), nullable=False, comment="Hold id (hold_ + random hex)"),
        sa.Column(
            "data_class",
            sa.String(length=32),
            nullable=False,
            comment="The data class whose deletion it pauses",
        ),
        sa.Column(
            "report_id",
            sa.String(length=40),
            nullable=True,
            comment="Only this report (null: every report of the class)",
        ),
        _time("period_from", "Only data of/at or after this instant (UTC)", nullable=True),
        _time("period_to", "Only data before this instant (UTC, exclusive)", nullable=True),
        sa.Column("reason", sa.Text(), nullable=False, comment="Why (a case reference); never logged"),
        sa.Column(
            "created_by",
            sa.String(length=128),
            nullable=False,
            comment="API key id or cli; never a person's name",
        ),
        _time("created_at", "When it was placed"),
        _time("expires_at", "When it stops pausing deletions (null: until released)", nullable=True),
        _time("released_at", "When it was released early (null: not released)", nullable=True),
        sa.CheckConstraint(_CLASSES, name=op.f("ck_legal_holds_data_class")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
        comment="Legal holds: a data class, optionally one report or a period; reason; expiry",
    )
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.String(length=40), nullable=False, comment="Run id (ret_ + random hex)"),
        sa.Column("trigger", sa.String(length=16), nullable=False, comment="cli or daily"),
        sa.Column(
            "daily_key",
            sa.String(length=10),
            nullable=True,
            comment="UTC date of a daily run (unique: one per day)",
        ),
        _time("as_of", "The retention clock (now, or --now)"),
        sa.Column("status", sa.String(length=16), nullable=False, comment="running, succeeded, failed"),
        _time("started_at", "When it started (UTC)"),
        _time("finished_at", "When it ended (UTC)", nullable=True),
        sa.Column(
            "summary",
            sa.Text(),
            nullable=True,
            comment="JSON: counts per data class; ids only, no personal data",
        ),
        sa.Column("error", sa.Text(), nullable=True, comment="Why it failed (safe to show)"),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_retention_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
        sa.UniqueConstraint("daily_key", name=op.f("uq_retention_runs_daily_key")),
        comment="Retention runs: trigger, retention clock, outcome; one daily run per UTC day",
    )
    op.create_table(
        "deletion_receipts",
        sa.Column("id", sa.String(length=40), nullable=False, comment="Receipt id (rcp_ + random hex)"),
        sa.Column("run_id", sa.String(length=40), nullable=False, comment="The retention run"),
        sa.Column("data_class", sa.String(length=32), nullable=False, comment="The data class deleted"),
        sa.Column("what", sa.String(length=200), nullable=False, comment="What was deleted, in words"),
        sa.Column(
            "method",
            sa.String(length=64),
            nullable=False,
            comment="How: delete-ciphertext, crypto-shred, ...",
        ),
        sa.Column("count", sa.Integer(), nullable=False, comment="How many identifiers"),
        sa.Column(
            "items",
            sa.Text(),
            nullable=False,
            comment="JSON list of the deleted identifiers, sorted (ids only)",
        ),
        sa.Column(
            "items_sha256",
            sa.String(length=64),
            nullable=False,
            comment="SHA-256 of the sorted ids, one per line",
        ),
        _time("as_of", "The retention clock of the run"),
        _time("created_at", "When it was written (UTC)"),
        _time("completed_at", "When the deletion completed (UTC)", nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False, comment="pending or done"),
        sa.Column("note", sa.Text(), nullable=False, comment="The receipt as a C2SP signed note (Ed25519)"),
        sa.CheckConstraint("status IN ('pending', 'done')", name=op.f("ck_deletion_receipts_status")),
        sa.CheckConstraint(_CLASSES, name=op.f("ck_deletion_receipts_data_class")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deletion_receipts")),
        comment="Signed deletion receipts: class, what, how many, hash of the deleted ids, method, time",
    )
    op.create_index(op.f("ix_deletion_receipts_run_id"), "deletion_receipts", ["run_id"])
    op.create_index("ix_deletion_receipts_status", "deletion_receipts", ["status"])


def downgrade() -> None:
    """Drop the receipts, runs and holds."""
    op.drop_index("ix_deletion_receipts_status", table_name="deletion_receipts")
    op.drop_index(op.f("ix_deletion_receipts_run_id"), table_name="deletion_receipts")
    op.drop_table("deletion_receipts")
    op.drop_table("retention_runs")
    op.drop_table("legal_holds")
