"""Legal holds: a data class, optionally narrowed to one report or a period, with a reason and an expiry.

A hold pauses only the deletions in its scope (GDPR Art. 17(3)(e)); everything else is deleted on time.
It is active while it is neither released nor past its expiry, measured on the run's clock, so a hold
that expired no longer blocks anything. Scope per class:

- ``reports``, ``datasets``: the report named, or every report whose period overlaps the held period;
  without either, every report of the class. A held dataset keeps its whole report (deleting a report
  deletes its dataset).
- ``audit-payloads``: the records about the report named (matched by the keyed resource tag), or the
  records whose time is in the held period; a key epoch holding any such record is not shredded.
- ``key-epochs``: epochs whose lifetime overlaps the held period (all of them without a period).

The reason is free text (a case reference): it is stored and shown to admins, never logged.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.db.models import LegalHold
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.retention_rules import HOLDABLE, DataClass

__all__ = ["Hold", "HoldError", "active_holds", "list_holds", "place_hold", "release_hold"]

MAX_REASON = 500


class HoldError(OdeusComplianceError):
    """A hold cannot be placed or released; the message never repeats the reason."""


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold as stored."""

    id: str
    data_class: DataClass
    report_id: str | None
    period_from: dt.datetime | None
    period_to: dt.datetime | None
    reason: str
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    released_at: dt.datetime | None

    def active_at(self, moment: dt.datetime) -> bool:
        """Whether the hold blocks deletions at ``moment``."""
        return self.released_at is None and (self.expires_at is None or moment < self.expires_at)

    def covers_period(self, start: dt.datetime, end: dt.datetime) -> bool:
        """Whether ``[start, end)`` overlaps the held period (always, when the hold has none)."""
        if self.period_from is not None and end <= self.period_from:
            return False
        return not (self.period_to is not None and start >= self.period_to)

    def covers_report(self, report_id: str, start: dt.datetime, end: dt.datetime) -> bool:
        """Whether the hold keeps the report ``report_id`` of period ``[start, end)``."""
        if self.report_id is not None and self.report_id != report_id:
            return False
        return self.covers_period(start, end)


def _hold(row: LegalHold) -> Hold:
    return Hold(
        id=row.id,
        data_class=DataClass(row.data_class),
        report_id=row.report_id,
        period_from=row.period_from,
        period_to=row.period_to,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        released_at=row.released_at,
    )


async def place_hold(
    *,
    session: AsyncSession,
    data_class: DataClass,
    reason: str,
    created_by: str,
    now: dt.datetime,
    report_id: str | None = None,
    period_from: dt.datetime | None = None,
    period_to: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> Hold:
    """Store a new hold and commit; :class:`HoldError` on a scope that makes no sense."""
    if data_class not in HOLDABLE:
        raise HoldError("raw exports are never stored, so they cannot be held")
    text = reason.strip()
    if not text or len(text) > MAX_REASON:
        raise HoldError(f"a hold needs a reason of 1 to {MAX_REASON} characters")
    if any(m is not None and m.tzinfo is None for m in (period_from, period_to, expires_at)):
        raise HoldError("times need a UTC offset")
    if period_from is not None and period_to is not None and period_to <= period_from:
        raise HoldError("the held period must end after it starts")
    if report_id is not None and data_class is DataClass.KEY_EPOCHS:
        raise HoldError("a key-epochs hold is scoped by period, not by report")
    if expires_at is not None and expires_at <= now:
        raise HoldError("the expiry must be in the future")
    row = LegalHold(
        id="hold_" + secrets.token_hex(8),
        data_class=data_class.value,
        report_id=report_id,
        period_from=period_from,
        period_to=period_to,
        reason=text,
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
        released_at=None,
    )
    session.add(row)
    await session.commit()
    return _hold(row)


async def release_hold(*, session: AsyncSession, hold_id: str, now: dt.datetime) -> bool:
    """Release a hold early (the row stays); False if there is no such unreleased hold."""
    result = await session.execute(
        update(LegalHold)
        .where(LegalHold.id == hold_id, LegalHold.released_at.is_(None))
        .values(released_at=now)
    )
    await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_holds(*, session: AsyncSession) -> list[Hold]:
    """Every hold, newest first."""
    rows = (await session.scalars(select(LegalHold).order_by(LegalHold.created_at.desc()))).all()
    return [_hold(r) for r in rows]


async def active_holds(*, session: AsyncSession, now: dt.datetime) -> Sequence[Hold]:
    """The holds that block deletions at ``now``."""
    rows = (
        await session.scalars(
            select(LegalHold).where(
                LegalHold.released_at.is_(None),
                or_(LegalHold.expires_at.is_(None), LegalHold.expires_at > now),
            )
        )
    ).all()
    return [h for h in (_hold(r) for r in rows) if h.active_at(now)]
