"""The auditors' console pages (see navigation.SECTIONS): the audit log with the API's filters and paging,
each entry's inclusion proof on demand; the verification, checkpoint and export pages and the retention page
live in ``auditor_verify_pages`` and ``auditor_retention_pages``.

Like ``GET /api/v1/audit/entries`` and ``GET /api/v1/audit/entries/{seq}/proof`` (audit/controllers.py):
the same service calls, and the same ``audit.read`` records (``audit:entries``, ``audit:proof/<seq>``) with
the person as the actor and the purpose they gave in the form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit import service
from odeus_compliance.audit.recording import appender_of, record_access
from odeus_compliance.audit.records import MAX_SAFE_INT, Action, Outcome
from odeus_compliance.audit.store import EntryFilter
from odeus_compliance.console.auditor_filters import FILTER_FIELDS, LogFilterForm, read_filter_form
from odeus_compliance.console.auditor_retention_pages import RETENTION_PAGES
from odeus_compliance.console.auditor_verify_pages import VERIFY_PAGES
from odeus_compliance.console.auditor_views import entry_rows, proof_view
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import page
from odeus_compliance.purpose import MAX_PURPOSE_LENGTH, check_purpose
from odeus_compliance.security import Role

__all__ = ["AUDITOR_PAGES", "audit_log_page", "audit_proof_fragment"]

_LOG_PATH: Final = "/console/audit"
_ACTIONS: Final = tuple(a.value for a in Action)
_OUTCOMES: Final = tuple(o.value for o in Outcome)


def _log_url(values: dict[str, str], **changes: str) -> str:
    query = {k: v for k, v in {**values, **changes}.items() if v and k in FILTER_FIELDS}
    return f"{_LOG_PATH}?{urlencode(query)}"


def _log_page(
    request: Request[Any, Any, Any],
    form: LogFilterForm,
    *,
    status: int = 200,
    rows: Sequence[Any] | None = None,
    next_url: str | None = None,
) -> Response[str]:
    return page(
        request,
        "auditor/log.html",
        title="Audit log",
        status=status,
        values=form.values,
        errors=form.errors,
        actions=_ACTIONS,
        outcomes=_OUTCOMES,
        rows=rows,
        next_url=next_url,
        first_url=_log_url(form.values, after="") if form.values["after"] else None,
        proof_query=urlencode({"purpose": form.values["purpose"]}),
    )


@get(_LOG_PATH, opt=console_page(Role.AUDITOR), include_in_schema=False)
async def audit_log_page(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Response[str]:
    """The audit log: the filter form, and once a purpose is given, one page of decrypted entries (recorded
    as ``audit.read`` like the API's read of the same page)."""
    form = read_filter_form(request.query_params)
    if not form.submitted:
        return _log_page(request, form)
    if form.accepted is None:
        return _log_page(request, form, status=400)
    chosen = form.accepted
    appender = appender_of(request)
    identity = await appender.identity()
    filters = EntryFilter(
        actor_key_id=chosen.actor,
        action=chosen.action,
        resource_tag=appender.kek.filter_tag(chosen.resource) if chosen.resource is not None else None,
        outcome=chosen.outcome,
        time_from=chosen.time_from,
        time_to=chosen.time_to,
        after_seq=chosen.after,
    )
    entries, next_after = await service.list_entries(
        session=db_session, kek=appender.kek, origin=identity.origin, filters=filters, limit=chosen.limit
    )
    await record_access(
        request,
        action=Action.AUDIT_READ,
        resource="audit:entries",
        purpose=chosen.purpose,
        details={"entry_count": len(entries), "page_size": chosen.limit},
    )
    return _log_page(
        request,
        form,
        rows=entry_rows(entries),
        next_url=_log_url(form.values, after=str(next_after)) if next_after is not None else None,
    )


@get(
    f"{_LOG_PATH}/entries/{{seq:int}}/proof",
    opt=console_page(Role.AUDITOR),
    include_in_schema=False,
)
async def audit_proof_fragment(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    seq: Annotated[int, PathParameter(ge=0, le=MAX_SAFE_INT)],
    purpose: Annotated[
        str | None, QueryParameter(name="purpose", required=False, max_length=MAX_PURPOSE_LENGTH)
    ] = None,
) -> Response[str]:
    """The inclusion proof of entry ``seq`` against the newest signed checkpoint (for htmx the part under
    the entry's row, else a page); recorded as ``audit.read`` of ``audit:proof/<seq>`` like the API."""
    checked = check_purpose(purpose, required_for="read the audit log")
    appender = appender_of(request)
    await record_access(
        request,
        action=Action.AUDIT_READ,
        resource=f"audit:proof/{seq}",
        purpose=checked,
        details={"from_seq": seq},
    )
    result = await service.get_inclusion(session=db_session, appender=appender, seq=seq, size=None)
    return page(
        request,
        "auditor/proof.html",
        title=f"Inclusion proof of entry {seq}",
        proof=proof_view(result, await appender.identity()),
        back_url=_log_url({"purpose": checked}),
    )


AUDITOR_PAGES: Sequence[ControllerRouterHandler] = (
    audit_log_page,
    audit_proof_fragment,
    *VERIFY_PAGES,
    *RETENTION_PAGES,
)
"""Every page of this area (the console router registers them)."""
