"""Full-log verification (``audit verify`` and the auditor API): every stored leaf, every checkpoint.

:func:`verify_log` streams the stored leaves once, in storage order, in batches that end at the checkpoint
sizes so the root can be compared there. Per leaf it does only what it must: a regular-expression check of
the leaf's form and seq (no JSON parsing), one SHA-256 into the compact range of the tree, and, given the
keys, one authentication; the per-leaf work runs in tight loops over each batch, and the bookkeeping of a
regular stretch (every seq where it belongs) is one comparison per batch, so a healthy log keeps nothing
per leaf beyond its seq. The verdict is a :class:`~odeus_compliance.audit.verdict.VerificationReport`.

- :func:`_signed_checkpoints` opens the checkpoints and the auditor's previous one (forks between them);
- :class:`_LogScan` follows the seqs (missing, duplicate, reordered, malformed), the authentication and the
  tree, and judges each root mismatch (see :func:`verify_log` for how it is attributed);
- :func:`verify_log` puts them together and adds truncated tails and notices.
"""

from __future__ import annotations

import array
import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from odeus_compliance.audit.checkpoint import Checkpoint
from odeus_compliance.audit.leaf import Leaf, LeafError, OpenedLeaf, leaf_seq, parse_leaf
from odeus_compliance.audit.merkle import MerkleAccumulator
from odeus_compliance.audit.note import NoteError, Verifier, parse_vkey
from odeus_compliance.audit.verdict import (
    MAX_LISTED_SEQS,
    Problem,
    ProblemKind,
    VerificationReport,
    grouped_problems,
    problem,
    verified_checkpoint,
)

__all__ = ["verify_log"]

_LOG_BATCH: Final = 1 << 14
_PREVIOUS: Final = "your previous checkpoint"
"""How the auditor's own checkpoint is named in messages (it is not the log's, so a mismatch is a fork)."""

Authenticator = Callable[[bytes], bool]
"""Authenticates one leaf text: true if opened and checked, false if its key was destroyed (pruned); raises
``LeafError`` if it does not open."""


def verify_log(
    leaves: Iterable[bytes],
    *,
    origin: str,
    vkey: str,
    checkpoints: Iterable[str] = (),
    previous_checkpoint: str | None = None,
    opener: Callable[[Leaf], OpenedLeaf | None] | None = None,
    checker: Callable[[bytes], bool] | None = None,
) -> VerificationReport:
    """Verify the whole stored log: ``leaves`` in storage order (by seq, from 0), every signed checkpoint.

    - Each leaf must be a canonical schema-1 leaf text whose seq is its position. Seqs never seen are
      ``missing``; a repeat is ``duplicate``; if leaves are out of order, the seqs not at their place in
      ascending order among those present are ``reordered`` (a swap of two leaves names exactly those two).
    - The root at each checkpoint's size must equal the signed root. On a mismatch: if the leaves since the
      last matching checkpoint are exactly the signed ones out of order (put back in seq order they give the
      signed root), only the reordering is reported and the tree goes on from the corrected order; if every
      one of them was opened and checked with the keys (so none was made or changed without the key), the
      mismatch is the consequence of the missing, reordered or duplicated leaves already named; otherwise it
      is ``modified`` for the seq range since the last matching checkpoint. A checkpoint larger than the log
      whose last leaves are absent is ``truncated``; two checkpoints with different roots for one size, or
      a ``previous_checkpoint`` (held outside the service) whose root disagrees, are ``forked``.
    - With ``opener`` (which holds the data keys: ``lambda leaf: open_leaf(leaf, origin=..., data_key=...)``,
      returning ``None`` when the leaf's epoch key was destroyed by retention), every leaf is decrypted and
      its commitment checked, which pins a modification to its exact seq; shredded leaves are ``pruned``.
    - ``checker`` (:func:`~odeus_compliance.audit.leaf.leaf_checker`) does the same on the leaf text, several
      times faster: it authenticates each leaf without parsing and validating the record inside again.
    """
    if opener is not None and checker is not None:
        msg = "give an opener or a checker, not both"
        raise ValueError(msg)
    try:
        verifier = parse_vkey(vkey)
    except NoteError as exc:
        return VerificationReport((problem(ProblemKind.MALFORMED, f"vkey: {exc}"),))
    signed = _signed_checkpoints(checkpoints, previous_checkpoint, verifier, origin)
    authentic = _authenticator(opener, checker)

    scan = _LogScan(signed.targets)
    for batch in _batches(leaves, sorted(signed.targets)):
        scan.add(batch, authentic)

    count = scan.count
    problems = [
        *signed.problems,
        *scan.root_problems,
        *scan.leaf_problems(),
        *_truncated(signed.targets, count, scan.expected),
    ]
    notices: list[str] = []
    if authentic is None:
        notices.append("records were not opened (no keys): modifications are located to checkpoint intervals")
    newest = signed.newest
    if newest is not None and newest.size < count:
        notices.append(f"leaves from seq {newest.size} on are not yet covered by a signed checkpoint")
    return VerificationReport(
        tuple(problems),
        checkpoint=newest,
        entries=count,
        disclosed=scan.disclosed,
        pruned=tuple(scan.pruned),
        first_seq=0 if count else None,
        last_seq=count - 1 if count else None,
        notices=tuple(notices),
    )


