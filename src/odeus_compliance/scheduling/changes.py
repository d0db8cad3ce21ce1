"""The audited action of creating or changing a schedule, called by the API, the command line and the
console alike: it checks the e-mail recipients against the configured allow-list, saves the schedule and,
when anything changed, records ``schedule.changed`` with the recipients as keyed hashes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit.recorder import Recorder
from odeus_compliance.audit.records import Action
from odeus_compliance.keys.sealed_text import TextSealer
from odeus_compliance.scheduling.model import ScheduleSpec
from odeus_compliance.scheduling.recipients import RecipientHasher, check_recipients
from odeus_compliance.scheduling.schemas import ScheduleIn
from odeus_compliance.scheduling.service import SavedSchedule, find_schedule, load_spec, save_schedule
from odeus_compliance.settings import Settings

__all__ = ["change_schedule", "change_schedule_rule"]


async def change_schedule(
    recorder: Recorder,
    *,
    session: AsyncSession,
    spec: ScheduleSpec,
    policy_dir: Path,
    now: dt.datetime,
    allowed_recipients: frozenset[str],
    hasher: RecipientHasher,
    active_from: dt.datetime | None = None,
) -> SavedSchedule:
    """Create or change the schedule ``spec.name`` (see :func:`save_schedule`, whose ``ScheduleError``
    propagates, as for a recipient that is not allowed) and record the change; an unchanged definition
    writes no record."""
    check_recipients(spec.delivery.email_to, allowed_recipients)
    saved = await save_schedule(
        session=session,
        spec=spec,
        policy_dir=policy_dir,
        now=now,
        active_from=active_from,
        sealer=TextSealer(recorder.appender.kek),  # recipients sealed under the epoch of the record below
    )
    if saved.changed:
        await recorder.record(
            action=Action.SCHEDULE_CHANGED,
            resource=f"schedule:{saved.schedule.id}",
            details={
                "schedule": spec.name,
                "status": "created" if saved.created else "changed",
                "policy": spec.policy,
                "timezone": spec.timezone,
                **({"recipients": hasher.digest(spec.delivery.email_to)} if spec.delivery.email_to else {}),
            },
        )
    return saved


async def change_schedule_rule(
    recorder: Recorder,
    *,
    session: AsyncSession,
    rule: ScheduleIn,
    settings: Settings,
    now: dt.datetime,
    active_from: dt.datetime | None = None,
) -> SavedSchedule:
    """Create or change the rule of the schedule ``rule.name`` (``PUT /api/v1/schedules`` and the console's
    schedule forms) through :func:`change_schedule`. Who receives the reports is not part of a rule: a
    changed schedule keeps its delivery (its recipients opened, to be sealed again with the change)."""
    existing = await find_schedule(session=session, name=rule.name)
    delivery = None
    if existing is not None:
        stored = await load_spec(session=session, row=existing, sealer=TextSealer(recorder.appender.kek))
        delivery = stored.delivery.to_json()
    spec = ScheduleSpec.build(
        name=rule.name,
        every=rule.every,
        day=rule.day,
        time=rule.time,
        timezone=rule.timezone,
        policy=rule.policy,
        catch_up=rule.catch_up,
        delivery=delivery,
        enabled=rule.enabled,
    )
    return await change_schedule(
        recorder,
        session=session,
        spec=spec,
        policy_dir=settings.policy_dir,
        now=now,
        allowed_recipients=settings.mail_recipients,
        hasher=RecipientHasher(settings.require_master_key()),
        active_from=active_from,
    )
