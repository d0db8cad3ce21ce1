"""Hostile text cells: whatever delimiter a spreadsheet splits at, no cell it reads starts a formula.

The written CSV (native lines and the Arrow writer alike) is read back by Python's csv with ``,``, ``;`` and
tab; no cell may have a formula character as its first visible character (invisible: white space, control and
format characters, by ``unicodedata``, independently of the writer's own table). Read with ``,`` every
cell is the guarded text; numbers in number columns stay as they are.
"""

from __future__ import annotations

import csv
import io
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy import formula_guard
from odeus_compliance.policy.csvlines import CellFormat, batch_lines
from odeus_compliance.policy.csvout import CsvSink, csv_cells_direct, csv_lines
from odeus_compliance.policy.formula_guard import guard_text

_FORMULA_STARTS = "=+-@\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b\u2212"

HOSTILE = [
    "x;=cmd|' /C calc'!A0",
    "x;+1",
    "x\t=1+1",
    " =1+1",
    "\u00a0=1+1",
    '\ufeff=HYPERLINK("http://x")',
    "\u200b@SUM(A1)",
    "\u2060-2+3",
    "\u202e=1",
    "\uff1d1+1",
    "\uff0b1",
    "\uff20x",
    "\uff0d1",
    '"=1',
    'a;"=1',
    "a\n=1",
    "a\r\n=1",
    "a\r=1",
    "a\u2028=1",
    "a\x85=1",
    "a\x0b=1",
    "a; \u00a0\ufeff=1",
    "\t",
    "\r",
    "\tTab",
    "=1",
    "-5",
    "@x",
    "Sales",
    "Sales; Marketing",
    "R&D, Berlin",
]


def _invisible(character: str) -> bool:
    return unicodedata.category(character) in {"Cc", "Cf", "Zs", "Zl", "Zp"} or character.isspace()


def _first_visible(cell: str) -> str:
    return next((c for c in cell if not _invisible(c)), "")


def _starts_formula(cell: str) -> bool:
    first = _first_visible(cell)
    return first != "" and first in _FORMULA_STARTS


def _assert_safe(written: str) -> None:
    for delimiter in (",", ";", "\t"):
        for row in csv.reader(io.StringIO(written, newline=""), delimiter=delimiter):
            assert not any(_starts_formula(cell) for cell in row), (delimiter, row)
    # a reader splitting at every ; or tab, quotes or not, and breaking lines wherever Python's str does
    for line in written.splitlines():
        for delimiter in (";", "\t"):
            assert not any(_starts_formula(cell.lstrip('"')) for cell in line.split(delimiter)), line


def _native(rows: list[list[str | None]], formats: list[CellFormat]) -> str:
    columns = [pa.array([row[i] for row in rows], pa.string()) for i in range(len(formats))]
    return batch_lines(columns, formats).to_pybytes().decode("utf-8")


def _arrow(rows: list[list[str | None]], text: list[bool]) -> str:
    columns = [
        csv_cells_direct(pa.array([row[i] for row in rows], pa.string()), text=is_text)
        for i, is_text in enumerate(text)
    ]
    return csv_lines(columns).to_pybytes().decode("utf-8")


def test_the_hostile_table_is_neutralised_in_every_column_and_reads_back_guarded(tmp_path: Path) -> None:
    rows: list[list[str | None]] = [[h, HOSTILE[(i + 7) % len(HOSTILE)], h] for i, h in enumerate(HOSTILE)]
    native = _native(rows, [CellFormat.TEXT] * 3)
    assert native == _arrow(rows, [True] * 3)
    _assert_safe(native)
    read = list(csv.reader(io.StringIO(native, newline="")))
    assert read == [[guard_text(c or "") for c in row] for row in rows]
    # the cells, as written
    assert "\"x;'=cmd|' /C calc'!A0\"" in native
    assert '"\'\u00a0=1+1"' in native
    assert '"\'\uff1d1+1"' in native
    sink = CsvSink(tmp_path / "out.csv")
    sink.write_header(["a", "b", "c"])
    batch = pa.RecordBatch.from_arrays(
        [pa.array([r[i] for r in rows]) for i in range(3)], names=["a", "b", "c"]
    )
    sink.write(batch, text_columns=frozenset({"a", "b", "c"}))
    sink.commit()
    assert (tmp_path / "out.csv").read_bytes().decode("utf-8") == "a,b,c\n" + native


def test_numbers_stay_numbers_and_semicolons_or_tabs_are_quoted_in_every_column() -> None:
    rows: list[list[str | None]] = [["-3.5", "x;y", "a\tb"], ["+4", "-", "1"]]
    formats = [CellFormat.QUOTED, CellFormat.QUOTED, CellFormat.QUOTED]
    assert _native(rows, formats) == '-3.5,"x;y","a\tb"\n+4,-,1\n'
    assert _arrow(rows, [False] * 3) == _native(rows, formats)


_hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(alphabet=";\t\r\n\"' =+-@a,\u00a0\ufeff\u200b\u2028\x85\uff1d\uff0b", max_size=10),
    st.text(max_size=8),
)


@given(st.lists(st.lists(_hostile_text, min_size=3, max_size=3), min_size=1, max_size=12))
@settings(max_examples=400, deadline=None)
def test_no_delimiter_reads_a_formula_out_of_hostile_text(rows: list[list[str | None]]) -> None:
    native = _native(rows, [CellFormat.TEXT] * 3)
    assert native == _arrow(rows, [True] * 3)
    _assert_safe(native)
    read = list(csv.reader(io.StringIO(native, newline="")))
    assert read == [[guard_text(c or "") for c in row] for row in rows]


@given(_hostile_text)
@settings(max_examples=300, deadline=None)
def test_the_guard_is_idempotent(text: str) -> None:
    once = guard_text(text)
    assert guard_text(once) == once
    written = _native([[once]], [CellFormat.TEXT])
    assert written == _native([[text]], [CellFormat.TEXT])


def test_native_and_arrow_agree_on_every_code_point() -> None:
    # the C tables are formula_guard's: every code point in front of a formula, and after a separator
    points = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    for cells in (
        [p + "=" for p in points],
        ["a;" + p + "=" for p in points],
        ["a" + p + "=" for p in points],
    ):
        array: Any = pa.array(cells, pa.string())
        native = batch_lines([array], [CellFormat.TEXT]).to_pybytes()
        assert native == csv_lines([csv_cells_direct(array, text=True)]).to_pybytes()


def test_the_invisible_table_covers_unicode_white_space_controls_and_format_characters() -> None:
    covered = {c for first, last in formula_guard.INVISIBLE for c in range(first, last + 1)}
    missing = [hex(c) for c in range(sys.maxunicode + 1) if _invisible(chr(c)) and c not in covered]
    assert missing == []
    assert covered | {ord(";")} >= formula_guard.SEPARATORS
