"""Period maths against the calendar: months, quarters and ISO weeks in several zones, across DST changes."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.scheduling.periods import (
    Every,
    Period,
    due_at,
    local_instant,
    period_containing,
    periods_due,
    previous_closed_period,
)

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
UTC = dt.UTC


def hours(period: Period) -> float:
    return period.duration.total_seconds() / 3600


def month(year: int, number: int, zone: str) -> Period:
    return Period(Every.MONTH, dt.date(year, number, 1), zone)


def test_berlin_october_has_745_hours_march_743_and_other_31_day_months_744() -> None:
    october, march, may = (month(2026, m, "Europe/Berlin") for m in (10, 3, 5))
    assert hours(october) == 745
    assert hours(march) == 743
    assert hours(may) == 744
    # the exact instants: CEST (+02:00) until the last Sunday of October, CET (+01:00) after
    assert october.start.astimezone(UTC) == dt.datetime(2026, 9, 30, 22, 0, tzinfo=UTC)
    assert october.end.astimezone(UTC) == dt.datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert march.start.astimezone(UTC) == dt.datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert march.end.astimezone(UTC) == dt.datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert (october.label, march.label) == ("2026-10", "2026-03")


def test_other_zones_follow_their_own_changes() -> None:
    assert hours(month(2026, 3, "America/New_York")) == 743  # DST from 8 March
    assert hours(month(2026, 11, "America/New_York")) == 721  # 30 days + the hour back on 1 November
    assert hours(month(2026, 3, "Asia/Kolkata")) == 744  # no DST
    assert hours(month(2026, 10, "Australia/Lord_Howe")) == 743.5  # half-hour DST from 4 October
    assert hours(month(2026, 4, "Australia/Lord_Howe")) == 720.5  # and back on 5 April
    assert hours(month(2026, 2, "UTC")) == 672
    kolkata = month(2026, 1, "Asia/Kolkata")
    assert kolkata.start.astimezone(UTC) == dt.datetime(2025, 12, 31, 18, 30, tzinfo=UTC)


def test_quarters_and_weeks() -> None:
    q4 = Period(Every.QUARTER, dt.date(2026, 10, 1), "Europe/Berlin")
    assert q4.label == "2026-Q4"
    assert q4.end.astimezone(UTC) == dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert hours(q4) == (31 + 30 + 31) * 24 + 1
    week = period_containing(Every.WEEK, dt.datetime(2026, 10, 28, 12, tzinfo=UTC), "Europe/Berlin")
    assert week.first_day == dt.date(2026, 10, 26)  # a Monday
    assert week.label == "2026-W44"
    dst_week = week.previous()
    assert hours(dst_week) == 7 * 24 + 1  # contains 25 October
    # ISO week-numbering year: 29 December 2025 is in 2026-W01
    assert Period(Every.WEEK, dt.date(2025, 12, 29), "UTC").label == "2026-W01"
    assert period_containing(Every.QUARTER, dt.datetime(2026, 5, 17, tzinfo=UTC), "UTC").label == "2026-Q2"


def test_period_boundaries_follow_the_zone_not_utc() -> None:
    # 23:30 UTC on 31 October is already 1 November in Berlin (CET, +01:00) but still October in New York
    moment = dt.datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
    assert period_containing(Every.MONTH, moment, "Europe/Berlin").label == "2026-11"
    assert period_containing(Every.MONTH, moment, "America/New_York").label == "2026-10"
    assert previous_closed_period(Every.MONTH, moment, "Europe/Berlin").label == "2026-10"
    assert previous_closed_period(Every.MONTH, moment, "America/New_York").label == "2026-09"


def test_due_instant_is_local_day_and_time_after_the_period() -> None:
    october = month(2026, 10, "Europe/Berlin")
    assert due_at(october, day=1, time=dt.time(6, 0)) == dt.datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
    september = month(2026, 9, "Europe/Berlin")
    assert due_at(september, day=3, time=dt.time(6, 0)) == dt.datetime(2026, 10, 3, 4, 0, tzinfo=UTC)
    # weekly: ISO weekday 1 = the Monday after
    week = Period(Every.WEEK, dt.date(2026, 10, 19), "Asia/Kolkata")
    assert due_at(week, day=1, time=dt.time(9, 30)) == dt.datetime(2026, 10, 26, 4, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="day must be 1-28"):
        due_at(october, day=29, time=dt.time(6, 0))


def test_nonexistent_and_ambiguous_wall_times() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 02:30 on 29 March 2026 does not exist in Berlin: it is the instant 30 minutes past the jump
    gap = local_instant(dt.date(2026, 3, 29), dt.time(2, 30), berlin)
    assert gap.astimezone(UTC) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert gap.strftime("%H:%M%z") == "03:30+0200"
    # 02:30 on 25 October 2026 happens twice: the first occurrence (still CEST)
    fold = local_instant(dt.date(2026, 10, 25), dt.time(2, 30), berlin)
    assert fold.astimezone(UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # a zone whose midnight does not exist on a change day (Santiago springs forward at 24:00)
    santiago = ZoneInfo("America/Santiago")
    start = local_instant(dt.date(2026, 9, 6), dt.time(0, 0), santiago)
    assert start.strftime("%H:%M%z") == "01:00-0300"


def test_periods_due_respects_active_from_and_now() -> None:
    kwargs = {"day": 1, "time": dt.time(6, 0), "timezone": "Europe/Berlin"}
    active_from = dt.datetime(2026, 8, 15, tzinfo=UTC)
    # 04:59 UTC on 1 December is 05:59 in Berlin: November is not due yet
    early = dt.datetime(2026, 12, 1, 4, 59, tzinfo=UTC)
    before = periods_due(Every.MONTH, now=early, active_from=active_from, **kwargs)  # type: ignore[arg-type]
    assert [p.label for p in before] == ["2026-08", "2026-09", "2026-10"]
    on_time = dt.datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    at = periods_due(Every.MONTH, now=on_time, active_from=active_from, **kwargs)  # type: ignore[arg-type]
    assert [p.label for p in at] == ["2026-08", "2026-09", "2026-10", "2026-11"]
    assert periods_due(Every.MONTH, now=active_from, active_from=active_from, **kwargs) == []  # type: ignore[arg-type]


moments = st.datetimes(
    min_value=dt.datetime(1990, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=dt.datetime(2060, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=300, deadline=None)
@given(moment=moments, zone=st.sampled_from(ZONES), every=st.sampled_from(list(Every)))
def test_period_containing_contains_and_tiles(moment: dt.datetime, zone: str, every: Every) -> None:
    period = period_containing(every, moment, zone)
    assert period.start.astimezone(UTC) <= moment < period.end.astimezone(UTC)
    # the periods tile time: the next one starts where this one ends, the previous one ends where it starts
    assert period.following().start == period.end
    assert period.previous().end == period.start
    # the start is local midnight of the calendar's first day
    local = period.start.astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (0, 0)
    assert local.date() == period.first_day
    if every is Every.MONTH:
        assert local.day == 1
    elif every is Every.QUARTER:
        assert local.day == 1
        assert local.month in {1, 4, 7, 10}
    else:
        assert local.isoweekday() == 1
    # length: whole local days, give or take the zone's DST shift (at most an hour here)
    days = (period.next_first_day - period.first_day).days
    assert abs(period.duration - dt.timedelta(days=days)) <= dt.timedelta(hours=1)


@settings(max_examples=200, deadline=None)
@given(
    now=moments,
    zone=st.sampled_from(ZONES),
    day=st.integers(1, 28),
    at=st.times(),
    back=st.integers(0, 400),
)
def test_periods_due_are_exactly_those_due_in_the_window(
    now: dt.datetime, zone: str, day: int, at: dt.time, back: int
) -> None:
    active_from = now - dt.timedelta(days=back)
    due = periods_due(Every.MONTH, day=day, time=at, timezone=zone, now=now, active_from=active_from)
    for period in due:
        assert active_from <= due_at(period, day=day, time=at) <= now
    # consecutive, and nothing due is left out at either end
    for earlier, later in itertools.pairwise(due):
        assert earlier.following() == later
    last_closed = previous_closed_period(Every.MONTH, now, zone)
    candidates = [last_closed, last_closed.previous()]
    if due:
        candidates = [due[0].previous(), due[-1].following()]
    for period in candidates:
        if period not in due:
            when = due_at(period, day=day, time=at)
            assert not active_from <= when <= now


@pytest.mark.parametrize("zone", ZONES)
def test_months_agree_with_the_report_periods_and_the_calendar(zone: str) -> None:
    """Every month 2020-2035: the same instants as the reports' own ``ReportPeriod.month`` (written
    independently), a start at local midnight of the 1st, and a length of the calendar's days give or take
    the zone's DST shift that month."""
    from odeus_compliance.reports.jobs import ReportPeriod  # noqa: PLC0415

    tz = ZoneInfo(zone)
    for year in range(2020, 2036):
        for number in range(1, 13):
            period = month(year, number, zone)
            report = ReportPeriod.month(year, number, zone)
            assert (period.start, period.end) == (report.start, report.end), (zone, year, number)
            local = period.start.astimezone(tz)
            assert (local.year, local.month, local.day, local.hour, local.minute) == (year, number, 1, 0, 0)
            start_offset = period.start.utcoffset()
            end_offset = period.end.utcoffset()
            assert start_offset is not None
            assert end_offset is not None
            days = (period.next_first_day - period.first_day).days
            assert period.duration == dt.timedelta(days=days) + (start_offset - end_offset)
