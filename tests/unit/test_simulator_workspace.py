"""The simulator's synthetic workspace and its period arithmetic, without servers."""

from __future__ import annotations

import unicodedata
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from click.testing import CliRunner

from odeus_compliance.commands.simulator import simulator
from odeus_compliance.upstream.columns import ExportType, GroupBy
from odeus_compliance.upstream.simulator.errors import OdeusError
from odeus_compliance.upstream.simulator.names import email_part
from odeus_compliance.upstream.simulator.period import history_start, parse_query
from odeus_compliance.upstream.simulator.usage import Period, Privacy, build_table, competition_ranks, ratio
from odeus_compliance.upstream.simulator.workspace import Workspace, generate_workspace

TODAY = date(2026, 11, 15)


def workspace(users: int = 1000, seed: int = 1) -> Workspace:
    return generate_workspace(users=users, seed=seed, today=TODAY, age_days=300)


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc,arg-type]


OCTOBER = Period(ms(2026, 10, 1), ms(2026, 11, 1) - 1, date(2026, 10, 1), date(2026, 10, 31))


def users_table(
    ws: Workspace, period: Period = OCTOBER, group_by: GroupBy | None = None
) -> list[dict[str, Any]]:
    table = build_table(ws, ExportType.USERS, period, byok=True, group_by=group_by, privacy=Privacy())
    names = [c.name for c in table.columns]
    return [dict(zip(names, row, strict=True)) for row in table.rows]


def test_names_span_scripts_and_emails_are_ascii_and_unique() -> None:
    ws = workspace()
    scripts = {unicodedata.name(ch).split()[0] for name in ws.users.names for ch in name if ch.isalpha()}
    assert {"LATIN", "GREEK", "CYRILLIC", "CJK", "ARABIC", "HANGUL"} <= scripts
    assert any(ch in "äöüéłşçğñåø" for name in ws.users.names for ch in name)
    assert all(e.isascii() and e.endswith("@nordlicht.example") for e in ws.users.emails)
    assert len(set(ws.users.emails)) == len(ws.users.emails)
    assert email_part("Jürgen") == "jurgen"
    assert email_part("Łukasz") == "lukasz"
    assert email_part("Weiß") == "weiss"
    assert email_part("Дмитрий|dmitry") == "dmitry"
    assert email_part("d'Aubigné") == "daubigne"


@pytest.mark.parametrize("users", [200, 1000, 20_000])
def test_small_departments_of_one_to_four_exist(users: int) -> None:
    sizes = Counter(workspace(users).users.departments)
    small = {d: n for d, n in sizes.items() if n <= 4}
    assert sorted(small.values()) == [1, 2, 3, 4]
    assert len(sizes) >= 10


def test_usage_is_heavy_tailed_with_idle_users() -> None:
    rows = users_table(workspace(2000))
    totals = sorted((int(r["messages_total"]) for r in rows), reverse=True)
    assert totals[len(totals) // 10] > 0
    top = sum(totals[: len(totals) // 100])
    assert top / sum(totals) > 0.05, "the top 1% carry a large share"
    assert totals[0] > 20 * totals[len(totals) // 2], "power users dwarf the median"
    assert sum(1 for t in totals if t == 0) / len(totals) > 0.08, "some users are idle"


def test_roles_licences_and_join_dates() -> None:
    ws = workspace()
    assert Counter(ws.users.roles)["owner"] == 1
    assert "admin" in ws.users.roles
    assert set(ws.users.licenses) == {"enterprise", "pro", "payg"}
    assert max(ws.users.join_day) > 200, "some users join during the history window"
    assert all(0 <= d < 300 for d in ws.users.join_day)
    assert any(m.bring_your_keys for m in ws.models)
    assert not all(m.bring_your_keys for m in ws.models)
    assert all(0 <= a.owner < len(ws.users) for a in ws.agents)


def test_same_seed_same_workspace() -> None:
    assert workspace(300, 4) == workspace(300, 4)
    assert workspace(300, 4).users.names != workspace(300, 5).users.names


def test_any_split_adds_up_exactly() -> None:
    ws = workspace(500)
    whole = users_table(ws)
    cuts = [OCTOBER.start_ms, ms(2026, 10, 9, 7, 13), ms(2026, 10, 20, 23, 59, 59), OCTOBER.end_ms + 1]
    parts = [
        {r["user_id"]: r for r in users_table(ws, Period(a, b - 1, date(2026, 10, 1), date(2026, 10, 31)))}
        for a, b in pairwise(cuts)
    ]
    for row in whole:
        mine = [p[row["user_id"]] for p in parts if row["user_id"] in p]  # later joiners miss early parts
        for column in ("messages_total", "messages_assistants", "total_input_tokens", "cached_prompt_tokens"):
            assert row[column] == sum(p[column] for p in mine)
        summed: Counter[str] = Counter()
        for part in mine:
            summed.update(part["model_to_messages_total"])
        assert summed == Counter(row["model_to_messages_total"])
        assert sum(Decimal(p["total_cost_usd"]) for p in mine) == row["total_cost_usd"]


def test_users_per_model_rows_add_up_to_users_rows() -> None:
    ws = workspace(300)
    plain = {r["user_id"]: r for r in users_table(ws)}
    per_user: Counter[str] = Counter()
    for row in users_table(ws, group_by=GroupBy.MODEL):
        assert int(row["messages_total"]) > 0
        per_user[row["user_id"]] += row["messages_total"]
    assert all(per_user[u] == r["messages_total"] for u, r in plain.items() if r["messages_total"])


def test_rank_and_ratio_rules() -> None:
    assert competition_ranks([5, 3, 5, 1, 3]) == [1, 3, 1, 5, 3]
    assert competition_ranks([]) == []
    assert ratio(1, 8) == Decimal("0.13")  # 0.125 rounds half up
    assert ratio(2, 3) == Decimal("0.67")
    assert ratio(5, 0) == Decimal("0.00")


def test_history_start_and_period_parsing() -> None:
    assert history_start(date(2026, 11, 15), 12) == datetime(2025, 11, 15, tzinfo=UTC)
    assert history_start(date(2024, 2, 29), 12) == datetime(2023, 2, 28, tzinfo=UTC)
    query = parse_query(  # 02:30 does not exist in Berlin that night; it reads as 01:30 UTC (fold=0)
        {
            "from": {"date": "2026-03-29", "timezone": "Europe/Berlin"},
            "to": {"date": "2026-03-29T02:30:00Z", "timezone": "Europe/Berlin"},
        },
        ExportType.USERS,
        byok=False,
    )
    assert query.start == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert query.end == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert query.period.end_ms - query.period.start_ms == 9_000_000
    with pytest.raises(OdeusError, match="from is after to"):
        parse_query(
            {
                "from": {"date": "2026-03-02", "timezone": "UTC"},
                "to": {"date": "2026-03-01", "timezone": "UTC"},
            },
            ExportType.USERS,
            byok=False,
        )


def test_cli_help_describes_every_option() -> None:
    result = CliRunner().invoke(simulator, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--port",
        "--users",
        "--seed",
        "--api-key",
        "--byok",
        "--no-user-level-data",
        "--anonymisation",
        "--storage-port",
    ):
        assert option in result.output
    bad = CliRunner().invoke(simulator, ["--anonymisation", "scrambled"])
    assert bad.exit_code == 2
