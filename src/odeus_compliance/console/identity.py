"""Who a console request comes from: the session's person, with the role and the actor id its audit records
carry. It is an :class:`~odeus_compliance.security.ApiKeyIdentity`, so the role guard and every audited flow
treat a person in the console exactly like an API key of the same role."""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Final

from odeus_compliance.security import ApiKeyIdentity

__all__ = ["MAX_NAME_LENGTH", "ConsoleIdentity", "actor_id", "clean_person_name"]

MAX_NAME_LENGTH: Final = 128
# control, format (bidi marks and overrides, zero-width, tags), lone surrogates, private use, unassigned
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


@dataclasses.dataclass(frozen=True, slots=True)
class ConsoleIdentity(ApiKeyIdentity):
    """A signed-in person: ``key_id`` is ``console:<principal>``, ``name`` the person's name at sign-in."""

    session_id: str = ""
    csrf_token: str = dataclasses.field(default="", repr=False)
    method: str = "link"


def actor_id(principal: str) -> str:
    """The actor id of a console principal in audit records."""
    return f"console:{principal}"


def clean_person_name(raw: str) -> str | None:
    """A person's name fit for audit records and pages: control, format and bidi characters removed, white
    space collapsed, at most 128 characters; ``None`` if nothing is left."""
    kept = "".join(c for c in raw if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    name = " ".join(kept.split())[:MAX_NAME_LENGTH].strip()
    return name or None