@dataclass(frozen=True, slots=True)
class _Signed:
    """The checkpoints to verify against: root and name by size, the newest of the log's own, problems."""

    targets: dict[int, tuple[bytes, str]]
    newest: Checkpoint | None
    problems: list[Problem]


def _signed_checkpoints(
    checkpoints: Iterable[str], previous_checkpoint: str | None, verifier: Verifier, origin: str
) -> _Signed:
    """Open every checkpoint (and the auditor's previous one); two different roots for a size are a fork."""
    problems: list[Problem] = []
    targets: dict[int, tuple[bytes, str]] = {}
    newest: Checkpoint | None = None
    all_checkpoints: list[tuple[str, str]] = [(c, f"checkpoint #{i}") for i, c in enumerate(checkpoints)]
    if previous_checkpoint is not None:
        all_checkpoints.append((previous_checkpoint, _PREVIOUS))
    for note, what in all_checkpoints:
        opened = verified_checkpoint(note, verifier, origin, what)
        if isinstance(opened, Problem):
            problems.append(opened)
            continue
        known = targets.get(opened.size)
        if known is not None and known[0] != opened.root:
            problems.append(
                problem(
                    ProblemKind.FORKED, f"{known[1]} and {what} sign different roots for size {opened.size}"
                )
            )
            continue
        targets.setdefault(opened.size, (opened.root, what))
        if what.startswith("checkpoint") and (newest is None or opened.size > newest.size):
            newest = opened
    if not targets:
        problems.append(problem(ProblemKind.UNPROVEN, "no valid signed checkpoint to verify against"))
    return _Signed(targets, newest, problems)


def _authenticator(
    opener: Callable[[Leaf], OpenedLeaf | None] | None, checker: Callable[[bytes], bool] | None
) -> Authenticator | None:
    """The opener or the checker as one :data:`Authenticator`, or ``None`` without keys."""
    if checker is not None:
        return checker
    if opener is not None:

        def opens(text: bytes) -> bool:
            return opener(parse_leaf(text)) is not None

        return opens
    return None


def _batches(leaves: Iterable[bytes], sizes: Sequence[int]) -> Iterator[list[bytes]]:
    """The leaves in batches of at most ``_LOG_BATCH`` that end at each of ``sizes`` (ascending)."""
    it = iter(leaves)
    ends = iter(sizes)
    next_end = next(ends, None)
    while next_end == 0:
        next_end = next(ends, None)
    count = 0
    while True:
        limit = _LOG_BATCH if next_end is None else min(_LOG_BATCH, next_end - count)
        batch = list(itertools.islice(it, limit))
        if not batch:
            return
        count += len(batch)
        if count == next_end:
            next_end = next(ends, None)
        yield batch


def _truncated(targets: dict[int, tuple[bytes, str]], count: int, expected: int) -> list[Problem]:
    """Checkpoints larger than the log whose last leaves are absent.

    Not a cut tail if the log's last leaves are there and only leaves inside it are missing (named as
    missing)."""
    return [
        problem(
            ProblemKind.TRUNCATED,
            f"{targets[size][1]} covers {size} leaves but the log holds {count}: its tail was truncated",
        )
        for size in sorted(targets)
        if size > count and size > expected
    ]


