"""The native count-map path equals the per-cell reference (Python's json module) for every valid way of
writing a count map (white space, escapes, key order, repeated keys, number forms), and refuses invalid
text exactly as the per-cell path does."""

from __future__ import annotations

import array
import json
import random
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.native.library import native_library, string_buffers
from odeus_compliance.policy.countmaps import _per_cell_all, _scan, map_count_column
from odeus_compliance.policy.csvout import csv_cells_direct
from odeus_compliance.policy.operations import parse_count_map

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code

_MAX_COUNT = 10**18 - 1  # the native path's counts: at most 18 digits

_keys = st.one_of(
    st.sampled_from(["asst_1", "asst_2", "gpt-4o", "", "é", "a,b", "x:y", "a,", "}", '{"', "日本", "a b"]),
    st.sampled_from(['q"uote', "back\\slash", "a/b", "tab\tnew\nline", "\x00\x1f\x7f", "😀", "Ωμέγα", "Жук"]),
    st.text(max_size=6).filter(lambda key: not any(0xD800 <= ord(c) <= 0xDFFF for c in key)),
)
_SPACE = st.text(alphabet=" \t\r\n", max_size=3)
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _u(code: int, rnd: random.Random) -> str:
    digits = f"{code:04x}"
    return "\\u" + (digits.upper() if rnd.random() < 0.5 else digits)


def _write_key(key: str, rnd: random.Random) -> str:
    """A key as some exporter may write it: each character raw where JSON allows, or escaped."""
    out = []
    for char in key:
        code = ord(char)
        must = char in '"\\' or code < 0x20
        if not must and rnd.random() < 0.6:
            out.append(char)
        elif char in _SHORT_ESCAPES and rnd.random() < 0.6:
            out.append(_SHORT_ESCAPES[char])
        elif code > 0xFFFF:  # a surrogate pair
            code -= 0x10000
            out.append(_u(0xD800 + (code >> 10), rnd) + _u(0xDC00 + (code & 0x3FF), rnd))
        else:
            out.append(_u(code, rnd))
    return '"' + "".join(out) + '"'


def _write_count(count: int, rnd: random.Random) -> str:
    """A JSON number whose value is ``count``: 12, 12.0, 1.2e1, 120e-1, 1.20E+1, -0, 0.0e7 ..."""
    digits = str(count)
    choice = rnd.randrange(6)
    if choice == 0:
        return digits
    if choice == 1:
        return digits + "." + "0" * rnd.randint(1, 3)
    if choice == 2 and count == 0:
        return rnd.choice(["-0", "-0.0", "0e5", "-0E-3", "0.000e+2"])
    if choice == 3:  # the point moved left, an exponent moving it back
        point = rnd.randint(1, len(digits))
        mantissa = digits[:point] + ("." + digits[point:] if point < len(digits) else "")
        exponent = len(digits) - point
        return mantissa + rnd.choice("eE") + rnd.choice(["", "+"]) + f"{exponent:0{rnd.randint(1, 3)}d}"
    if choice == 4 and count > 0:  # trailing zeros then a negative exponent
        zeros = rnd.randint(1, 3)
        return digits + "0" * zeros + "e-" + str(zeros)
    stripped = digits.rstrip("0") or "0"
    return stripped + "e" + str(len(digits) - len(stripped))


def _write_map(pairs: list[tuple[str, int]], rnd: random.Random, space: Callable[[], str]) -> str:
    members = [
        space() + _write_key(key, rnd) + space() + ":" + space() + _write_count(count, rnd) + space()
        for key, count in pairs
    ]
    return space() + "{" + (",".join(members) if members else space()) + "}" + space()


