"""The disclosure audit of grouped figures, attacked: every published cell and every combination of two
or three.

Workspaces are generated with the shapes that broke the old control (one owner, nested roles inside one
department, a heavy user holding most of a group's messages, tiny companies), and an attacker with the
ground truth checks what a reader of the report could compute: every published cell, and every pair of
published populations where one contains the other, must hold 0 or at least k people; no published sum
may be dominated by one person; every table must add up to the same total.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.policy.disclosure import DisclosureError
from odeus_compliance.policy.release_audit import ReleasePlan, audit_release

DIMS = ("department", "company_name", "role", "license_type")
FIGS = ("messages_total", "total_cost_usd")


def _workspace(seed: int, size: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    people: list[dict[str, object]] = []
    departments = ["Engineering", "Sales", "Legal", "HR", "Board"]
    for index in range(size):
        department = rng.choices(departments, weights=[50, 25, 6, 5, 1])[0]
        # nested: every developer is in Engineering (the subtraction the review found)
        role = (
            "developer"
            if department == "Engineering" and rng.random() < 0.9
            else rng.choice(["staff", "lead"])
        )
        if index == 0:
            role = "owner"  # one owner, whose role everyone knows
        messages = rng.randint(0, 40) if rng.random() < 0.97 else rng.randint(2000, 9000)  # a heavy user
        people.append(
            {
                "department": department,
                "company_name": rng.choices(["Main", "Sub", "Tiny"], weights=[80, 18, 2])[0],
                "role": role,
                "license_type": rng.choice(["enterprise", "team"]) if index else "enterprise",
                "messages_total": float(messages),
                "total_cost_usd": float(messages // 10),
                "active": 1.0 if messages else 0.0,
            }
        )
    return people


def _table(people: list[dict[str, object]]) -> pa.Table:
    columns = [*DIMS, *FIGS, "active"]
    return pa.table({c: [p[c] for p in people] for c in columns})


def _published(plan: ReleasePlan, people: list[dict[str, object]]) -> list[tuple[str, frozenset[int]]]:
    """Every population a reader can form: each cell, and total minus each pool."""
    everyone = frozenset(range(len(people)))
    cells: list[tuple[str, frozenset[int]]] = []
    if not plan.total_published:
        return cells
    cells.append(("total", everyone))
    for dimension, release in plan.tables.items():
        if not release.published:
            continue
        cells += [
            (f"{dimension}={group}", frozenset(i for i, p in enumerate(people) if p[dimension] == group))
            for group in release.visible
        ]
        if release.suppressed:
            pool = frozenset(i for i, p in enumerate(people) if p[dimension] in release.suppressed)
            cells += [(f"{dimension} pool", pool), (f"{dimension} rest", everyone - pool)]
    return cells


def _attack(plan: ReleasePlan, people: list[dict[str, object]], k: int, share: float) -> list[str]:
    found = []
    cells = _published(plan, people)
    for name, members in cells:
        if "rest" not in name and 0 < len(members) < k:
            found.append(f"{name} holds {len(members)}")
        for figure in FIGS:
            if figure in plan.withheld_figures or not members:
                continue
            values = [float(people[i][figure]) for i in members]  # type: ignore[arg-type]
            if "rest" not in name and sum(values) > 0 and max(values) > share * sum(values):
                found.append(f"{name} {figure} dominated")
    everyone = frozenset(range(len(people)))
    for (a, left), (b, right) in itertools.combinations(cells, 2):
        small, large = (left, right) if len(left) <= len(right) else (right, left)
        if small <= large and 0 < len(large) - len(small) < k:
            found.append(f"{a} vs {b}: difference of {len(large) - len(small)}")
        # a + b - total: the overlap when together they cover everyone, minus those outside both
        overlap, outside = len(left & right), len(everyone - left - right)
        if (outside == 0 and 0 < overlap < k) or (overlap == 0 and 0 < outside < k):
            found.append(f"{a} + {b} - total isolates {max(overlap, outside)}")
    found += _three_cell_attack(cells, len(people), k)
    if plan.active_in_tables or plan.active_in_total:
        for name, members in cells:
            if name != "total" and not plan.active_in_tables:
                continue
            active = sum(1 for i in members if people[i]["active"])
            if any(0 < part < k for part in (active, len(members) - active)):
                found.append(f"{name}: active split {active}/{len(members)}")
    return found


def _three_cell_attack(cells: list[tuple[str, frozenset[int]]], people: int, k: int) -> list[str]:
    """Every A + B - C and A - B - C: counting each person 0 or 1 times, do they isolate 1 to k-1?"""
    found = []
    for trio in itertools.combinations(cells, 3):
        for signs in ((1, 1, -1), (1, -1, 1), (-1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
            counts = [0] * people
            for sign, (_name, members) in zip(signs, trio, strict=True):
                for person in members:
                    counts[person] += sign
            if all(c in (0, 1) for c in counts) and 0 < sum(counts) < k:
                names = " ".join(
                    f"{'+' if sign > 0 else '-'}{name}" for sign, (name, _m) in zip(signs, trio, strict=True)
                )
                found.append(f"{names} isolates {sum(counts)}")
    return found


@given(seed=st.integers(0, 10_000), size=st.integers(0, 160), k=st.sampled_from([3, 5, 10]))
@settings(max_examples=150, deadline=None)
def test_the_differencing_attacker_finds_nothing(seed: int, size: int, k: int) -> None:
    people = _workspace(seed, size)
    plan = audit_release(_table(people), dimensions=DIMS, figures=FIGS, k=k, dominance=0.6, active="active")
    assert _attack(plan, people, k, 0.6) == []


def test_a_department_minus_its_nested_role_is_refused() -> None:
    # 12 in Engineering, 11 of them developers, all in one company: the old tables showed both
    people = [
        {"department": "Engineering", "company_name": "Main", "role": "developer" if i < 11 else "lead",
         "license_type": "team", "messages_total": 10.0, "total_cost_usd": 1.0, "active": 1.0}
        for i in range(12)
    ] + [
        {"department": "Sales", "company_name": "Main", "role": "staff", "license_type": "team",
         "messages_total": 10.0, "total_cost_usd": 1.0, "active": 1.0}
        for _ in range(12)
    ]  # fmt: skip
    plan = audit_release(_table(people), dimensions=DIMS, figures=FIGS, k=5, dominance=0.6, active="active")
    assert _attack(plan, people, 5, 0.6) == []
    role = plan.tables["role"]
    department = plan.tables["department"]
    assert not ({"Engineering"} <= set(department.visible) and {"developer"} <= set(role.visible))


def test_a_dominant_person_pools_their_group_and_a_dominated_total_withholds_the_figure() -> None:
    people = [
        {"department": "A" if i < 6 else "B", "company_name": "Main", "role": "staff", "license_type": "team",
         "messages_total": 1000.0 if i == 0 else 10.0, "total_cost_usd": 1.0, "active": 1.0}
        for i in range(200)
    ]  # fmt: skip
    plan = audit_release(_table(people), dimensions=DIMS, figures=FIGS, k=5, dominance=0.6, active="active")
    assert plan.withheld_figures == frozenset()
    assert "A" not in plan.tables["department"].visible
    assert _attack(plan, people, 5, 0.6) == []
    heavy = [dict(p, messages_total=100_000.0 if i == 0 else 1.0) for i, p in enumerate(people)]
    plan = audit_release(_table(heavy), dimensions=DIMS, figures=FIGS, k=5, dominance=0.6, active="active")
    assert plan.withheld_figures == {"messages_total"}


def test_two_cells_that_cover_everyone_do_not_reveal_their_one_shared_person() -> None:
    # A = v + 10 in roles Y/Z; X = v + 10 in departments B/C: A + X - total is v alone
    def person(department: str, role: str, messages: float) -> dict[str, object]:
        return {"department": department, "company_name": "Main", "role": role, "license_type": "team",
                "messages_total": messages, "total_cost_usd": 1.0, "active": 1.0}  # fmt: skip

    people = [person("A", "X", 13.0)]
    people += [person("A", "Y" if i < 5 else "Z", 1.0) for i in range(10)]
    people += [person("B" if i < 5 else "C", "X", 1.0) for i in range(10)]
    plan = audit_release(_table(people), dimensions=DIMS, figures=FIGS, k=5, dominance=0.6, active="active")
    assert _attack(plan, people, 5, 0.6) == []
    assert not ("A" in plan.tables["department"].visible and "X" in plan.tables["role"].visible)


def test_a_refund_dominates_like_a_charge() -> None:
    people = [
        {"department": "A" if i < 6 else "B", "company_name": "Main", "role": "staff", "license_type": "team",
         "messages_total": -500.0 if i == 0 else 1.0, "total_cost_usd": 1.0, "active": 1.0}
        for i in range(1000)
    ]  # fmt: skip
    plan = audit_release(_table(people), dimensions=DIMS, figures=FIGS, k=5, dominance=0.6, active="active")
    assert plan.withheld_figures == frozenset()  # -500 of 1,499 in magnitude: the total is not dominated
    assert "A" not in plan.tables["department"].visible


def test_too_few_people_publish_nothing() -> None:
    people = _workspace(1, 4)
    plan = audit_release(_table(people), dimensions=DIMS, figures=FIGS, k=5, dominance=0.6, active="active")
    assert not plan.total_published
    assert _published(plan, people) == []


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(DisclosureError):
        audit_release(_table(_workspace(1, 10)), dimensions=DIMS, figures=FIGS, k=0, dominance=0.6)
    with pytest.raises(DisclosureError):
        audit_release(_table(_workspace(1, 10)), dimensions=DIMS, figures=FIGS, k=5, dominance=1.5)


def _count(plan: ReleasePlan) -> Mapping[str, int]:
    return {d: len(r.visible) for d, r in plan.tables.items()}


def test_an_ordinary_workspace_keeps_its_large_groups() -> None:
    people = _workspace(7, 500)
    plan = audit_release(_table(people), dimensions=DIMS, figures=FIGS, k=5, dominance=0.6, active="active")
    assert plan.total_published
    assert _count(plan)["department"] >= 2  # the breakdown works councils want most survives
    assert _attack(plan, people, 5, 0.6) == []


def test_three_cells_that_add_up_to_one_person_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Engineering (6 leads, one of them on a team licence) + developers (6, enterprise) - enterprise (11)
    # is that one lead; every pair of these cells passes the two-cell checks
    def person(department: str, role: str, licence: str) -> dict[str, object]:
        return {"department": department, "company_name": "Main", "role": role, "license_type": licence,
                "messages_total": 10.0, "total_cost_usd": 1.0, "active": 1.0}  # fmt: skip

    people = [person("Engineering", "lead", "team")]
    people += [person("Engineering", "lead", "enterprise") for _ in range(5)]
    people += [person("Sales", "developer", "enterprise") for _ in range(6)]
    people += [person("Sales", "staff", "team") for _ in range(10)]
    people += [person("Sales", "analyst", "team") for _ in range(5)]
    table = _table(people)
    plan = audit_release(table, dimensions=DIMS, figures=FIGS, k=5, dominance=0.6, active="active")
    assert _attack(plan, people, 5, 0.6) == []
    from odeus_compliance.policy import release_audit  # noqa: PLC0415

    monkeypatch.setattr(release_audit, "_triple", lambda *_args: None)  # the audit without this check
    unchecked = audit_release(table, dimensions=DIMS, figures=FIGS, k=5, dominance=0.6, active="active")
    assert any("isolates 1" in finding for finding in _attack(unchecked, people, 5, 0.6))


@given(
    atoms=st.lists(st.integers(1, 6), min_size=1, max_size=10),
    cells=st.lists(st.integers(1, 2**10 - 1), min_size=3, max_size=9),
    k=st.sampled_from([2, 3, 5]),
)
@settings(max_examples=300, deadline=None)
def test_the_pruned_three_cell_search_finds_what_brute_force_finds(
    atoms: list[int], cells: list[int], k: int
) -> None:
    from odeus_compliance.policy.release_triples import MaskedCell, isolating_triple  # noqa: PLC0415

    full = (1 << len(atoms)) - 1
    subsets = [m & full for m in cells]
    masked = [MaskedCell(sum(n for b, n in enumerate(atoms) if m >> b & 1), m) for m in subsets]
    found = False
    for trio in itertools.combinations(masked, 3):
        for signs in itertools.product((1, -1), repeat=3):
            weights = [
                sum(s * (c.atoms >> b & 1) for s, c in zip(signs, trio, strict=True))
                for b in range(len(atoms))
            ]
            isolated = sum(n for w, n in zip(weights, atoms, strict=True) if w == 1)
            if all(w in (0, 1) for w in weights) and 0 < isolated < k:
                found = True
    assert (isolating_triple(masked, k) is not None) == found
