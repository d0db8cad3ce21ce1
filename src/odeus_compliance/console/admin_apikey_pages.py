"""The admins' API-key pages: every key (id, name, role, dates, status; never a hash), issuing one (shown
once, on the answer to the form, which is not stored anywhere: ``Cache-Control: no-store`` like every
page), and revoking one after a confirmation. Issuing and revoking go through the flows the command line
calls (``issue_api_key``, ``withdraw_api_key``), recorded as ``apikey.created``/``apikey.revoked`` with the
person as the actor; neither record holds the key or its name."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.apikeys.actions import issue_api_key, withdraw_api_key
from odeus_compliance.apikeys.service import list_api_keys
from odeus_compliance.audit.recording import recorder_of
from odeus_compliance.console.admin_format import utc_time
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import page
from odeus_compliance.db.models import ApiKey
from odeus_compliance.errors import NotFound
from odeus_compliance.security import ApiKeyPepper, Role
from odeus_compliance.settings import Settings

__all__ = ["APIKEY_PAGES"]

_ADMIN: Final = console_page(Role.ADMIN)
_ROLE_LABELS: Final = {
    Role.OFFICER.value: "officer: requests and downloads reports",
    Role.AUDITOR.value: "auditor: reviews the audit log",
    Role.ADMIN.value: "admin: keys, schedules, policies",
    Role.METRICS.value: "metrics: a Prometheus scraper (GET /metrics only)",
}
_MAX_NAME: Final = 200
_NAME_RULE: Final = f"must be 1 to {_MAX_NAME} printable characters (no tabs or line breaks)"


def _listed(key: ApiKey) -> dict[str, Any]:
    """What the command line's ``apikey list`` shows of a key."""
    return {
        "id": str(key.id),
        "name": key.name,
        "role": key.role,
        "created": utc_time(key.created_at),
        "revoked": utc_time(key.revoked_at),
        "active": key.revoked_at is None,
    }


async def _keys_page(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response[str]:
    keys = await list_api_keys(session=session)
    return page(
        request,
        "admin/apikeys.html",
        title="API keys",
        status=status,
        keys=[_listed(key) for key in reversed(keys)],  # newest first
        role_options=list(_ROLE_LABELS.items()),
        values=values or {"name": "", "role": Role.OFFICER.value},
        errors=errors or {},
        revoked=status == 200 and request.query_params.get("revoked") == "1",
    )


@get("/console/apikeys", opt=_ADMIN, include_in_schema=False)
async def apikeys_page(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Response[str]:
    """Every key, newest first, and the form to issue one."""
    return await _keys_page(request, db_session)


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@post("/console/apikeys", opt=_ADMIN, include_in_schema=False, status_code=200)
async def issue_key(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
) -> Response[str]:
    """Issue a key and show it this once (the answer is the only place it ever appears); 400 with the
    message beside the field for a bad name or role."""
    form = await request.form()
    name, role = _field(form, "name").strip(), _field(form, "role")
    errors: dict[str, str] = {}
    if not name or len(name) > _MAX_NAME or not name.isprintable():
        errors["name"] = _NAME_RULE
    if role not in _ROLE_LABELS:
        errors["role"] = "must be one of: " + ", ".join(_ROLE_LABELS)
    if errors:
        values = {"name": name[:_MAX_NAME], "role": role if role in _ROLE_LABELS else Role.OFFICER.value}
        return await _keys_page(request, db_session, values=values, errors=errors, status=400)
    pepper = ApiKeyPepper.from_master_key(settings.require_master_key())
    record, plaintext = await issue_api_key(
        recorder_of(request), session=db_session, pepper=pepper, name=name, role=Role(role)
    )
    return page(
        request, "admin/apikey_issued.html", title="Key issued", key=_listed(record), plaintext=plaintext
    )


async def _key_or_404(session: AsyncSession, key_id: uuid.UUID) -> ApiKey:
    """The key with ``key_id`` from the service's list (a handful of keys: no query of our own)."""
    for key in await list_api_keys(session=session):
        if key.id == key_id:
            return key
    raise NotFound("No API key with that id.")


@get("/console/apikeys/{key_id:uuid}/revoke", opt=_ADMIN, include_in_schema=False)
async def revoke_key_page(
    request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID], db_session: NamedDependency[AsyncSession]
) -> Response[str]:
    """Asks whether to revoke the key (a link must never revoke anything by itself)."""
    key = await _key_or_404(db_session, key_id)
    return page(request, "admin/apikey_revoke.html", title="Revoke a key", key=_listed(key))


@post("/console/apikeys/{key_id:uuid}/revoke", opt=_ADMIN, include_in_schema=False, status_code=303)
async def revoke_key(
    request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID], db_session: NamedDependency[AsyncSession]
) -> Response[str]:
    """Revoke the key: refused from the next request on."""
    await withdraw_api_key(recorder_of(request), session=db_session, key_id=key_id)
    return Response("", status_code=303, headers={"Location": "/console/apikeys?revoked=1"})


APIKEY_PAGES: Final = (apikeys_page, issue_key, revoke_key_page, revoke_key)
