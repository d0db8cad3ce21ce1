"""The offline verifier of export bundles (``audit verify --bundle``, and auditors' own copies of it).

:func:`verify_bundle` checks a bundle (:mod:`~odeus_compliance.audit.bundle_format`) in a fixed order: its
shape; the key; the checkpoint's signature and origin; each entry against the signed tree, then its leaf and
disclosed record; order, duplicates and gaps; the signed range statement (a head or tail cut off); the
bundle's consistency proof; the auditor's own earlier checkpoint. Each step is one helper below.

Why it is built this way (lessons from immudb's CVE-2022-36111/39199, formance ledger #1719 and aws-cli
#7054 in the research note):

- It needs no secret: the public key, the signed checkpoint and the proofs suffice. Only fields covered by
  the signature or a hash steer the verdict; everything else (entry order, the claimed ``vkey``) is checked
  against them.
- It fails closed: any malformed input gives a ``malformed`` problem and ``valid == False``, never an
  exception.
- It explains itself: each problem has a kind, the sequence numbers concerned and a message
  (:mod:`~odeus_compliance.audit.verdict`); pruned entries (record and salt null: payload shredded by
  retention) are listed separately and do not make a bundle invalid.
- It pins the log's identity when told to: ``trusted_vkey`` (the key the auditor got from the operator out
  of band) and ``previous_checkpoint`` (one the auditor already holds: detects a truncated tail or a fork).
- It knows what the bundle should hold: the range statement (:mod:`~odeus_compliance.audit.bundle_range`),
  signed with the checkpoint key, names the first and last seq of the exported range, so entries cut off at
  the head or the tail are ``truncated``, not silently absent. A bundle without one (format ``/1``) is
  ``unproven``: its entries may check out, but nothing says they are all of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from odeus_compliance.audit.bundle_format import (
    BUNDLE_FORMAT_V1,
    BundleEntry,
    MalformedBundle,
    ParsedBundle,
    parse_bundle,
)
from odeus_compliance.audit.bundle_range import BundleRange, RangeError, parse_range_body
from odeus_compliance.audit.checkpoint import Checkpoint
from odeus_compliance.audit.leaf import Leaf, LeafError, check_disclosure, leaf_seq, parse_leaf
from odeus_compliance.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from odeus_compliance.audit.note import NoteError, Verifier, open_note, parse_vkey
from odeus_compliance.audit.records import RecordError, canonical_json
from odeus_compliance.audit.verdict import (
    MAX_LISTED_SEQS,
    Problem,
    ProblemKind,
    VerificationReport,
    grouped_problems,
    problem,
    verified_checkpoint,
)

__all__ = ["verify_bundle"]

Finding = tuple[ProblemKind, str]
"""What is wrong with one entry: the kind of problem and its message (entries sharing one are grouped)."""


def verify_bundle(
    data: bytes | str, *, trusted_vkey: str | None = None, previous_checkpoint: str | None = None
) -> VerificationReport:
    """Verify a bundle offline, with no secret: see the module docstring and docs/audit-bundle.md.

    Order: shape; key (against ``trusted_vkey`` when given); the checkpoint's signature and origin; each
    entry's leaf hash and inclusion proof, its leaf's seq, its disclosed record against the commitment;
    order, duplicates and gaps; the range statement; the bundle's consistency proof; the auditor's
    ``previous_checkpoint``.
    """
    try:
        bundle = parse_bundle(data)
    except MalformedBundle as exc:
        return VerificationReport((problem(ProblemKind.MALFORMED, f"bundle: {exc}"),))
    keyed = _choose_verifier(bundle.vkey, trusted_vkey)
    if isinstance(keyed, VerificationReport):
        return keyed
    verifier, problems, notices = keyed

    opened = verified_checkpoint(bundle.checkpoint, verifier, bundle.origin, "checkpoint")
    if isinstance(opened, Problem):
        return VerificationReport((*problems, opened), notices=tuple(notices))
    cp = opened

    entries = _EntryFindings()
    for e in bundle.entries:
        entries.check(e, cp.size, cp.root)
    ascending = sorted(entries.order)
    problems.extend(entries.problems())
    problems.extend(_order_problems(entries.order, ascending, entries.duplicates))
    stated, range_problems = _range_problems(bundle, verifier, cp, ascending)
    problems.extend(range_problems)
    problems.extend(_checkpoint_problems(bundle, verifier, cp, previous_checkpoint))

    last = cp.size - 1
    if ascending:
        if ascending[-1] < last:
            notices.append(f"entries end at seq {ascending[-1]}; the checkpoint covers up to seq {last}")
    else:
        notices.append("the bundle has no entries")
    return VerificationReport(
        tuple(problems),
        checkpoint=cp,
        entries=len(bundle.entries),
        disclosed=entries.disclosed,
        pruned=tuple(sorted(entries.pruned)),
        first_seq=ascending[0] if ascending else None,
        last_seq=ascending[-1] if ascending else None,
        notices=tuple(notices),
        stated_range=stated,
    )


def _choose_verifier(
    vkey: str, trusted_vkey: str | None
) -> tuple[Verifier, list[Problem], list[str]] | VerificationReport:
    """The key to verify with, and what to say about it: the auditor's trusted key when given (a problem if
    the bundle names another), else the bundle's own (with a notice). A key that does not parse ends the
    verification (the returned report)."""
    try:
        claimed = parse_vkey(vkey)
    except NoteError as exc:
        return VerificationReport((problem(ProblemKind.MALFORMED, f"vkey: {exc}"),))
    if trusted_vkey is None:
        notice = (
            f"no trusted key given: verified with the bundle's own key {claimed.key_id}; "
            "compare it with the key the operator published"
        )
        return claimed, [], [notice]
    try:
        verifier = parse_vkey(trusted_vkey)
    except NoteError as exc:
        return VerificationReport((problem(ProblemKind.MALFORMED, f"trusted key: {exc}"),))
    if verifier != claimed:
        untrusted = problem(
            ProblemKind.UNTRUSTED_KEY,
            f"the bundle names key {claimed.key_id}, you trust {verifier.key_id}",
        )
        return verifier, [untrusted], []
    return verifier, [], []


class _EntryFindings:
    """What the entries show, gathered in one pass in bundle order: the first occurrence of each seq is
    checked, repeats are only counted as duplicates."""

    __slots__ = ("disclosed", "duplicates", "found", "order", "pruned", "seen")

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.order: list[int] = []
        self.duplicates: list[int] = []
        self.found: dict[ProblemKind, list[tuple[int, str]]] = {
            ProblemKind.MALFORMED: [],
            ProblemKind.REORDERED: [],
            ProblemKind.MODIFIED: [],
        }
        """Findings by kind, in the order they are reported."""
        self.pruned: list[int] = []
        self.disclosed = 0

    def check(self, e: BundleEntry, size: int, root: bytes) -> None:
        """Check one entry against the tree of ``size`` leaves with ``root``."""
        if e.seq in self.seen:
            self.duplicates.append(e.seq)
            return
        self.seen.add(e.seq)
        self.order.append(e.seq)
        found = _check_in_tree(e, size, root)
        if found is None:
            found = self._check_leaf(e)
        if found is not None:
            kind, message = found
            self.found[kind].append((e.seq, message))

    def _check_leaf(self, e: BundleEntry) -> Finding | None:
        """The leaf (proven in the tree at its position) and the record it discloses, if any."""
        try:
            leaf = parse_leaf(e.leaf)
        except LeafError as exc:
            return ProblemKind.MALFORMED, f"the log holds a malformed leaf here: {exc}"
        if leaf.seq != e.seq:
            return ProblemKind.REORDERED, f"the leaf at position {e.seq} claims seq {leaf.seq}"
        if e.record is None or e.salt is None:
            self.pruned.append(e.seq)
            return None
        self.disclosed += 1
        message = _check_record(e.seq, e.record, e.salt, leaf)
        return None if message is None else (ProblemKind.MODIFIED, message)

    def problems(self) -> list[Problem]:
        """One problem per kind and message, malformed leaves first, then misplaced, then modified ones."""
        return [p for kind, found in self.found.items() for p in grouped_problems(kind, found)]


def _check_in_tree(e: BundleEntry, size: int, root: bytes) -> Finding | None:
    """The entry's leaf at its seq in the signed tree; a leaf proven at the seq it claims is misplaced."""
    seq = e.seq
    if seq >= size:
        return ProblemKind.MODIFIED, f"not covered by the checkpoint (size {size})"
    lh = leaf_hash(e.leaf)
    if verify_inclusion(seq, size, lh, e.proof, root):
        return None
    claimed_seq = leaf_seq(e.leaf)
    if (
        claimed_seq is not None
        and claimed_seq != seq
        and claimed_seq < size
        and verify_inclusion(claimed_seq, size, lh, e.proof, root)
    ):
        return ProblemKind.REORDERED, f"the entry for seq {seq} holds the leaf of seq {claimed_seq}"
    return ProblemKind.MODIFIED, "the leaf or its proof does not match the signed tree"