@st.composite
def written_maps(draw: st.DrawFn) -> str:
    """A count map written any valid way: keys in any order and repeated, white space, escapes, numbers."""
    pairs = draw(st.lists(st.tuples(_keys, st.integers(0, _MAX_COUNT // 4)), max_size=6))
    if pairs and draw(st.booleans()):
        pairs.append(draw(st.sampled_from(pairs)))  # a repeated key: summed, as Python sums it
    rnd = random.Random(draw(st.integers(0, 2**32)))
    spaces = draw(st.lists(_SPACE, min_size=1, max_size=8))
    return _write_map(pairs, rnd, lambda: rnd.choice(spaces))


_mappers: dict[str, Callable[[list[str]], list[str]]] = {
    "same": lambda keys: keys,
    "tokens": lambda keys: [f"a1_{len(k)}x{sum(map(ord, k))}" for k in keys],
    "reversed order": lambda keys: [f"{1000 - len(k):04d}{k}" for k in keys],
    "merging": lambda keys: ["one" for _ in keys],
    "quoting": lambda keys: [f'k"{k}' for k in keys],
    "control": lambda keys: [f"k\n{k}\x01" for k in keys],
}


def _reference(
    cells: list[str | None], mapper: Callable[[list[str]], list[str]]
) -> tuple[list[str | None], dict[str, int]]:
    mapped = _per_cell_all(pa.array(cells, pa.string()), mapper, column="c", row_offset=0)
    return mapped.array.to_pylist(), mapped.keys


def _native_pairs(cells: list[str | None]) -> list[tuple[str, int]]:
    """Every pair's key and count as the native code reads them, cell after cell."""
    text = pa.array(cells, pa.string())
    scan = _scan(text)
    buffers = string_buffers(text)
    key_offsets = pa.allocate_buffer(4 * (scan.pairs_total + 1))
    key_data = pa.allocate_buffer(max(buffers.data_size, 1))
    counts = pa.allocate_buffer(8 * scan.pairs_total)
    status = native_library().odeus_count_maps_keys(
        buffers.offsets,
        buffers.data,
        len(text),
        scan.pairs.address,
        key_offsets.address,
        key_data.address,
        counts.address,
    )
    assert status == 0
    keys = pa.StringArray.from_buffers(scan.pairs_total, key_offsets, key_data).to_pylist()
    return list(zip(keys, array.array("Q", counts.to_pybytes()), strict=True))


def _equal_or_refused_alike(cells: list[str | None], mapper: str) -> None:
    try:
        expected: tuple[list[str | None], dict[str, int]] | None = _reference(cells, _mappers[mapper])
    except ValueError as error:  # OperationError, and what fails the per-cell path's output (a lone
        # surrogate, a count past Python's 4,300 digits): the native path must leave those cells to it
        expected, refusal = None, error
    if expected is None:
        with pytest.raises(type(refusal)) as caught:
            map_count_column(pa.array(cells, pa.string()), _mappers[mapper], column="c", row_offset=0)
        assert str(caught.value) == str(refusal)
        return
    got = map_count_column(pa.array(cells, pa.string()), _mappers[mapper], column="c", row_offset=0)
    assert (got.array.to_pylist(), got.keys) == expected


@given(st.lists(st.one_of(st.none(), written_maps()), max_size=20), st.sampled_from(sorted(_mappers)))
@settings(max_examples=400, deadline=None)
def test_every_way_of_writing_a_map_takes_the_native_path_and_equals_the_reference(
    cells: list[str | None], mapper: str
) -> None:
    array = pa.array(cells, pa.string())
    assert all(_scan(array).handled().to_pylist())
    expected, expected_keys = _reference(cells, _mappers[mapper])
    got = map_count_column(array, _mappers[mapper], column="c", row_offset=0)
    assert got.array.to_pylist() == expected
    assert got.keys == expected_keys
    as_csv = map_count_column(array, _mappers[mapper], column="c", row_offset=0, csv=True)
    assert (
        pc.fill_null(as_csv.array, "").to_pylist()
        == csv_cells_direct(pa.array(expected, pa.string()), text=True).to_pylist()
    )


@given(st.lists(st.one_of(st.none(), written_maps()), max_size=12))
@settings(max_examples=300, deadline=None)
def test_keys_and_counts_are_read_as_pythons_json_reads_them(cells: list[str | None]) -> None:
    expected = [
        (key, int(count))
        for cell in cells
        if cell is not None
        for key, count in json.loads(cell, object_pairs_hook=list, parse_float=Decimal)
    ]
    assert _native_pairs(cells) == expected


_MUTATIONS = '{}[]":,\\ \t\n\x00\x1f0123456789-+.eEuUdDaAfFxtrue\u00fc\ufeff'


@st.composite
def damaged_maps(draw: st.DrawFn) -> str:
    """A written map with a few characters inserted, deleted or replaced: mostly invalid, sometimes not."""
    text = draw(written_maps())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        what = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from(_MUTATIONS))
        if what == "insert":
            text = text[:at] + char + text[at:]
        elif what == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text


def _modest_exponents(text: str) -> bool:
    """No exponent of 5 digits or more: the per-cell path would spend minutes on 10**99999 (the native
    path leaves such cells to it, as a test below checks on its own)."""
    return re.search(r"[eE][-+]?0*[0-9]{5}", text) is None


_invalid = st.sampled_from(
    [
        "",
        " ",
        "{",
        "}",
        "[]",
        "{}{}",
        "null",
        '{"a"}',
        '{"a":}',
        '{"a":1,}',
        '{,"a":1}',
        '{"a":1 "b":2}',
        '{"a":01}',
        '{"a":1.}',
        '{"a":.5}',
        '{"a":1e}',
        '{"a":1e+}',
        '{"a":-}',
        '{"a":+1}',
        '{"a":1.5}',
        '{"a":15e-1}',
        '{"a":-1}',
        '{"a":-0.5}',
        '{"a":NaN}',
        '{"a":Infinity}',
        '{"a":-Infinity}',
        '{"a":true}',
        '{"a":null}',
        '{"a":"1"}',
        '{"a":[1]}',
        '{"a":{}}',
        "{'a':1}",
        "{a:1}",
        '{"a\x01":1}',
        '{"a\\x":1}',
        '{"a\\u12":1}',
        '{"a\\u12g4":1}',
        '{"a\\":1}',
        '\ufeff{"a":1}',
        '{"a":1}\x00',
        '{"a":1}\u00a0',
        '\u00a0{"a":1}',
        '{\u3000"a":1}',
        '{"a":1000000000000000000}',
        '{"a":1e18}',
        '{"a":0.1e19}',
    ]
)


@given(
    st.lists(
        st.one_of(st.none(), written_maps(), damaged_maps().filter(_modest_exponents), _invalid),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from(["same", "tokens", "merging"]),
)
@settings(max_examples=500, deadline=None)
def test_anything_else_equals_the_reference_or_is_refused_alike(cells: list[str | None], mapper: str) -> None:
    array = pa.array(cells, pa.string())
    for cell, handled in zip(cells, _scan(array).handled().to_pylist(), strict=True):
        if cell is not None and handled:  # the native path takes only maps Python reads as whole counts
            pairs = json.loads(cell, object_pairs_hook=list, parse_float=Decimal)
            assert all(0 <= count <= _MAX_COUNT and count == int(count) for _, count in pairs)
    _equal_or_refused_alike(cells, mapper)


@pytest.mark.parametrize(
    "cell",
    [
        '{"\\ud800":1}',  # a lone high surrogate
        '{"\\udc00":1}',  # a lone low surrogate
        '{"\\ud800\\u0041":1}',  # a high one followed by no low one
        '{"\\ud800x":1}',
        '{"a":1e10000}',  # an exponent beyond the native reading: Python's integers decide
        '{"a":0e99999}',
    ],
)
def test_lone_surrogates_and_huge_exponents_are_left_to_python(cell: str) -> None:
    assert _scan(pa.array([cell], pa.string())).handled().to_pylist() == [False]


def test_the_number_forms_of_one_count_all_give_it() -> None:
    forms = ["120", "120.0", "1.2e2", "1.2E+2", "12e1", "12000e-2", "0.12e3", "120.000E0"]
    cells = [f'{{"a": {form}}}' for form in forms] + ['{"a":-0}', '{"a":-0.0e3}', '{"a":0E+7}']
    assert all(_scan(pa.array(cells, pa.string())).handled().to_pylist())
    got = map_count_column(pa.array(cells, pa.string()), _mappers["same"], column="c", row_offset=0)
    assert got.array.to_pylist() == ['{"a":120}'] * len(forms) + ['{"a":0}'] * 3
    assert [parse_count_map(cell, column="c") for cell in cells] == [[("a", 120)]] * len(forms) + [
        [("a", 0)]
    ] * 3


def test_repeated_keys_and_keys_that_fall_together_are_summed_natively() -> None:
    cells = ['{"a": 1, "b": 2, "a": 3}', '{"c":4}']
    assert all(_scan(pa.array(cells, pa.string())).handled().to_pylist())
    got = map_count_column(pa.array(cells, pa.string()), _mappers["same"], column="c", row_offset=0)
    assert got.array.to_pylist() == ['{"a":4,"b":2}', '{"c":4}']
    merged = map_count_column(pa.array(cells, pa.string()), _mappers["merging"], column="c", row_offset=0)
    assert merged.array.to_pylist() == ['{"one":6}', '{"one":4}']


def test_a_sum_past_18_digits_goes_cell_by_cell() -> None:
    cells = ['{"a":999999999999999999,"a":1}', '{"b":2}']
    got = map_count_column(pa.array(cells, pa.string()), _mappers["same"], column="c", row_offset=0)
    assert got.array.to_pylist() == ['{"a":1000000000000000000}', '{"b":2}']


def test_spaced_empty_maps_become_canonical() -> None:
    cells = ["{ }", None, "{}", " {\n} "]
    got = map_count_column(pa.array(cells, pa.string()), _mappers["tokens"], column="c", row_offset=0)
    assert got.array.to_pylist() == ["{}", None, "{}", "{}"]


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


def test_long_counts_go_cell_by_cell() -> None:
    cells = ['{"a":999999999999999999}', '{"a":1000000000000000000}', '{"a":0}']
    assert _scan(pa.array(cells, pa.string())).handled().to_pylist() == [True, False, True]
    got = map_count_column(pa.array(cells, pa.string()), _mappers["same"], column="c", row_offset=0)
    assert got.array.to_pylist() == cells  # 19 digits are valid JSON too, only past the native reading
