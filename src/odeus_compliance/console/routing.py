"""How console routes declare who may open them (the same rule as the API: ``create_app`` refuses a route
that declares nothing). A console page is authenticated by the session cookie only, never by an API key."""

from __future__ import annotations

import re
from typing import Any, Final

from odeus_compliance.security import ALL_ROLES, SESSION_OPT, Role, public, requires_role

__all__ = ["ANY_PERSON", "console_page", "console_public", "safe_return_path"]

# one way to match each path (segments end at a slash): a nested ``(x+/?)*`` backtracks exponentially
_RETURN_PATH: Final = re.compile(r"/console/(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]*")
_NOT_RETURNED_TO: Final = ("/console/sign-in", "/console/sign-out")


def console_page(*roles: Role) -> dict[str, Any]:
    """``opt`` of a console page for ``roles``: ``@get("/console/...", opt=console_page(Role.OFFICER))``."""
    return {**requires_role(*roles), SESSION_OPT: True}


def console_public() -> dict[str, Any]:
    """``opt`` of a page anyone may open (sign-in, assets, not-found)."""
    return public()


ANY_PERSON: Final = ALL_ROLES
"""Every role of a person (officer, auditor, admin)."""


def safe_return_path(raw: str | None) -> str:
    """A path to come back to after sign-in: only a plain console path (no other host, no query), and not a
    sign-in or sign-out one (a sign-in link as ``next`` would swap the new session for another person's)."""
    if raw and len(raw) <= 200 and _RETURN_PATH.fullmatch(raw) and not raw.startswith(_NOT_RETURNED_TO):
        return raw
    return "/console/"
