"""schedules: schedules and schedule_runs (exactly-once claims with leases).

Revision ID: 0004_schedules
Revises: 0003_reports
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_schedules"
down_revision: str | None = "0003_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, comment: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def upgrade() -> None:
    """Create the schedules and their runs."""
    op.create_table(
        "schedules",
        sa.Column("id", sa.Uuid(), nullable=False, comment="Schedule id"),
        sa.Column("name", sa.String(length=64), nullable=False, comment="Unique name given by an admin"),
        sa.Column("every", sa.String(length=16), nullable=False, comment="month, quarter or week"),
        sa.Column(
            "day", sa.Integer(), nullable=False, comment="Day 1-28 of the month after, or ISO weekday 1-7"
        ),
        sa.Column(
            "time_of_day",
            sa.String(length=5),
            nullable=False,
            comment="Due time HH:MM in the schedule's zone",
        ),
        sa.Column(
            "timezone", sa.String(length=64), nullable=False, comment="IANA zone of periods and due times"
        ),
        sa.Column("policy", sa.String(length=64), nullable=False, comment="Policy name the reports use"),
        sa.Column(
            "catch_up", sa.String(length=32), nullable=False, comment="run-missed-once or skip-and-record"
        ),
        sa.Column(
            "delivery",
            sa.Text(),
            nullable=False,
            comment="JSON: archive, webhook URL, secret env name, e-mails",
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False, comment="Whether run-due considers it"),
        _time("active_from", "Periods due before this instant are never run (UTC)"),
        sa.Column("revision", sa.Integer(), nullable=False, comment="1, 2, ...: bumped by every change"),
        _time("created_at", "When it was created (UTC)"),
        _time("updated_at", "When it last changed (UTC)"),
        sa.CheckConstraint("every IN ('month', 'quarter', 'week')", name=op.f("ck_schedules_every")),
        sa.CheckConstraint(
            "catch_up IN ('run-missed-once', 'skip-and-record')", name=op.f("ck_schedules_catch_up")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_schedules_name")),
        comment="Report schedules: period kind, due day and time in an IANA zone, policy, delivery",
    )
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Uuid(), nullable=False, comment="Run id"),
        sa.Column("schedule_id", sa.Uuid(), nullable=False, comment="The schedule"),
        _time("period_start", "Period start instant (UTC)"),
        _time("period_end", "Period end instant, exclusive (UTC)"),
        sa.Column(
            "period_label", sa.String(length=16), nullable=False, comment="2026-10, 2026-Q4 or 2026-W43"
        ),
        sa.Column(
            "timezone", sa.String(length=64), nullable=False, comment="The zone the period was computed in"
        ),
        sa.Column(
            "version", sa.Integer(), nullable=False, comment="1 for the first run; a re-run adds the next"
        ),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="claimed, running, succeeded, failed, skipped",
        ),
        _time("due_at", "When the period fell due (UTC)"),
        sa.Column(
            "lease_owner",
            sa.String(length=128),
            nullable=True,
            comment="Replica holding the lease (host:pid:random)",
        ),
        _time("lease_expires_at", "When the lease lapses unless renewed (UTC)", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, comment="Report requests made so far"),
        _time(
            "next_retry_at",
            "When a failed run is tried again (UTC); null: no more tries",
            nullable=True,
        ),
        sa.Column("error", sa.String(length=500), nullable=True, comment="Safe failure reason"),
        sa.Column(
            "report_id", sa.String(length=64), nullable=True, comment="The report job of the latest attempt"
        ),
        sa.Column(
            "supersedes_run_id",
            sa.Uuid(),
            nullable=True,
            comment="The run (previous version) this one supersedes",
        ),
        sa.Column(
            "requested_by",
            sa.String(length=128),
            nullable=False,
            comment="schedule, or the actor of a re-run",
        ),
        _time("claimed_at", "When the row was claimed (UTC)"),
        _time("finished_at", "When it succeeded, failed for good or was skipped (UTC)", nullable=True),
        sa.Column(
            "delivery_status",
            sa.String(length=16),
            nullable=True,
            comment="Notification: sending, delivered, failed; null: no webhook or e-mail",
        ),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False, comment="Notification deliveries tried"),
        sa.Column(
            "delivery_error",
            sa.String(length=500),
            nullable=True,
            comment="Why the last delivery failed (safe reason)",
        ),
        _time("delivery_next_at", "When a failed delivery is tried again (UTC)", nullable=True),
        sa.Column(
            "delivered_channels",
            sa.String(length=32),
            nullable=True,
            comment="Channels that accepted the notification: webhook, email",
        ),
        _time("delivered_at", "When every channel had accepted the notification (UTC)", nullable=True),
        sa.CheckConstraint(
            "status IN ('claimed', 'running', 'succeeded', 'failed', 'skipped')",
            name=op.f("ck_schedule_runs_status"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_schedule_runs_version")),
        sa.CheckConstraint(
            "delivery_status IN ('pending', 'sending', 'delivered', 'failed')",
            name=op.f("ck_schedule_runs_delivery_status"),
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedules.id"], name=op.f("fk_schedule_runs_schedule_id_schedules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_runs")),
        sa.UniqueConstraint("schedule_id", "period_start", "version", name="uq_schedule_runs_claim"),
        comment="Runs of schedules: one row per (schedule, period, version), claimed under a lease",
    )
    op.create_index(op.f("ix_schedule_runs_schedule_id"), "schedule_runs", ["schedule_id"])
    op.create_index("ix_schedule_runs_status_retry", "schedule_runs", ["status", "next_retry_at"])


def downgrade() -> None:
    """Drop the runs, then the schedules."""
    op.drop_index("ix_schedule_runs_status_retry", table_name="schedule_runs")
    op.drop_index(op.f("ix_schedule_runs_schedule_id"), table_name="schedule_runs")
    op.drop_table("schedule_runs")
    op.drop_table("schedules")
