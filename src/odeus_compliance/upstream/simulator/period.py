"""Reading an export request body the way Odeus does, with Odeus's 400 messages.

Each end's ``date`` is wall-clock time in that end's IANA ``timezone``; a trailing ``Z`` is stripped (so
``...T00:00:00.000Z`` with ``Europe/Berlin`` is Berlin midnight). A date without a time means midnight. A
wall time that a DST change skips or repeats takes Python's ``fold=0`` reading, like the client's model.

Where the contract is silent: a date with a numeric UTC offset (``+02:00``, even ``+00:00``) is a 400
``Invalid date range`` saying so. Ignoring the offset like the ``Z`` would silently shift the period of a
caller who meant it; honouring it would contradict "wall-clock time in that zone". Milliseconds are optional
(1 to 6 digits); a lower-case ``z`` is not accepted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from odeus_compliance.upstream.columns import ALLOWED_GROUP_BY, BYOK_ONLY_GROUP_BY, ExportType, GroupBy
from odeus_compliance.upstream.simulator.errors import OdeusError
from odeus_compliance.upstream.simulator.usage import Period

INVALID_RANGE = "Invalid date range"
_DATE_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?Z?")
# A date-time with a numeric offset (+02:00, -0500, +00:00): refused rather than read, see the module doc.
_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?[+-]\d{2}(?::?\d{2})?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """A validated request: the period (instants and wall-clock dates) and the grouping."""

    period: Period
    start: datetime  # UTC
    end: datetime  # UTC
    group_by: GroupBy | None


def _wall_time(value: object, where: str) -> datetime:
    if isinstance(value, str) and _OFFSET.fullmatch(value.strip()):
        msg = (
            f"{where}.date carries a UTC offset; give the wall-clock time in {where}.timezone "
            "(YYYY-MM-DDTHH:MM:SS.sssZ, the Z is ignored)"
        )
        raise OdeusError(400, INVALID_RANGE, msg)
    if not isinstance(value, str) or (match := _DATE_TIME.fullmatch(value.strip())) is None:
        msg = f"{where}.date is not an ISO 8601 date-time (expected YYYY-MM-DDTHH:MM:SS.sssZ)"
        raise OdeusError(400, INVALID_RANGE, msg)
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(  # noqa: DTZ001 - wall-clock time; the zone is applied by the caller
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        msg = f"{where}.date is not a valid calendar date-time"
        raise OdeusError(400, INVALID_RANGE, msg) from None


def _zone(value: object, where: str) -> ZoneInfo:
    if value is None or value == "":
        raise OdeusError(400, INVALID_RANGE, f"{where}.timezone is missing")
    if not isinstance(value, str):
        raise OdeusError(400, INVALID_RANGE, f"{where}.timezone is not a string (an IANA zone name)")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"{where}.timezone is not a known IANA time zone"
        raise OdeusError(400, INVALID_RANGE, msg) from None


def _end(body: dict[str, Any], where: str) -> tuple[datetime, datetime]:
    """(wall-clock time, UTC instant) of one end."""
    part = body.get(where)
    if not isinstance(part, dict):
        raise OdeusError(400, INVALID_RANGE, f"{where} must be an object with date and timezone")
    if "date" not in part:
        raise OdeusError(400, INVALID_RANGE, f"{where}.date is missing")
    wall = _wall_time(part["date"], where)
    zone = _zone(part.get("timezone"), where)
    return wall, wall.replace(tzinfo=zone).astimezone(UTC)


def _ms(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of the request body."""
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise OdeusError(400, "Bad Request", "The request body must be a JSON object with from and to")
    return body


def parse_query(body: dict[str, Any], export_type: ExportType, *, byok: bool) -> ExportQuery:
    """Validate the body's period and grouping (400 on any problem, saying which part is wrong)."""
    start_wall, start = _end(body, "from")
    end_wall, end = _end(body, "to")
    if start > end:
        raise OdeusError(400, INVALID_RANGE, "from is after to")
    group_by = _group_by(body.get("group_by"), export_type, byok=byok)
    period = Period(_ms(start), _ms(end), start_wall.date(), end_wall.date())
    return ExportQuery(period, start, end, group_by)


def _group_by(value: object, export_type: ExportType, *, byok: bool) -> GroupBy | None:
    if value is None:
        return None
    allowed = {g for g in ALLOWED_GROUP_BY[export_type] if byok or g not in BYOK_ONLY_GROUP_BY}
    try:
        group_by = GroupBy(value) if isinstance(value, str) else None
    except ValueError:
        group_by = None
    if group_by is None or group_by not in allowed:
        offered = ", ".join(sorted(g.value for g in allowed)) or "none"
        msg = f"Unsupported group_by for {export_type.value} exports (supported: {offered})"
        raise OdeusError(400, "Invalid group_by", msg)
    return group_by


def history_start(today: date, months: int) -> datetime:
    """The oldest instant an export may start at: 00:00 UTC on today's date ``months`` months ago."""
    month_index = today.year * 12 + today.month - 1 - months
    year, month = divmod(month_index, 12)
    first_of_month = date(year, month + 1, 1)
    next_month = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    day = min(today.day, (next_month - first_of_month).days)
    return datetime(year, month + 1, day, tzinfo=UTC)


def utc_stamp(instant: datetime, *, offset_variant: bool = False) -> str:
    """``2024-01-31T23:59:59.999Z`` (or the same instant as ``+01:00`` for the offset variant)."""
    if offset_variant:
        shifted = instant + timedelta(hours=1)
        return shifted.strftime("%Y-%m-%dT%H:%M:%S.") + f"{shifted.microsecond // 1000:03d}+01:00"
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"
