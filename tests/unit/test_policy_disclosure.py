"""Small-group suppression with complementary suppression, and the k-anonymity gate."""

from __future__ import annotations

from decimal import Decimal

import pytest

from odeus_compliance.policy.disclosure import (
    GroupFigures,
    KAnonymityError,
    Suppression,
    enforce_k_anonymity,
    suppress_small_groups,
)
from odeus_compliance.policy.model import DateLevel


def groups(**people: int) -> dict[str, GroupFigures]:
    return {name: GroupFigures(people=n, figures={"messages": n * 10}) for name, n in people.items()}


def test_nothing_suppressed_when_every_group_is_large_enough() -> None:
    result = suppress_small_groups(groups(sales=5, legal=9), k=5)
    assert list(result.visible) == ["sales", "legal"]
    assert result.suppressed == {}
    assert result.total_publishable
    assert result.suppressed_people == 0


def test_a_lone_small_group_takes_the_next_smallest_with_it() -> None:
    result = suppress_small_groups(groups(sales=40, it=12, legal=2, hr=7), k=5)
    assert result.suppressed == {"legal": Suppression.PRIMARY, "hr": Suppression.COMPLEMENTARY}
    assert list(result.visible) == ["sales", "it"]
    assert result.suppressed_people == 9


def test_complementary_suppression_continues_until_the_hidden_sum_has_k_people() -> None:
    result = suppress_small_groups(groups(a=1, b=1, c=1, d=50, e=60), k=5)
    assert result.suppressed == {
        "a": Suppression.PRIMARY,
        "b": Suppression.PRIMARY,
        "c": Suppression.PRIMARY,
        "d": Suppression.COMPLEMENTARY,
    }


def test_two_small_groups_summing_to_k_need_no_complement() -> None:
    result = suppress_small_groups(groups(a=2, b=3, c=50), k=5)
    assert set(result.suppressed) == {"a", "b"}
    assert all(reason is Suppression.PRIMARY for reason in result.suppressed.values())


def test_the_total_is_withheld_when_it_has_fewer_than_k_people() -> None:
    result = suppress_small_groups(groups(a=2, b=1), k=5)
    assert result.visible == {}
    assert not result.total_publishable


def rows(*values: tuple[str, str]) -> list[dict[str, object]]:
    return [{"department": d, "joined_at": j, "user_id": f"u{i}"} for i, (d, j) in enumerate(values)]


def test_k_anonymity_leaves_data_alone_when_it_holds() -> None:
    data = rows(*[("sales", "2024-Q1")] * 5, *[("it", "2024-Q2")] * 5)
    result = enforce_k_anonymity(
        data,  # type: ignore[arg-type]
        quasi_identifiers=["department", "joined_at"],
        k=5,
        suppression_limit=Decimal(0),
        hierarchy={"department": [DateLevel.SUPPRESSED], "joined_at": [DateLevel.YEAR, DateLevel.SUPPRESSED]},
    )
    assert result.suppressed_rows == ()
    assert result.levels == {"department": None, "joined_at": None}
    assert result.min_class_size == 5


def test_k_anonymity_generalises_the_least_it_must() -> None:
    data = rows(*[("sales", "2024-Q1")] * 3, *[("sales", "2024-Q3")] * 3, *[("it", "2024-Q2")] * 5)
    result = enforce_k_anonymity(
        data,  # type: ignore[arg-type]
        quasi_identifiers=["department", "joined_at"],
        k=5,
        suppression_limit=Decimal(0),
        hierarchy={"department": [DateLevel.SUPPRESSED], "joined_at": [DateLevel.YEAR, DateLevel.SUPPRESSED]},
    )
    assert result.levels == {"department": None, "joined_at": DateLevel.YEAR}
    assert {r["joined_at"] for r in result.rows} == {"2024"}
    assert len(result.rows) == 11


def test_k_anonymity_suppresses_outliers_within_the_limit() -> None:
    data = rows(*[("sales", "2024-Q1")] * 10, *[("it", "2024-Q1")] * 10, ("legal", "2023-Q4"))
    result = enforce_k_anonymity(
        data,  # type: ignore[arg-type]
        quasi_identifiers=["department", "joined_at"],
        k=5,
        suppression_limit=Decimal("0.05"),
        hierarchy={"department": [DateLevel.SUPPRESSED], "joined_at": [DateLevel.YEAR]},
    )
    assert result.suppressed_rows == (20,)
    assert result.levels == {"department": None, "joined_at": None}
    assert len(result.rows) == 20


def test_k_anonymity_fails_clearly_without_values() -> None:
    data = rows(("legal", "2023-Q4"), ("hr", "2024-Q1"), ("it", "2024-Q2"))
    with pytest.raises(KAnonymityError) as info:
        enforce_k_anonymity(
            data,  # type: ignore[arg-type]
            quasi_identifiers=["department", "joined_at"],
            k=5,
            suppression_limit=Decimal("0.05"),
            hierarchy={"joined_at": [DateLevel.YEAR]},
        )
    message = str(info.value)
    assert "k=5" in message
    assert "3 of 3 rows" in message
    for secret in ("legal", "hr", "2023", "2024"):
        assert secret not in message