def _check_record(seq: int, record: dict[str, Any], salt: bytes, leaf: Leaf) -> str | None:
    """What is wrong with a disclosed record (as a ``modified`` message), or ``None``."""
    try:
        plaintext = canonical_json(record)
    except (RecordError, RecursionError):
        return "the disclosed record is not representable as canonical JSON"
    if not check_disclosure(leaf, plaintext, salt):
        return "the disclosed record does not match its commitment"
    if record.get("seq") != seq or record.get("time") != leaf.time:
        return "the record's seq or time differs from its leaf"
    return None


def _order_problems(order: Sequence[int], ascending: Sequence[int], duplicates: list[int]) -> list[Problem]:
    """Duplicates, entries out of order, and gaps in the range the entries span."""
    problems: list[Problem] = []
    if duplicates:
        problems.append(problem(ProblemKind.DUPLICATE, "appears more than once", sorted(set(duplicates))))
    out_of_place = [s for s, t in zip(order, ascending, strict=True) if s != t]
    if out_of_place:
        problems.append(problem(ProblemKind.REORDERED, "entries are out of order", sorted(out_of_place)))
    if ascending:
        gaps = _gaps(ascending)
        if gaps:
            problems.append(problem(ProblemKind.MISSING, "absent from the range", gaps))
    return problems


