"""The native CSV lines equal the Arrow formatting of every column joined into lines (hypothesis)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy.csvlines import CellFormat, batch_lines
from odeus_compliance.policy.csvout import csv_cells_direct, csv_lines

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code

_cell = st.one_of(
    st.none(),
    st.sampled_from(
        ["", "Sales", "=1+1", "+49", "-5", "@x", "\tTab", "a,b", 'say "hi"', "l\nf", "\r", "é", '"']
    ),
    st.text(max_size=8),
)


def _reference(columns: list[Any], formats: list[CellFormat]) -> bytes:
    cells = [
        pc.fill_null(column, "")
        if cell_format is CellFormat.FORMATTED
        else csv_cells_direct(column, text=cell_format is CellFormat.TEXT)
        for column, cell_format in zip(columns, formats, strict=True)
    ]
    return csv_lines(cells).to_pybytes()


@given(
    st.lists(st.lists(_cell, min_size=4, max_size=4), min_size=1, max_size=30),
    st.lists(st.sampled_from(list(CellFormat)), min_size=4, max_size=4),
)
@settings(max_examples=300, deadline=None)
def test_lines_equal_the_arrow_formatting(rows: list[list[str | None]], formats: list[CellFormat]) -> None:
    columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(4)]
    got = batch_lines(columns, formats).to_pybytes()
    assert got == _reference(columns, formats)
    if (
        CellFormat.FORMATTED not in formats
    ):  # without pre-formatted cells the lines are RFC 4180 and read back
        parsed = list(csv.reader(io.StringIO(got.decode(), newline="")))
        assert len(parsed) == len(rows)


def test_sliced_columns_with_nulls_are_read_from_their_own_offsets_and_bits() -> None:
    values = [None, "=a", "b,c", None, "", 'd"e', "f", None, "-1", "g"] * 3
    whole = pa.array(values, pa.string())
    for start in (0, 1, 3, 7, 9, 13):
        part = [whole.slice(start, 11), whole.slice(start + 1, 11)]
        formats = [CellFormat.TEXT, CellFormat.QUOTED]
        assert batch_lines(part, formats).to_pybytes() == _reference(part, formats)


def test_empty_and_all_null_columns() -> None:
    assert batch_lines([pa.array([], pa.string())], [CellFormat.TEXT]).to_pybytes() == b""
    nulls = [pa.array([None, None], pa.string()), pa.array(["", ""], pa.string())]
    assert batch_lines(nulls, [CellFormat.TEXT, CellFormat.FORMATTED]).to_pybytes() == b",\n,\n"


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        batch_lines([pa.array(["a"], pa.string()), pa.array(["a", "b"], pa.string())], [CellFormat.TEXT] * 2)
