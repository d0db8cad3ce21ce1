"""The native count-map path equals the per-cell reference; its shape check equals the documented shape."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy.countmaps import _per_cell_all, _scan, map_count_column
from odeus_compliance.policy.csvout import csv_cells_direct
from odeus_compliance.policy.operations import OperationError

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code

# The compact shape, as the module documents it (the native scan must agree with it, cell for cell)
_KEY = r'"[^"\\\x00-\x1f]*"'
_COUNT = r"(?:0|[1-9][0-9]{0,17})"
_COMPACT = re.compile(rf"\{{(?:{_KEY}:{_COUNT}(?:,{_KEY}:{_COUNT})*)?\}}", re.DOTALL)

_keys = st.one_of(
    st.sampled_from(["asst_1", "asst_2", "gpt-4o", "", "é", "a,b", "x:y", "a,", "}", '{"', "日本", "a b"]),
    st.text(max_size=6),
)
_compact = st.dictionaries(_keys, st.integers(min_value=0, max_value=10**18 - 1), max_size=6).map(
    lambda d: json.dumps(d, separators=(",", ":"), ensure_ascii=False)
)
_other = st.sampled_from(
    ['{ "a": 1 }', '{"a":1.0}', '{"a":01}', '{"a":-1}', "[]", "", "{", '{"a":1,"a":2}', '{"a\\u0041":1}']
)
_cells = st.lists(st.one_of(st.none(), st.just("{}"), _compact, _compact, _other, st.text(max_size=12)))

_mappers: dict[str, Callable[[list[str]], list[str]]] = {
    "same": lambda keys: keys,
    "tokens": lambda keys: [f"a1_{len(k)}x{sum(map(ord, k))}" for k in keys],
    "reversed order": lambda keys: [f"{1000 - len(k):04d}{k}" for k in keys],
    "merging": lambda keys: ["one" for _ in keys],
    "quoting": lambda keys: [f'k"{k}' for k in keys],
    "control": lambda keys: [f"k\n{k}" for k in keys],
}


def _reference(
    cells: list[str | None], mapper: Callable[[list[str]], list[str]]
) -> tuple[list[str | None], dict[str, int]]:
    mapped = _per_cell_all(pa.array(cells, pa.string()), mapper, column="c", row_offset=0)
    return mapped.array.to_pylist(), mapped.keys


@given(st.lists(st.one_of(st.none(), st.text(max_size=30), _compact, _other), max_size=30))
@settings(max_examples=300, deadline=None)
def test_the_scan_finds_exactly_the_documented_compact_cells(cells: list[str | None]) -> None:
    array = pa.array(cells, pa.string())
    compact = _scan(array).compact().to_pylist()
    assert compact == [cell is None or bool(_COMPACT.fullmatch(cell)) for cell in cells]


@given(
    st.lists(st.one_of(st.none(), st.just("{}"), _compact), max_size=25), st.sampled_from(sorted(_mappers))
)
@settings(max_examples=300, deadline=None)
def test_compact_columns_equal_the_per_cell_reference(cells: list[str | None], mapper: str) -> None:
    expected, expected_keys = _reference(cells, _mappers[mapper])
    got = map_count_column(pa.array(cells, pa.string()), _mappers[mapper], column="c", row_offset=0)
    assert got.array.to_pylist() == expected
    assert got.keys == expected_keys
    as_csv = map_count_column(
        pa.array(cells, pa.string()), _mappers[mapper], column="c", row_offset=0, csv=True
    )
    assert (
        pc.fill_null(as_csv.array, "").to_pylist()
        == csv_cells_direct(pa.array(expected, pa.string()), text=True).to_pylist()
    )


@given(_cells, st.sampled_from(["same", "tokens", "merging"]))
@settings(max_examples=200, deadline=None)
def test_mixed_columns_equal_the_per_cell_reference_or_fail_alike(
    cells: list[str | None], mapper: str
) -> None:
    try:
        expected: list[str | None] | None = _reference(cells, _mappers[mapper])[0]
    except OperationError as error:
        expected, message = None, str(error)
    if expected is None:
        with pytest.raises(OperationError) as caught:
            map_count_column(pa.array(cells, pa.string()), _mappers[mapper], column="c", row_offset=0)
        assert str(caught.value) == message
    else:
        got = map_count_column(pa.array(cells, pa.string()), _mappers[mapper], column="c", row_offset=0)
        assert got.array.to_pylist() == expected


def test_a_sliced_column_with_nulls_is_read_from_its_own_offsets_and_bits() -> None:
    cells = [
        None,
        '{"b":2,"a":1}',
        "{}",
        None,
        '{"z":0}',
        '{"c":3}',
        None,
        '{"a":5,"c":1}',
        '{"d":4}',
        None,
    ] * 3
    whole = pa.array(cells, pa.string())
    for start in (0, 1, 3, 7, 9, 13):
        part = whole.slice(start, 11)
        got = map_count_column(part, _mappers["tokens"], column="c", row_offset=0)
        expected, keys = _reference(cells[start : start + 11], _mappers["tokens"])
        assert got.array.to_pylist() == expected
        assert got.keys == keys


def test_counts_are_copied_as_written_and_long_ones_go_cell_by_cell() -> None:
    cells = ['{"a":999999999999999999}', '{"a":1000000000000000000}', '{"a":0}']
    got = map_count_column(pa.array(cells, pa.string()), _mappers["same"], column="c", row_offset=0)
    assert got.array.to_pylist() == cells  # 19 digits are valid JSON too, only not the compact shape


def test_keys_that_fall_together_are_summed() -> None:
    got = map_count_column(
        pa.array(['{"a":1,"b":2}', '{"c":4}'], pa.string()), _mappers["merging"], column="c", row_offset=0
    )
    assert got.array.to_pylist() == ['{"one":3}', '{"one":4}']
