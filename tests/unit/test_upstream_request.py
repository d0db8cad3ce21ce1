"""Request and zone maths: Berlin's DST months of 2026, zones per end, and splitting at local midnights."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.request import ExportRequest, PeriodEnd
from odeus_compliance.upstream.split import split_request


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("month", "start_utc", "end_utc"),
    [
        (3, _utc(2026, 2, 28, 23), _utc(2026, 3, 31, 21, 59, 59, 999000)),  # CET -> CEST on the 29th
        (10, _utc(2026, 9, 30, 22), _utc(2026, 10, 31, 22, 59, 59, 999000)),  # CEST -> CET on the 25th
    ],
)
def test_berlin_dst_months_have_wall_clock_bodies_and_the_right_instants(
    month: int, start_utc: datetime, end_utc: datetime
) -> None:
    request = ExportRequest.for_month(ExportType.USERS, 2026, month, "Europe/Berlin")
    last = 31
    assert request.body() == {
        "from": {"date": f"2026-{month:02d}-01T00:00:00.000Z", "timezone": "Europe/Berlin"},
        "to": {"date": f"2026-{month:02d}-{last}T23:59:59.999Z", "timezone": "Europe/Berlin"},
    }
    assert request.start.instant == start_utc
    assert request.end.instant == end_utc


def test_each_end_keeps_its_own_zone() -> None:
    request = ExportRequest(
        ExportType.PROJECTS,
        PeriodEnd(datetime(2026, 3, 1), "Europe/Berlin"),  # noqa: DTZ001 - wall-clock time by design
        PeriodEnd(datetime(2026, 3, 31, 23, 59, 59, 999000), "America/New_York"),  # noqa: DTZ001
    )
    assert request.body()["from"]["timezone"] == "Europe/Berlin"
    assert request.body()["to"] == {"date": "2026-03-31T23:59:59.999Z", "timezone": "America/New_York"}
    assert request.end.instant == _utc(2026, 4, 1, 3, 59, 59, 999000)  # EDT, UTC-4


def test_split_a_berlin_march_at_a_local_midnight_keeps_every_instant() -> None:
    request = ExportRequest.for_month(ExportType.USERS, 2026, 3, "Europe/Berlin")
    halves = split_request(request)
    assert halves is not None
    left, right = halves
    assert left.start == request.start
    assert right.end == request.end
    assert left.body()["to"] == {"date": "2026-03-15T23:59:59.999Z", "timezone": "Europe/Berlin"}
    assert right.body()["from"] == {"date": "2026-03-16T00:00:00.000Z", "timezone": "Europe/Berlin"}
    assert (right.start.instant - left.end.instant).total_seconds() == 0.001


def test_split_across_the_october_change_and_down_to_single_days() -> None:
    request = ExportRequest.for_month(ExportType.USERS, 2026, 10, "Europe/Berlin")
    pending = [request]
    days = []
    while pending:
        part = pending.pop()
        halves = split_request(part)
        if halves is None:
            days.append(part)
        else:
            pending.extend(halves)
    assert len(days) == 31
    days.sort(key=lambda p: p.start.instant)
    oct_25 = days[24]
    assert oct_25.body()["from"]["date"] == "2026-10-25T00:00:00.000Z"
    assert (oct_25.end.instant - oct_25.start.instant).total_seconds() == 25 * 3600 - 0.001
    for earlier, later in itertools.pairwise(days):
        assert (later.start.instant - earlier.end.instant).total_seconds() == 0.001


def test_a_single_day_cannot_be_split() -> None:
    day = ExportRequest(
        ExportType.USERS,
        PeriodEnd(datetime(2026, 3, 29), "Europe/Berlin"),  # noqa: DTZ001
        PeriodEnd(datetime(2026, 3, 29, 23, 59, 59, 999000), "Europe/Berlin"),  # noqa: DTZ001
    )
    assert split_request(day) is None
