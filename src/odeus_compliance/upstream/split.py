"""Splitting a period in two at a local midnight, for exports Odeus refuses as too large.

The split point is a midnight in the *start's* zone, near the middle of the period, so every part is a run
of whole local days (Odeus aggregates by day, and a month split this way still meets at the right instants
across a daylight-saving change). The left part ends one millisecond before that midnight, written in the
start's zone; the right part starts at it; the outer ends keep their own zones. A period that holds no
midnight strictly inside it (one day or less) cannot be split.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from odeus_compliance.core.periods import zone
from odeus_compliance.upstream.request import ExportRequest, PeriodEnd


def split_point(request: ExportRequest) -> PeriodEnd | None:
    """The midnight (start's zone) that halves the period, or ``None`` if the period is a day or less."""
    tz_name = request.start.timezone
    tz = zone(tz_name)
    start, end = request.start.instant, request.end.instant
    first_day = start.astimezone(tz).date()
    last_day = end.astimezone(tz).date()
    days = (last_day - first_day).days
    if days < 1:
        return None
    middle = first_day + timedelta(days=(days + 1) // 2)
    candidates = [middle + timedelta(days=offset) for offset in (0, -1, 1)]
    for day in candidates:
        point = PeriodEnd(datetime.combine(day, time()), tz_name)
        if start < point.instant <= end and day > first_day:
            return point
    return None


def split_request(request: ExportRequest) -> tuple[ExportRequest, ExportRequest] | None:
    """The two halves of ``request``'s period, or ``None`` if it cannot be split further."""
    point = split_point(request)
    if point is None:
        return None
    left_end = PeriodEnd(point.wall_time - timedelta(milliseconds=1), point.timezone)
    return request.with_period(request.start, left_end), request.with_period(point, request.end)
