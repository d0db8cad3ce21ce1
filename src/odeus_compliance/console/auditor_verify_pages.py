"""The auditors' pages about the log as a whole: verify it now, read the newest signed checkpoint with the
verifier key, and export a verification bundle.

They mirror ``GET /api/v1/audit/verify`` (``actions.verify_log``, recorded as ``audit.verified``),
``GET /api/v1/audit/checkpoint`` (recorded as ``audit.read`` of ``audit:checkpoint``) and
``POST /api/v1/audit/export`` (the request validated as the API's ``ExportRequest``, then
``actions.export_log``, recorded as ``audit.exported``). The checkpoint and the export ask for a purpose.

The verdict is not stored anywhere, so the verification POST answers with the result itself (for htmx, the
result part of the page) rather than redirecting to a page that could not show it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit import actions
from odeus_compliance.audit.checkpoint import open_checkpoint
from odeus_compliance.audit.controllers import ExportRequest, parse_time
from odeus_compliance.audit.recording import appender_of, record_access, recorder_of
from odeus_compliance.audit.records import Action
from odeus_compliance.audit.service import b64
from odeus_compliance.console.auditor_filters import field_message
from odeus_compliance.console.auditor_views import verification_checks
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import page
from odeus_compliance.core.clock import utcnow
from odeus_compliance.errors import ValidationFailed
from odeus_compliance.purpose import MAX_PURPOSE_LENGTH, check_purpose
from odeus_compliance.security import Role

__all__ = ["VERIFY_PAGES", "audit_checkpoint_page", "audit_export", "audit_verify_page", "audit_verify_run"]

_VERIFY_PATH: Final = "/console/audit/verify"
_CHECKPOINT_PATH: Final = "/console/audit/checkpoint"
_EXPORT_PATH: Final = "/console/audit/export"
_EXPORT_FIELDS: Final = ("from", "to", "purpose", "since_checkpoint")
_STRUCT_FIELD: Final = re.compile(r"at `\$\.([a-z_]+)`")
_NOT_A_STRING: Final = "must be text"


@get(_VERIFY_PATH, opt=console_page(Role.AUDITOR), include_in_schema=False)
async def audit_verify_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The verification page: what it checks, and the button that runs it."""
    return page(request, "auditor/verify.html", title="Verify the log", report=None, checks=())


