"""The JSON route's ``data.rows`` as the same typed batches the CSV route gives.

The columns come from the rows' keys (first appearance order, like a header), so unknown and removed
columns are found and reported exactly as for CSV. A value that is not its column's type is a
:class:`MalformedExport` naming the column and row number, never the value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from odeus_compliance.upstream.batches import ExportBatch
from odeus_compliance.upstream.cells import convert
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.csvstream import kind_words
from odeus_compliance.upstream.errors import MalformedExport
from odeus_compliance.upstream.schema import ExportSchema, column_label

DEFAULT_BATCH_ROWS = 5000


def schema_of_rows(export_type: ExportType, rows: Sequence[Any]) -> ExportSchema:
    """The schema the rows' keys describe; raises :class:`MalformedExport` if a row is not an object."""
    names: dict[str, None] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            msg = f"row {number} of the {export_type.value} export (JSON route) is not an object"
            raise MalformedExport(msg)
        names.update(dict.fromkeys(row))
    if not rows:
        names.update(dict.fromkeys(("period_start", "period_end", "org_id")))
    return ExportSchema.from_header(export_type, list(names))


def json_batches(
    schema: ExportSchema, rows: Sequence[dict[str, Any]], *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[ExportBatch]:
    """Typed batches of ``batch_rows`` rows each (missing keys are missing values)."""
    for offset in range(0, len(rows), batch_rows):
        chunk = rows[offset : offset + batch_rows]
        values: dict[str, list[Any]] = {}
        for column in schema.columns:
            converted: list[Any] = []
            for number, row in enumerate(chunk, start=offset + 1):
                try:
                    converted.append(convert(column.kind, row.get(column.name)))
                except ValueError:
                    label = column_label(schema.export_type, column.name)
                    msg = (
                        f"{label} of the {schema.export_type.value} export (JSON route) holds "
                        f"a value that is not {kind_words(column.kind)} (data row {number})"
                    )
                    raise MalformedExport(msg) from None
            values[column.name] = converted
        try:
            yield ExportBatch.from_values(schema.columns, values)
        except (ValueError, ArithmeticError):  # pyarrow.ArrowInvalid is a ValueError
            msg = f"the {schema.export_type.value} export (JSON route) holds a value out of range"
            raise MalformedExport(msg) from None
