"""The admins' policy pages: the policies of the policy folder (``GET /api/v1/policies``) and each one's
column table, disclosure settings and hash, or the problems that keep it out of force
(``GET /api/v1/policies/{name}``). Read-only: a policy is a file, changed where the files are kept."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import page
from odeus_compliance.errors import NotFound
from odeus_compliance.policy import service
from odeus_compliance.security import Role
from odeus_compliance.settings import Settings

__all__ = ["POLICY_PAGES"]

_ADMIN: Final = console_page(Role.ADMIN)
_NOT_SETTINGS: Final = frozenset({"op", "reason"})


def _text(value: Any) -> str:
    """A value of the canonical form in words (lists joined, mappings as ``key: value``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {_text(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value) or "none"
    return str(value)


def _summary(entry: service.PolicyEntry) -> dict[str, Any]:
    """What ``GET /api/v1/policies`` says of one policy."""
    policy = entry.policy
    return {
        "name": entry.name,
        "valid": policy is not None,
        "hash": entry.hash or "",
        "version": policy.version if policy else "",
        "works_agreement": policy.works_agreement if policy else "",
        "exports": ", ".join(sorted(export.value for export in policy.exports)) if policy else "",
        "problems": len(entry.problems),
    }


def _columns(canonical: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per export, each column's operation, its settings and the reason given."""
    tables = []
    for export, columns in (canonical.get("columns") or {}).items():
        rows = [
            {
                "column": column,
                "op": rule.get("op", ""),
                "settings": "; ".join(
                    f"{key}: {_text(value)}"
                    for key, value in rule.items()
                    if key not in _NOT_SETTINGS and value is not None
                ),
                "reason": rule.get("reason") or "",
            }
            for column, rule in columns.items()
        ]
        tables.append({"export": export, "rows": rows})
    return tables


@get("/console/policies", opt=_ADMIN, include_in_schema=False, sync_to_thread=True)
def policies_page(request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> Response[str]:
    """The policies of the policy folder, each validated and cited by its canonical hash."""
    entries = service.list_policies(policy_dir=settings.policy_dir)
    return page(request, "admin/policies.html", title="Policies", policies=[_summary(e) for e in entries])


@get("/console/policies/{name:str}", opt=_ADMIN, include_in_schema=False, sync_to_thread=True)
def policy_page(
    request: Request[Any, Any, Any], name: FromPath[str], settings: NamedDependency[Settings]
) -> Response[str]:
    """One policy: what it does to every column and its disclosure settings, or why it is invalid."""
    entry = service.find_policy(policy_dir=settings.policy_dir, name=name)
    if entry is None:
        raise NotFound("there is no policy of that name in the policy folder")
    canonical = entry.canonical() or {}
    return page(
        request,
        "admin/policy.html",
        title=f"Policy {entry.name}",
        policy=_summary(entry),
        description=str((canonical.get("policy") or {}).get("description") or ""),
        settings_groups=[
            (group, [(key, _text(value)) for key, value in (canonical.get(group) or {}).items()])
            for group in ("disclosure", "pseudonymization", "report")
            if canonical.get(group)
        ],
        tables=_columns(canonical),
        problems=[{"line": p.line, "message": p.message, "hint": p.hint or ""} for p in entry.problems],
    )


POLICY_PAGES: Final = (policies_page, policy_page)
