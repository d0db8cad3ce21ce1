"""The leak scan finds a value whatever order values and output texts arrive in, also from threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy import leakscan
from odeus_compliance.policy.leakscan import LeakFound, LeakScanner, _plain_counted_forms, counted_forms_of

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code

_NAMES = pa.array(["Anna Meier", "Bo Larsson", "carla.rossi@example.com"], pa.string())


def _texts(*values: str) -> pa.Array:  # type: ignore[type-arg]
    return pa.array(list(values), pa.string())


@pytest.mark.parametrize("early_limit", [0, leakscan.EARLY_CHECK_LIMIT])
def test_a_value_registered_before_the_text_that_holds_it_is_found(
    monkeypatch: pytest.MonkeyPatch, early_limit: int
) -> None:
    monkeypatch.setattr(leakscan, "EARLY_CHECK_LIMIT", early_limit)
    scanner = LeakScanner()
    scanner.observe_column("department", _texts("Sales"), row_offset=0)
    scanner.add_identifying(_NAMES)  # checked now against "sales" only
    scanner.observe_column("role", _texts("Lead", "Deputy of Bo Larsson"), row_offset=40)
    with pytest.raises(LeakFound, match=r"column 'role' \(data row 42\)"):
        scanner.verify()


@pytest.mark.parametrize("early_limit", [0, leakscan.EARLY_CHECK_LIMIT])
def test_a_value_registered_after_the_text_that_holds_it_is_found(
    monkeypatch: pytest.MonkeyPatch, early_limit: int
) -> None:
    monkeypatch.setattr(leakscan, "EARLY_CHECK_LIMIT", early_limit)
    scanner = LeakScanner()
    scanner.observe_column("department", _texts("Office of CARLA.ROSSI@example.com"), row_offset=3)
    scanner.add_identifying(_NAMES)
    scanner.observe_column("role", _texts("Lead"), row_offset=9)
    with pytest.raises(LeakFound, match=r"column 'department' \(data row 4\)"):
        scanner.verify()


def test_the_earliest_row_is_named_when_several_texts_hold_values() -> None:
    scanner = LeakScanner()
    scanner.observe_column("role", _texts("anna meier"), row_offset=100)
    scanner.add_identifying(_NAMES)
    scanner.observe_column("department", _texts("x", "Bo Larsson"), row_offset=5)
    with pytest.raises(LeakFound, match=r"column 'department' \(data row 7\)"):
        scanner.verify()


def test_no_hit_passes_and_counts_every_value() -> None:
    scanner = LeakScanner()
    scanner.observe_column(
        "department", _texts("Sales", "Anna"), row_offset=0
    )  # one word of a name is no hit
    scanner.add_identifying(_NAMES)
    scanner.verify()
    assert scanner.values_registered == 3


def test_threads_adding_values_and_texts_at_once_miss_nothing() -> None:
    scanner = LeakScanner()
    names = [f"Person Number{i:05d}" for i in range(2000)]

    def add_values(start: int) -> None:
        scanner.add_identifying(pa.array(names[start : start + 100], pa.string()))

    def add_texts(start: int) -> None:
        scanner.observe_column(f"c{start}", _texts(f"team {start}", f"group {start + 1}"), row_offset=start)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(add_values, range(0, 2000, 100)))
        list(pool.map(add_texts, range(0, 500, 10)))
    scanner.verify()  # nothing of a name in the texts
    scanner.observe_column("late", _texts("hello person number01234"), row_offset=9000)
    with pytest.raises(LeakFound, match=r"column 'late' \(data row 9001\)"):
        scanner.verify()


_identifying = st.one_of(
    st.none(),
    st.sampled_from(
        ["Anna Meier", "ANONYMOUS", "anon", "unknown", "n/a", "123456", "12345", "12 34", "a-b", "ab"]
    ),
    st.from_regex(r"[A-Za-z0-9 _'.@+\-]{0,14}", fullmatch=True),  # ASCII, often plain words, often not
    st.text(max_size=12),  # anything: non-ASCII, controls, other separators
    st.text(
        alphabet="ab\u00df\u1e9e\u0130\u0131\u00c5\u00e5\u00c6\u00e6\u00d8\u00f8\u0152\u0153\u00e7\u00c7\u0161\u0160"
        "\u017e\u017d\u0133\ufb01 \u0301\u042f\u044f\u0490\u0491\u0482\u00d7\u00f7\u00b7\u2019\u2014-_.'@ ",
        max_size=12,
    ),  # letters, marks, look-alikes
    st.text(alphabet=st.characters(min_codepoint=0xA0, max_codepoint=0x52F), max_size=8),  # the ranges
)


@given(st.lists(_identifying, max_size=40))
@settings(max_examples=300, deadline=None)
def test_the_native_plain_forms_and_the_general_path_count_the_same_forms(values: list[str | None]) -> None:
    array = pa.array(values, pa.string())
    flags, plain = _plain_counted_forms(array)
    general = [v for v, flag in zip(values, flags.to_pylist(), strict=True) if flag == 2]
    combined = plain.to_pylist() + counted_forms_of(pa.array(general, pa.string())).to_pylist()
    assert sorted(combined) == sorted(counted_forms_of(array).to_pylist())


_CLASSIFIED = [*range(0x80, 0x530), *range(0x600, 0x700), *range(0x3040, 0x3100), *range(0x4DF0, 0xA010)]
_CLASSIFIED += [*range(0x1DF0, 0x1F10), *range(0xABF0, 0xD7B0)]


def test_every_character_of_the_classified_ranges_gets_the_same_form_both_ways() -> None:
    values = []
    for code in _CLASSIFIED:
        char = chr(code)
        values += [char, f"ab{char}cd", f"{char}{char}xy", f"xy {char}", f"anna{char}", f"{char}.meier"]
    array = pa.array(values, pa.string())
    flags, plain = _plain_counted_forms(array)
    general = pc.filter(array, pc.equal(flags, 2))
    combined = plain.to_pylist() + counted_forms_of(general).to_pylist()
    assert sorted(combined) == sorted(counted_forms_of(array).to_pylist())
    assert pc.sum(pc.not_equal(flags, 2)).as_py() > len(values) // 3  # the native path takes most of them


@pytest.mark.parametrize("general_batch", [1, leakscan.GENERAL_BATCH])
def test_values_that_take_the_general_path_are_found_whenever_they_are_formed(
    monkeypatch: pytest.MonkeyPatch, general_batch: int
) -> None:
    monkeypatch.setattr(leakscan, "GENERAL_BATCH", general_batch)
    scanner = LeakScanner()
    scanner.observe_column("department", _texts("Sales"), row_offset=0)
    scanner.add_identifying(_texts('Robert "Bob" Walker', "Ana-Lía  Pérez"))  # quotes, two spaces
    assert scanner.values_registered == 2
    scanner.observe_column("role", _texts("Deputy: ROBERT BOB WALKER"), row_offset=20)
    with pytest.raises(LeakFound, match=r"column 'role' \(data row 21\)"):
        scanner.verify()
