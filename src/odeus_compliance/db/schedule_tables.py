"""The ``schedules`` and ``schedule_runs`` tables (migration ``0004_schedules``).

They live in the storage layer, below :mod:`odeus_compliance.scheduling` which uses them, in a module of
their own beside :mod:`odeus_compliance.db.models`: they share its ``Base`` (one ``MetaData``, one naming
convention), and the migration environment imports this module.

Exactly once: a run is a row of ``schedule_runs``, unique per (schedule, period start, version). Inserting it
is the claim: of two replicas inserting the same row, the database lets exactly one succeed. The claimant
holds a lease (owner, expiry) that it renews while it works; a run whose lease expired (its replica died) is
taken over by a conditional update that names the old owner, so only one taker wins.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from odeus_compliance.db.models import Base, UtcDateTime

__all__ = [
    "DELIVERY_EMAIL_COUNT",
    "DELIVERY_EMAIL_SEALED",
    "DELIVERY_EMAIL_SHREDDED",
    "RUN_STATUSES",
    "Schedule",
    "ScheduleRun",
]

RUN_STATUSES = ("claimed", "running", "succeeded", "failed", "skipped")
DELIVERY_EMAIL_SEALED = "email_sealed"
"""Field of the stored ``delivery`` JSON: the e-mail recipients, sealed under an audit-data key epoch."""
DELIVERY_EMAIL_COUNT = "email_count"
"""Field of the stored ``delivery`` JSON: how many recipients are sealed."""
DELIVERY_EMAIL_SHREDDED = "email_shredded"
"""Field of the stored ``delivery`` JSON: retention shredded the recipients with their key epoch."""


class Schedule(Base):
    """A schedule: one report per calendar period, due on a day and time in its timezone."""

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint("every IN ('month', 'quarter', 'week')", name="every"),
        CheckConstraint("catch_up IN ('run-missed-once', 'skip-and-record')", name="catch_up"),
        {"comment": "Report schedules: period kind, due day and time in an IANA zone, policy, delivery"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4, comment="Schedule id")
    """Random id; reports of the schedule are requested by ``schedule:<id>``."""
    name: Mapped[str] = mapped_column(String(64), unique=True, comment="Unique name given by an admin")
    """The schedule's unique, identifier-like name."""
    every: Mapped[str] = mapped_column(String(16), comment="month, quarter or week")
    """The period kind."""
    day: Mapped[int] = mapped_column(Integer, comment="Day 1-28 of the month after, or ISO weekday 1-7")
    """Due day after the period ends."""
    time_of_day: Mapped[str] = mapped_column(String(5), comment="Due time HH:MM in the schedule's zone")
    """Due wall time in the zone."""
    timezone: Mapped[str] = mapped_column(String(64), comment="IANA zone of periods and due times")
    """The zone the calendar periods and the due time are in."""
    policy: Mapped[str] = mapped_column(String(64), comment="Policy name the reports use")
    """Name of the policy file the reports are made under."""
    catch_up: Mapped[str] = mapped_column(String(32), comment="run-missed-once or skip-and-record")
    """What happens to periods missed while no replica ran."""
    delivery: Mapped[str] = mapped_column(
        Text, comment="JSON: archive, webhook URL, secret env name, e-mails"
    )
    """Delivery settings as JSON; never a secret (only the name of the variable that holds it), and the e-mail
    addresses only sealed (``email_sealed``: :mod:`odeus_compliance.keys.sealed_text`)."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, comment="Whether run-due considers it")
    """A disabled schedule is kept (with its history) but never runs."""
    active_from: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, comment="Periods due before this instant are never run (UTC)"
    )
    """Periods falling due before this instant belong to before the schedule existed."""
    revision: Mapped[int] = mapped_column(Integer, default=1, comment="1, 2, ...: bumped by every change")
    """Counts changes (audit records name it)."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="When it was created (UTC)")
    """When it was created."""
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="When it last changed (UTC)")
    """When it last changed."""


