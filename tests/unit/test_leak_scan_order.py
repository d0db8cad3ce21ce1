"""The leak scan finds a value whatever order values and output texts arrive in, also from threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pytest

from odeus_compliance.policy import leakscan
from odeus_compliance.policy.leakscan import LeakFound, LeakScanner

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


def test_values_outside_ascii_are_found_in_any_spelling() -> None:
    scanner = LeakScanner()
    scanner.observe_column("department", _texts("Sales"), row_offset=0)
    scanner.add_identifying(_texts('Robert "Bob" Walker', "Ana-Lía  Pérez"))  # quotes, two spaces
    assert scanner.values_registered == 2
    scanner.observe_column("role", _texts("Deputy: ana lia PEREZ"), row_offset=20)
    with pytest.raises(LeakFound, match=r"column 'role' \(data row 21\)"):
        scanner.verify()


@pytest.mark.parametrize("early_limit", [0, leakscan.EARLY_CHECK_LIMIT])
def test_the_earliest_row_is_named_for_a_value_inside_words(
    monkeypatch: pytest.MonkeyPatch, early_limit: int
) -> None:
    monkeypatch.setattr(leakscan, "EARLY_CHECK_LIMIT", early_limit)
    monkeypatch.setattr(leakscan, "_TEXT_KEYS_AT_ONCE", 5)  # output keys move to Arrow in many chunks
    scanner = LeakScanner()
    scanner.observe_column("role", _texts("Lead", "teamcarlarossi2024"), row_offset=30)
    scanner.add_identifying(_NAMES)
    scanner.observe_column("department", _texts("Sales", "XbolarssonY"), row_offset=3)
    scanner.observe_column("agent", _texts("bolarssonbot"), row_offset=50)
    with pytest.raises(LeakFound, match=r"column 'department' \(data row 5\)"):
        scanner.verify()


def test_a_look_alike_found_early_names_the_earliest_row() -> None:
    scanner = LeakScanner()
    scanner.observe_column("role", _texts("Lead", "Team of CARLA R0SSl"), row_offset=8)
    scanner.observe_column("department", _texts("x", "y", "Bo Lar55on", "BoLarsson1"), row_offset=0)
    scanner.add_identifying(_NAMES)  # checked now: both texts are known
    scanner.observe_column("agent", _texts("B0 LARSS0N"), row_offset=1)  # later, but row 2 is the earliest
    with pytest.raises(LeakFound, match=r"column 'agent' \(data row 2\)"):
        scanner.verify()
