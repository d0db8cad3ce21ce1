"""A batch's CSV lines in one native pass (``native/csv_lines.c``).

The same bytes as formatting each column with :func:`~odeus_compliance.policy.csvout.csv_cells` (or
writing it as it is, for plain columns) and joining them with
:func:`~odeus_compliance.policy.csvout.csv_lines`, which take several Arrow passes per column; tests compare
both. Used where the engine writes most of its rows (pass 2).
"""

from __future__ import annotations

import array
import enum
from typing import Any

import pyarrow as pa

from odeus_compliance.native.library import native_library, string_buffers


class CellFormat(enum.IntEnum):
    """How a column's cells are written (the values match ``native/csv_lines.c``)."""

    PLAIN = 0  # as they are: numbers, tokens and date labels, safe by construction
    TEXT = 1  # neutralised against formulas, quoted where needed
    QUOTED = 2  # quoted where needed


def batch_lines(columns: list[Any], formats: list[CellFormat]) -> pa.Buffer:
    """The lines (each ending ``\\n``) of equally long string columns, one format per column."""
    if not columns or len(columns[0]) == 0:
        return pa.py_buffer(b"")
    rows = len(columns[0])
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
    described = pa.py_buffer(views)
    out = pa.allocate_buffer(bound, None, resizable=True)
    written = native_library().odeus_csv_lines(described.address, len(texts), rows, out.address)
    out.resize(written, shrink_to_fit=True)
    return out
