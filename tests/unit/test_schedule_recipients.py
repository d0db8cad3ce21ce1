"""Scheduled e-mail goes only to allowed addresses, compared as written, never through case folding."""

from __future__ import annotations

import pytest

from odeus_compliance.scheduling.model import ScheduleError
from odeus_compliance.scheduling.recipients import check_recipients

ALLOWED = frozenset({"@kunde.de", "dpo@example.com"})


@pytest.mark.parametrize("address", ["dpo@example.com", "DPO@Example.COM", "anna.meier+ai@kunde.de"])
def test_allowed_addresses_and_domains_pass_in_any_ascii_case(address: str) -> None:
    check_recipients([address], ALLOWED)


@pytest.mark.parametrize(
    "address",
    [
        "anna@\u212aunde.de",  # KELVIN SIGN: casefolds to "k", but is another (internationalised) domain
        "anna@kunde.de\u200b",
        " anna@kunde.de",
        "anna@kunde.de.evil.test",
        "anna@evil.test@kunde.de",
        "anna@k\u0443nde.de",  # CYRILLIC U
        "",
    ],
)
def test_look_alikes_hidden_characters_and_other_domains_are_refused(address: str) -> None:
    with pytest.raises(ScheduleError, match="entry 2") as refused:
        check_recipients(["dpo@example.com", address], ALLOWED)
    assert "anna" not in str(refused.value)