def _gaps(ascending: Sequence[int]) -> list[int]:
    """Sequence numbers missing between the smallest and largest present (at most MAX_LISTED_SEQS + 1)."""
    out: list[int] = []
    for a, b in itertools.pairwise(ascending):
        if b > a + 1:
            out.extend(range(a + 1, min(b, a + 2 + MAX_LISTED_SEQS - len(out))))
            if len(out) > MAX_LISTED_SEQS:
                break
    return out


def _open_range(note: str, verifier: Verifier, cp: Checkpoint) -> BundleRange | Problem:
    """Verify and parse the range statement against the checkpoint key, or say what is wrong with it."""
    try:
        opened, _ = open_note(note, [verifier])
    except NoteError as exc:
        text = str(exc)
        if text.startswith("malformed"):
            return problem(ProblemKind.MALFORMED, f"range: {text}")
        return problem(
            ProblemKind.BAD_SIGNATURE,
            f"the range statement is not signed by {verifier.key_id}: {text}; "
            "what the bundle covers is unknown (a cut-off head or tail cannot be detected)",
        )
    try:
        stated = parse_range_body(opened.text)
    except RangeError as exc:
        return problem(ProblemKind.MALFORMED, f"range: {exc}")
    if stated.origin != cp.origin:
        return problem(ProblemKind.WRONG_LOG, f"the range statement is for another log (not {cp.origin!r})")
    if (stated.size, stated.root) != (cp.size, cp.root):
        return problem(
            ProblemKind.MODIFIED,
            f"the range statement is for the tree of size {stated.size}, the checkpoint for the one of size "
            f"{cp.size} (or another root): the bundle was put together from different exports",
        )
    return stated


def _first_seqs(seqs: range) -> list[int]:
    """At most :data:`MAX_LISTED_SEQS` of ``seqs`` (a range may be long; the message gives the count)."""
    return list(seqs[:MAX_LISTED_SEQS])


