"""The console's sections per role: what the navigation shows and where each role starts. A page's role
check is its route's ``opt`` (see :mod:`.routing`); this list only decides what is offered."""

from __future__ import annotations

import dataclasses
from typing import Final

from odeus_compliance.security import Role

__all__ = ["SECTIONS", "Section", "home_of", "sections_for"]


@dataclasses.dataclass(frozen=True, slots=True)
class Section:
    """One entry of the navigation."""

    path: str
    label: str
    roles: tuple[Role, ...]
    summary: str


SECTIONS: Final = (
    Section(
        "/console/reports",
        "Reports",
        (Role.OFFICER, Role.AUDITOR),
        "The report archive and each report's figures",
    ),
    Section("/console/reports/new", "Request a report", (Role.OFFICER,), "Request the report of a month"),
    Section("/console/audit", "Audit log", (Role.AUDITOR,), "Entries, with filters and inclusion proofs"),
    Section("/console/audit/verify", "Verify the log", (Role.AUDITOR,), "Check the whole log now"),
    Section(
        "/console/audit/checkpoint",
        "Checkpoint and export",
        (Role.AUDITOR,),
        "The newest signed checkpoint and verifier key; verification bundles",
    ),
    Section(
        "/console/audit/retention", "Receipts and holds", (Role.AUDITOR,), "Deletion receipts, legal holds"
    ),
    Section("/console/schedules", "Schedules", (Role.ADMIN,), "Monthly reports and their runs"),
    Section("/console/apikeys", "API keys", (Role.ADMIN,), "Issue and revoke keys"),
    Section("/console/policies", "Policies", (Role.ADMIN,), "The policies in force"),
    Section("/console/keys", "Key epochs", (Role.ADMIN,), "The data keys and their epochs"),
)


def sections_for(role: Role) -> tuple[Section, ...]:
    """The sections a role may open."""
    return tuple(s for s in SECTIONS if role in s.roles)


def home_of(role: Role) -> str:
    """Where a role lands after sign-in."""
    return sections_for(role)[0].path