class _SinceGood:
    """What :func:`verify_log` keeps about the leaves since the last checkpoint whose root matched: whether
    anything was irregular (missing, out of order, duplicated, malformed), whether any leaf was not opened
    and checked (no keys, pruned, failed), and from the first irregular batch on, the compact range before
    it and each leaf's seq and hash (so a healthy log keeps nothing)."""

    __slots__ = ("hashes", "irregular", "peaks", "seqs", "start", "unopened")

    def __init__(self) -> None:
        self.irregular = False
        self.unopened = False
        self.start = 0
        self.peaks: tuple[bytes, ...] = ()
        self.seqs: list[int | None] = []
        self.hashes: list[bytes] = []

    def begin(self, start: int, peaks: tuple[bytes, ...]) -> None:
        """An irregular batch starts at position ``start`` (the tree before it has ``peaks``)."""
        if not self.irregular:
            self.irregular = True
            self.start = start
            self.peaks = peaks

    def add(self, seqs: list[int | None], hashes: list[bytes]) -> None:
        if self.irregular:
            self.seqs.extend(seqs)
            self.hashes.extend(hashes)

    def in_seq_order(self, end: int) -> MerkleAccumulator | None:
        """The tree with the leaves put back in seq order, if they are exactly the seqs of their positions."""
        if not self.irregular:
            return None
        present = sorted(-1 if s is None else s for s in self.seqs)
        if present != list(range(self.start, end)):
            return None
        acc = MerkleAccumulator.from_peaks(self.start, self.peaks)
        ordered = sorted(zip(self.seqs, self.hashes, strict=True), key=lambda pair: pair[0] or 0)
        acc.extend_hash_list([h for _, h in ordered])
        return acc


def _displaced(stream: Sequence[int]) -> list[int]:
    """The seqs that are not where ascending order puts them among the seqs present, by position.

    A swap of two leaves names exactly those two, however far apart (the leaves between them are at their
    places); a leaf moved elsewhere names the leaves it displaced as well. Missing leaves displace nothing
    (order is judged among the leaves present), and duplicates are not in ``stream``.
    """
    return sorted(s for s, t in zip(stream, sorted(stream), strict=True) if s != t)


