"""SQL of the denial counters (``access_denial_windows``): count a refusal, claim a window's summary, mark it
written, delete what is done. The same statements serve SQLite and PostgreSQL.

Counting is one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``: every replica adds to the same row and
gets the row's new count back, so the n-th refusal of a window is the n-th for the whole installation.
Writing a summary is claimed under a lease (a conditional update naming no owner or an expired one), so one
replica writes it; a replica that dies after writing the record but before marking it leaves the claim to
expire, and the summary is written once more (a count may then appear twice, never be lost).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Final

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from odeus_compliance.db.denial_tables import AccessDenialWindow

__all__ = [
    "DueSummary",
    "Refusal",
    "claim_summary",
    "count_refusal",
    "delete_done",
    "due_windows",
    "mark_summarized",
    "release",
]

_T: Final = AccessDenialWindow
_DUE_BATCH: Final = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """One refused request as the counter stores it (no personal data outside ``sealed``)."""

    tag: str
    window_start: dt.datetime
    window_end: dt.datetime
    sealed: bytes
    http_status: int
    reason: str
    method: str
    route: str


@dataclasses.dataclass(frozen=True, slots=True)
class DueSummary:
    """A claimed window whose refusals beyond the single records are not all in the log yet: its first
    refusal (what the summary names) and its counters."""

    first: Refusal
    count: int
    singles: int
    limited: int
    summarized: int
    summarized_limited: int

    @property
    def pending(self) -> int:
        """Refusals this summary records."""
        return self.count - self.singles - self.summarized

    @property
    def pending_limited(self) -> int:
        """Of them, answered 429."""
        return self.limited - self.summarized_limited


def _insert(conn: AsyncConnection) -> Any:
    """The dialect's ``insert`` (both have ``on_conflict_do_update``)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(_T)
    return sqlite.insert(_T)


async def count_refusal(conn: AsyncConnection, refusal: Refusal, *, records: int, limit: int) -> int:
    """Count one refusal; return the window's count including it (1 for the first). The first ``records``
    refusals take a single-record slot, refusals after ``limit`` count as answered 429, and the first one
    past the single records names the status, reason, method and route the summary will show."""
    after = _T.count + 1
    first_summarised = records + 1
    stmt = _insert(conn).values(
        subject_tag=refusal.tag,
        window_start=refusal.window_start,
        window_end=refusal.window_end,
        subject=refusal.sealed,
        http_status=refusal.http_status,
        reason=refusal.reason,
        method=refusal.method,
        route=refusal.route,
        count=1,
        singles=1 if records >= 1 else 0,
        limited=1 if limit < 1 else 0,
        summarized=0,
        summarized_limited=0,
    )
    excluded = stmt.excluded

    def first(column: str) -> Any:
        return case((after == first_summarised, excluded[column]), else_=_T.__table__.c[column])

    stmt = stmt.on_conflict_do_update(
        index_elements=[_T.subject_tag, _T.window_start],
        set_={
            "count": after,
            "singles": _T.singles + case((after <= records, 1), else_=0),
            "limited": _T.limited + case((after > limit, 1), else_=0),
            "http_status": first("http_status"),
            "reason": first("reason"),
            "method": first("method"),
            "route": first("route"),
        },
    ).returning(_T.count)
    return int((await conn.execute(stmt)).scalar_one())


def _unsummarised() -> Any:
    return _T.count > _T.singles + _T.summarized


async def due_windows(
    conn: AsyncConnection, *, ended_by: dt.datetime | None
) -> list[tuple[str, dt.datetime]]:
    """Windows with refusals not yet in the log that ended by ``ended_by`` (``None``: every window)."""
    query = select(_T.subject_tag, _T.window_start).where(_unsummarised())
    if ended_by is not None:
        query = query.where(_T.window_end <= ended_by)
    rows = await conn.execute(query.order_by(_T.window_end).limit(_DUE_BATCH))
    return [(tag, start) for tag, start in rows.all()]


async def claim_summary(
    conn: AsyncConnection, key: tuple[str, dt.datetime], *, owner: str, now: dt.datetime, until: dt.datetime
) -> DueSummary | None:
    """Claim a window's summary for ``owner`` until ``until``; ``None`` if another replica holds it or
    nothing is left to summarise."""
    tag, start = key
    stmt = (
        update(_T)
        .where(
            _T.subject_tag == tag,
            _T.window_start == start,
            _unsummarised(),
            or_(_T.lease_owner.is_(None), _T.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=until)
        .returning(
            _T.subject_tag,
            _T.window_start,
            _T.window_end,
            _T.subject,
            _T.http_status,
            _T.reason,
            _T.method,
            _T.route,
            _T.count,
            _T.singles,
            _T.limited,
            _T.summarized,
            _T.summarized_limited,
        )
    )
    row = (await conn.execute(stmt)).mappings().one_or_none()
    if row is None:
        return None
    first = Refusal(
        tag=row["subject_tag"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        sealed=row["subject"],
        http_status=row["http_status"],
        reason=row["reason"],
        method=row["method"],
        route=row["route"],
    )
    return DueSummary(
        first=first,
        count=row["count"],
        singles=row["singles"],
        limited=row["limited"],
        summarized=row["summarized"],
        summarized_limited=row["summarized_limited"],
    )


async def mark_summarized(conn: AsyncConnection, summary: DueSummary, *, owner: str) -> None:
    """The summary of ``summary`` is in the log: count its refusals as recorded and release the claim."""
    await conn.execute(
        update(_T)
        .where(
            _T.subject_tag == summary.first.tag,
            _T.window_start == summary.first.window_start,
            _T.lease_owner == owner,
        )
        .values(
            summarized=summary.count - summary.singles,
            summarized_limited=summary.limited,
            lease_owner=None,
            lease_until=None,
        )
    )


async def release(conn: AsyncConnection, summary: DueSummary, *, owner: str) -> None:
    """Give a claim back without recording (the summary could not be written)."""
    await conn.execute(
        update(_T)
        .where(
            _T.subject_tag == summary.first.tag,
            _T.window_start == summary.first.window_start,
            _T.lease_owner == owner,
        )
        .values(lease_owner=None, lease_until=None)
    )


async def delete_done(conn: AsyncConnection, *, ended_by: dt.datetime) -> int:
    """Delete windows that ended by ``ended_by`` whose every refusal is in the log; how many."""
    result = await conn.execute(
        delete(_T).where(
            _T.window_end <= ended_by,
            and_(_T.count <= _T.singles + _T.summarized, _T.lease_owner.is_(None)),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
