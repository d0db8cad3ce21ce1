"""Request and response bodies of the schedule API (msgspec Structs), and their conversion from rows."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from odeus_compliance.db.schedule_tables import Schedule, ScheduleRun
from odeus_compliance.scheduling.periods import Every, Period, due_at, period_containing
from odeus_compliance.scheduling.service import delivery_summary, spec_of

__all__ = ["RunList", "RunOut", "ScheduleIn", "ScheduleList", "ScheduleOut", "run_out", "schedule_out"]


class DeliveryIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who receives a schedule's reports (set by an officer). The archive is always kept."""

    webhook_url: str | None = None
    """https URL notified with a signed body (ids, period, hash: no data) when a report is ready."""
    webhook_secret_env: str | None = None
    """The environment variable (``ODEUS_COMPLIANCE_WEBHOOK_<NAME>``) holding the webhook's HMAC key."""
    email_to: list[str] = msgspec.field(default_factory=list)
    """At most 20 addresses, each allowed by ``ODEUS_COMPLIANCE_MAIL_RECIPIENTS`` (an address or its
    ``@domain``)."""
    email_attach_pdf: bool = False
    """Attach the signed figures-only PDF (never per-person rows) instead of sending a link."""


class ScheduleIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A schedule to create or replace (matched by ``name``)."""

    name: str
    """Unique name: 1-64 characters from A-Z a-z 0-9 . _ -."""
    every: str
    """``month``, ``quarter`` or ``week``."""
    day: int
    """Due day after the period: 1-28 of the following month (month, quarter) or ISO weekday 1-7 (week)."""
    time: str
    """Due time ``HH:MM`` in ``timezone``."""
    timezone: str
    """IANA zone the calendar periods and the due time are in, e.g. ``Europe/Berlin``."""
    policy: str
    """Name of the policy the reports are made under."""
    catch_up: str = "run-missed-once"
    """``run-missed-once`` (every missed period runs once) or ``skip-and-record``."""
    delivery: dict[str, Any] | None = None
    """Not accepted here (403): who receives the reports is set by an officer with
    ``PUT /api/v1/schedules/{id}/delivery``; a changed schedule keeps its delivery."""
    enabled: bool = True
    """A disabled schedule keeps its definition and history but never runs."""
    active_from: dt.datetime | None = None
    """Periods falling due before this instant are not run (default: when the schedule is created; a change of
    ``every`` or ``timezone``, or enabling it again, moves it to the time of the change)."""


class ScheduleOut(msgspec.Struct, frozen=True):
    """A schedule as stored. Delivery is summarised: no webhook URL, no e-mail addresses."""

    id: uuid.UUID
    name: str
    every: str
    day: int
    time: str
    timezone: str
    policy: str
    catch_up: str
    delivery: dict[str, Any]
    """``archive``, ``webhook`` (yes/no), ``email_recipients`` (how many), ``email_attach_pdf``, and
    ``email_recipients_shredded`` once retention shredded the recipients with their key epoch."""
    enabled: bool
    active_from: dt.datetime
    revision: int
    created_at: dt.datetime
    updated_at: dt.datetime
    next_period: str
    """The next period to fall due (label such as ``2026-11``)."""
    next_due_at: dt.datetime
    """When that period falls due (RFC 3339 with offset, in the schedule's zone)."""


class ScheduleList(msgspec.Struct, frozen=True):
    """Every schedule, by name."""

    schedules: list[ScheduleOut]


class RunOut(msgspec.Struct, frozen=True):
    """One run of a schedule for one period and version."""

    id: uuid.UUID
    period: str
    period_from: dt.datetime
    period_to: dt.datetime
    timezone: str
    version: int
    status: str
    """``claimed``, ``running``, ``succeeded``, ``failed`` or ``skipped``."""
    due_at: dt.datetime
    attempts: int
    report_id: str | None
    error: str | None
    next_retry_at: dt.datetime | None
    supersedes_run_id: uuid.UUID | None
    claimed_at: dt.datetime
    finished_at: dt.datetime | None
    delivery_status: str | None
    """Notification (webhook, e-mail): ``delivered``, ``failed`` (retried later), ``sending``; null: none."""
    delivery_attempts: int
    delivery_error: str | None
    delivery_next_at: dt.datetime | None
    delivered_channels: list[str]
    """Channels that accepted the notification (``webhook``, ``email``)."""
    delivered_at: dt.datetime | None


class RunList(msgspec.Struct, frozen=True):
    """A schedule's runs, newest period first."""

    schedule_id: uuid.UUID
    runs: list[RunOut]


def _next_due(row: Schedule, now: dt.datetime) -> tuple[Period, dt.datetime]:
    """The next period that will run: due after ``now`` and not before ``active_from``."""
    spec = spec_of(row)
    earliest = max(now, row.active_from - dt.timedelta(microseconds=1))
    period = period_containing(spec.every, earliest, spec.timezone).previous()
    while due_at(period, day=spec.day, time=spec.time) <= earliest:
        period = period.following()
    return period, due_at(period, day=spec.day, time=spec.time).astimezone(period.zone)


def schedule_out(row: Schedule, *, now: dt.datetime) -> ScheduleOut:
    """The response form of ``row``; ``now`` decides what is next."""
    period, when = _next_due(row, now)
    return ScheduleOut(
        id=row.id,
        name=row.name,
        every=Every(row.every).value,
        day=row.day,
        time=row.time_of_day,
        timezone=row.timezone,
        policy=row.policy,
        catch_up=row.catch_up,
        delivery=delivery_summary(row),
        enabled=row.enabled,
        active_from=row.active_from,
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_period=period.label,
        next_due_at=when,
    )


def run_out(row: ScheduleRun) -> RunOut:
    """The response form of a run; period bounds in the run's zone."""
    zone = ZoneInfo(row.timezone)
    return RunOut(
        id=row.id,
        period=row.period_label,
        period_from=row.period_start.astimezone(zone),
        period_to=row.period_end.astimezone(zone),
        timezone=row.timezone,
        version=row.version,
        status=row.status,
        due_at=row.due_at.astimezone(zone),
        attempts=row.attempts,
        report_id=row.report_id,
        error=row.error,
        next_retry_at=row.next_retry_at,
        supersedes_run_id=row.supersedes_run_id,
        claimed_at=row.claimed_at,
        finished_at=row.finished_at,
        delivery_status=row.delivery_status,
        delivery_attempts=row.delivery_attempts,
        delivery_error=row.delivery_error,
        delivery_next_at=row.delivery_next_at,
        delivered_channels=[c for c in (row.delivered_channels or "").split(",") if c],
        delivered_at=row.delivered_at,
    )
