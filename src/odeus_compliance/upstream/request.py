"""What we ask Odeus for: an export type, a period whose two ends each carry their own time zone, a grouping.

Odeus reads each end's date-time as wall-clock time in that end's IANA zone (a trailing ``Z`` is ignored; the
client sends one, as the contract's examples do), and the end is inclusive to the millisecond.
``ExportRequest.for_month`` builds the usual monthly period so that the daylight-saving change never shifts a
month's boundary.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from odeus_compliance.core.periods import zone
from odeus_compliance.upstream.columns import ALLOWED_GROUP_BY, ExportType, GroupBy

# The last representable instant of a period, as Odeus writes it: inclusive, to the millisecond.
END_OF_DAY_MS = timedelta(days=1, milliseconds=-1)


class ExportFormat(enum.StrEnum):
    """The explicit format routes; the bare route behaves like CSV."""

    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class PeriodEnd:
    """One end of a period: a wall-clock date-time (naive, to the millisecond) and the zone it is read in."""

    wall_time: datetime
    timezone: str

    def __post_init__(self) -> None:
        if self.wall_time.tzinfo is not None:
            msg = "a period end is wall-clock time: pass a naive datetime and the zone separately"
            raise ValueError(msg)
        zone(self.timezone)

    @property
    def instant(self) -> datetime:
        """The UTC instant this end denotes (an ambiguous wall time takes its first occurrence)."""
        return self.wall_time.replace(tzinfo=zone(self.timezone)).astimezone(UTC)

    def to_wire(self) -> dict[str, str]:
        """The ``{"date", "timezone"}`` object of the request body.

        The date is written exactly as the published contract shows it (``2024-01-01T00:00:00.000Z``, an
        OpenAPI ``date-time``); Odeus strips the ``Z`` and reads the wall-clock time in ``timezone``. A
        date without the ``Z`` is not an RFC 3339 date-time, which a validating upstream may refuse.
        """
        stamp = self.wall_time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.wall_time.microsecond // 1000:03d}Z"
        return {"date": stamp, "timezone": self.timezone}

    @classmethod
    def from_instant(cls, instant: datetime, timezone: str) -> PeriodEnd:
        """The wall-clock end in ``timezone`` that denotes ``instant``."""
        local = instant.astimezone(zone(timezone)).replace(tzinfo=None)
        return cls(local.replace(microsecond=local.microsecond // 1000 * 1000), timezone)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """One call to the Usage Export API."""

    export_type: ExportType
    start: PeriodEnd
    end: PeriodEnd
    group_by: GroupBy | None = None
    export_format: ExportFormat = ExportFormat.CSV

    def __post_init__(self) -> None:
        if self.start.instant > self.end.instant:
            msg = "the period starts after it ends"
            raise ValueError(msg)
        if self.group_by is not None and self.group_by not in ALLOWED_GROUP_BY[self.export_type]:
            msg = f"group_by {self.group_by.value!r} is not offered for {self.export_type.value} exports"
            raise ValueError(msg)

    @classmethod
    def for_month(
        cls,
        export_type: ExportType,
        year: int,
        month: int,
        timezone: str,
        *,
        group_by: GroupBy | None = None,
        export_format: ExportFormat = ExportFormat.CSV,
    ) -> ExportRequest:
        """The calendar month in ``timezone``: the 1st at 00:00:00.000 to the last day at 23:59:59.999."""
        first = date(year, month, 1)
        next_first = date(year + month // 12, month % 12 + 1, 1)
        start = datetime.combine(first, datetime.min.time())
        end = datetime.combine(next_first, datetime.min.time()) - timedelta(milliseconds=1)
        return cls(
            export_type,
            PeriodEnd(start, timezone),
            PeriodEnd(end, timezone),
            group_by=group_by,
            export_format=export_format,
        )

    @property
    def path(self) -> str:
        """The route for this request, relative to the base URL."""
        return f"/export/{self.export_type.value}/{self.export_format.value}"

    def body(self) -> dict[str, Any]:
        """The JSON body Odeus expects."""
        body: dict[str, Any] = {"from": self.start.to_wire(), "to": self.end.to_wire()}
        if self.group_by is not None:
            body["group_by"] = self.group_by.value
        return body

    def with_period(self, start: PeriodEnd, end: PeriodEnd) -> ExportRequest:
        """The same request over another period (used when a too-large export is split)."""
        return replace(self, start=start, end=end)