class ScheduleRun(Base):
    """One run of a schedule for one period and version: the exactly-once claim and its history."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "period_start", "version", name="uq_schedule_runs_claim"),
        CheckConstraint("status IN ('claimed', 'running', 'succeeded', 'failed', 'skipped')", name="status"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint(
            "delivery_status IN ('pending', 'sending', 'delivered', 'failed')", name="delivery_status"
        ),
        Index("ix_schedule_runs_status_retry", "status", "next_retry_at"),
        {"comment": "Runs of schedules: one row per (schedule, period, version), claimed under a lease"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4, comment="Run id")
    """Random id."""
    schedule_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("schedules.id"), index=True, comment="The schedule"
    )
    """The schedule this run belongs to."""
    period_start: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="Period start instant (UTC)")
    """First instant of the period (UTC); with the schedule and version, the claim key."""
    period_end: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, comment="Period end instant, exclusive (UTC)"
    )
    """Instant after the period (UTC)."""
    period_label: Mapped[str] = mapped_column(String(16), comment="2026-10, 2026-Q4 or 2026-W43")
    """Human label of the period in the schedule's zone."""
    timezone: Mapped[str] = mapped_column(String(64), comment="The zone the period was computed in")
    """The zone at the time of the run (a later change of the schedule does not rewrite history)."""
    version: Mapped[int] = mapped_column(Integer, comment="1 for the first run; a re-run adds the next")
    """Version of the period's report: a re-run of a closed period makes the next, superseding the old."""
    status: Mapped[str] = mapped_column(String(16), comment="claimed, running, succeeded, failed, skipped")
    """Where the run stands."""
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="When the period fell due (UTC)")
    """The period's due instant."""
    lease_owner: Mapped[str | None] = mapped_column(
        String(128), nullable=True, comment="Replica holding the lease (host:pid:random)"
    )
    """Who works on the run now; ``None`` once it is finished."""
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When the lease lapses unless renewed (UTC)"
    )
    """After this instant another replica may take the run over."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, comment="Report requests made so far")
    """How many report jobs were requested for this run."""
    next_retry_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When a failed run is tried again (UTC); null: no more tries"
    )
    """For a failed run: the next tick at or after this instant tries again."""
    error: Mapped[str | None] = mapped_column(String(500), nullable=True, comment="Safe failure reason")
    """Why the last attempt failed (or why the run was skipped); never personal data."""
    report_id: Mapped[str | None] = mapped_column(
        String(64), nullable=True, comment="The report job of the latest attempt"
    )
    """The report job requested by the latest attempt (a taker-over follows it instead of asking again)."""
    supersedes_run_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, nullable=True, comment="The run (previous version) this one supersedes"
    )
    """For a re-run: the run of the previous version, kept."""
    requested_by: Mapped[str] = mapped_column(String(128), comment="schedule, or the actor of a re-run")
    """``schedule`` for runs made by ``run-due``; the admin's key id (or ``cli``) for a re-run."""
    claimed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, comment="When the row was claimed (UTC)")
    """When the run was claimed."""
    finished_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When it succeeded, failed for good or was skipped (UTC)"
    )
    """When the run reached its current final status."""
    delivery_status: Mapped[str | None] = mapped_column(
        String(16),
        nullable=True,
        comment="Notification: sending, delivered, failed; null: no webhook or e-mail",
    )
    """Where the notification (webhook, e-mail) of a succeeded run stands (``sending`` holds the lease)."""
    delivery_attempts: Mapped[int] = mapped_column(
        Integer, default=0, comment="Notification deliveries tried"
    )
    """How many deliveries of the notification were tried."""
    delivery_error: Mapped[str | None] = mapped_column(
        String(500), nullable=True, comment="Why the last delivery failed (safe reason)"
    )
    """Why the last delivery failed: an HTTP status or the kind of network error, never the URL."""
    delivery_next_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When a failed delivery is tried again (UTC)"
    )
    """For a failed delivery: the next tick at or after this instant tries again."""
    delivered_channels: Mapped[str | None] = mapped_column(
        String(32), nullable=True, comment="Channels that accepted the notification: webhook, email"
    )
    """Comma-separated channels already delivered, so a retry sends only to the others."""
    delivered_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, comment="When every channel had accepted the notification (UTC)"
    )
    """When the last channel accepted it."""
