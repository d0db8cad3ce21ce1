"""The verdict both verifiers give: problem kinds, problems, the report, and the checkpoint check they share.

:func:`~odeus_compliance.audit.bundle_verify.verify_bundle` (an exported bundle, offline) and
:func:`~odeus_compliance.audit.log_verify.verify_log` (the whole stored log) answer with the same
:class:`VerificationReport`, so the CLI and the auditor API print and serialise one shape. Each
:class:`Problem` has a stable kind (:class:`ProblemKind`, printed by the CLI), the sequence numbers concerned
and a message; pruned entries (payload shredded by retention) are listed apart and are not problems.

:func:`verified_checkpoint` opens a signed checkpoint note against the verifier's key and the log's origin,
and turns every failure into a problem instead of an exception: both verifiers fail closed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from odeus_compliance.audit.bundle_range import BundleRange
from odeus_compliance.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint_body
from odeus_compliance.audit.merkle import EMPTY_ROOT
from odeus_compliance.audit.note import NoteError, Verifier, open_note

__all__ = [
    "MAX_LISTED_SEQS",
    "Problem",
    "ProblemKind",
    "VerificationReport",
    "grouped_problems",
    "problem",
    "verified_checkpoint",
]

MAX_LISTED_SEQS: Final = 10_000
"""A problem lists at most this many sequence numbers; its message gives the full count."""


class ProblemKind(enum.StrEnum):
    """What went wrong; stable public identifiers (the CLI prints them)."""

    MALFORMED = "malformed"
    """The input is not a well-formed bundle, checkpoint, leaf or proof."""
    UNTRUSTED_KEY = "untrusted-key"
    """The bundle names another key than the one the auditor trusts."""
    BAD_SIGNATURE = "bad-signature"
    """A checkpoint is not validly signed by the trusted key."""
    WRONG_LOG = "wrong-log"
    """A checkpoint belongs to another log (origin)."""
    MODIFIED = "modified"
    """A leaf, proof or disclosed record does not match what the log signed."""
    MISSING = "missing"
    """Sequence numbers inside the range are absent."""
    REORDERED = "reordered"
    """Entries are out of order, or a leaf sits at another position than its sequence number."""
    DUPLICATE = "duplicate"
    """A sequence number appears more than once."""
    TRUNCATED = "truncated"
    """Entries were cut off: a checkpoint the verifier holds is larger than the log or bundle (its tail was
    cut off), or a bundle lacks entries at the head or tail of the range it states."""
    FORKED = "forked"
    """Two checkpoints are inconsistent: the log's history was rewritten."""
    UNPROVEN = "unproven"
    """A required proof is absent (e.g. no consistency proof from the auditor's checkpoint, or a bundle that
    does not state the range it covers)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: its kind, the sequence numbers concerned (possibly none) and a message."""

    kind: ProblemKind
    message: str
    seqs: tuple[int, ...] = ()

    def line(self) -> str:
        """One human-readable line."""
        return f"{self.kind.value}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The verdict. ``valid`` is true only when there is no problem; pruned entries are not problems."""

    problems: tuple[Problem, ...]
    checkpoint: Checkpoint | None = None
    entries: int = 0
    disclosed: int = 0
    pruned: tuple[int, ...] = ()
    first_seq: int | None = None
    last_seq: int | None = None
    notices: tuple[str, ...] = field(default=())
    stated_range: BundleRange | None = None
    """What a bundle says it covers (its signed range statement, once verified); ``None`` otherwise."""

    @property
    def valid(self) -> bool:
        """True iff nothing is wrong."""
        return not self.problems

    def seqs(self, kind: ProblemKind) -> tuple[int, ...]:
        """All sequence numbers reported under ``kind``, sorted."""
        return tuple(sorted({s for p in self.problems if p.kind is kind for s in p.seqs}))

    def summary(self) -> str:
        """Human-readable verdict: a first line VALID/INVALID, then one line per problem and notice."""
        lines: list[str] = []
        cp = self.checkpoint
        where = f" against checkpoint {cp.origin} size {cp.size}" if cp else ""
        span = f" (seq {self.first_seq}..{self.last_seq})" if self.first_seq is not None else ""
        head = "VALID" if self.valid else f"INVALID ({len(self.problems)} problem(s))"
        lines.append(f"{head}: {self.entries} entries{span}{where}")
        if self.stated_range is not None:
            lines.append(f"range (signed): {self.stated_range.describe()}")
        lines.extend(p.line() for p in self.problems)
        if self.pruned:
            lines.append(f"pruned by policy: {len(self.pruned)} entries ({_seq_list(self.pruned)})")
        lines.extend(f"note: {n}" for n in self.notices)
        return "\n".join(lines)


def _seq_list(seqs: Sequence[int], limit: int = 20) -> str:
    """``1, 2, 5`` or ``1, 2, ... (and 998 more)``."""
    shown = ", ".join(str(s) for s in seqs[:limit])
    return shown if len(seqs) <= limit else f"{shown}, ... (and {len(seqs) - limit} more)"


def problem(kind: ProblemKind, message: str, seqs: Iterable[int] = ()) -> Problem:
    """A problem whose message starts with the seqs concerned; it keeps at most :data:`MAX_LISTED_SEQS`."""
    listed = tuple(seqs)
    if listed:
        message = f"seq {_seq_list(listed)}: {message}"
    return Problem(kind, message, listed[:MAX_LISTED_SEQS])


def grouped_problems(kind: ProblemKind, found: list[tuple[int, str]]) -> list[Problem]:
    """One problem per distinct message, with all the seqs that share it."""
    return [
        problem(kind, message, sorted(s for s, m in found if m == message))
        for message in sorted({m for _, m in found})
    ]


def verified_checkpoint(note: str, verifier: Verifier, origin: str, what: str) -> Checkpoint | Problem:
    """Verify and parse a checkpoint note, or say what is wrong with it."""
    try:
        opened, _ = open_note(note, [verifier])
    except NoteError as exc:
        text = str(exc)
        if text.startswith("malformed"):
            return problem(ProblemKind.MALFORMED, f"{what}: {text}")
        return problem(ProblemKind.BAD_SIGNATURE, f"{what} is not signed by {verifier.key_id}: {text}")
    try:
        cp = parse_checkpoint_body(opened.text)
    except CheckpointError as exc:
        return problem(ProblemKind.MALFORMED, f"{what}: {exc}")
    if cp.origin != origin:
        return problem(ProblemKind.WRONG_LOG, f"{what} is for another log (origin differs from {origin!r})")
    if cp.size == 0 and cp.root != EMPTY_ROOT:
        return problem(ProblemKind.MALFORMED, f"{what}: an empty tree has the empty root")
    return cp
