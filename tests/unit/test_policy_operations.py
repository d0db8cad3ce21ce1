"""The per-cell operations: exact outputs, typed and text forms, and errors that never carry values."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from odeus_compliance.policy.crypto import KeyContext, Tokenizer
from odeus_compliance.policy.model import (
    DateLevel,
    Drop,
    Encrypt,
    GeneralizeDate,
    GeneralizeNumber,
    Keep,
    KeyAction,
    MapKeys,
    Mask,
    Pseudonymize,
    TokenDomain,
)
from odeus_compliance.policy.operations import (
    OperationError,
    apply_operation,
    generalize_date,
    generalize_number,
    map_keys,
    mask_email,
    pseudonymize,
)


@pytest.fixture
def tokenizer() -> Tokenizer:
    return Tokenizer(KeyContext(root_key=b"k" * 32, epoch=1, policy_domain="tests"))


@pytest.mark.parametrize(
    ("value", "level", "expected"),
    [
        ("2025-02-14", DateLevel.MONTH, "2025-02"),
        ("2025-02-14", DateLevel.QUARTER, "2025-Q1"),
        ("2025-12-31", DateLevel.QUARTER, "2025-Q4"),
        ("2025-07-01", DateLevel.YEAR, "2025"),
        ("2025-07-01", DateLevel.SUPPRESSED, "*"),
        ("2025-03-31T23:30:00-02:00", DateLevel.MONTH, "2025-04"),  # taken in UTC
        ("2025-03-31T23:30:00", DateLevel.MONTH, "2025-03"),
        ("2025-05", DateLevel.QUARTER, "2025-Q2"),
        ("2025-Q3", DateLevel.YEAR, "2025"),
        ("2025", DateLevel.YEAR, "2025"),
        (date(2024, 8, 9), DateLevel.QUARTER, "2024-Q3"),
        (datetime(2024, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-3))), DateLevel.YEAR, "2025"),
        (datetime(2024, 1, 1, tzinfo=UTC), DateLevel.MONTH, "2024-01"),
        (None, DateLevel.YEAR, None),
        ("", DateLevel.YEAR, ""),
    ],
)
def test_generalize_date(value: object, level: DateLevel, expected: object) -> None:
    assert generalize_date(value, level, column="joined_at") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("2025-Q1", DateLevel.MONTH),
        ("2025", DateLevel.QUARTER),
        ("*", DateLevel.YEAR),
        ("14.02.2025", DateLevel.YEAR),
    ],
)
def test_generalize_date_refuses_what_it_cannot_do(value: str, level: DateLevel) -> None:
    with pytest.raises(OperationError) as info:
        generalize_date(value, level, column="joined_at")
    assert value not in str(info.value) or value == "*"
    assert "joined_at" in str(info.value)


@pytest.mark.parametrize(
    ("value", "rule", "expected"),
    [
        ("12.345", GeneralizeNumber(round_to=Decimal("0.01")), "12.35"),
        ("12.344", GeneralizeNumber(round_to=Decimal("0.01")), "12.34"),
        ("125", GeneralizeNumber(round_to=Decimal(10)), "130"),
        ("-125", GeneralizeNumber(round_to=Decimal(10)), "-130"),
        ("12.0", GeneralizeNumber(round_to=Decimal(1)), "12"),
        ("980", GeneralizeNumber(top_code=Decimal(500)), "500"),
        ("480", GeneralizeNumber(top_code=Decimal(500), round_to=Decimal(100)), "500"),
        ("1234", GeneralizeNumber(top_code=Decimal(500), round_to=Decimal(100)), "500"),
        ("-1", GeneralizeNumber(buckets=(Decimal(0), Decimal(10))), "<0"),
        ("0", GeneralizeNumber(buckets=(Decimal(0), Decimal(10))), "0-10"),
        ("9.99", GeneralizeNumber(buckets=(Decimal(0), Decimal(10))), "0-10"),
        ("10", GeneralizeNumber(buckets=(Decimal(0), Decimal(10))), "10+"),
        ("50", GeneralizeNumber(buckets=(Decimal("0.5"), Decimal(10), Decimal(100))), "10-100"),
        (Decimal("3.14159"), GeneralizeNumber(round_to=Decimal("0.01")), Decimal("3.14")),
        (1234, GeneralizeNumber(round_to=Decimal(100)), 1200),
        (1234, GeneralizeNumber(buckets=(Decimal(0), Decimal(1000))), "1000+"),
        (None, GeneralizeNumber(round_to=Decimal(1)), None),
    ],
)
def test_generalize_number(value: object, rule: GeneralizeNumber, expected: object) -> None:
    result = generalize_number(value, rule, column="total_cost_usd")  # type: ignore[arg-type]
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("value", ["twelve", "NaN", "Infinity", True])
def test_generalize_number_refuses_non_numbers(value: object) -> None:
    with pytest.raises(OperationError, match="total_cost_usd"):
        generalize_number(value, GeneralizeNumber(round_to=Decimal(1)), column="total_cost_usd")  # type: ignore[arg-type]


def test_mask_email() -> None:
    assert mask_email(" Anna.Berg@Example.COM ", column="email") == "example.com"
    assert mask_email(None, column="email") is None


@pytest.mark.parametrize("value", ["anna", "@example.com", "anna@", "a@b@c", "anna@exa mple.com", 12])
def test_mask_refuses_non_emails_without_echoing_them(value: object) -> None:
    with pytest.raises(OperationError) as info:
        mask_email(value, column="email")  # type: ignore[arg-type]
    assert str(value) not in str(info.value)


def test_pseudonymize_canonicalises_and_leaves_empty_cells(tokenizer: Tokenizer) -> None:
    token = pseudonymize("agent-1", domain=TokenDomain.AGENT, column="assistant_id", tokenizer=tokenizer)
    assert isinstance(token, str)
    assert re.fullmatch(r"a1_[a-z2-7]{26}", token)
    assert (
        pseudonymize(" agent-1 ", domain=TokenDomain.AGENT, column="assistant_id", tokenizer=tokenizer)
        == token
    )
    assert pseudonymize(None, domain=TokenDomain.AGENT, column="x", tokenizer=tokenizer) is None
    assert pseudonymize("  ", domain=TokenDomain.AGENT, column="x", tokenizer=tokenizer) == "  "


def test_column_domains_are_keyed_per_column(tokenizer: Tokenizer) -> None:
    a = pseudonymize("Sales", domain=TokenDomain.COLUMN, column="department", tokenizer=tokenizer)
    b = pseudonymize("Sales", domain=TokenDomain.COLUMN, column="company_name", tokenizer=tokenizer)
    assert a != b


def test_map_keys_keep_with_allow_merges_into_other(tokenizer: Tokenizer) -> None:
    rule = MapKeys(keys=KeyAction.KEEP, allow=frozenset({"gpt-4o"}), other="other")
    out = map_keys('{"gpt-4o": 3, "llama": 2, "mistral": 5}', rule, column="m", tokenizer=tokenizer)
    assert out == '{"gpt-4o":3,"other":7}'


def test_map_keys_pseudonymize_and_sum_duplicates(tokenizer: Tokenizer) -> None:
    rule = MapKeys(keys=KeyAction.PSEUDONYMIZE, domain=TokenDomain.AGENT)
    text = map_keys(
        '{"a-1": 2, " a-1": 3, "a-2": 1, "a-1": 4}',
        rule,
        column="assistants_to_messages",
        tokenizer=tokenizer,
    )
    assert isinstance(text, str)
    parsed = json.loads(text)
    assert sorted(parsed.values()) == [1, 9]
    assert all(re.fullmatch(r"a1_[a-z2-7]{26}", k) for k in parsed)
    assert list(parsed) == sorted(parsed)


def test_map_keys_typed_in_typed_out(tokenizer: Tokenizer) -> None:
    rule = MapKeys(keys=KeyAction.KEEP)
    assert map_keys({"b": 1, "a": 2}, rule, column="m", tokenizer=tokenizer) == {"a": 2, "b": 1}
    assert map_keys("{}", rule, column="m", tokenizer=tokenizer) == "{}"
    assert map_keys('{"a": 2.0}', rule, column="m", tokenizer=tokenizer) == '{"a":2}'


@pytest.mark.parametrize(
    "value",
    ["[1, 2]", '{"a": -1}', '{"a": 1.5}', '{"a": "x"}', '{"a": true}', '{"a": {"b": 1}}', "not json", "3"],
)
def test_map_keys_refuses_what_is_not_a_count_map(value: str, tokenizer: Tokenizer) -> None:
    with pytest.raises(OperationError, match="action_to_messages"):
        map_keys(value, MapKeys(keys=KeyAction.KEEP), column="action_to_messages", tokenizer=tokenizer)


def test_apply_operation_dispatches_every_operation(tokenizer: Tokenizer) -> None:
    assert apply_operation(Keep(), "x", column="role", tokenizer=tokenizer) == "x"
    assert apply_operation(Mask(), "a@b.de", column="email", tokenizer=tokenizer) == "b.de"
    assert (
        apply_operation(GeneralizeDate(level=DateLevel.YEAR), "2025-01-02", column="d", tokenizer=tokenizer)
        == "2025"
    )
    assert (
        apply_operation(GeneralizeNumber(round_to=Decimal(1)), "1.6", column="n", tokenizer=tokenizer) == "2"
    )
    token = apply_operation(
        Pseudonymize(domain=TokenDomain.PROJECT), "p", column="project_id", tokenizer=tokenizer
    )
    assert isinstance(token, str)
    assert token.startswith("p1_")
    encrypted = apply_operation(Encrypt(), "secret", column="assistant_name", tokenizer=tokenizer)
    assert isinstance(encrypted, str)
    assert encrypted.startswith("e1_")
    assert "secret" not in encrypted
    assert (
        apply_operation(MapKeys(keys=KeyAction.KEEP), '{"a":1}', column="m", tokenizer=tokenizer) == '{"a":1}'
    )
    with pytest.raises(OperationError):
        apply_operation(Drop(), "x", column="name", tokenizer=tokenizer)
