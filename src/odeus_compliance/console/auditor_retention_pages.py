"""The auditors' retention page: the deletion receipts, each checked the way ``odeus-compliance retention
receipts`` checks them (its signature against the log's verifier key, its identifiers against its hash and
count), and the legal holds, read-only (the service offers holds to operators through the command line
only; no API changes them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit.recording import appender_of
from odeus_compliance.console.auditor_views import utc_text
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import page
from odeus_compliance.core.clock import utcnow
from odeus_compliance.retention.holds import Hold, list_holds
from odeus_compliance.retention.receipts import Receipt, ReceiptError, list_receipts, verify_receipt
from odeus_compliance.security import Role

__all__ = ["RETENTION_PAGES", "HoldRow", "ReceiptRow", "audit_retention_page"]

RECEIPT_LIMIT: Final = 100
"""The newest receipts shown (the command line's default)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReceiptRow:
    """One receipt and its verification (``problem`` says why it does not verify)."""

    id: str
    run_id: str
    data_class: str
    what: str
    method: str
    count: int
    items_sha256: str
    status: str
    as_of: str
    completed_at: str
    verified: bool
    problem: str


@dataclasses.dataclass(frozen=True, slots=True)
class HoldRow:
    """One legal hold and whether it blocks deletions now."""

    id: str
    data_class: str
    scope: str
    reason: str
    created_by: str
    created_at: str
    expires_at: str
    state: str


def _receipt_row(receipt: Receipt, vkey: str) -> ReceiptRow:
    try:
        verify_receipt(receipt.note, vkey=vkey, items=receipt.items)
    except ReceiptError as exc:
        verified, problem = False, str(exc)
    else:
        verified, problem = True, ""
    return ReceiptRow(
        id=receipt.id,
        run_id=receipt.run_id,
        data_class=receipt.data_class.value,
        what=receipt.what,
        method=receipt.method,
        count=receipt.count,
        items_sha256=receipt.items_sha256,
        status=receipt.status,
        as_of=utc_text(receipt.as_of),
        completed_at=utc_text(receipt.completed_at) if receipt.completed_at else "",
        verified=verified,
        problem=problem,
    )


def _hold_row(hold: Hold) -> HoldRow:
    scope = []
    if hold.report_id:
        scope.append(f"report {hold.report_id}")
    if hold.period_from or hold.period_to:
        start = utc_text(hold.period_from) if hold.period_from else "the beginning"
        end = utc_text(hold.period_to) if hold.period_to else "now"
        scope.append(f"from {start} to {end}")
    now = utcnow()
    state = "released" if hold.released_at else "active" if hold.active_at(now) else "expired"
    return HoldRow(
        id=hold.id,
        data_class=hold.data_class.value,
        scope="; ".join(scope) or "everything of the class",
        reason=hold.reason,
        created_by=hold.created_by,
        created_at=utc_text(hold.created_at),
        expires_at=utc_text(hold.expires_at) if hold.expires_at else "until released",
        state=state,
    )


@get("/console/audit/retention", opt=console_page(Role.AUDITOR), include_in_schema=False)
async def audit_retention_page(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Response[str]:
    """Deletion receipts (newest first, each verified) and legal holds."""
    identity = await appender_of(request).identity()
    receipts = await list_receipts(session=db_session, limit=RECEIPT_LIMIT)
    holds = await list_holds(session=db_session)
    return page(
        request,
        "auditor/retention.html",
        title="Receipts and holds",
        vkey=identity.vkey,
        receipts=[_receipt_row(r, identity.vkey) for r in receipts],
        holds=[_hold_row(h) for h in holds],
    )


RETENTION_PAGES: Sequence[ControllerRouterHandler] = (audit_retention_page,)