@post(_VERIFY_PATH, opt=console_page(Role.AUDITOR), include_in_schema=False, status_code=200)
async def audit_verify_run(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Response[str]:
    """Verify the whole stored log now (recorded as ``audit.verified`` with the verdict before it shows)."""
    report = await actions.verify_log(recorder_of(request), session=db_session)
    return page(
        request,
        "auditor/verify.html",
        title="Verify the log",
        report=report,
        checks=verification_checks(report),
    )


def _default_range() -> dict[str, str]:
    today = utcnow().date()
    start = today - dt.timedelta(days=30)
    return {"from": f"{start.isoformat()}T00:00:00Z", "to": f"{today.isoformat()}T23:59:59Z"}


def _checkpoint_page(
    request: Request[Any, Any, Any],
    *,
    status: int = 200,
    checkpoint: Mapping[str, Any] | None = None,
    checkpoint_purpose: str = "",
    checkpoint_errors: Mapping[str, str] | None = None,
    export_values: Mapping[str, str] | None = None,
    export_errors: Mapping[str, str] | None = None,
    export_problem: str | None = None,
) -> Response[str]:
    return page(
        request,
        "auditor/checkpoint.html",
        title="Checkpoint and export",
        status=status,
        checkpoint=checkpoint,
        checkpoint_purpose=checkpoint_purpose,
        checkpoint_errors=checkpoint_errors or {},
        export_values={"purpose": "", "since_checkpoint": "", **_default_range(), **(export_values or {})},
        export_errors=export_errors or {},
        export_problem=export_problem,
    )


@get(_CHECKPOINT_PATH, opt=console_page(Role.AUDITOR), include_in_schema=False)
async def audit_checkpoint_page(
    request: Request[Any, Any, Any],
    purpose: Annotated[
        str | None, QueryParameter(name="purpose", required=False, max_length=MAX_PURPOSE_LENGTH)
    ] = None,
) -> Response[str]:
    """The export form, and with a purpose the newest signed checkpoint, its origin and the verifier key
    (recorded as ``audit.read`` of ``audit:checkpoint``, like the API)."""
    if purpose is None:
        return _checkpoint_page(request)
    try:
        checked = check_purpose(purpose, required_for="read the audit log")
    except ValidationFailed as exc:
        return _checkpoint_page(
            request, status=400, checkpoint_purpose=purpose, checkpoint_errors={"purpose": field_message(exc)}
        )
    appender = appender_of(request)
    identity = await appender.identity()
    await record_access(request, action=Action.AUDIT_READ, resource="audit:checkpoint", purpose=checked)
    latest = await appender.checkpoint()
    assert latest is not None  # checkpoint() signs one when none exists
    size, note = latest
    body = open_checkpoint(note, identity.signer.verifier, origin=identity.origin)
    return _checkpoint_page(
        request,
        checkpoint={
            "origin": identity.origin,
            "vkey": identity.vkey,
            "size": size,
            "root": b64(body.root),
            "note": note,
        },
        checkpoint_purpose=purpose,
    )


def _struct_errors(exc: msgspec.ValidationError) -> dict[str, str]:
    """The field a ``msgspec`` refusal names (the API's 400 for the same body), with a rule, not the value."""
    match = _STRUCT_FIELD.search(str(exc))
    name = {"start": "from", "end": "to"}.get(match.group(1), match.group(1)) if match else "from"
    rules = {
        "from": "must be an RFC 3339 date-time with offset",
        "to": "must be an RFC 3339 date-time with offset",
        "purpose": f"at most {MAX_PURPOSE_LENGTH} characters",
        "since_checkpoint": "at most 4096 characters",
    }
    return {name: rules.get(name, _NOT_A_STRING)}


@post(_EXPORT_PATH, opt=console_page(Role.AUDITOR), include_in_schema=False, status_code=200)
async def audit_export(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Response[Any]:
    """Download a verification bundle of a time range (recorded as ``audit.exported`` with the purpose)."""
    form = await request.form()
    raw = {name: form.get(name) for name in _EXPORT_FIELDS}
    values = {name: value if isinstance(value, str) else "" for name, value in raw.items()}
    body = {
        "from": values["from"],
        "to": values["to"],
        "purpose": values["purpose"],
        "since_checkpoint": values["since_checkpoint"].replace("\r\n", "\n") or None,
    }
    errors: dict[str, str] = {}
    try:
        data = msgspec.convert(body, ExportRequest)
    except msgspec.ValidationError as exc:
        errors = _struct_errors(exc)
        data = None
    if data is not None:
        for name, text in (("from", data.start), ("to", data.end)):
            try:
                parse_time(text, name, source="body")
            except ValidationFailed as exc:
                errors[name] = field_message(exc)
    try:
        purpose = check_purpose(values["purpose"], required_for="export the audit log", source="body")
    except ValidationFailed as exc:
        errors.setdefault("purpose", field_message(exc))
    if errors or data is None:
        return _checkpoint_page(request, status=400, export_values=values, export_errors=errors)
    start = parse_time(data.start, "from", source="body")
    end = parse_time(data.end, "to", source="body")
    assert start is not None
    assert end is not None
    try:
        bundle, _count = await actions.export_log(
            recorder_of(request),
            session=db_session,
            start=start,
            end=end,
            purpose=purpose,
            since_checkpoint=data.since_checkpoint,
        )
    except ValidationFailed as exc:  # 'to' before 'from', a checkpoint that does not verify, too many entries
        return _checkpoint_page(request, status=400, export_values=values, export_problem=exc.detail)
    return Response(
        bundle,
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="audit-bundle.json"',
            "Cache-Control": "no-store",
        },
    )


VERIFY_PAGES: Sequence[ControllerRouterHandler] = (
    audit_verify_page,
    audit_verify_run,
    audit_checkpoint_page,
    audit_export,
)
