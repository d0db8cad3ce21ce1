"""Report figures from small hand-written datasets: suppression, JSON round trip, trend, charts, [report]."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from odeus_compliance.policy.loader import load_policy, parse_policy
from odeus_compliance.policy.problems import PolicyError
from odeus_compliance.reports.charts import bar_chart, share_chart
from odeus_compliance.reports.content import _trend
from odeus_compliance.reports.figures import DatasetError, ReportFigures
from odeus_compliance.reports.figures_read import compute_figures
from odeus_compliance.reports.render import MISSING, format_amount, format_count

POLICIES = Path(__file__).resolve().parents[2] / "policies"
HEADER = [
    "user_id",
    "department",
    "role",
    "messages_total",
    "messages_chat",
    "messages_assistants",
    "messages_projects",
    "action_messages",
    "payg_consumption_in_period",
    "assistants_to_messages",
    "projects_to_messages",
    "model_to_messages_total",
]


def person(n: int, department: str, messages: int = 10, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "user_id": f"u1_{n:026d}",
        "department": department,
        "role": "member",
        "messages_total": messages,
        "messages_chat": messages - 2 if messages else 0,
        "messages_assistants": 1 if messages else 0,
        "messages_projects": 1 if messages else 0,
        "action_messages": 0,
        "payg_consumption_in_period": "1.5",
        "assistants_to_messages": json.dumps({f"a1_{n % 3}": 1} if messages else {}),
        "projects_to_messages": "{}",
        "model_to_messages_total": json.dumps({"gpt-4o": messages - 1, "claude": 1} if messages else {}),
    }
    row.update(changes)
    return row


def dataset(path: Path, rows: list[dict[str, Any]], header: list[str] = HEADER) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def departments(sizes: dict[str, int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, size in sizes.items():
        rows.extend(person(len(rows), name) for _ in range(size))
    return rows


def test_summary_counts_people_active_users_channels_agents_and_models(tmp_path: Path) -> None:
    rows = [person(1, "A", 10), person(2, "A", 0), person(3, "A", 5), person(4, "A", 3), person(5, "A", 2)]
    figures, persons = compute_figures(dataset(tmp_path / "d.csv", rows), kind="rows", k=5)
    # 4 of 5 active would name 1 inactive person: the count is withheld; a sum that fewer than k people
    # make up (messages: 4 senders) is withheld too, as each of them would learn the others' part
    assert (figures.people, figures.active_users, figures.messages_total) == (5, None, None)
    assert figures.messages == {"actions": 0}
    assert figures.agents_used == 3  # a1_1, a1_0, a1_2 (person 2 sent nothing)
    assert figures.projects_used == 0
    assert figures.actions_used is None  # no such column in this dataset
    assert figures.model_messages == ()  # claude's few users cannot be pooled with enough others
    assert figures.extra_usage_usd == "7.5"
    assert not figures.byok
    assert figures.cost_usd is None
    assert persons == ()


def test_a_small_group_is_hidden_and_only_pooled_with_enough_others(tmp_path: Path) -> None:
    rows = departments({"Legal": 2, "Sales": 10, "Works Council": 6, "IT": 7})
    figures, _ = compute_figures(dataset(tmp_path / "d.csv", rows), kind="rows", k=5)
    table = figures.breakdowns[0]
    by_name = {row.name: row for row in table.rows}
    assert by_name["Legal"].suppression == "primary"
    assert by_name["Legal"].people is None
    assert by_name["Legal"].figures == {}
    # Legal alone (2) would be "total minus visible": the smallest other group is hidden too
    assert by_name["Works Council"].suppression == "complementary"
    assert by_name["Works Council"].people is None
    pooled = by_name["(suppressed)"]
    assert (pooled.suppression, pooled.people, pooled.figures["messages_total"]) == ("pooled", 8, "80")
    assert by_name["Sales"].people == 10
    assert by_name["IT"].figures["messages_total"] == "70"
    visible = sum(row.people or 0 for row in table.rows if row.suppression is None)
    assert visible + (pooled.people or 0) == figures.people
    assert (table.suppressed_primary, table.suppressed_complementary) == (1, 1)


def test_two_small_groups_that_together_hold_k_need_no_complementary_suppression(tmp_path: Path) -> None:
    rows = departments({"Legal": 2, "Audit": 3, "Sales": 10})
    figures, _ = compute_figures(dataset(tmp_path / "d.csv", rows), kind="rows", k=5)
    table = figures.breakdowns[0]
    assert (table.suppressed_primary, table.suppressed_complementary) == (2, 0)
    assert [r.name for r in table.rows if r.suppression is None] == ["Sales"]


def test_fewer_than_k_people_in_total_publish_no_group(tmp_path: Path) -> None:
    figures, _ = compute_figures(dataset(tmp_path / "d.csv", departments({"A": 2, "B": 2})), kind="rows", k=5)
    assert not figures.summary_publishable
    assert not figures.breakdowns[0].total_publishable
    assert figures.breakdowns[0].rows == ()


def test_person_rows_are_capped_and_ordered_by_token_not_usage(tmp_path: Path) -> None:
    rows = [person(n, "A", messages=100 - n) for n in (7, 3, 9, 1, 5, 2, 8)]
    figures, persons = compute_figures(dataset(tmp_path / "d.csv", rows), kind="rows", k=5, person_rows_cap=3)
    assert [p.token for p in persons] == [f"u1_{n:026d}" for n in (1, 2, 3)]
    assert persons[0].figures["messages_total"] == "99"
    assert figures.people == 7


def test_figures_survive_a_json_round_trip(tmp_path: Path) -> None:
    rows = departments({"Legal": 2, "Sales": 10, "IT": 7})
    figures, _ = compute_figures(dataset(tmp_path / "d.csv", rows), kind="rows", k=5)
    again = ReportFigures.from_json(json.loads(json.dumps(figures.to_json())))
    assert again == figures
    with pytest.raises(ValueError, match="format"):
        ReportFigures.from_json({**figures.to_json(), "format": "something else"})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user_id,department\nu1,A,extra\n", "one cell per header column"),
        ("user_id,model_to_messages_total\nu1,[1]\n", "count-map"),
        ("user_id,model_to_messages_total\nu1,{not json\n", "count-map"),
        ("user_id\n" + b"\xff\xfe".decode("latin-1") + "x\n", "not valid UTF-8"),
        ("user_id,user_id\nu1,u2\n", "twice"),
    ],
)
def test_a_malformed_dataset_is_refused_without_quoting_it(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content.encode("latin-1") if "ÿ" in content else content.encode("utf-8"))
    with pytest.raises(DatasetError, match=message) as caught:
        compute_figures(path, kind="rows", k=5)
    assert "u1" not in str(caught.value)


def test_aggregates_are_read_with_the_manifests_suppression_counts(tmp_path: Path) -> None:
    path = tmp_path / "agg.csv"
    path.write_text(
        "dimension,group,people,messages_total,payg_consumption_in_period\n"
        "department,Sales,12,100,3\n"
        "department,(suppressed),10,40,1\n"
        "total,total,22,140,4\n",
        encoding="utf-8",
    )
    groups = {"department": {"groups": 4, "suppressed_primary": 2, "suppressed_complementary": 1}}
    figures, persons = compute_figures(path, kind="aggregates", k=10, manifest_groups=groups)
    assert (figures.people, figures.messages_total, figures.extra_usage_usd) == (22, 140, "4")
    assert figures.active_users is None
    assert figures.agents_used is None
    table = figures.breakdowns[0]
    assert (table.groups, table.suppressed_primary, table.suppressed_complementary) == (4, 2, 1)
    assert [(r.name, r.people, r.suppression) for r in table.rows] == [
        ("Sales", 12, None),
        ("(suppressed)", 10, "pooled"),
    ]
    assert persons == ()
    with pytest.raises(DatasetError):
        compute_figures(path, kind="something", k=10)


def test_the_trend_lists_earlier_months_only_and_marks_this_one(tmp_path: Path) -> None:
    figures, _ = compute_figures(dataset(tmp_path / "d.csv", departments({"A": 6})), kind="rows", k=5)
    older = replace(figures, messages_total=5, active_users=4)
    hidden = replace(figures, summary_publishable=False)
    trend = _trend("2026-10", figures, [("2026-09", older), ("2026-08", hidden), ("2026-11", older)])
    assert [(p.label, p.messages_total, p.current) for p in trend] == [
        ("2026-08", None, False),
        ("2026-09", 5, False),
        ("2026-10", 60, True),
    ]
    assert _trend("2026-10", figures, []) == ()


def test_chart_labels_are_escaped_and_the_svg_has_no_url() -> None:
    svg = str(bar_chart("t", [("<script>x</script>", 5), ("B & C", 2)]))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "B &amp; C" in svg
    assert "href" not in svg
    shares = str(share_chart("m", [("a", 3), ("b", 1)] + [(f"m{n}", 1) for n in range(10)]))
    assert "other models" in shares
    assert "<image" not in shares


def test_number_filters() -> None:
    assert format_count(1234567) == "1,234,567"
    assert format_count(None) == MISSING == "\u2013"
    assert format_amount("1234.5") == "1,234.5"
    assert format_amount("-1234") == "-1,234"
    assert format_amount("0-10") == "0-10"  # a bucket label stays as it is


def _default_with(section: str) -> str:
    text = (POLICIES / "default.toml").read_text(encoding="utf-8")
    start, end = text.index("[report]"), text.index("[columns.users]")
    return text[:start] + section + "\n\n" + text[end:]


def test_the_report_section_of_policies() -> None:
    assert not load_policy(POLICIES / "default.toml").report.person_rows
    assert not load_policy(POLICIES / "strict.toml").report.person_rows
    example = load_policy(POLICIES / "example.toml").report
    assert (example.person_rows, example.person_rows_cap) == (True, 50)
    allowed = parse_policy(
        _default_with("[report]\nperson_rows = true\nperson_rows_cap = 9")
        .replace("per_person_rows = false", "per_person_rows = true")
        .replace('linkability = "stable"', 'linkability = "per_report"'),  # its hierarchy needs that
        source="x",
    )
    assert (allowed.report.person_rows, allowed.report.person_rows_cap) == (True, 9)
    no_section = parse_policy(_default_with(""), source="x")
    assert (no_section.report.person_rows, no_section.report.person_rows_cap) == (False, 50)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[report]\nperson_rows = 1", "true or false"),
        ("[report]\nperson_rows_cap = 0", "from 1 to 500"),
        ("[report]\nperson_rows_cap = 501", "from 1 to 500"),
        ("[report]\nperson_rows_cap = true", "from 1 to 500"),
        ("[report]\nperson_row = true", "unknown key"),
    ],
)
def test_a_bad_report_section_is_refused(section: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(_default_with(section), source="x")


def test_aggregates_only_policies_cannot_print_person_rows() -> None:
    text = (POLICIES / "strict.toml").read_text(encoding="utf-8")
    text = text.replace(
        "person_rows = false          # aggregates only: there", "person_rows = true  # there"
    )
    with pytest.raises(PolicyError, match=r"needs disclosure\.per_person_rows = true"):
        parse_policy(text, source="strict.toml")


@pytest.mark.parametrize("spacing", ["", " "])
def test_count_maps_read_compact_and_general_json_alike(tmp_path: Path, spacing: str) -> None:
    def cell(pairs: dict[str, int]) -> str:
        return json.dumps(pairs, separators=(",", ":" + spacing))

    rows = [
        person(1, "A", model_to_messages_total=cell({"gpt-4o": 3, 'we"ird,\\name': 2})),
        person(2, "A", model_to_messages_total=cell({"gpt-4o": 4, "zero": 0})),
        person(3, "A", model_to_messages_total=cell({"gpt-4o": 3, 'we"ird,\\name': 2})),
        person(4, "A", model_to_messages_total=""),
        person(5, "A", model_to_messages_total="{}"),
    ]
    figures, _ = compute_figures(dataset(tmp_path / "d.csv", rows), kind="rows", k=2)
    assert figures.model_messages == (("gpt-4o", 10), ('we"ird,\\name', 4), ("zero", 0))


@pytest.mark.parametrize("spacing", ["", " "])
def test_agents_and_projects_used_count_keys_with_a_positive_count_in_compact_and_general_json_alike(
    tmp_path: Path, spacing: str
) -> None:
    def cell(pairs: dict[str, int]) -> str:
        return json.dumps(pairs, separators=(",", ":" + spacing))

    rows = [
        person(
            1,
            "A",
            assistants_to_messages=cell({"a_1": 2, "a_zero": 0}),
            projects_to_messages=cell({"p,1": 1}),
        ),
        person(
            2, "A", assistants_to_messages=cell({"a_1": 1, "a_2": 5}), projects_to_messages=cell({"p_2": 0})
        ),
        person(3, "A", assistants_to_messages=cell({"a_neg": -1}), projects_to_messages=""),
        person(4, "A", assistants_to_messages="{}", projects_to_messages="{}"),
    ]
    figures, _ = compute_figures(dataset(tmp_path / "d.csv", rows), kind="rows", k=5)
    assert figures.agents_used == 2  # a_1, a_2: a zero or negative count is no use
    assert figures.projects_used == 1  # "p,1" (a key with a comma takes the general path)


@pytest.mark.parametrize(
    "bad", ['{"a":1},{"b":2}', '{"a":1.5}', '{"a":"1"}', '{"a":[1]}', "[1]", '{"a":1', "{'a':1}"]
)
def test_a_count_map_that_is_not_one_object_of_counts_is_refused(tmp_path: Path, bad: str) -> None:
    rows = [person(1, "A"), person(2, "A", model_to_messages_total=bad)]
    with pytest.raises(DatasetError, match="count-map"):
        compute_figures(dataset(tmp_path / "d.csv", rows), kind="rows", k=5)
