"""How the admins' pages write times: a schedule's or run's times in its own zone with the offset
(``2026-11-02 06:30 +01:00``), everything else (keys, epochs) in UTC with ``Z``."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

__all__ = ["utc_time", "zoned_time"]


def zoned_time(when: dt.datetime | None, zone: str) -> str:
    """``when`` in ``zone``, to the minute, with its UTC offset; empty for no time."""
    if when is None:
        return ""
    local = when.astimezone(ZoneInfo(zone))
    stamp = local.isoformat(timespec="minutes")  # 2026-11-02T06:30+01:00
    return f"{stamp[:10]} {stamp[11:16]} {stamp[16:]}"


def utc_time(when: dt.datetime | None) -> str:
    """``when`` in UTC, to the second, with ``Z``; empty for no time."""
    if when is None:
        return ""
    return f"{when.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}Z"
