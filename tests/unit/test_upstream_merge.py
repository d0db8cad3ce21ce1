"""Merging the parts of a split export: sums, maps, recounted distincts, recomputed ranks and utilisation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from odeus_compliance.upstream.columns import ExportType, GroupBy, columns_for
from odeus_compliance.upstream.errors import UpstreamTooLarge
from odeus_compliance.upstream.merge import (
    ExportMerger,
    assign_competition_ranks,
    refuse_unmergeable_type,
    utilisation_pct,
)

USERS = columns_for(ExportType.USERS, byok=True)


def _user(user_id: str, start: int, end: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: 0 for c in USERS}
    row.update(
        period_start=date(2026, 3, start),
        period_end=date(2026, 3, end),
        org_id="org_1",
        user_id=user_id,
        name=f"Name {user_id}",
        email=f"{user_id}@example.com",
        role="member",
        joined_at=date(2025, 1, 1),
        department="Sales",
        company_name="Acme",
        license_type="pro",
        payg_limit_current=Decimal(50),
        payg_consumption_in_period=Decimal(0),
        payg_utilization_pct_current=Decimal(0),
        total_cost_usd=Decimal(0),
        assistants_to_messages={},
        projects_to_messages={},
        model_to_messages_total={},
        action_to_messages={},
    )
    row.update(values)
    return row


def _merged(*parts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    merger = ExportMerger(ExportType.USERS, USERS)
    for rows in parts:
        merger.add_part(USERS, rows)
    return {row["user_id"]: row for row in merger.result()}


def test_users_merge_rules() -> None:
    first = [
        _user(
            "u1",
            1,
            15,
            messages_total=10,
            payg_consumption_in_period=Decimal("10.10"),
            assistants_to_messages={"a1": 4, "a2": 0},
            action_to_messages={"x": 1},
            total_cost_usd=Decimal("0.1"),
        ),
        _user("u2", 1, 15, messages_total=30, role="admin"),
    ]
    second = [
        _user(
            "u1",
            16,
            31,
            messages_total=20,
            payg_consumption_in_period=Decimal("2.5"),
            name="New Name",
            payg_limit_current=Decimal(40),
            assistants_to_messages={"a2": 2, "a3": 1},
            total_cost_usd=Decimal("0.2"),
        ),
        _user("u3", 16, 31, messages_total=30),
    ]
    rows = _merged(first, second)
    u1 = rows["u1"]
    assert (u1["period_start"], u1["period_end"]) == (date(2026, 3, 1), date(2026, 3, 31))
    assert u1["messages_total"] == 30
    assert u1["total_cost_usd"] == Decimal("0.3")
    assert u1["assistants_to_messages"] == {"a1": 4, "a2": 2, "a3": 1}
    assert u1["assistants_messaged"] == 3
    assert u1["action_messaged"] == 1
    assert u1["name"] == "New Name"  # descriptive columns: the latest part
    assert u1["payg_limit_current"] == Decimal(40)
    assert u1["payg_utilization_pct_current"] == Decimal("31.50")  # 100 * 12.60 / 40
    assert rows["u2"]["role"] == "admin"  # only in the first part: its own latest values
    # competition ranking "1224": u1 = 30, u2 = 30, u3 = 30 -> all rank 1
    assert [rows[u]["messages_total_rank"] for u in ("u1", "u2", "u3")] == [1, 1, 1]


def test_competition_ranking_1224() -> None:
    rows: list[dict[str, Any]] = [{"m": v} for v in (5, 9, 5, 1, None, 9)]
    assign_competition_ranks(rows, "m", "m_rank")
    assert [r["m_rank"] for r in rows] == [3, 1, 3, 5, None, 1]


@pytest.mark.parametrize(
    ("consumption", "limit", "expected"),
    [
        (Decimal("1"), Decimal("3"), Decimal("33.33")),
        (Decimal("1"), Decimal("8"), Decimal("12.50")),
        (Decimal("0.00125"), Decimal("1"), Decimal("0.13")),  # half up
        (Decimal("5"), Decimal("0"), Decimal("0")),
        (Decimal("5"), None, None),
    ],
)
def test_utilisation(consumption: Decimal, limit: Decimal | None, expected: Decimal | None) -> None:
    assert utilisation_pct(consumption, limit) == expected


def test_grouped_rows_are_keyed_by_user_and_model() -> None:
    columns = columns_for(ExportType.USERS, byok=False, group_by=GroupBy.MODEL)
    merger = ExportMerger(ExportType.USERS, columns)

    def row(model: str, messages: int) -> dict[str, Any]:
        r: dict[str, Any] = {c.name: None for c in columns}
        r.update(
            user_id="u1",
            model=model,
            messages_total=messages,
            period_start=date(2026, 3, 1),
            period_end=date(2026, 3, 31),
        )
        return r

    merger.add_part(columns, [row("gpt", 1), row("claude", 2)])
    merger.add_part(columns, [row("gpt", 3)])
    merged = {r["model"]: r["messages_total"] for r in merger.result()}
    assert merged == {"gpt": 4, "claude": 2}


def test_models_are_keyed_by_name_and_provider() -> None:
    columns = columns_for(ExportType.MODELS, byok=False)
    merger = ExportMerger(ExportType.MODELS, columns)
    base = {
        "period_start": date(2026, 3, 1),
        "period_end": date(2026, 3, 1),
        "org_id": "o",
        "bring_your_keys": False,
    }
    merger.add_part(
        columns,
        [
            {**base, "name": "m", "provider": "a", "requests": 1},
            {**base, "name": "m", "provider": "b", "requests": 2},
        ],
    )
    merger.add_part(columns, [{**base, "name": "m", "provider": "a", "requests": 5, "bring_your_keys": True}])
    merged = {(r["name"], r["provider"]): (r["requests"], r["bring_your_keys"]) for r in merger.result()}
    assert merged == {("m", "a"): (6, True), ("m", "b"): (2, False)}


@pytest.mark.parametrize("export_type", [ExportType.ASSISTANTS, ExportType.AGENTS])
def test_assistants_refuse_to_split(export_type: ExportType) -> None:
    with pytest.raises(UpstreamTooLarge, match="unique_users"):
        refuse_unmergeable_type(export_type, why_split="too large")


def test_byok_token_statistics_refuse_to_merge() -> None:
    columns = columns_for(ExportType.ASSISTANTS, byok=True)
    with pytest.raises(UpstreamTooLarge, match="cannot be merged exactly"):
        ExportMerger(ExportType.ASSISTANTS, columns)


def test_unknown_columns_refuse_to_merge() -> None:
    from odeus_compliance.upstream.columns import Column, Kind  # noqa: PLC0415

    columns = (*columns_for(ExportType.PROJECTS, byok=False), Column("surprise \x1b[31m", Kind.STR))
    with pytest.raises(UpstreamTooLarge, match="a column the client does not know") as caught:
        ExportMerger(ExportType.PROJECTS, columns)
    assert "surprise" not in str(caught.value)  # an unknown column's name is the upstream's text


def test_a_missing_identity_column_refuses_to_merge() -> None:
    columns = tuple(c for c in USERS if c.name != "user_id")
    with pytest.raises(UpstreamTooLarge, match="identity"):
        ExportMerger(ExportType.USERS, columns)


def test_other_export_types_are_mergeable() -> None:
    for export_type in (ExportType.USERS, ExportType.API_KEYS, ExportType.PROJECTS, ExportType.MODELS):
        refuse_unmergeable_type(export_type, why_split="too large")