class _LogScan:
    """One pass over the stored leaves, batch by batch: the seqs seen, the authentication, the tree, and the
    root at each checkpoint size (``targets``: size to signed root and the checkpoint's name)."""

    __slots__ = (
        "acc",
        "count",
        "disclosed",
        "duplicates",
        "expected",
        "gaps",
        "last_good",
        "malformed",
        "missing_total",
        "modified",
        "out_of_order",
        "pruned",
        "root_problems",
        "since_good",
        "stream",
        "targets",
    )

    def __init__(self, targets: dict[int, tuple[bytes, str]]) -> None:
        self.targets = targets
        self.acc = MerkleAccumulator()
        self.count = 0
        """Leaves seen (the position of the next one)."""
        self.expected = 0
        """The seq the next leaf should have: one past the largest seen."""
        self.gaps: dict[int, int] = {}
        """Missing seqs (at most MAX_LISTED_SEQS per jump), each with the seq seen after the jump."""
        self.missing_total = 0
        self.out_of_order = False
        self.stream = array.array("q")
        """The seq of each leaf, first occurrences only: locates reordered leaves."""
        self.duplicates: list[int] = []
        self.malformed: list[int] = []
        """Positions of leaves that are not canonical leaf texts."""
        self.modified: list[tuple[int, str]] = []
        self.pruned: list[int] = []
        self.disclosed = 0
        self.last_good = 0
        self.since_good = _SinceGood()
        self.root_problems: list[Problem] = []

    def add(self, batch: list[bytes], authentic: Authenticator | None) -> None:
        """The next batch of leaves; compares the root if the log now has a checkpoint's size."""
        seqs = list(map(leaf_seq, batch))
        self._follow_seqs(seqs)
        if authentic is None:
            self.since_good.unopened = True
        else:
            self._authenticate(authentic, batch, seqs)
        # The tree: one SHA-256 per leaf, then aligned subtrees level by level into the compact range.
        sha = hashlib.sha256
        hashes = [sha(b"\x00" + text).digest() for text in batch]
        self.acc.extend_hash_list(hashes)
        self.since_good.add(seqs, hashes)
        self.count += len(batch)
        target = self.targets.get(self.count)
        if target is not None:
            self._compare_root(*target)

    def _follow_seqs(self, seqs: list[int | None]) -> None:
        """A regular batch (each seq the next) costs one comparison; any other is followed leaf by leaf."""
        expected = self.expected
        if seqs == list(range(expected, expected + len(seqs))):
            self.stream.extend(range(expected, expected + len(seqs)))
            self.expected = expected + len(seqs)
        else:
            self.since_good.begin(self.count, self.acc.peaks())
            self._follow_irregular(seqs)

    def _follow_irregular(self, seqs: list[int | None]) -> None:
        """Seq by seq: malformed leaves (by position), jumps (gaps), late leaves filling a gap (out of order),
        and repeats (duplicates, left out of ``stream``)."""
        expected = self.expected
        gaps = self.gaps
        stream = self.stream
        for position, seq in enumerate(seqs, start=self.count):
            if seq is None:
                self.malformed.append(position)
                self.since_good.unopened = True
                continue
            if seq == expected:
                expected += 1
            elif seq > expected:
                for s in range(expected, min(seq, expected + MAX_LISTED_SEQS)):
                    gaps[s] = seq
                self.missing_total += seq - expected
                expected = seq + 1
            elif seq in gaps:
                del gaps[seq]
                self.missing_total -= 1
                self.out_of_order = True
            else:
                self.duplicates.append(seq)
                continue
            stream.append(seq)
        self.expected = expected

    def _authenticate(self, authentic: Authenticator, batch: list[bytes], seqs: list[int | None]) -> None:
        """Open and check each well-formed leaf: disclosed, pruned (key destroyed) or modified."""
        modified = self.modified
        pruned = self.pruned
        disclosed = 0
        unopened = False
        for text, seq in zip(batch, seqs, strict=True):
            if seq is None:
                continue
            try:
                opened = authentic(text)
            except LeafError as exc:
                modified.append((seq, f"does not open: {exc}"))
                unopened = True
                continue
            if opened:
                disclosed += 1
            else:
                pruned.append(seq)
                unopened = True
        self.disclosed += disclosed
        if unopened:
            self.since_good.unopened = True

    def _compare_root(self, expected_root: bytes, what: str) -> None:
        """The log has the size of checkpoint ``what``: its root must be ``expected_root``."""
        since_good = self.since_good
        if self.acc.root() == expected_root:
            self._matched()
        elif (reordered_tree := since_good.in_seq_order(self.count)) is not None and (
            reordered_tree.root() == expected_root
        ):
            # the leaves since the last good checkpoint are exactly the signed ones, stored out of order
            # (named as reordered, by seq): the tree goes on from them in their signed order
            self.acc = reordered_tree
            self._matched()
        elif since_good.irregular and not since_good.unopened and what != _PREVIOUS:
            # every leaf since the last good checkpoint opened (AES-GCM and commitment: nobody without the
            # key made or changed one), so the root differs because of the missing, reordered or duplicated
            # leaves named as such, not a modification
            pass
        else:
            count = self.count
            kind = ProblemKind.FORKED if what == _PREVIOUS else ProblemKind.MODIFIED
            self.root_problems.append(
                problem(
                    kind,
                    f"the leaves up to seq {count - 1} do not give the root signed in {what} "
                    f"(size {count}): a leaf in seq {self.last_good}..{count - 1} was modified, removed, "
                    "inserted or reordered",
                )
            )

    def _matched(self) -> None:
        self.last_good = self.count
        self.since_good = _SinceGood()

    def leaf_problems(self) -> list[Problem]:
        """Malformed, missing, reordered, duplicated and modified leaves, in that order."""
        problems: list[Problem] = []
        if self.malformed:
            problems.append(
                problem(
                    ProblemKind.MALFORMED, "not a canonical schema-1 leaf text (position)", self.malformed
                )
            )
        if self.gaps or self.missing_total > 0:
            problems.append(
                problem(
                    ProblemKind.MISSING,
                    f"absent from the log ({self.missing_total} in all)",
                    sorted(self.gaps),
                )
            )
        if self.out_of_order:
            problems.append(
                problem(
                    ProblemKind.REORDERED,
                    "stored out of order (not at its place in seq order)",
                    _displaced(self.stream),
                )
            )
        if self.duplicates:
            problems.append(
                problem(ProblemKind.DUPLICATE, "stored more than once", sorted(set(self.duplicates)))
            )
        problems.extend(grouped_problems(ProblemKind.MODIFIED, self.modified))
        return problems
