"""The engine's lean paths give what the plain ones give: the release audit from atom tables summed batch by
batch, the aggregator's exact sums and its per-person fallback, the leak scan's key hashes, and the
per-value results remembered across batches."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from odeus_compliance.policy import leakscan
from odeus_compliance.policy.aggregates import LINKED_FIGURES, Aggregator
from odeus_compliance.policy.columnar import per_distinct
from odeus_compliance.policy.key_hashes import text_hashes
from odeus_compliance.policy.leakscan import LeakFound, LeakScanner, identifying_keys
from odeus_compliance.policy.release_audit import atom_table, audit_atoms, audit_release, merge_atom_tables
from odeus_compliance.policy.text_fold import skeleton

DIMS = ("department", "role")
FIGS = ("messages_total", "messages_chat")


def _people(seed: int, size: int) -> pa.Table:
    rng = random.Random(seed)
    departments = ["Engineering", "Sales", "Legal", "Board"]
    rows = [
        {
            "department": rng.choices(departments, weights=[60, 30, 8, 2])[0],
            "role": rng.choice(["developer", "lead", "staff"]),
            "messages_total": float(rng.randint(0, 40) if rng.random() < 0.95 else rng.randint(500, 900)),
            "messages_chat": float(rng.randint(0, 20)),
        }
        for _ in range(size)
    ]
    table = pa.table({c: [row[c] for row in rows] for c in [*DIMS, *FIGS]})
    return table.append_column("active", pa.array([1.0 if r["messages_total"] else 0.0 for r in rows]))


@pytest.mark.parametrize("seed", range(12))
def test_the_audit_of_atoms_summed_batch_by_batch_is_the_audit_of_everyone(seed: int) -> None:
    people = _people(seed, 40 + 13 * seed)
    counted = [*FIGS, "active"]
    parts = [atom_table(people.slice(start, 17), DIMS, counted) for start in range(0, people.num_rows, 17)]
    options = {"dimensions": DIMS, "figures": FIGS, "k": 5, "dominance": 0.6, "linked": LINKED_FIGURES}
    whole = audit_release(people, **options, active="active")  # type: ignore[arg-type]
    atoms = merge_atom_tables(parts, DIMS, counted)
    batched = audit_atoms(atoms, **options, active="active")  # type: ignore[arg-type]
    assert batched == whole


def _batch(ids: list[str], departments: list[str], totals: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "user_id": pa.array(ids, pa.string()),
            "department": pa.array(departments, pa.string()),
            "messages_total": pa.array(totals, pa.string()),
            "total_cost_usd": pa.array(totals, pa.string()),
        }
    )


def _aggregator(tmp_path: Path) -> Aggregator:
    return Aggregator(
        dimensions=("department",),
        figures=("messages_total", "total_cost_usd"),
        person="user_id",
        active="messages_total",
        spool_dir=tmp_path,
    )


def test_whole_numbers_and_fractions_are_summed_exactly(tmp_path: Path) -> None:
    aggregator = _aggregator(tmp_path)
    aggregator.observe(_batch([f"u{i}" for i in range(6)], ["Sales"] * 6, ["1", "2", "3", "4", "5", "6"]))
    aggregator.observe(_batch([f"v{i}" for i in range(6)], ["Sales"] * 6, ["0.1", "0.2"] * 3))
    rows, _ = aggregator.table(k=2)
    sales = next(row for row in rows if row[:2] == ["department", "Sales"])
    assert sales[2] == "12"
    assert Decimal(sales[3]) == Decimal(21) + Decimal("0.9")  # not 21.900000000000002


def test_a_person_with_several_rows_is_merged_from_the_spool(tmp_path: Path) -> None:
    aggregator = _aggregator(tmp_path)
    ids = [f"u{i}" for i in range(8)]
    aggregator.observe(_batch(ids, ["Sales"] * 8, ["10"] * 8))
    aggregator.observe(_batch(["u0", "u1"], ["Sales", "Sales"], ["5", "5"]))  # the same two people again
    rows, report = aggregator.table(k=2)
    total = next(row for row in rows if row[0] == "total")
    assert total[2] == "8"  # people, not rows
    assert total[3] == "90"
    assert report["audit"]["rows"] == 10


def test_the_spool_is_dropped_when_the_run_ends(tmp_path: Path) -> None:
    aggregator = _aggregator(tmp_path)
    aggregator.observe(_batch(["u0", "u0"], ["Sales", "Legal"], ["1", "1"]))
    aggregator.close()
    aggregator.close()  # twice: no harm
    assert aggregator.people_table().num_rows == 0


def test_key_hashes_are_the_hashes_of_the_keys() -> None:
    rng = random.Random(3)
    alphabet = "rnvvcli10oab@+., '"
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(3000)]
    for value in values:
        array = pa.array([value], pa.string())
        keys = [str(k) for k in identifying_keys(array, skeletons=True).to_pylist()]
        plain = [str(k) for k in identifying_keys(array, skeletons=False).to_pylist()]
        assert set(keys) == {skeleton(k) for k in plain if len(skeleton(k)) >= leakscan.MIN_CHARS}
        hashed = leakscan._identifying_key_parts(array, skeletons=True, hashed=True)
        found = {h for part in hashed for h in part.to_pylist()}
        assert found == set(text_hashes(pa.array(keys, pa.string())).to_pylist())


def test_names_repeated_across_batches_are_still_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leakscan, "EARLY_CHECK_LIMIT", 0)  # every comparison waits for verify()
    scanner = LeakScanner()
    for _ in range(3):  # repeated values: each batch's distinct ones only
        scanner.add_identifying(pa.array(["Anna Meier"] * 50 + ["Bo Larsson"] * 50), column="name")
        scanner.add_identifying(pa.array([f"usr_{i:012x}" for i in range(100)]), column="user_id")
    scanner.observe_column("department", pa.array(["Team of Larsson Bo"]), row_offset=7)
    with pytest.raises(LeakFound) as caught:
        scanner.verify()
    assert caught.value.row == 8


def test_remembered_results_are_those_computed() -> None:
    calls: list[str] = []

    def doubled(value: str) -> str:
        calls.append(value)
        return str(2 * int(value))

    cache: dict[str, str | None] = {}
    first = per_distinct(pa.array(["1", "2", None, "1"]), doubled, column="c", row_offset=0, cache=cache)
    again = per_distinct(pa.array(["2", "3", "1"]), doubled, column="c", row_offset=4, cache=cache)
    assert first.to_pylist() == ["2", "4", None, "2"]
    assert again.to_pylist() == ["4", "6", "2"]
    assert calls == ["1", "2", "3"]
