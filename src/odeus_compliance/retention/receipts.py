"""Deletion receipts: what a retention run deleted, signed so that anyone holding the log's ``vkey`` can
check it offline.

A receipt is a C2SP signed note (the format of the audit checkpoints), signed with the audit log's Ed25519
checkpoint key. Why that key and not an HMAC: an HMAC can only be checked by whoever holds its secret (the
service itself), while auditors already pin the log's verifier key and can check an Ed25519 signature with
no secret at all. The receipt cannot be mistaken for a checkpoint: its text is two lines, the first
:data:`RECEIPT_HEADER` and the second a JSON object, where a checkpoint needs a tree size and a root::

    odeus-compliance/deletion-receipt/v1
    {"as_of":"...","completed_at":null,"count":3,"created_at":"...","data_class":"reports","id":"rcp_...",
     "items_sha256":"...","method":"delete-ciphertext-and-rows","origin":"odeus-compliance/...",
     "run_id":"ret_...","status":"pending","what":"..."}

    — odeus-compliance/<install id> <base64 signature>

``items_sha256`` is SHA-256 (hex) of the deleted identifiers, sorted, each followed by a newline: the
receipt row keeps the identifiers (ids only, never personal data), so an auditor can recompute it.
A receipt is signed ``pending`` before anything is deleted and signed again ``done`` afterwards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit.note import NoteError, Signer, Verifier, open_note, parse_vkey, sign_note
from odeus_compliance.audit.records import canonical_json, format_time
from odeus_compliance.db.models import DeletionReceipt
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.retention_rules import DataClass

__all__ = [
    "RECEIPT_HEADER",
    "Receipt",
    "ReceiptError",
    "complete_receipt",
    "items_digest",
    "list_receipts",
    "pending_receipts",
    "verify_receipt",
    "write_pending",
]

RECEIPT_HEADER: Final = "odeus-compliance/deletion-receipt/v1"


class ReceiptError(OdeusComplianceError):
    """A receipt does not verify or is malformed."""


def items_digest(items: Iterable[str]) -> str:
    """SHA-256 (hex) of the identifiers, sorted, each followed by a newline."""
    digest = hashlib.sha256()
    for item in sorted(items):
        digest.update(item.encode("utf-8") + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Receipt:
    """A deletion receipt as stored."""

    id: str
    run_id: str
    data_class: DataClass
    what: str
    method: str
    items: tuple[str, ...]
    items_sha256: str
    as_of: dt.datetime
    created_at: dt.datetime
    completed_at: dt.datetime | None
    status: str
    note: str

    @property
    def count(self) -> int:
        """How many identifiers."""
        return len(self.items)

    def to_json(self) -> dict[str, Any]:
        """The receipt for ``retention receipts --json`` (identifiers included)."""
        return {
            "id": self.id,
            "run_id": self.run_id,
            "data_class": self.data_class.value,
            "what": self.what,
            "method": self.method,
            "count": self.count,
            "items": list(self.items),
            "items_sha256": self.items_sha256,
            "as_of": format_time(self.as_of),
            "created_at": format_time(self.created_at),
            "completed_at": None if self.completed_at is None else format_time(self.completed_at),
            "status": self.status,
            "note": self.note,
        }


def _body(
    *,
    receipt_id: str,
    run_id: str,
    origin: str,
    data_class: DataClass,
    what: str,
    method: str,
    items: Sequence[str],
    as_of: dt.datetime,
    created_at: dt.datetime,
    completed_at: dt.datetime | None,
    status: str,
) -> str:
    fields = {
        "id": receipt_id,
        "run_id": run_id,
        "origin": origin,
        "data_class": data_class.value,
        "what": what,
        "method": method,
        "count": len(items),
        "items_sha256": items_digest(items),
        "as_of": format_time(as_of),
        "created_at": format_time(created_at),
        "completed_at": None if completed_at is None else format_time(completed_at),
        "status": status,
    }
    return RECEIPT_HEADER + "\n" + canonical_json(fields).decode("utf-8") + "\n"


def _receipt(row: DeletionReceipt) -> Receipt:
    return Receipt(
        id=row.id,
        run_id=row.run_id,
        data_class=DataClass(row.data_class),
        what=row.what,
        method=row.method,
        items=tuple(json.loads(row.items)),
        items_sha256=row.items_sha256,
        as_of=row.as_of,
        created_at=row.created_at,
        completed_at=row.completed_at,
        status=row.status,
        note=row.note,
    )


async def write_pending(
    *,
    session: AsyncSession,
    signer: Signer,
    run_id: str,
    data_class: DataClass,
    what: str,
    method: str,
    items: Iterable[str],
    as_of: dt.datetime,
    now: dt.datetime,
) -> Receipt:
    """Store a signed ``pending`` receipt and commit: from here on a crash leaves the data or this."""
    ordered = sorted(set(items))
    receipt_id = "rcp_" + secrets.token_hex(12)
    note = sign_note(
        _body(
            receipt_id=receipt_id,
            run_id=run_id,
            origin=signer.name,
            data_class=data_class,
            what=what,
            method=method,
            items=ordered,
            as_of=as_of,
            created_at=now,
            completed_at=None,
            status="pending",
        ),
        signer,
    )
    row = DeletionReceipt(
        id=receipt_id,
        run_id=run_id,
        data_class=data_class.value,
        what=what,
        method=method,
        count=len(ordered),
        items=json.dumps(ordered),
        items_sha256=items_digest(ordered),
        as_of=as_of,
        created_at=now,
        completed_at=None,
        status="pending",
        note=note,
    )
    session.add(row)
    await session.commit()
    return _receipt(row)


async def complete_receipt(
    *, session: AsyncSession, signer: Signer, receipt: Receipt, now: dt.datetime
) -> Receipt:
    """Sign the receipt ``done`` and commit (a receipt already done is left as it is)."""
    note = sign_note(
        _body(
            receipt_id=receipt.id,
            run_id=receipt.run_id,
            origin=signer.name,
            data_class=receipt.data_class,
            what=receipt.what,
            method=receipt.method,
            items=receipt.items,
            as_of=receipt.as_of,
            created_at=receipt.created_at,
            completed_at=now,
            status="done",
        ),
        signer,
    )
    await session.execute(
        update(DeletionReceipt)
        .where(DeletionReceipt.id == receipt.id, DeletionReceipt.status == "pending")
        .values(status="done", completed_at=now, note=note)
    )
    await session.commit()
    row = await session.get(DeletionReceipt, receipt.id, populate_existing=True)
    assert row is not None
    return _receipt(row)


async def pending_receipts(*, session: AsyncSession) -> list[Receipt]:
    """Receipts whose deletion a crash interrupted, oldest first."""
    rows = (
        await session.scalars(
            select(DeletionReceipt)
            .where(DeletionReceipt.status == "pending")
            .order_by(DeletionReceipt.created_at, DeletionReceipt.id)
        )
    ).all()
    return [_receipt(r) for r in rows]


async def list_receipts(*, session: AsyncSession, limit: int = 100) -> list[Receipt]:
    """The newest receipts first."""
    rows = (
        await session.scalars(
            select(DeletionReceipt)
            .order_by(DeletionReceipt.created_at.desc(), DeletionReceipt.id)
            .limit(limit)
        )
    ).all()
    return [_receipt(r) for r in rows]


def verify_receipt(note: str, *, vkey: str | Verifier, items: Sequence[str] | None = None) -> dict[str, Any]:
    """Check a receipt's signature against the log's verifier key and return its fields; with ``items``,
    also that they hash to ``items_sha256`` and number ``count``. Raises :class:`ReceiptError`."""
    verifier = parse_vkey(vkey) if isinstance(vkey, str) else vkey
    try:
        opened, _ = open_note(note, [verifier])
    except NoteError as exc:
        raise ReceiptError(f"the receipt's signature does not verify: {exc}") from None
    header, _, rest = opened.text.partition("\n")
    if header != RECEIPT_HEADER or rest.count("\n") != 1:
        raise ReceiptError("not a deletion receipt")
    try:
        fields = json.loads(rest)
    except ValueError:
        raise ReceiptError("the receipt's body is not JSON") from None
    if not isinstance(fields, dict) or canonical_json(fields).decode("utf-8") + "\n" != rest:
        raise ReceiptError("the receipt's body is not canonical JSON")
    if fields.get("origin") != verifier.name:
        raise ReceiptError("the receipt names another log")
    if items is not None and (
        items_digest(items) != fields.get("items_sha256") or len(items) != fields.get("count")
    ):
        raise ReceiptError("the identifiers do not match the receipt's hash or count")
    return fields
