"""The auditor API: ``/api/v1/audit/...``, auditor role only; every call is itself recorded in the log.

Thin handlers: parse and validate parameters, call :mod:`~odeus_compliance.audit.service`, record the access
with :func:`~odeus_compliance.audit.recording.record_access` *before* returning anything (a record that
cannot be written is a 503 and nothing is returned), answer with msgspec Structs.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import JSONBody, Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit import actions, service
from odeus_compliance.audit.appender import AuditAppender
from odeus_compliance.audit.recording import appender_of, record_access, recorder_of
from odeus_compliance.audit.records import MAX_SAFE_INT, Action, Outcome
from odeus_compliance.audit.service import b64
from odeus_compliance.audit.store import EntryFilter
from odeus_compliance.errors import ValidationFailed
from odeus_compliance.problem_schema import problem_responses
from odeus_compliance.purpose import MAX_PURPOSE_LENGTH, check_purpose
from odeus_compliance.security import ApiKeyIdentity, Role, requires_role

__all__ = [
    "AuditEntryOut",
    "CheckpointOut",
    "ConsistencyOut",
    "EntriesPage",
    "ExportRequest",
    "InclusionOut",
    "ProblemOut",
    "VerifyOut",
    "audit_checkpoint",
    "audit_consistency",
    "audit_entries",
    "audit_export",
    "audit_proof",
    "audit_verify",
    "parse_choice",
    "parse_time",
]

AUDITOR: Final = requires_role(Role.AUDITOR)
DEFAULT_PURPOSE: Final = "audit log review"
MAX_PAGE: Final = 1000
_TAGS: Final = ["audit"]
AuditRequest = Request[ApiKeyIdentity, Any, State]
_PURPOSE_400: Final = "A `purpose` that is not accepted, or a parameter out of range (`errors` names it)."
_TIME_EXAMPLES: Final = [Example(value="2026-10-01T00:00:00+02:00")]
Purpose = Annotated[
    str | None,
    QueryParameter(
        name="purpose",
        required=False,
        max_length=MAX_PURPOSE_LENGTH,
        description="Why the log is read (recorded in the audit record of this read; no control, format or "
        "bidi characters).",
    ),
]


class AuditEntryOut(msgspec.Struct, frozen=True):
    """One entry: its leaf text (what the tree hashes) and the decrypted record."""

    seq: int
    leaf: str
    """The leaf text, exactly as hashed into the Merkle tree."""
    key_id: str
    """The data key (epoch) the record is encrypted under."""
    record: dict[str, Any] | None
    """The record; ``null`` if its epoch was shredded (``pruned``) or the leaf does not open (tampered)."""
    pruned: bool
    """Whether the record's data key was destroyed by retention (the leaf and its proofs remain)."""


class EntriesPage(msgspec.Struct, frozen=True):
    """One page of entries, by ascending seq."""

    entries: list[AuditEntryOut]
    next_after: int | None
    """Pass as ``after`` for the next page; ``null`` on the last page."""


class CheckpointOut(msgspec.Struct, frozen=True):
    """The newest signed checkpoint (signed now if the log grew since the last one)."""

    origin: str
    vkey: str
    """The C2SP verifier key; compare it with the one the operator published."""
    size: int
    note: str
    """The C2SP signed note (tlog-checkpoint body, Ed25519 signature line)."""


class InclusionOut(msgspec.Struct, frozen=True):
    """An RFC 9162 inclusion proof of one leaf in the tree a signed checkpoint commits to."""

    seq: int
    leaf: str
    leaf_hash: str
    tree_size: int
    proof: list[str]
    """Base64 hashes, leaf to root."""
    checkpoint: str


class ConsistencyOut(msgspec.Struct, frozen=True, rename={"first": "from", "second": "to"}):
    """An RFC 9162 consistency proof from tree size ``from`` to the signed checkpoint of size ``to``."""

    first: int
    second: int
    proof: list[str]
    from_checkpoint: str | None
    """The signed checkpoint of size ``from``, if the log made one."""
    to_checkpoint: str


class ProblemOut(msgspec.Struct, frozen=True):
    """One finding of the verifier."""

    kind: str
    message: str
    seqs: list[int]


class VerifyOut(msgspec.Struct, frozen=True):
    """The verdict on the whole stored log."""

    valid: bool
    entries: int
    checkpoint_size: int | None
    problems: list[ProblemOut]
    pruned: int
    """Entries whose payload retention shredded (not a problem)."""
    notices: list[str]


