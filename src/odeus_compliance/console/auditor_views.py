"""What the auditor pages show, prepared in Python so the templates only lay it out: entries as table rows
(times in UTC with ``Z``), an inclusion proof checked against its signed checkpoint, and a verdict as one
line per check with its result."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from odeus_compliance.audit.checkpoint import CheckpointError, open_checkpoint
from odeus_compliance.audit.merkle import verify_inclusion
from odeus_compliance.audit.service import EntryView, InclusionResult, b64
from odeus_compliance.audit.verdict import Problem, ProblemKind, VerificationReport
from odeus_compliance.keys.ring import LogIdentity

__all__ = [
    "CHECKS",
    "CheckResult",
    "EntryRow",
    "ProofView",
    "entry_rows",
    "proof_view",
    "record_time_text",
    "utc_text",
    "verification_checks",
]

CHECKS: Final[tuple[tuple[str, frozenset[ProblemKind]], ...]] = (
    (
        "The signed checkpoints are signed by the log's key and name this log",
        frozenset(
            {
                ProblemKind.BAD_SIGNATURE,
                ProblemKind.WRONG_LOG,
                ProblemKind.UNTRUSTED_KEY,
                ProblemKind.UNPROVEN,
            }
        ),
    ),
    ("Every stored leaf is well-formed", frozenset({ProblemKind.MALFORMED})),
    (
        "No entry is missing, stored twice or out of order",
        frozenset({ProblemKind.MISSING, ProblemKind.DUPLICATE, ProblemKind.REORDERED}),
    ),
    ("Every entry decrypts and matches what the log signed", frozenset({ProblemKind.MODIFIED})),
    ("No entries were cut off the end of the log", frozenset({ProblemKind.TRUNCATED})),
    ("The signed checkpoints agree with each other (no rewritten history)", frozenset({ProblemKind.FORKED})),
)
"""What a full verification checks, each with the problem kinds that fail it (every kind is in one)."""


def utc_text(moment: dt.datetime) -> str:
    """``2026-10-31 22:59:07Z``: an audit-side time, in UTC."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def record_time_text(stamp: str) -> str:
    """A record's ``time`` (``2026-10-31T22:59:07.123Z``) as ``2026-10-31 22:59:07.123Z``."""
    return stamp.replace("T", " ", 1)


@dataclasses.dataclass(frozen=True, slots=True)
class EntryRow:
    """One entry as a table row; ``state``: ``open``, ``pruned`` (shredded by retention) or ``unreadable``."""

    seq: int
    state: str
    time: str
    time_iso: str
    actor: str
    actor_key_id: str
    role: str
    action: str
    resource: str
    outcome: str
    purpose: str
    details: tuple[tuple[str, str], ...]


def _detail_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _row(entry: EntryView) -> EntryRow:
    record: Mapping[str, Any] = entry.record or {}
    state = "open" if entry.record is not None else "pruned" if entry.pruned else "unreadable"
    stamp = str(record.get("time") or "")
    details = record.get("details") or {}
    return EntryRow(
        seq=entry.seq,
        state=state,
        time=record_time_text(stamp),
        time_iso=stamp,
        actor=str(record.get("actor_name") or record.get("actor_key_id") or record.get("role") or ""),
        actor_key_id=str(record.get("actor_key_id") or ""),
        role=str(record.get("role") or ""),
        action=str(record.get("action") or ""),
        resource=str(record.get("resource") or ""),
        outcome=str(record.get("outcome") or ""),
        purpose=str(record.get("purpose") or ""),
        details=tuple((str(k), _detail_text(v)) for k, v in sorted(details.items())),
    )


def entry_rows(entries: Iterable[EntryView]) -> list[EntryRow]:
    """The entries as rows, in the order given (ascending seq)."""
    return [_row(e) for e in entries]


@dataclasses.dataclass(frozen=True, slots=True)
class ProofView:
    """An inclusion proof as the API gives it (base64 hashes), the signed root it leads to, and whether the
    path really leads from the leaf hash to that root."""

    seq: int
    leaf_hash: str
    tree_size: int
    path: tuple[str, ...]
    root: str
    checkpoint: str
    checks_out: bool


def proof_view(result: InclusionResult, identity: LogIdentity) -> ProofView:
    """The proof, checked here against the checkpoint's signature and root (a failure shows as such)."""
    try:
        checkpoint = open_checkpoint(result.checkpoint, identity.signer.verifier, origin=identity.origin)
    except CheckpointError:
        root, checks_out = "", False
    else:
        root = b64(checkpoint.root)
        checks_out = checkpoint.size == result.tree_size and verify_inclusion(
            result.seq, result.tree_size, result.leaf_hash, result.proof, checkpoint.root
        )
    return ProofView(
        seq=result.seq,
        leaf_hash=b64(result.leaf_hash),
        tree_size=result.tree_size,
        path=tuple(b64(h) for h in result.proof),
        root=root,
        checkpoint=result.checkpoint,
        checks_out=checks_out,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of a verification: its description, whether it passed, and the problems that failed it."""

    label: str
    passed: bool
    problems: tuple[Problem, ...]


def verification_checks(report: VerificationReport) -> list[CheckResult]:
    """One result per check of :data:`CHECKS`."""
    out = []
    for label, kinds in CHECKS:
        problems: Sequence[Problem] = tuple(p for p in report.problems if p.kind in kinds)
        out.append(CheckResult(label=label, passed=not problems, problems=tuple(problems)))
    return out
