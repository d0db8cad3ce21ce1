"""Who a scheduled report may go to, and how the audit log names them without naming them.

E-mail goes only to addresses, or domains (``@example.com``), that the operator allows in the configuration
(``ODEUS_COMPLIANCE_MAIL_RECIPIENTS``); none allowed means no e-mail at all (closed by default). Records of
schedule changes and deliveries carry each recipient as a keyed hash (HMAC-SHA-256 under a key derived from
the master key, first 10 hex digits): an auditor can check whether a given address received a report, with
the operator's help, while the log names no one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from odeus_compliance.scheduling.model import ScheduleError

__all__ = ["RecipientHasher", "check_recipients"]


_ADDRESS = re.compile(r"[!-?A-~]+@[A-Za-z0-9.-]+")  # printable ASCII without space; an ASCII domain


def check_recipients(addresses: Iterable[str], allowed: frozenset[str]) -> None:
    """Refuse (``ScheduleError``, naming the entry's number, never the address) any address that is not
    allowed, exactly or by its domain.

    Only plain ASCII addresses are compared, and they are sent as written: case folding would let a
    look-alike through (the Kelvin sign folds to ``k``, so ``anna@\u212aunde.de`` would match
    ``@kunde.de`` and be delivered to another domain altogether)."""
    for number, address in enumerate(addresses, start=1):
        if not _ADDRESS.fullmatch(address):
            msg = (
                f"delivery.email_to entry {number} is not a plain e-mail address (ASCII letters, digits and "
                "punctuation, one @, no spaces; internationalised addresses are not supported)"
            )
            raise ScheduleError(msg)
        canonical = address.lower()
        domain = "@" + canonical.rpartition("@")[2]
        if canonical not in allowed and domain not in allowed:
            msg = (
                f"delivery.email_to entry {number} is not an allowed recipient "
                "(ODEUS_COMPLIANCE_MAIL_RECIPIENTS lists the allowed addresses and @domains)"
            )
            raise ScheduleError(msg)


class RecipientHasher:
    """Keyed hashes of recipients for audit records."""

    __slots__ = ("_key",)
    _INFO = b"odeus-compliance/recipient-hash/v1"

    def __init__(self, master_key: bytes) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self._INFO).derive(master_key)

    def digest(self, addresses: Iterable[str]) -> str:
        """The recipients as comma-separated keyed hashes (sorted, so the order given does not matter)."""
        return ",".join(
            sorted(
                hmac.new(self._key, a.strip().casefold().encode("utf-8"), hashlib.sha256).hexdigest()[:10]
                for a in addresses
            )
        )

    def __repr__(self) -> str:
        return "RecipientHasher('**********')"
