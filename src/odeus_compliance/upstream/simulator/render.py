"""Turning an export table into what Odeus sends: the visible columns, then CSV bytes or JSON rows.

CSV follows CONTRACT.md: UTF-8 without BOM, comma, RFC 4180 quoting (only where needed), a header row,
``\\n`` line ends, an empty cell for a missing value; JSON maps are compact JSON text inside their cell.
The variant knobs reorder columns, add an unknown column and change how numbers are written.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import msgspec

from odeus_compliance.upstream.columns import Column, ExportType, GroupBy, Kind, columns_for
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.usage import Table, Value

EXTRA_COLUMN = Column("odeus_beta_signal", Kind.INT)
_IDENTIFYING_USER_COLUMNS = ("name", "email")
_encode_map = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Rendered:
    """The visible header and, per row, the visible cells in header order (JSON maps still as dicts)."""

    columns: tuple[Column, ...]
    rows: list[list[Value]]


def visible_columns(
    export_type: ExportType, group_by: GroupBy | None, config: SimulatorConfig
) -> tuple[Column, ...]:
    """The columns the simulator sends, in order, under the workspace's privacy settings and variants."""
    columns = list(
        columns_for(export_type, byok=config.byok, group_by=group_by, user_level_data=config.user_level_data)
    )
    if export_type is ExportType.USERS and not config.user_level_data and config.anonymisation == "removed":
        columns = [c for c in columns if c.name not in _IDENTIFYING_USER_COLUMNS]
    if config.variant_shuffle_columns:
        rest = columns[3:]
        random.Random(f"shuffle/{config.seed}/{export_type.value}").shuffle(rest)  # noqa: S311 - not crypto
        if [c.name for c in rest] == [c.name for c in columns[3:]]:
            rest.reverse()
        columns = columns[:3] + rest
    if config.variant_extra_column:
        columns.insert(len(columns) // 2, EXTRA_COLUMN)
    return tuple(columns)


def select(table: Table, columns: tuple[Column, ...]) -> Rendered:
    """Project the table's rows onto ``columns`` (the extra variant column gets a made-up value)."""
    names = [c.name for c in table.columns]
    extra_at = next((n for n, c in enumerate(columns) if c is EXTRA_COLUMN), None)
    positions = [names.index(c.name) for c in columns if c is not EXTRA_COLUMN]
    if extra_at is None and positions == list(range(len(names))):
        return Rendered(columns, table.rows)  # the usual case: nothing to move
    getter = itemgetter(*positions)
    rows: list[list[Value]] = []
    for number, row in enumerate(table.rows):
        picked = getter(row)
        cells = list(picked) if len(positions) > 1 else [picked]
        if extra_at is not None:
            cells.insert(extra_at, number % 7)
        rows.append(cells)
    return Rendered(columns, rows)


def _number(value: Value, style: str) -> Value:
    if style == "float" and isinstance(value, int) and not isinstance(value, bool):
        return f"{value}.0"
    return value


def _cell(value: Value) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return _encode_map(value).decode()
    return value


def to_csv(rendered: Rendered, config: SimulatorConfig) -> bytes:
    """The CSV file's bytes."""
    buffer = io.StringIO()
    if config.variant_numbers == "quoted":
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    else:
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([c.name for c in rendered.columns])
    special = [n for n, c in enumerate(rendered.columns) if c.kind in (Kind.JSON_MAP, Kind.BOOL)]
    style = config.variant_numbers
    for row in rendered.rows:
        cells = [_number(v, style) for v in row] if style == "float" else row
        if special:
            cells = list(cells)
            for n in special:
                cells[n] = _cell(cells[n])
        writer.writerow(cells)
    return buffer.getvalue().encode("utf-8")


def _json_value(value: Value, style: str) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, dict)):
        return value
    if style == "float":
        return float(value) if isinstance(value, int) else value
    if style == "quoted":
        return str(value)
    return value


def to_json_rows(rendered: Rendered, config: SimulatorConfig) -> list[dict[str, Any]]:
    """The ``data.rows`` of the JSON route: objects, JSON maps as objects, numbers as numbers."""
    names = [c.name for c in rendered.columns]
    style = config.variant_numbers
    if style == "plain":
        return [dict(zip(names, row, strict=True)) for row in rendered.rows]
    return [
        {name: _json_value(v, style) for name, v in zip(names, row, strict=True)} for row in rendered.rows
    ]


def json_bytes(payload: object) -> bytes:
    """JSON with decimals written as numbers (exact, e.g. ``12.50``)."""
    return msgspec.json.Encoder(decimal_format="number").encode(payload)
