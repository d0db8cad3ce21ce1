"""``GET /api/v1/policies`` and ``GET /api/v1/policies/{name}``: the policies in force, with their hashes."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath

from odeus_compliance.errors import NotFound
from odeus_compliance.policy import service
from odeus_compliance.problem_schema import problem_responses
from odeus_compliance.security import ALL_ROLES, requires_role
from odeus_compliance.settings import Settings

__all__ = ["PolicyDetail", "PolicyList", "PolicySummary", "get_policy", "list_policies"]


class PolicySummary(msgspec.Struct, frozen=True):
    """One policy file of the policy folder."""

    name: str
    """The policy's name (its file name without ``.toml``), as used in report requests."""
    valid: bool
    """Whether the file validates; an invalid policy is not in force and no report can use it."""
    hash: str | None
    """``sha256:<hex>`` of the policy's canonical form: what every report made under it cites."""
    version: str | None
    """The policy's own version string."""
    works_agreement: str | None
    """The works agreement the policy implements."""
    exports: list[str]
    """The export types the policy covers."""
    problems: int
    """How many problems keep an invalid file out of force (0 for a valid one)."""


class PolicyList(msgspec.Struct, frozen=True):
    """The policies of the configured policy folder, sorted by name."""

    policies: list[PolicySummary]


class PolicyProblem(msgspec.Struct, frozen=True):
    """One problem of an invalid policy file."""

    line: int
    message: str
    hint: str | None


class PolicyDetail(msgspec.Struct, frozen=True):
    """One policy: its summary, its canonical form (every column's operation), or its problems."""

    summary: PolicySummary
    canonical: dict[str, Any] | None
    """The canonical form the hash is taken over; ``null`` for an invalid file."""
    problems: list[PolicyProblem]


def _summary(entry: service.PolicyEntry) -> PolicySummary:
    policy = entry.policy
    return PolicySummary(
        name=entry.name,
        valid=policy is not None,
        hash=entry.hash,
        version=policy.version if policy else None,
        works_agreement=policy.works_agreement if policy else None,
        exports=sorted(export.value for export in policy.exports) if policy else [],
        problems=len(entry.problems),
    )


@get(
    "/api/v1/policies",
    operation_id="listPolicies",
    tags=["policies"],
    opt=requires_role(*ALL_ROLES),
    sync_to_thread=True,
    responses=problem_responses(requires_role(*ALL_ROLES)),
)
def list_policies(settings: NamedDependency[Settings]) -> PolicyList:
    """The policy files of the policy folder, each validated and cited by its canonical hash."""
    return PolicyList(policies=[_summary(e) for e in service.list_policies(policy_dir=settings.policy_dir)])


@get(
    "/api/v1/policies/{name:str}",
    operation_id="getPolicy",
    tags=["policies"],
    opt=requires_role(*ALL_ROLES),
    sync_to_thread=True,
    responses=problem_responses(
        requires_role(*ALL_ROLES), 404, why={404: "No policy of that name in the policy folder."}
    ),
)
def get_policy(name: FromPath[str], settings: NamedDependency[Settings]) -> PolicyDetail:
    """One policy: what it does to every column, its disclosure settings and hash, or why it is invalid."""
    entry = service.find_policy(policy_dir=settings.policy_dir, name=name)
    if entry is None:
        raise NotFound("there is no policy of that name in the policy folder")
    return PolicyDetail(
        summary=_summary(entry),
        canonical=entry.canonical(),
        problems=[PolicyProblem(line=p.line, message=p.message, hint=p.hint) for p in entry.problems],
    )
