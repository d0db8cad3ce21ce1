"""Store, read and list schedules and their runs. Keyword-only functions with an explicit session; each
function that writes commits its own transaction.

E-mail recipients are personal data: the ``delivery`` column stores them sealed under the audit log's
current key epoch (:class:`~odeus_compliance.keys.sealed_text.TextSealer`, bound to the schedule's id), as
``email_sealed`` with their number in ``email_count`` and an empty ``email_to``; retention shreds them with
that epoch, like the ``schedule.changed`` record that names them (as keyed hashes). :func:`load_spec` opens
them; :func:`spec_of` reads everything else without the key ring (for timing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.db.schedule_tables import (
    DELIVERY_EMAIL_COUNT,
    DELIVERY_EMAIL_SEALED,
    DELIVERY_EMAIL_SHREDDED,
    Schedule,
    ScheduleRun,
)
from odeus_compliance.keys.sealed_text import TextSealer
from odeus_compliance.policy.service import find_policy
from odeus_compliance.scheduling.model import CatchUp, Delivery, ScheduleError, ScheduleSpec
from odeus_compliance.scheduling.periods import Every

__all__ = [
    "SavedSchedule",
    "check_policy",
    "delivery_summary",
    "find_schedule",
    "get_schedule",
    "list_runs",
    "list_schedules",
    "load_spec",
    "save_schedule",
    "spec_of",
]


@dataclass(frozen=True, slots=True)
class SavedSchedule:
    """The outcome of :func:`save_schedule`."""

    schedule: Schedule
    created: bool
    changed: bool
    """False when the stored definition already was exactly this one (nothing written)."""


def check_policy(*, policy_dir: Path, name: str) -> None:
    """Refuse a schedule whose policy is not a valid file of the policy folder."""
    entry = find_policy(policy_dir=policy_dir, name=name)
    if entry is None:
        raise ScheduleError(
            "policy is not a policy of the policy folder (see 'policy check' or GET /api/v1/policies)"
        )
    if entry.policy is None:
        raise ScheduleError("policy is not valid, so no report can use it (see 'policy check')")


def _recipients_context(schedule_id: uuid.UUID) -> str:
    return f"schedule-recipients:{schedule_id}"


def _stored_delivery(row: Schedule) -> tuple[dict[str, Any], str | None, int, bool]:
    """The delivery as stored: its plain fields, the sealed recipients, their number, whether shredded."""
    data = json.loads(row.delivery)
    sealed = data.pop(DELIVERY_EMAIL_SEALED, None)
    shredded = bool(data.pop(DELIVERY_EMAIL_SHREDDED, False))
    count = int(data.pop(DELIVERY_EMAIL_COUNT, len(data.get("email_to") or ())))
    return data, sealed, count, shredded


def spec_of(row: Schedule) -> ScheduleSpec:
    """The definition stored in ``row``, without opening its e-mail recipients (``delivery.email_to`` is
    empty when they are sealed): what the timing of runs needs. :func:`load_spec` opens them."""
    data, _sealed, _count, shredded = _stored_delivery(row)
    hours, minutes = row.time_of_day.split(":")
    return ScheduleSpec(
        name=row.name,
        every=Every(row.every),
        day=row.day,
        time=dt.time(int(hours), int(minutes)),
        timezone=row.timezone,
        policy=row.policy,
        catch_up=CatchUp(row.catch_up),
        delivery=dataclasses.replace(Delivery.from_json(data), recipients_shredded=shredded),
        enabled=row.enabled,
    )


async def load_spec(*, session: AsyncSession, row: Schedule, sealer: TextSealer) -> ScheduleSpec:
    """The definition stored in ``row`` with its e-mail recipients opened; recipients whose key epoch was
    shredded read as none, with ``delivery.recipients_shredded`` set."""
    spec = spec_of(row)
    _data, sealed, _count, _shredded = _stored_delivery(row)
    if sealed is None:
        return spec
    opened = await sealer.open(session, sealed, context=_recipients_context(row.id))
    delivery = (
        dataclasses.replace(spec.delivery, recipients_shredded=True)
        if opened is None
        else dataclasses.replace(spec.delivery, email_to=tuple(json.loads(opened)))
    )
    return dataclasses.replace(spec, delivery=delivery)


def delivery_summary(row: Schedule) -> dict[str, Any]:
    """What an admin or officer sees of the stored delivery (no URL, no addresses; their number)."""
    data, _sealed, count, shredded = _stored_delivery(row)
    summary = Delivery.from_json(data).describe()
    summary["email_recipients"] = 0 if shredded else count
    if shredded:
        summary["email_recipients_shredded"] = True
    return summary


async def _apply(session: AsyncSession, row: Schedule, spec: ScheduleSpec, sealer: TextSealer | None) -> None:
    row.every = spec.every.value
    row.day = spec.day
    row.time_of_day = spec.time_text
    row.timezone = spec.timezone
    row.policy = spec.policy
    row.catch_up = spec.catch_up.value
    stored = spec.delivery.to_json()
    recipients = stored.pop("email_to")
    stored["email_to"] = []
    if recipients:
        if sealer is None:
            msg = "e-mail recipients are stored sealed: saving them needs the key ring (a sealer)"
            raise ValueError(msg)
        text = json.dumps(recipients, ensure_ascii=False)
        stored[DELIVERY_EMAIL_SEALED] = await sealer.seal(session, text, context=_recipients_context(row.id))
        stored[DELIVERY_EMAIL_COUNT] = len(recipients)
    row.delivery = json.dumps(stored, sort_keys=True)
    row.enabled = spec.enabled


async def _stored_spec(session: AsyncSession, row: Schedule, sealer: TextSealer | None) -> ScheduleSpec:
    if sealer is None:
        if _stored_delivery(row)[1] is not None:
            msg = "the schedule's e-mail recipients are sealed: reading them needs the key ring (a sealer)"
            raise ValueError(msg)
        return spec_of(row)
    return await load_spec(session=session, row=row, sealer=sealer)


async def save_schedule(
    *,
    session: AsyncSession,
    spec: ScheduleSpec,
    policy_dir: Path,
    now: dt.datetime,
    active_from: dt.datetime | None = None,
    sealer: TextSealer | None = None,
) -> SavedSchedule:
    """Create the schedule called ``spec.name`` or change it (upsert by name). ``sealer`` seals and opens
    the e-mail recipients (required when the schedule has any).

    ``active_from`` (default ``now`` for a new schedule, unchanged for an existing one unless its period kind
    or timezone changes or it is enabled again, then ``now``) is the earliest due instant that counts:
    periods that fell due before the schedule existed, before its periods were redefined or while it was
    disabled are not run.
    """
    check_policy(policy_dir=policy_dir, name=spec.policy)
    row = await find_schedule(session=session, name=spec.name)
    if row is None:
        row = Schedule(
            id=uuid.uuid4(),
            name=spec.name,
            active_from=active_from or now,
            revision=1,
            created_at=now,
            updated_at=now,
        )
        await _apply(session, row, spec, sealer)
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise ScheduleError("a schedule of that name was created at the same time; try again") from None
        return SavedSchedule(row, created=True, changed=True)
    old = await _stored_spec(session, row, sealer)
    if old == spec and (active_from is None or active_from == row.active_from):
        return SavedSchedule(row, created=False, changed=False)
    await _apply(session, row, spec, sealer)
    if active_from is not None:
        row.active_from = active_from
    elif (old.every, old.timezone) != (spec.every, spec.timezone) or (spec.enabled and not old.enabled):
        # new period boundaries: the periods already run under the old ones would look unrun and be run a
        # second time (or recorded as skipped); re-enabled: the periods of the pause were switched off, not
        # missed. Either way only periods falling due from now on count
        row.active_from = now
    row.revision += 1
    row.updated_at = now
    await session.commit()
    return SavedSchedule(row, created=False, changed=True)


async def find_schedule(*, session: AsyncSession, name: str) -> Schedule | None:
    """The schedule called ``name``, or ``None``."""
    return (await session.execute(select(Schedule).where(Schedule.name == name))).scalar_one_or_none()


async def get_schedule(*, session: AsyncSession, schedule_id: uuid.UUID) -> Schedule | None:
    """The schedule with id ``schedule_id``, or ``None``."""
    return await session.get(Schedule, schedule_id)


async def list_schedules(*, session: AsyncSession) -> Sequence[Schedule]:
    """Every schedule, by name."""
    return (await session.execute(select(Schedule).order_by(Schedule.name))).scalars().all()


async def list_runs(
    *, session: AsyncSession, schedule_id: uuid.UUID, limit: int = 200
) -> Sequence[ScheduleRun]:
    """The schedule's runs, newest period first, newest version first within a period."""
    query = (
        select(ScheduleRun)
        .where(ScheduleRun.schedule_id == schedule_id)
        .order_by(ScheduleRun.period_start.desc(), ScheduleRun.version.desc())
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()
