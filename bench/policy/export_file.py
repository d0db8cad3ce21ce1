"""Writing a users export file with the simulator's own workspace generator and renderer (no HTTP).

The same seed and user count give the same bytes, so the benchmark's input is cached under
``bench/results/`` and regenerated only when missing. :func:`spaced_export` writes the same rows the way
other exporters do: count maps with spaces after ``:`` and ``,`` (``json.dumps``' default separators), some
keys' characters as ``\\uXXXX`` escapes, and names mixing scripts.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from odeus_compliance.upstream.columns import ExportType, Kind, columns_for
from odeus_compliance.upstream.simulator import names
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


def _escaped_key(key: str, rng: random.Random) -> str:
    """``json.dumps`` of a key, some of its ASCII letters as ``\\uXXXX`` (its non-ASCII ones are anyway)."""
    text = json.dumps(key)
    if rng.random() >= 0.3:
        return text
    return "".join(f"\\u{ord(ch):04x}" if ch.isalpha() and rng.random() < 0.5 else ch for ch in text)


def _spaced_map(cell: str, rng: random.Random) -> str:
    """A compact count map as ``json.dumps`` writes it by default: ``{"a": 1, "b": 2}``."""
    if not cell:
        return cell
    pairs = json.loads(cell, object_pairs_hook=list)
    return "{" + ", ".join(f"{_escaped_key(key, rng)}: {count}" for key, count in pairs) + "}"


def _mixed_name(rng: random.Random) -> str:
    """A given name of one culture and a family name of another, cultures drawn alike (so more Greek, CJK,
    Arabic and Cyrillic than in the simulator's own mix)."""
    given, family = rng.choice(names.CULTURES), rng.choice(names.CULTURES)
    return f"{names.display(rng.choice(given.given))} {names.display(rng.choice(family.family))}"


def spaced_export(source: Path, path: Path, *, seed: int = 1) -> Path:
    """``path``, written once from ``source`` (a users export): the same rows, count maps spaced and partly
    escaped, names mixing scripts (see the module doc)."""
    if path.exists():
        return path
    maps = {c.name for c in columns_for(ExportType.USERS, byok=False) if c.kind is Kind.JSON_MAP}
    rng = random.Random(seed)
    partial = path.with_suffix(".partial")
    with (
        source.open(newline="", encoding="utf-8") as read,
        partial.open("w", newline="", encoding="utf-8") as out,
    ):
        reader = csv.reader(read)
        writer = csv.writer(out, lineterminator="\n")
        header = next(reader)
        writer.writerow(header)
        spaced = [i for i, name in enumerate(header) if name in maps]
        name = header.index("name")
        for row in reader:
            for i in spaced:
                row[i] = _spaced_map(row[i], rng)
            if row[name]:
                row[name] = _mixed_name(rng)
            writer.writerow(row)
    partial.replace(path)
    return path