def _range_problems(
    bundle: ParsedBundle, verifier: Verifier, cp: Checkpoint, present: Sequence[int]
) -> tuple[BundleRange | None, list[Problem]]:
    """The signed range statement against the entries present (ascending seqs): entries cut off at the head
    or the tail are ``truncated``, entries outside the range ``modified`` (gaps inside are ``missing``,
    reported by :func:`_order_problems`). A bundle without a statement is ``unproven``."""
    if bundle.range_note is None:
        return None, [
            problem(
                ProblemKind.UNPROVEN,
                f"the bundle does not state the range it covers ({BUNDLE_FORMAT_V1}, made before bundles "
                "did): its entries are checked, but entries cut off at its head or tail cannot be detected; "
                "export the range again for a bundle that states it",
            )
        ]
    opened = _open_range(bundle.range_note, verifier, cp)
    if isinstance(opened, Problem):
        return None, [opened]
    span = opened.seqs
    problems: list[Problem] = []
    described = f"seq {span.start}..{span.stop - 1}" if span else "no entries"
    outside = [s for s in present if s not in span]
    if outside:
        problems.append(
            problem(ProblemKind.MODIFIED, f"outside the range the bundle states ({described})", outside)
        )
    inside = [s for s in present if s in span]
    if span and not inside:
        problems.append(
            problem(
                ProblemKind.TRUNCATED,
                f"the bundle holds none of the {len(span)} entries of the range it states ({described})",
                _first_seqs(span),
            )
        )
    elif span:
        head = span[: span.index(inside[0])]
        tail = span[span.index(inside[-1]) + 1 :]
        if head:
            problems.append(
                problem(
                    ProblemKind.TRUNCATED,
                    f"{len(head)} entries cut off at the head: the range the bundle states starts at seq "
                    f"{span.start}",
                    _first_seqs(head),
                )
            )
        if tail:
            problems.append(
                problem(
                    ProblemKind.TRUNCATED,
                    f"{len(tail)} entries cut off at the tail: the range the bundle states ends at seq "
                    f"{span.stop - 1}",
                    _first_seqs(tail),
                )
            )
    return opened, problems


def _checkpoint_problems(
    bundle: ParsedBundle, verifier: Verifier, cp: Checkpoint, previous_checkpoint: str | None
) -> list[Problem]:
    """The bundle's consistency proof, then the auditor's previous checkpoint, against ``cp``."""
    problems: list[Problem] = []
    consistency: tuple[Checkpoint, list[bytes]] | None = None
    if bundle.consistency is not None:
        note, proof = bundle.consistency
        start = verified_checkpoint(note, verifier, bundle.origin, "consistency.from_checkpoint")
        if isinstance(start, Problem):
            problems.append(start)
        else:
            consistency = (start, proof)
            found_problem = _check_consistency(start, cp, proof)
            if found_problem is not None:
                problems.append(found_problem)
    if previous_checkpoint is not None:
        prev = verified_checkpoint(previous_checkpoint, verifier, bundle.origin, "your previous checkpoint")
        if isinstance(prev, Problem):
            problems.append(prev)
        else:
            found_problem = _check_previous(prev, cp, consistency)
            if found_problem is not None:
                problems.append(found_problem)
    return problems


def _check_consistency(start: Checkpoint, current: Checkpoint, proof: list[bytes]) -> Problem | None:
    """The bundle's consistency proof from ``start`` to ``current``: truncated, forked or malformed."""
    if start.size > current.size:
        return problem(
            ProblemKind.TRUNCATED,
            f"from_checkpoint has size {start.size} but the checkpoint only {current.size}: "
            "the tail was truncated",
        )
    if start.size == 0:
        return (
            None if not proof else problem(ProblemKind.MALFORMED, "a proof from the empty tree must be empty")
        )
    if not verify_consistency(start.size, current.size, start.root, current.root, proof):
        return problem(
            ProblemKind.FORKED,
            f"the tree of size {current.size} does not extend the one of size {start.size}: the log forked",
        )
    return None


def _check_previous(  # noqa: PLR0911 - one verdict per case
    previous: Checkpoint, current: Checkpoint, consistency: tuple[Checkpoint, list[bytes]] | None
) -> Problem | None:
    """Compare the auditor's checkpoint with the current one: truncated, forked or unproven."""
    if previous.size > current.size:
        return problem(
            ProblemKind.TRUNCATED,
            f"the checkpoint you hold has size {previous.size} but this one only {current.size}: "
            "the log's tail was truncated (or this bundle predates your checkpoint)",
        )
    if previous.size == current.size:
        if previous.root != current.root:
            return problem(ProblemKind.FORKED, f"two different roots for size {current.size}: the log forked")
        return None
    if previous.size == 0:
        return None
    if consistency is None:
        return problem(
            ProblemKind.UNPROVEN,
            f"no consistency proof from your checkpoint (size {previous.size}); "
            "ask for an export with it as from_checkpoint",
        )
    start = consistency[0]
    if start.size != previous.size:
        return problem(
            ProblemKind.UNPROVEN,
            f"the consistency proof starts at size {start.size}, not at your checkpoint's {previous.size}",
        )
    if start.root != previous.root:
        return problem(ProblemKind.FORKED, f"two different roots for size {previous.size}: the log forked")
    return None