_Rfc3339 = Annotated[
    str,
    msgspec.Meta(
        max_length=64,
        pattern=r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$",
        description="An RFC 3339 date-time with its UTC offset (`Z` or `+hh:mm`).",
        examples=["2026-10-01T00:00:00+02:00"],
    ),
]


class ExportRequest(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}
):
    """A time range (`from`, `to`: RFC 3339 with offset, inclusive) and, optionally, a checkpoint you hold."""

    start: _Rfc3339
    end: _Rfc3339
    since_checkpoint: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=4096,
                description="A signed checkpoint you kept (the `note` of `GET /api/v1/audit/checkpoint`): "
                "the bundle then proves the log still extends it.",
            ),
        ]
        | None
    ) = None
    purpose: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=MAX_PURPOSE_LENGTH,
                description="Why the log is exported (recorded with the export; no control, format, bidi or "
                "invisible characters); default `audit log export`.",
                examples=["annual works-council review"],
            ),
        ]
        | None
    ) = None


def parse_time(value: str | None, name: str, source: str = "query") -> dt.datetime | None:
    """An RFC 3339 date-time with offset, in UTC (``None`` stays ``None``); 400 naming ``name`` otherwise."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed.at(name, "must be an RFC 3339 date-time with offset", source=source) from None
    if parsed.tzinfo is None:
        raise ValidationFailed.at(name, "must carry a UTC offset (Z or +hh:mm)", source=source)
    return parsed.astimezone(dt.UTC)


def parse_choice(value: str | None, name: str, allowed: type[Action] | type[Outcome]) -> str | None:
    """``value`` if it is one of ``allowed`` (``None`` stays ``None``); 400 naming ``name`` otherwise."""
    if value is None:
        return None
    if value not in {m.value for m in allowed}:
        raise ValidationFailed.at(
            name, f"must be one of: {', '.join(m.value for m in allowed)}", source="query"
        )
    return value


def _purpose(value: str | None, default: str, source: str = "query") -> str:
    """The purpose (the one rule every route applies), or ``default`` when none is given."""
    return check_purpose(value, required_for="read the audit log", source=source, default=default)


@get(
    "/api/v1/audit/entries",
    operation_id="listAuditEntries",
    tags=_TAGS,
    opt=AUDITOR,
    responses=problem_responses(AUDITOR, 400, why={400: _PURPOSE_400}),
)
async def audit_entries(  # noqa: PLR0917 - one parameter per query filter, as Litestar reads them
    request: AuditRequest,
    db_session: NamedDependency[AsyncSession],
    purpose: Purpose = None,
    actor: Annotated[
        str | None,
        QueryParameter(
            name="actor",
            max_length=128,
            pattern=r"^[!-~]+$",  # an API key id or a system actor: printable ASCII
            required=False,
            description="The actor's API key id (or `cli`, `demo`, `system`, `anonymous`).",
        ),
    ] = None,
    action: Annotated[
        str | None,
        QueryParameter(
            name="action",
            required=False,
            description="Only entries of this action.",
            schema_extra={"enum": [a.value for a in Action]},
        ),
    ] = None,
    resource: Annotated[
        str | None,
        QueryParameter(
            name="resource",
            max_length=256,
            required=False,
            description="Only entries about this resource (exact), e.g. `report:rpt_...`.",
        ),
    ] = None,
    outcome: Annotated[
        str | None,
        QueryParameter(
            name="outcome",
            required=False,
            description="Only entries with this outcome.",
            schema_extra={"enum": [o.value for o in Outcome]},
        ),
    ] = None,
    time_from: Annotated[
        str | None,
        QueryParameter(
            name="from",
            required=False,
            max_length=64,
            description="Only entries at or after this RFC 3339 date-time (with offset).",
            examples=_TIME_EXAMPLES,
        ),
    ] = None,
    time_to: Annotated[
        str | None,
        QueryParameter(
            name="to",
            required=False,
            max_length=64,
            description="Only entries at or before this RFC 3339 date-time (with offset).",
            examples=_TIME_EXAMPLES,
        ),
    ] = None,
    after: Annotated[
        int | None,
        QueryParameter(
            name="after",
            ge=-1,
            le=MAX_SAFE_INT,
            required=False,
            description="Only entries after this seq: the previous page's `next_after`.",
        ),
    ] = None,
    limit: Annotated[
        int, QueryParameter(name="limit", ge=1, le=MAX_PAGE, description="Entries per page.")
    ] = 100,
) -> EntriesPage:
    """Audit entries, decrypted, filtered by actor (API key id), action, resource, outcome and time
    (``from``/``to``, RFC 3339), by ascending seq; page with ``after`` (the previous page's ``next_after``).
    Recorded as ``audit.read``."""
    appender = appender_of(request)
    identity = await appender.identity()
    filters = EntryFilter(
        actor_key_id=actor,
        action=parse_choice(action, "action", Action),
        resource_tag=appender.kek.filter_tag(resource) if resource is not None else None,
        outcome=parse_choice(outcome, "outcome", Outcome),
        time_from=parse_time(time_from, "from"),
        time_to=parse_time(time_to, "to"),
        after_seq=after,
    )
    entries, next_after = await service.list_entries(
        session=db_session, kek=appender.kek, origin=identity.origin, filters=filters, limit=limit
    )
    await record_access(
        request,
        action=Action.AUDIT_READ,
        resource="audit:entries",
        purpose=_purpose(purpose, DEFAULT_PURPOSE),
        details={"entry_count": len(entries), "page_size": limit},
    )
    return EntriesPage(
        entries=[AuditEntryOut(e.seq, e.leaf, e.key_id, e.record, e.pruned) for e in entries],
        next_after=next_after,
    )


@get(
    "/api/v1/audit/checkpoint",
    operation_id="getAuditCheckpoint",
    tags=_TAGS,
    opt=AUDITOR,
    responses=problem_responses(AUDITOR, 400, why={400: _PURPOSE_400}),
)
async def audit_checkpoint(request: AuditRequest, purpose: Purpose = None) -> CheckpointOut:
    """The newest signed checkpoint of the log (C2SP signed note); signed now if the log grew, so it covers
    this very read. Keep it: a later export or proof against it exposes truncation or a fork.
    Recorded as ``audit.read``."""
    appender = appender_of(request)
    identity = await appender.identity()
    await record_access(
        request,
        action=Action.AUDIT_READ,
        resource="audit:checkpoint",
        purpose=_purpose(purpose, DEFAULT_PURPOSE),
    )
    latest = await _checkpoint(appender)
    return CheckpointOut(origin=identity.origin, vkey=identity.vkey, size=latest[0], note=latest[1])


async def _checkpoint(appender: AuditAppender) -> tuple[int, str]:
    latest = await appender.checkpoint()
    assert latest is not None  # checkpoint() signs one when none exists
    return latest


@get(
    "/api/v1/audit/entries/{seq:int}/proof",
    operation_id="getAuditInclusionProof",
    tags=_TAGS,
    opt=AUDITOR,
    responses=problem_responses(
        AUDITOR,
        400,
        404,
        why={
            400: "A parameter out of range, a `size` whose checkpoint does not cover the entry, or a "
            "`purpose` that is not accepted.",
            404: "No entry `seq`, or no signed checkpoint of `size` (or none covering the entry yet).",
        },
    ),
)
async def audit_proof(
    request: AuditRequest,
    db_session: NamedDependency[AsyncSession],
    seq: Annotated[int, Parameter(ge=0, le=MAX_SAFE_INT, description="The entry's sequence number.")],
    purpose: Purpose = None,
    size: Annotated[
        int | None,
        QueryParameter(
            name="size",
            ge=1,
            le=MAX_SAFE_INT,
            required=False,
            description="The tree size of a signed checkpoint you hold (default: the newest).",
        ),
    ] = None,
) -> InclusionOut:
    """The inclusion proof of entry ``seq`` against the signed checkpoint of ``size`` (default: the newest,
    signed now if it does not cover the entry yet). Recorded as ``audit.read``."""
    appender = appender_of(request)
    await record_access(
        request,
        action=Action.AUDIT_READ,
        resource=f"audit:proof/{seq}",
        purpose=_purpose(purpose, DEFAULT_PURPOSE),
        details={"from_seq": seq, **({"checkpoint_size": size} if size else {})},
    )
    result = await service.get_inclusion(session=db_session, appender=appender, seq=seq, size=size)
    return InclusionOut(
        seq=result.seq,
        leaf=result.leaf,
        leaf_hash=b64(result.leaf_hash),
        tree_size=result.tree_size,
        proof=[b64(h) for h in result.proof],
        checkpoint=result.checkpoint,
    )


@get(
    "/api/v1/audit/consistency",
    operation_id="getAuditConsistencyProof",
    tags=_TAGS,
    opt=AUDITOR,
    responses=problem_responses(
        AUDITOR,
        400,
        404,
        why={
            400: "`from` missing or out of range (it must be between 1 and `to`), or a `purpose` that is not "
            "accepted.",
            404: "No signed checkpoint of size `to`.",
        },
    ),
)
async def audit_consistency(
    request: AuditRequest,
    db_session: NamedDependency[AsyncSession],
    first: Annotated[
        int,
        QueryParameter(
            name="from", ge=1, le=MAX_SAFE_INT, description="The tree size of a signed checkpoint you hold."
        ),
    ],
    second: Annotated[
        int | None,
        QueryParameter(
            name="to",
            ge=1,
            le=MAX_SAFE_INT,
            required=False,
            description="The tree size of a newer signed checkpoint (default: the newest, signed now).",
        ),
    ] = None,
    purpose: Purpose = None,
) -> ConsistencyOut:
    """The consistency proof from tree size ``from`` (a checkpoint you hold) to the signed checkpoint of
    size ``to`` (default: the newest, signed now). Recorded as ``audit.read``."""
    appender = appender_of(request)
    await record_access(
        request,
        action=Action.AUDIT_READ,
        resource="audit:consistency",
        purpose=_purpose(purpose, DEFAULT_PURPOSE),
        details={"from_seq": first, **({"to_seq": second} if second else {})},
    )
    result = await service.get_consistency(session=db_session, appender=appender, first=first, second=second)
    return ConsistencyOut(
        first=result.first,
        second=result.second,
        proof=[b64(h) for h in result.proof],
        from_checkpoint=result.first_checkpoint,
        to_checkpoint=result.second_checkpoint,
    )


@get(
    "/api/v1/audit/verify",
    operation_id="verifyAuditLog",
    tags=_TAGS,
    opt=AUDITOR,
    responses=problem_responses(AUDITOR),
)
async def audit_verify(request: AuditRequest, db_session: NamedDependency[AsyncSession]) -> VerifyOut:
    """Verify the whole stored log now: every leaf decrypted and checked, the tree against every signed
    checkpoint. Names each modified, missing, reordered or duplicate seq and a truncated tail. Recorded as
    ``audit.verified`` (with the verdict) before the answer is returned."""
    report = await actions.verify_log(recorder_of(request), session=db_session)
    return VerifyOut(
        valid=report.valid,
        entries=report.entries,
        checkpoint_size=report.checkpoint.size if report.checkpoint else None,
        problems=[ProblemOut(p.kind.value, p.message, list(p.seqs)) for p in report.problems],
        pruned=len(report.pruned),
        notices=list(report.notices),
    )


@post(
    "/api/v1/audit/export",
    operation_id="exportAuditBundle",
    tags=_TAGS,
    opt=AUDITOR,
    status_code=200,
    response_description="The verification bundle (docs/audit-bundle.md)",
    responses=problem_responses(
        AUDITOR,
        400,
        404,
        413,
        why={
            400: "`from` or `to` not an RFC 3339 date-time with offset, `to` before `from`, a "
            "`since_checkpoint` that does not verify, or a `purpose` that is not accepted.",
            404: "The audit log has no signed checkpoint yet.",
        },
    ),
)
async def audit_export(
    request: AuditRequest, db_session: NamedDependency[AsyncSession], data: JSONBody[ExportRequest]
) -> Response[bytes]:
    """A verification bundle of the entries in a time range (``from``/``to``, RFC 3339), with inclusion proofs
    against a fresh signed checkpoint and, given ``since_checkpoint``, a consistency proof from it. Check it
    offline with ``odeus-compliance audit verify --bundle FILE``. Recorded as ``audit.exported``."""
    start = parse_time(data.start, "from", source="body")
    end = parse_time(data.end, "to", source="body")
    assert start is not None
    assert end is not None
    bundle, _count = await actions.export_log(
        recorder_of(request),
        session=db_session,
        start=start,
        end=end,
        purpose=_purpose(data.purpose, "audit log export", source="body"),
        since_checkpoint=data.since_checkpoint,
    )
    return Response(
        bundle,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="audit-bundle.json"'},
    )
