"""Validation messages name the field and what it must be, and never repeat what the client sent."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import pytest

from odeus_compliance.reports.schemas import ReportRequestIn
from odeus_compliance.validation_messages import allowed_values, field_problem

SECRET = "jane.doe@example.com"


class _Inner(msgspec.Struct):
    colour: Literal["red", "green"]


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    month: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    limit: Annotated[int, msgspec.Meta(ge=1)] = 1
    inner: _Inner | None = None


def _problem(body: dict[str, Any]) -> tuple[str, str]:
    """What msgspec says about ``body``, as Litestar reports it (the path after ``$.`` is the key)."""
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(body, _Body)
    message, _, where = str(caught.value).partition(" - at `$.")
    key = where.removesuffix("`") or "data"
    return field_problem(key, message, lambda k: allowed_values(_Body, k))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"month": SECRET}, ("month", "must match the pattern ^[0-9]{4}-(0[1-9]|1[0-2])$")),
        ({}, ("month", "is required")),
        ({"month": "2026-01", "inner": {}}, ("inner.colour", "is required")),
        ({"month": "2026-01", "inner": {"colour": SECRET}}, ("inner.colour", "must be one of: green, red")),
        ({"month": "2026-01", SECRET: 1}, ("body", "holds a field this operation does not accept")),
        ({"month": "2026-01", "limit": 0}, ("limit", "must be at least 1")),
        ({"month": "2026-01", "limit": SECRET}, ("limit", "must be an integer")),
        ({"month": 202601}, ("month", "must be a string")),
    ],
)
def test_each_message_names_the_field_and_the_rule_never_the_value(
    body: dict[str, Any], expected: tuple[str, str]
) -> None:
    key, message = _problem(body)
    assert (key, message) == expected
    assert SECRET not in message
    assert SECRET not in key


def test_an_unknown_form_keeps_no_quoted_value() -> None:
    assert field_problem("x", f"Something odd about '{SECRET}'", lambda _k: None) == (
        "x",
        "Something odd about <value>",
    )


def test_allowed_values_walk_the_request_types() -> None:
    assert allowed_values(Literal["figures", "full"] | None, "") == ["figures", "full"]
    assert allowed_values(_Body, "inner.colour") == ["green", "red"]
    assert allowed_values(_Body, "month") is None
    assert allowed_values(ReportRequestIn, "from.nothing") is None
