"""reports: report jobs and their archive (reports), encrypted artifacts in chunks (report_artifact_chunks).

Revision ID: 0003_reports
Revises: 0002_key_ring_and_audit_log
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_reports"
down_revision: str | None = "0002_key_ring_and_audit_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, comment: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def upgrade() -> None:
    """Create the reports table and the chunked artifact store."""
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=40), nullable=False, comment="Report id (rpt_ + random hex)"),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="queued, running, succeeded, failed"
        ),
        sa.Column(
            "stage", sa.String(length=32), nullable=False, comment="The step the job is at (or ended in)"
        ),
        sa.Column("progress", sa.Float(), nullable=False, comment="0..1"),
        _time("period_start", "Start of the period (UTC)", nullable=False),
        _time("period_end", "End of the period (UTC, exclusive)", nullable=False),
        sa.Column(
            "timezone",
            sa.String(length=64),
            nullable=False,
            comment="IANA zone the period is a calendar month of",
        ),
        sa.Column(
            "policy_name", sa.String(length=64), nullable=False, comment="Policy file name (without .toml)"
        ),
        sa.Column(
            "policy_hash",
            sa.String(length=80),
            nullable=True,
            comment="Canonical hash of the policy, once loaded",
        ),
        sa.Column("purpose", sa.Text(), nullable=False, comment="Why the report was requested (audited)"),
        sa.Column(
            "requested_by",
            sa.String(length=128),
            nullable=False,
            comment="API key id, or cli / demo / schedule:<id>; never a person's name",
        ),
        _time("requested_at", "When it was requested (UTC)", nullable=False),
        _time("started_at", "When the last attempt started"),
        _time("finished_at", "When it succeeded or failed"),
        sa.Column(
            "error",
            sa.Text(),
            nullable=True,
            comment="Why it failed: a reason safe to show (no personal data)",
        ),
        sa.Column("version", sa.Integer(), nullable=False, comment="1, 2, ... per period and policy"),
        sa.Column(
            "supersedes",
            sa.String(length=40),
            nullable=True,
            comment="Id of the earlier version this one replaces",
        ),
        sa.Column(
            "lease_owner",
            sa.String(length=128),
            nullable=True,
            comment="host:pid:random of the runner holding the job",
        ),
        _time("lease_expires_at", "The claim ends unless renewed by then"),
        sa.Column("attempt", sa.Integer(), nullable=False, comment="How many times the job was started"),
        sa.Column(
            "pdf_sha256", sa.String(length=64), nullable=True, comment="SHA-256 of the signed PDF (hex)"
        ),
        sa.Column(
            "has_dataset",
            sa.Boolean(),
            nullable=False,
            comment="Whether the pseudonymised dataset (data.csv) is stored",
        ),
        sa.Column(
            "artifact_key_id",
            sa.String(length=64),
            nullable=True,
            comment="report-data key the artifacts are encrypted under",
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name=op.f("ck_reports_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint(
            "policy_name", "timezone", "period_start", "period_end", "version", name="uq_reports_version"
        ),
        comment="Report jobs and the archive of reports: status, period, policy, lease, results",
    )
    op.create_index("ix_reports_status_requested_at", "reports", ["status", "requested_at"], unique=False)
    op.create_table(
        "report_artifact_chunks",
        sa.Column("report_id", sa.String(length=40), nullable=False, comment="The report"),
        sa.Column("name", sa.String(length=32), nullable=False, comment="report.pdf, data.csv, ..."),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False, comment="0, 1, ..."),
        sa.Column(
            "key_id", sa.String(length=64), nullable=False, comment="report-data key of the ciphertext"
        ),
        sa.Column("data", sa.LargeBinary(), nullable=False, comment="nonce || AES-256-GCM(chunk)"),
        sa.PrimaryKeyConstraint("report_id", "name", "seq", name=op.f("pk_report_artifact_chunks")),
        comment="Encrypted report artifacts (PDF, dataset) in chunks: the store shared by replicas",
    )


def downgrade() -> None:
    """Drop both tables (the artifacts in the database go with them; files in the data dir stay)."""
    op.drop_table("report_artifact_chunks")
    op.drop_index("ix_reports_status_requested_at", table_name="reports")
    op.drop_table("reports")
