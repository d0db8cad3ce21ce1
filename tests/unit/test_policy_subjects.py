"""One person, one token; rows through a policy; closed by default for unknown columns."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from odeus_compliance.policy.crypto import KeyContext, Tokenizer
from odeus_compliance.policy.loader import load_policy
from odeus_compliance.policy.model import Policy, UnknownColumn
from odeus_compliance.policy.operations import Cell
from odeus_compliance.policy.rows import UnknownColumnError, transform_row
from odeus_compliance.policy.subjects import SUBJECT_COLUMNS, subject_token
from odeus_compliance.upstream.columns import ExportType

POLICIES = Path(__file__).resolve().parents[2] / "policies"
USERS = SUBJECT_COLUMNS[ExportType.USERS]


@pytest.fixture
def tokenizer() -> Tokenizer:
    return Tokenizer(KeyContext(root_key=b"s" * 32, epoch=2, policy_domain="usage-reports"))


@pytest.fixture(scope="module")
def example() -> Policy:
    return load_policy(POLICIES / "example.toml")


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy(POLICIES / "default.toml")


def test_subject_token_comes_from_the_id(tokenizer: Tokenizer) -> None:
    a = subject_token({"user_id": "u-1", "email": "anna@example.com", "name": "Anna"}, USERS, tokenizer)
    b = subject_token({"user_id": "u-1", "email": "other@example.com", "name": "Someone"}, USERS, tokenizer)
    assert a == b
    assert a is not None
    assert a.startswith("u2_")


def test_without_an_id_the_token_comes_from_the_canonical_email(tokenizer: Tokenizer) -> None:
    a = subject_token({"user_id": None, "email": "Anna@Example.com "}, USERS, tokenizer)
    b = subject_token({"user_id": "", "email": "anna@example.com", "name": "x"}, USERS, tokenizer)
    assert a == b
    # an id equal to the e-mail text never collides with an e-mail-derived token (the input is tagged)
    assert a != subject_token({"user_id": "anna@example.com"}, USERS, tokenizer)
    assert subject_token({"user_id": None, "email": None, "name": None}, USERS, tokenizer) is None


def test_user_id_email_and_name_share_one_token_in_a_row(example: Policy, tokenizer: Tokenizer) -> None:
    row = {"user_id": "u-1", "email": "anna@example.com", "name": "Anna Berg", "role": "dev"}
    out = transform_row(example, ExportType.USERS, row, tokenizer).values
    assert out["user_id"] == out["name"]  # name: pseudonymize -> the subject token
    assert isinstance(out["email"], str)
    assert out["email"].startswith("e2_")  # email: encrypt -> its own reversible token
    assert out["role"] == "dev"


def test_owner_ids_link_to_the_users_token(default: Policy, tokenizer: Tokenizer) -> None:
    user = transform_row(default, ExportType.USERS, {"user_id": "u-7"}, tokenizer).values
    agent = transform_row(default, ExportType.AGENTS, {"assistant_owner_id": "u-7"}, tokenizer).values
    project = transform_row(default, ExportType.PROJECTS, {"project_owner_id": "u-7"}, tokenizer).values
    assert user["user_id"] == agent["assistant_owner_id"] == project["project_owner_id"]


def test_default_policy_drops_names_emails_and_ranks(default: Policy, tokenizer: Tokenizer) -> None:
    row: dict[str, Cell] = {
        "user_id": "u-1",
        "name": "Anna Berg",
        "email": "anna@example.com",
        "messages_total_rank": 1,
        "joined_at": "2024-05-17",
        "total_cost_usd": "12.64",
        "model_to_messages_total": '{"gpt-4o": 3}',
    }
    out = transform_row(default, ExportType.USERS, row, tokenizer).values
    assert set(out) == {"user_id", "joined_at", "total_cost_usd", "model_to_messages_total"}
    assert out["joined_at"] == "2024-Q2"
    assert out["total_cost_usd"] == "13"
    assert out["model_to_messages_total"] == '{"gpt-4o":3}'
    assert "Anna" not in repr(out)
    assert "anna" not in repr(out)


def test_unknown_columns_are_dropped_and_reported(default: Policy, tokenizer: Tokenizer) -> None:
    result = transform_row(
        default, ExportType.USERS, {"user_id": "u-1", "home_address": "Main St 1"}, tokenizer
    )
    assert "home_address" not in result.values
    assert result.dropped_unknown == frozenset({"home_address"})


def test_unknown_columns_fail_when_the_policy_says_so(default: Policy, tokenizer: Tokenizer) -> None:
    strict = dataclasses.replace(default, on_unknown_column=UnknownColumn.FAIL)
    with pytest.raises(UnknownColumnError, match="position 2") as info:
        transform_row(strict, ExportType.USERS, {"user_id": "u-1", "home_address": "Main St 1"}, tokenizer)
    assert "Main St" not in str(info.value)
    assert "home_address" not in str(info.value)  # a header is reported by its position, never by name


def test_uncovered_export_is_refused(tokenizer: Tokenizer, example: Policy) -> None:
    assert not example.covers(ExportType.MODELS)
    with pytest.raises(KeyError):
        transform_row(example, ExportType.MODELS, {"name": "gpt-4o"}, tokenizer)
