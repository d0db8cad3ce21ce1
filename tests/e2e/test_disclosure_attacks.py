"""The review's attacks on what a report publishes, run against the policy engine and the report figures.

Hostile exports are generated here (one owner, nested roles, a dominant user, rare models, duplicated ids,
an export sorted by e-mail), put through the shipped policies as a report would, and attacked with the
ground truth: an automatic differencing attacker tries every pair of published populations; others count
people, look for rare models, compare row order with the input, and subtract a re-run from its original.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from odeus_compliance.policy.disclosure import DisclosureError
from odeus_compliance.policy.engine import apply_to_file
from odeus_compliance.policy.keys import engine_keys
from odeus_compliance.policy.loader import load_policy
from odeus_compliance.policy.model import Policy
from odeus_compliance.reports.figures import ReportFigures
from odeus_compliance.reports.figures_read import compute_figures
from odeus_compliance.reports.versions import small_changes
from tests.support.policies import GATED_ROWS
from tests.unit.test_policy_engine import MASTER, user_row, write_export

POLICIES = Path(__file__).resolve().parents[2] / "policies"
DIMENSIONS = ("department", "company_name", "role", "license_type")


def _workspace(seed: int, size: int, *, heavy: bool = True) -> list[dict[str, Any]]:
    """A hostile but plausible workspace: one owner, admins, developers all in Engineering, a tiny company,
    a heavy user, rare models."""
    rng = random.Random(seed)
    rows = []
    for n in range(size):
        department = rng.choices(["Engineering", "Sales", "Legal", "Board"], weights=[55, 35, 8, 2])[0]
        role = "owner" if n == 0 else ("admin" if n < 3 else "member")
        messages = 50_000 if heavy and n == 7 else rng.randint(0, 40)  # person 7 dominates their groups
        model = "rare-model" if n in (11, 12) else rng.choice(["gpt-4o", "claude"])
        rows.append(
            user_row(
                n,
                department=department,
                role=role,
                company_name=rng.choices(["Main GmbH", "Tiny Ltd"], weights=[95, 5])[0],
                license_type="enterprise" if n < 3 else rng.choice(["enterprise", "team"]),
                messages_total=str(messages),
                messages_chat=str(messages),
                model_to_messages_total=json.dumps({model: messages}),
            )
        )
    return rows


def _report(
    tmp_path: Path, rows: list[dict[str, Any]], policy_name: str
) -> tuple[Policy, Path, dict[str, Any]]:
    folder = GATED_ROWS.parent if policy_name == GATED_ROWS.stem else POLICIES
    policy = load_policy(folder / f"{policy_name}.toml")
    source = write_export(tmp_path / "raw.csv", rows)
    out = tmp_path / "out.csv"
    result = apply_to_file(
        policy,
        _users(),
        source=source,
        out=out,
        manifest_path=tmp_path / "out.manifest.json",
        keys=engine_keys(MASTER, policy),
    )
    return policy, out, result.manifest


def _users() -> Any:
    from odeus_compliance.upstream.columns import ExportType  # noqa: PLC0415

    return ExportType.USERS


def _figures(policy: Policy, out: Path, manifest: Mapping[str, Any]) -> ReportFigures:
    figures, _ = compute_figures(
        out,
        kind=manifest["output"]["kind"],
        k=policy.disclosure.min_group_size,
        dominance=float(policy.disclosure.dominance_limit),
        manifest_groups=manifest["disclosure"].get("groups"),
    )
    return figures


def _populations(figures: ReportFigures, rows: list[dict[str, Any]]) -> list[tuple[str, set[str]]]:
    """Every population a reader of the figures can form, with its members (ground truth)."""
    everyone = {r["user_id"] for r in rows}
    cells = [("total", everyone)] if figures.summary_publishable else []
    for breakdown in figures.breakdowns:
        hidden = {r.name for r in breakdown.rows if r.suppression not in (None, "pooled")}
        for row in breakdown.rows:
            if row.people is None:
                continue
            if row.suppression == "pooled":
                members = {r["user_id"] for r in rows if r[breakdown.dimension] in hidden}
                cells += [
                    (f"{breakdown.dimension} pool", members),
                    (f"{breakdown.dimension} rest", everyone - members),
                ]
            else:
                cells.append(
                    (
                        f"{breakdown.dimension}={row.name}",
                        {r["user_id"] for r in rows if r[breakdown.dimension] == row.name},
                    )
                )
    return cells


@pytest.mark.parametrize("seed", range(6))
def test_no_difference_of_published_figures_isolates_fewer_than_k_people(tmp_path: Path, seed: int) -> None:
    rows = _workspace(seed, 140)
    policy, out, manifest = _report(tmp_path, rows, "default")
    figures = _figures(policy, out, manifest)
    k = policy.disclosure.min_group_size
    cells = _populations(figures, rows)
    assert any(name.startswith("department=") for name, _ in cells)  # the breakdown survives
    for name, members in cells:
        assert "rest" in name or not 0 < len(members) < k, name
    for (a, left), (b, right) in itertools.combinations(cells, 2):
        small, large = (left, right) if len(left) <= len(right) else (right, left)
        if small <= large:
            assert not 0 < len(large - small) < k, (a, b)
    # published people counts are the true distinct counts, and every table adds up to the total
    for breakdown in figures.breakdowns:
        shown = sum(r.people or 0 for r in breakdown.rows)
        assert shown in (0, figures.people), breakdown.dimension


def test_the_owner_is_never_a_group_of_their_own_nor_a_difference(tmp_path: Path) -> None:
    rows = _workspace(3, 60)
    policy, out, manifest = _report(tmp_path, rows, "default")
    figures = _figures(policy, out, manifest)
    role = next(b for b in figures.breakdowns if b.dimension == "role")
    assert all(r.name != "owner" for r in role.rows if r.people is not None and r.suppression is None)
    text = out.read_text(encoding="utf-8")
    assert "owner" not in [line.split(",")[1] for line in text.splitlines()[1:] if line.startswith("role,")]


def test_a_dominant_users_sum_is_never_published_alone(tmp_path: Path) -> None:
    rows = _workspace(5, 120)
    policy, out, manifest = _report(tmp_path, rows, "default")
    figures = _figures(policy, out, manifest)
    heavy = rows[7]
    for breakdown in figures.breakdowns:
        for row in breakdown.rows:
            if row.people is None or row.suppression == "pooled" or "messages_total" not in row.figures:
                continue
            members = [r for r in rows if r[breakdown.dimension] == row.name]
            if heavy in members:
                total = sum(int(r["messages_total"]) for r in members)
                assert int(heavy["messages_total"]) <= 0.6 * total, row.name
    audit = manifest["disclosure"]["audit"]
    assert audit["largest_share"] is not None
    assert audit["largest_share"] <= 0.6 or "messages_total" in audit["figures_withheld_for_dominance"]


_ID = "usr_000000000000"
_ID_VARIANTS = {
    "zero-width space": _ID + "\u200b",
    "zero-width joiner": _ID + "\u200d",
    "word joiner": _ID + "\u2060",
    "byte order mark": "\ufeff" + _ID,
    "soft hyphen inside": "usr_000\u00ad000000000",
    "full-width digits": "usr_\uff10\uff10\uff10000000000",
    "mathematical digits": "usr_\U0001d7ce00000000000",
    "upper case": _ID.upper(),
    "no-break spaces": "\u00a0" + _ID + "\u3000",
}


@pytest.mark.parametrize("how", list(_ID_VARIANTS))
def test_an_id_spelt_another_way_is_still_one_person(tmp_path: Path, how: str) -> None:
    # 4 people in Sales and 20 in Engineering; person 0 again, spelt another way: Sales must not reach 5
    rows = [user_row(n, department="Sales" if n < 4 else "Engineering") for n in range(24)]
    rows.append(user_row(0, user_id=_ID_VARIANTS[how], department="Sales"))
    policy, out, manifest = _report(tmp_path, rows, "default")
    figures = _figures(policy, out, manifest)
    assert figures.people == 24
    department = next(b for b in figures.breakdowns if b.dimension == "department")
    assert "Sales" not in {row.name for row in department.rows}


def test_an_id_spelt_another_way_in_another_department_is_refused(tmp_path: Path) -> None:
    rows = [user_row(n, department="Sales" if n < 10 else "Engineering") for n in range(30)]
    rows.append(user_row(0, user_id=_ID + "\u200b", department="Engineering"))
    with pytest.raises(DisclosureError, match="more than one department"):
        _report(tmp_path, rows, "default")


def test_duplicate_ids_count_as_one_person(tmp_path: Path) -> None:
    rows = [user_row(n, department="Sales") for n in range(10)]
    rows += [
        user_row(0, user_id=variant, department="Sales")
        for variant in (" usr_000000000000", "usr_000000000000 ")
    ]
    policy, out, manifest = _report(tmp_path, rows, "default")
    figures = _figures(policy, out, manifest)
    assert figures.people == 10
    assert manifest["disclosure"]["audit"]["rows"] == 12


def test_a_group_named_like_the_pooled_row_cannot_pass_for_it(tmp_path: Path) -> None:
    # departments literally named "(suppressed)" (8) and "(none)" (9), 20 in Sales, 3 in Legal, 3 in none
    rows = [user_row(n, department="(suppressed)") for n in range(8)]
    rows += [user_row(n, department="(none)") for n in range(8, 17)]
    rows += [user_row(n, department="Sales") for n in range(17, 37)]
    rows += [user_row(n, department="Legal") for n in range(37, 40)]
    rows += [user_row(n, department="") for n in range(40, 43)]
    policy, out, manifest = _report(tmp_path, rows, "default")
    breakdown = next(b for b in _figures(policy, out, manifest).breakdowns if b.dimension == "department")
    names = [row.name for row in breakdown.rows]
    assert "(suppressed) (as named in the export)" in names
    assert "(none) (as named in the export)" in names  # not merged with the people of no department
    assert all(row.suppression == "pooled" for row in breakdown.rows if row.name == "(suppressed)")


def test_a_model_used_by_few_people_is_never_shown(tmp_path: Path) -> None:
    rows = _workspace(2, 120, heavy=False)
    policy, out, manifest = _report(tmp_path, rows, "gated_rows")  # a policy whose rows keep model maps
    figures = _figures(policy, out, manifest)
    names = [name for name, _ in figures.model_messages]
    assert "rare-model" not in names
    assert names  # the common models are shown


def test_rows_name_no_model_a_few_people_use(tmp_path: Path) -> None:
    rows = _workspace(2, 120, heavy=False)
    _policy, out, _manifest = _report(tmp_path, rows, "rows")
    assert "rare-model" not in out.read_text(encoding="utf-8")


def test_rows_leave_in_no_input_order(tmp_path: Path) -> None:
    rows = sorted(_workspace(4, 300), key=lambda r: r["email"])  # an export sorted by e-mail address
    _, out, _ = _report(tmp_path, rows, "rows")
    with out.open(encoding="utf-8", newline="") as handle:
        written = [r["messages_total"] for r in csv.DictReader(handle)]
    original = [r["messages_total"] for r in rows]
    assert sorted(written) == sorted(original)
    matches = sum(1 for a, b in zip(written, original, strict=True) if a == b)
    assert matches < len(rows) // 4  # position by position, the output no longer follows the input
    # a second report of another epoch (per_report tokens) orders the rows differently again
    again = tmp_path / "again"
    again.mkdir()
    _, second, _ = _report(again, rows, "rows")
    assert second.read_bytes() != out.read_bytes()


def test_a_rerun_that_differs_by_one_person_is_refused() -> None:
    october = {"summary_publishable": True, "people": 40, "breakdowns": [
        {"dimension": "department", "rows": [{"name": "Sales", "people": 12}, {"name": "IT", "people": 28}]}
    ]}  # fmt: skip
    one_left = json.loads(json.dumps(october))
    one_left["people"] = 39
    one_left["breakdowns"][0]["rows"][0]["people"] = 11
    assert small_changes(one_left, [october], 5) == ["department", "total"]
    assert small_changes(october, [october], 5) == []
