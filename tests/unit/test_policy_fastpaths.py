"""The fast paths of the write and token steps equal their per-cell references (hypothesis)."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy.columnar import canonical_ids
from odeus_compliance.policy.csvout import csv_bytes, csv_cells, csv_cells_direct, csv_lines
from odeus_compliance.policy.subjects import canonical_id

# Cells that exercise quoting, formulas and repetition: few distinct values over many rows.
_cell = st.one_of(
    st.none(),
    st.sampled_from(["", "Sales", "=1+1", "+49", "-5", "@x", "\tTab", "a,b", 'say "hi"', "l\nf", "\r", "é"]),
    st.text(max_size=8),
)
_ids = st.one_of(
    st.text(alphabet="abcdef0123456789_-.", min_size=1, max_size=20),
    st.text(min_size=1, max_size=12),  # any text: spaces at the ends, non-ASCII, controls
    st.sampled_from([" usr_1", "usr_1 ", "e\u0301", "\x1cid\x1f", "a b", "x"]),
)


@given(st.lists(_cell, min_size=0, max_size=40), st.integers(min_value=1, max_value=80), st.booleans())
@settings(max_examples=60, deadline=None)
def test_distinct_value_formatting_equals_cell_by_cell(
    cells: list[str | None], repeat: int, text: bool
) -> None:
    array = pa.array(cells * repeat, pa.string())  # often over the distinct path's threshold
    assert csv_cells(array, text=text).to_pylist() == csv_cells_direct(array, text=text).to_pylist()


@given(st.lists(st.lists(_cell, min_size=3, max_size=3), min_size=1, max_size=30))
@settings(max_examples=40, deadline=None)
def test_csv_lines_are_rfc4180_rows_and_zero_copy_equals_bytes(rows: list[list[str | None]]) -> None:
    columns = [csv_cells(pa.array([row[i] for row in rows], pa.string()), text=False) for i in range(3)]
    data = memoryview(csv_lines(columns)).tobytes()
    assert data == csv_bytes(columns)
    parsed = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert parsed == [["" if cell is None else cell for cell in row] for row in rows]
    sliced = [column.slice(1) for column in columns]  # arrays with an offset hold only their own rows
    rest = [csv_cells(pa.array([row[i] for row in rows[1:]], pa.string()), text=False) for i in range(3)]
    assert memoryview(csv_lines(sliced)).tobytes() == csv_bytes(rest)


@given(st.lists(_ids, min_size=0, max_size=30, unique=True))
@settings(max_examples=60, deadline=None)
def test_canonical_ids_equal_the_per_value_canonical_form(values: list[str]) -> None:
    assert canonical_ids(pa.array(values, pa.string())).to_pylist() == [canonical_id(v) for v in values]
