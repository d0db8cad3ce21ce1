"""Request and response bodies of the schedule API (msgspec Structs), and their conversion from rows."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from odeus_compliance.db.schedule_tables import Schedule, ScheduleRun
from odeus_compliance.scheduling.periods import Every, Period, due_at, period_containing
from odeus_compliance.scheduling.service import delivery_summary, spec_of

__all__ = ["RunList", "RunOut", "ScheduleIn", "ScheduleList", "ScheduleOut", "run_out", "schedule_out"]


def _doc(description: str, *examples: object, **constraints: Any) -> msgspec.Meta:
    """A field's OpenAPI description, examples and constraints (the field docstrings do not reach it)."""
    return msgspec.Meta(description=description, examples=list(examples) or None, **constraints)


class DeliveryIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who receives a schedule's reports (set by an officer). The archive is always kept."""

    webhook_url: (
        Annotated[
            str,
            _doc(
                "An `https://` URL (plain `http://` only to this host's loopback address) notified with a "
                "signed body (ids, period, hash: no data) when a report is ready; no user or password in it.",
                "https://hooks.example.com/odeus-compliance",
                max_length=2000,
            ),
        ]
        | None
    ) = None
    webhook_secret_env: (
        Annotated[
            str,
            _doc(
                "The environment variable holding the webhook's signing key (never the key itself); required "
                "with `webhook_url`.",
                "ODEUS_COMPLIANCE_WEBHOOK_DPO",
                pattern=r"^ODEUS_COMPLIANCE_WEBHOOK_[A-Z0-9_]{1,40}$",
            ),
        ]
        | None
    ) = None
    email_to: Annotated[
        list[str],
        _doc(
            "At most 20 plain ASCII addresses, each allowed by `ODEUS_COMPLIANCE_MAIL_RECIPIENTS` (an "
            "address or its `@domain`).",
            ["dpo@example.com"],
        ),
    ] = msgspec.field(default_factory=list)
    email_attach_pdf: Annotated[
        bool, _doc("Attach the signed figures-only PDF (never per-person rows) instead of sending a link.")
    ] = False


class ScheduleIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A schedule to create or replace (matched by `name`)."""

    name: Annotated[
        str,
        _doc(
            "Unique name: 1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit.",
            "monthly-berlin",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        ),
    ]
    every: Annotated[Literal["month", "quarter", "week"], _doc("The period each report covers.", "month")]
    day: Annotated[
        int,
        _doc(
            "Due day after the period: 1-28 of the following month (`month`, `quarter`) or the ISO weekday "
            "1-7 (`week`, 1 = Monday).",
            1,
        ),
    ]
    time: Annotated[
        str,
        _doc(
            "Due time `HH:MM` (24-hour clock) in `timezone`.",
            "07:30",
            pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        ),
    ]
    timezone: Annotated[
        str,
        _doc("The IANA zone the calendar periods and the due time are in.", "Europe/Berlin", max_length=64),
    ]
    policy: Annotated[
        str,
        _doc(
            "The name of the policy the reports are made under (`GET /api/v1/policies`).",
            "default",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        ),
    ]
    catch_up: Annotated[
        Literal["run-missed-once", "skip-and-record"],
        _doc(
            "Periods missed while no replica ran: `run-missed-once` (each runs once, oldest first) or "
            "`skip-and-record` (only the latest runs; the others are recorded as skipped)."
        ),
    ] = "run-missed-once"
    delivery: Annotated[
        dict[str, Any] | None,
        _doc(
            "Not accepted here (403): who receives the reports is set by an officer with "
            "`PUT /api/v1/schedules/{schedule_id}/delivery`; a changed schedule keeps its delivery."
        ),
    ] = None
    enabled: Annotated[bool, _doc("A disabled schedule keeps its definition and history but never runs.")] = (
        True
    )
    active_from: Annotated[
        dt.datetime | None,
        _doc(
            "Periods falling due before this instant (RFC 3339 with offset) are not run. Default: when the "
            "schedule is created; a change of `every` or `timezone`, or enabling it again, moves it to the "
            "time of the change.",
            "2026-11-01T00:00:00+01:00",
        ),
    ] = None


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
