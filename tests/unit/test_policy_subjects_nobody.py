"""An identifier names someone only if it is something once canonical: not blanks, not invisible
characters, not a placeholder Odeus may write instead of the value, however it is spelt."""

from __future__ import annotations

import pytest

from odeus_compliance.policy.subjects import SUBJECT_COLUMNS, canonical_id, names_someone, subject_message
from odeus_compliance.upstream.columns import ExportType

USERS = SUBJECT_COLUMNS[ExportType.USERS]


@pytest.mark.parametrize("value", ["", "\u200b", "\u00a0\u2060", "Anonymous\u200b", "\uff21NONYMOUS", "n/a"])
def test_ids_that_name_nobody(value: str) -> None:
    assert not names_someone(canonical_id(value))
    assert subject_message({"user_id": value, "email": "", "name": ""}, USERS) is None


def test_a_disguised_placeholder_id_falls_back_to_the_email() -> None:
    message = subject_message({"user_id": "Anonymous\u200b", "email": "Anna@Example.com", "name": ""}, USERS)
    assert message is not None
    assert message.startswith(b"email\x00")


@pytest.mark.parametrize("value", ["u1", "anon_4f2a", "\uff55\uff11"])
def test_real_ids_name_someone(value: str) -> None:
    assert names_someone(canonical_id(value))
