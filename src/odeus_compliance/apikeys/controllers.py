"""``GET /api/v1/whoami``: lets a client check its key and see the role it carries."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from odeus_compliance.problem_schema import problem_responses
from odeus_compliance.security import ALL_ROLES, ApiKeyIdentity, requires_role

__all__ = ["WhoAmI", "whoami"]


class WhoAmI(msgspec.Struct, frozen=True):
    """The calling key, as the service sees it."""

    key_id: str
    """The key's id (what logs and audit records name)."""
    name: str
    """The name given when the key was issued."""
    role: str
    """``officer``, ``auditor`` or ``admin`` (a ``metrics`` key cannot call this route)."""


@get(
    "/api/v1/whoami",
    operation_id="whoami",
    tags=["keys"],
    opt=requires_role(*ALL_ROLES),
    responses=problem_responses(requires_role(*ALL_ROLES)),
)
async def whoami(request: Request[ApiKeyIdentity, Any, Any]) -> WhoAmI:
    """Who the presented API key belongs to: id, name and role. Useful to test a newly issued key."""
    identity = request.user
    return WhoAmI(key_id=identity.key_id, name=identity.name, role=identity.role.value)
