"""A batch's CSV lines in one native pass (``native/csv_lines.c``).

The same bytes as formatting each column with :func:`~odeus_compliance.policy.csvout.csv_cells` (or
writing it as it is, for plain columns) and joining them with
:func:`~odeus_compliance.policy.csvout.csv_lines`, which take several Arrow passes per column; tests compare
both. Used where the engine writes most of its rows (pass 2).
"""

from __future__ import annotations

import array
import enum
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from odeus_compliance.native.library import native_library, string_buffers

_OFFSET_LIMIT = 2**31 - 1


class CellFormat(enum.IntEnum):
    """How a column's cells are written (the values match ``native/csv_lines.c``)."""

    FORMATTED = 0  # CSV cell text already (count maps): as it is
    TEXT = 1  # neutralised against formulas, quoted where needed
    QUOTED = 2  # quoted where needed


def batch_lines(columns: Sequence[Any], formats: Sequence[CellFormat]) -> pa.Buffer:
    """The lines (each ending ``\\n``) of equally long string columns, one format per column."""
    return _lines(columns, formats, row_ends=False)[0]


def batch_lines_with_ends(columns: Sequence[Any], formats: Sequence[CellFormat]) -> tuple[pa.Buffer, Any]:
    """:func:`batch_lines` and, per row, where its line ends in them (an int32 array)."""
    return _lines(columns, formats, row_ends=True)


def _lines(columns: Sequence[Any], formats: Sequence[CellFormat], *, row_ends: bool) -> tuple[pa.Buffer, Any]:
    rows = len(columns[0]) if columns else 0
    ends = pa.allocate_buffer(4 * rows) if row_ends else None
    if rows == 0:
        return pa.py_buffer(b""), pa.array([], pa.int32())
    texts: list[Any] = [c if c.type == pa.string() else c.cast(pa.string()) for c in columns]
    if any(len(c) != rows for c in texts):
        msg = "the columns of a batch must have the same length"
        raise ValueError(msg)
    views = array.array("q")
    bound = rows * (3 * len(texts) + 1)
    for column, cell_format in zip(texts, formats, strict=True):
        cells = string_buffers(column)
        views.extend((cells.offsets, cells.data, cells.validity, cells.bit_offset, int(cell_format)))
        bound += 2 * cells.data_size
    if row_ends and bound > _OFFSET_LIMIT:
        msg = "a batch's lines must stay under 2 GiB"
        raise ValueError(msg)
    described = pa.py_buffer(views)
    out = pa.allocate_buffer(bound, None, resizable=True)
    written = native_library().odeus_csv_lines(
        described.address, len(texts), rows, out.address, ends.address if ends is not None else 0
    )
    out.resize(written, shrink_to_fit=True)
    line_ends = pa.Int32Array.from_buffers(pa.int32(), rows, [None, ends]) if ends is not None else None
    return out, line_ends
