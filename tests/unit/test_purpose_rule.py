"""The one purpose rule: a purpose must say something a reader of the audit log can see."""

from __future__ import annotations

import pytest

from odeus_compliance.purpose import purpose_problem


@pytest.mark.parametrize("purpose", ["quarterly review", "Prüfung 2026", "監査", "x"])
def test_visible_purposes_are_accepted(purpose: str) -> None:
    assert purpose_problem(purpose) is None


@pytest.mark.parametrize(
    "purpose",
    [
        "\u3164\u115f\u2800",  # Hangul fillers and a blank Braille cell: looks empty
        "review\u034f",  # combining grapheme joiner
        "review\u200b",  # zero-width space
        "\u202ereview",  # right-to-left override
        "review\x1b[31m",  # an ANSI escape
        "line\u2028break",
        "...",  # no letter or digit at all
        "   ",
    ],
)
def test_invisible_disguised_or_empty_purposes_are_refused(purpose: str) -> None:
    assert purpose_problem(purpose) is not None


def test_a_purpose_with_undecodable_bytes_is_refused_not_recorded_mangled() -> None:
    # a query string's invalid UTF-8 arrives as U+FFFD: the text is not what the client sent
    assert purpose_problem(b"review \xff of logs".decode("utf-8", errors="replace")) == (
        "valid UTF-8 text (no U+FFFD replacement character)"
    )
