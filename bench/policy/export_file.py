"""Writing a users export file with the simulator's own workspace generator and renderer (no HTTP).

The same seed and user count give the same bytes, so the benchmark's input is cached under
``bench/results/`` and regenerated only when missing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.render import select, to_csv, visible_columns
from odeus_compliance.upstream.simulator.usage import Period, Privacy, build_table
from odeus_compliance.upstream.simulator.workspace import generate_workspace

TODAY = date(2026, 11, 25)  # fixed, so the cached file does not change with the calendar


def last_month(today: date) -> Period:
    """The calendar month before ``today``, in UTC."""
    first = today.replace(day=1)
    start = (first - timedelta(days=1)).replace(day=1)
    start_ms = int(datetime(start.year, start.month, 1, tzinfo=UTC).timestamp() * 1000)
    end_ms = int(datetime(first.year, first.month, 1, tzinfo=UTC).timestamp() * 1000) - 1
    return Period(start_ms, end_ms, start, first - timedelta(days=1))


def users_export_csv(config: SimulatorConfig, *, today: date = TODAY) -> bytes:
    """The CSV bytes of last month's users export of the workspace ``config`` describes."""
    workspace = generate_workspace(
        users=config.users, seed=config.seed, today=today, age_days=config.workspace_age_days
    )
    privacy = Privacy(config.user_level_data, config.anonymisation)
    table = build_table(
        workspace, ExportType.USERS, last_month(today), byok=config.byok, group_by=None, privacy=privacy
    )
    return to_csv(select(table, visible_columns(ExportType.USERS, None, config)), config)


def cached_export(path: Path, *, users: int, seed: int = 1) -> Path:
    """``path``, written once from the simulator (users export, last month, BYOK off)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        data = users_export_csv(SimulatorConfig(users=users, seed=seed))
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(path)
    return path
