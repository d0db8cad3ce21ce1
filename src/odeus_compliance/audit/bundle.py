"""Export bundles, their offline verifier, and full-log verification (``audit export``, ``audit verify``).

A bundle is JSON (DESIGN.md, docs/audit-bundle.md)::

    {"format": "odeus-compliance-audit-bundle/1", "origin": str, "vkey": str, "checkpoint": <signed note>,
     "entries": [{"seq": int, "leaf": <leaf text>, "proof": [b64 hash, ...], "record": {...} | null,
                  "salt": b64 | null}, ...],
     "consistency": {"from_checkpoint": <signed note>, "proof": [b64 hash, ...]} | null}

Why the verifier is built this way (lessons from immudb's CVE-2022-36111/39199, formance ledger #1719,
aws-cli #7054 in the research note):

- It needs no secret: the public key, the signed checkpoint and the proofs suffice. Only fields covered by
  the signature or a hash steer the verdict; everything else (entry order, the claimed ``vkey``) is checked
  against them.
- It fails closed: any malformed input (not UTF-8, not JSON, duplicate keys, unknown or missing fields,
  wrong types, floats, huge numbers, bad or non-canonical base64, wrong hash lengths, an unknown format
  version) gives a ``malformed`` problem and ``valid == False``, never an exception.
- It explains itself: each problem has a kind (:class:`ProblemKind`), the sequence numbers concerned and a
  message; pruned entries (record and salt null: payload shredded by retention) are listed separately and do
  not make a bundle invalid.
- It pins the log's identity when told to: ``trusted_vkey`` (the key the auditor got from the operator out
  of band) and ``previous_checkpoint`` (one the auditor already holds: detects a truncated tail or a fork).

Full-log verification (:func:`verify_log`) streams the stored leaves once: one SHA-256 per leaf, the compact
range for the roots at every checkpoint size, and a regular-expression check of each leaf's form and seq,
so a million leaves take a few seconds in CPython.
"""

from __future__ import annotations

import array
import base64
import binascii
import enum
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from odeus_compliance.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint_body
from odeus_compliance.audit.leaf import Leaf, LeafError, OpenedLeaf, check_disclosure, leaf_seq, parse_leaf
from odeus_compliance.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    HashSource,
    MerkleAccumulator,
    MerkleError,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from odeus_compliance.audit.note import NoteError, Verifier, open_note, parse_vkey
from odeus_compliance.audit.records import MAX_SAFE_INT, RecordError, canonical_json

__all__ = [
    "BUNDLE_FORMAT",
    "BundleError",
    "Disclosure",
    "Problem",
    "ProblemKind",
    "VerificationReport",
    "build_bundle",
    "verify_bundle",
    "verify_log",
]

BUNDLE_FORMAT: Final = "odeus-compliance-audit-bundle/1"
MAX_LISTED_SEQS: Final = 10_000
"""A problem lists at most this many sequence numbers; its message gives the full count."""

_TOP_KEYS: Final = frozenset({"format", "origin", "vkey", "checkpoint", "entries", "consistency"})
_ENTRY_KEYS: Final = frozenset({"seq", "leaf", "proof", "record", "salt"})
_CONSISTENCY_KEYS: Final = frozenset({"from_checkpoint", "proof"})
_MAX_PROOF: Final = 64
_MAX_TEXT: Final = 1 << 18
_LOG_BATCH: Final = 1 << 14

Disclosure = tuple[bytes, bytes]
"""``(plaintext, salt)`` of a record: what a bundle discloses next to its leaf."""


class BundleError(ValueError):
    """A bundle cannot be built from the given parts (the export must fail rather than ship a bad bundle)."""


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
    """A checkpoint the verifier holds is larger than the log or bundle: its tail was cut off."""
    FORKED = "forked"
    """Two checkpoints are inconsistent: the log's history was rewritten."""
    UNPROVEN = "unproven"
    """A required proof is absent (e.g. no consistency proof from the auditor's checkpoint)."""


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
        lines.extend(p.line() for p in self.problems)
        if self.pruned:
            lines.append(f"pruned by policy: {len(self.pruned)} entries ({_seq_list(self.pruned)})")
        lines.extend(f"note: {n}" for n in self.notices)
        return "\n".join(lines)


def _seq_list(seqs: Sequence[int], limit: int = 20) -> str:
    """``1, 2, 5`` or ``1, 2, ... (and 998 more)``."""
    shown = ", ".join(str(s) for s in seqs[:limit])
    return shown if len(seqs) <= limit else f"{shown}, ... (and {len(seqs) - limit} more)"


def _problem(kind: ProblemKind, message: str, seqs: Iterable[int] = ()) -> Problem:
    listed = tuple(seqs)
    if listed:
        message = f"seq {_seq_list(listed)}: {message}"
    return Problem(kind, message, listed[:MAX_LISTED_SEQS])


# --------------------------------------------------------------------------------------------------------
# Building


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _fast_source(hashes: HashSource, size: int) -> HashSource:
    """A list of leaf hashes becomes a :class:`MerkleTree` (O(log n) per proof instead of O(n))."""
    if callable(hashes):
        return hashes
    try:
        return MerkleTree(hashes[:size]).subtree_hash
    except MerkleError as exc:
        raise BundleError(f"hashes: {exc}") from exc


def build_bundle(
    *,
    origin: str,
    vkey: str,
    checkpoint: str,
    entries: Iterable[tuple[int, bytes, Disclosure | None]],
    hashes: HashSource,
    from_checkpoint: str | None = None,
) -> bytes:
    """Assemble a bundle: ``entries`` are ``(seq, leaf text, disclosure or None if pruned)`` in seq order.

    ``checkpoint`` is the signed note the proofs are made against; ``hashes`` gives the tree (all leaf hashes
    or a ``subtree_hash(start, end)`` callable, see :mod:`~odeus_compliance.audit.merkle`);
    ``from_checkpoint``, a signed note of an earlier checkpoint, adds a consistency proof from it. Every
    proof is verified before the bundle is returned, so a bundle that would not verify is never produced.
    """
    try:
        verifier = parse_vkey(vkey)
        note, _ = open_note(checkpoint, [verifier])
        cp = parse_checkpoint_body(note.text)
    except (NoteError, CheckpointError) as exc:
        raise BundleError(f"checkpoint: {exc}") from exc
    if cp.origin != origin:
        raise BundleError("the checkpoint is for another origin")
    hashes = _fast_source(hashes, cp.size)
    out_entries: list[dict[str, Any]] = []
    for seq, leaf, disclosure in entries:
        try:
            proof = inclusion_proof(seq, cp.size, hashes)
        except MerkleError as exc:
            raise BundleError(f"seq {seq}: {exc}") from exc
        if not verify_inclusion(seq, cp.size, leaf_hash(leaf), proof, cp.root):
            raise BundleError(f"seq {seq}: the leaf is not in the tree the checkpoint signs")
        record: Any = None
        salt: str | None = None
        if disclosure is not None:
            plaintext, raw_salt = disclosure
            if not check_disclosure(parse_leaf(leaf), plaintext, raw_salt):
                raise BundleError(f"seq {seq}: the record does not open the leaf's commitment")
            record = json.loads(plaintext)
            if canonical_json(record) != plaintext:
                raise BundleError(f"seq {seq}: the record plaintext is not canonical JSON")
            salt = _b64(raw_salt)
        out_entries.append(
            {
                "leaf": leaf.decode("utf-8"),
                "proof": [_b64(h) for h in proof],
                "record": record,
                "salt": salt,
                "seq": seq,
            }
        )
    consistency: dict[str, Any] | None = None
    if from_checkpoint is not None:
        try:
            old_note, _ = open_note(from_checkpoint, [verifier])
            old = parse_checkpoint_body(old_note.text)
        except (NoteError, CheckpointError) as exc:
            raise BundleError(f"from_checkpoint: {exc}") from exc
        if old.origin != origin or old.size > cp.size:
            raise BundleError("from_checkpoint is for another log or newer than the checkpoint")
        proof = consistency_proof(old.size, cp.size, hashes) if old.size else []
        if old.size and not verify_consistency(old.size, cp.size, old.root, cp.root, proof):
            raise BundleError("the log is not consistent with from_checkpoint")
        consistency = {"from_checkpoint": from_checkpoint, "proof": [_b64(h) for h in proof]}
    bundle = {
        "checkpoint": checkpoint,
        "consistency": consistency,
        "entries": out_entries,
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "vkey": vkey,
    }
    return json.dumps(bundle, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------------------------------------
# Strict parsing


class _Malformed(Exception):
    """Internal: the bundle is malformed; the message says where and why."""


def _fail(message: str) -> NoReturn:
    raise _Malformed(message)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            _fail("duplicate key in a JSON object")
        out[key] = value
    return out


def _no_floats(_text: str) -> NoReturn:
    _fail("numbers must be integers")


def _bounded_int(text: str) -> int:
    if len(text) > 20:
        _fail("number too large")
    return int(text)


def _load_json(data: bytes | str) -> Any:
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            _fail("not UTF-8")
    if not isinstance(data, str):
        _fail("not text")
    try:
        return json.loads(
            data,
            object_pairs_hook=_pairs,
            parse_float=_no_floats,
            parse_int=_bounded_int,
            parse_constant=_no_floats,
        )
    except RecursionError:
        _fail("nested too deeply")
    except ValueError as exc:
        _fail(f"not valid JSON ({type(exc).__name__})")


def _exact_keys(obj: Any, keys: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        _fail(f"{where} must be a JSON object")
    if set(obj) != keys:
        missing = sorted(keys - set(obj))
        extra = sorted(set(obj) - keys)
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(extra)[:200]}" if extra else "",
            )
            if part
        )
        _fail(f"{where} has the wrong fields ({detail})")
    return obj


def _text(value: Any, where: str, limit: int = _MAX_TEXT) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        _fail(f"{where} must be a non-empty string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _fail(f"{where} is not valid Unicode")
    return value


def _hash(value: Any, where: str, size: int = HASH_SIZE) -> bytes:
    if not isinstance(value, str) or len(value) > 4 * size:
        _fail(f"{where} must be a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        _fail(f"{where} is not valid base64")
    if len(raw) != size or _b64(raw) != value:
        _fail(f"{where} must be canonical base64 of {size} bytes")
    return raw


def _hashes(value: Any, where: str) -> list[bytes]:
    if not isinstance(value, list) or len(value) > _MAX_PROOF:
        _fail(f"{where} must be a list of at most {_MAX_PROOF} hashes")
    return [_hash(h, f"{where}[{i}]") for i, h in enumerate(value)]


@dataclass(frozen=True, slots=True)
class _Entry:
    position: int
    seq: int
    leaf: bytes
    proof: list[bytes]
    record: dict[str, Any] | None
    salt: bytes | None


@dataclass(frozen=True, slots=True)
class _Bundle:
    origin: str
    vkey: str
    checkpoint: str
    entries: list[_Entry]
    consistency: tuple[str, list[bytes]] | None


def _parse_bundle(data: bytes | str) -> _Bundle:
    top = _exact_keys(_load_json(data), _TOP_KEYS, "the bundle")
    if top["format"] != BUNDLE_FORMAT:
        _fail(f"unknown bundle format (this verifier reads {BUNDLE_FORMAT})")
    origin = _text(top["origin"], "origin", 256)
    vkey = _text(top["vkey"], "vkey", 1024)
    checkpoint = _text(top["checkpoint"], "checkpoint", 1 << 16)
    raw_entries = top["entries"]
    if not isinstance(raw_entries, list):
        _fail("entries must be a list")
    entries: list[_Entry] = []
    for i, raw in enumerate(raw_entries):
        where = f"entries[{i}]"
        e = _exact_keys(raw, _ENTRY_KEYS, where)
        seq = e["seq"]
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SAFE_INT:
            _fail(f"{where}.seq must be an integer in 0..2^53-1")
        leaf = _text(e["leaf"], f"{where}.leaf").encode("utf-8")
        proof = _hashes(e["proof"], f"{where}.proof")
        record, salt = e["record"], e["salt"]
        if (record is None) != (salt is None):
            _fail(f"{where}: record and salt must both be present or both be null")
        if record is not None and not isinstance(record, dict):
            _fail(f"{where}.record must be a JSON object or null")
        salt_raw = None if salt is None else _hash(salt, f"{where}.salt")
        entries.append(_Entry(i, seq, leaf, proof, record, salt_raw))
    consistency = None
    if top["consistency"] is not None:
        c = _exact_keys(top["consistency"], _CONSISTENCY_KEYS, "consistency")
        consistency = (
            _text(c["from_checkpoint"], "consistency.from_checkpoint", 1 << 16),
            _hashes(c["proof"], "consistency.proof"),
        )
    return _Bundle(origin, vkey, checkpoint, entries, consistency)


# --------------------------------------------------------------------------------------------------------
# Checkpoints


def _open_checkpoint(note: str, verifier: Verifier, origin: str, what: str) -> Checkpoint | Problem:
    """Verify and parse a checkpoint note, or say what is wrong with it."""
    try:
        opened, _ = open_note(note, [verifier])
    except NoteError as exc:
        text = str(exc)
        if text.startswith("malformed"):
            return _problem(ProblemKind.MALFORMED, f"{what}: {text}")
        return _problem(ProblemKind.BAD_SIGNATURE, f"{what} is not signed by {verifier.key_id}: {text}")
    try:
        cp = parse_checkpoint_body(opened.text)
    except CheckpointError as exc:
        return _problem(ProblemKind.MALFORMED, f"{what}: {exc}")
    if cp.origin != origin:
        return _problem(ProblemKind.WRONG_LOG, f"{what} is for another log (origin differs from {origin!r})")
    if cp.size == 0 and cp.root != EMPTY_ROOT:
        return _problem(ProblemKind.MALFORMED, f"{what}: an empty tree has the empty root")
    return cp


def _check_previous(  # noqa: PLR0911 - one verdict per case
    previous: Checkpoint, current: Checkpoint, consistency: tuple[Checkpoint, list[bytes]] | None
) -> Problem | None:
    """Compare the auditor's checkpoint with the current one: truncated, forked or unproven."""
    if previous.size > current.size:
        return _problem(
            ProblemKind.TRUNCATED,
            f"the checkpoint you hold has size {previous.size} but this one only {current.size}: "
            "the log's tail was truncated (or this bundle predates your checkpoint)",
        )
    if previous.size == current.size:
        if previous.root != current.root:
            return _problem(
                ProblemKind.FORKED, f"two different roots for size {current.size}: the log forked"
            )
        return None
    if previous.size == 0:
        return None
    if consistency is None:
        return _problem(
            ProblemKind.UNPROVEN,
            f"no consistency proof from your checkpoint (size {previous.size}); "
            "ask for an export with it as from_checkpoint",
        )
    start = consistency[0]
    if start.size != previous.size:
        return _problem(
            ProblemKind.UNPROVEN,
            f"the consistency proof starts at size {start.size}, not at your checkpoint's {previous.size}",
        )
    if start.root != previous.root:
        return _problem(ProblemKind.FORKED, f"two different roots for size {previous.size}: the log forked")
    return None


def _check_consistency(start: Checkpoint, current: Checkpoint, proof: list[bytes]) -> Problem | None:
    if start.size > current.size:
        return _problem(
            ProblemKind.TRUNCATED,
            f"from_checkpoint has size {start.size} but the checkpoint only {current.size}: "
            "the tail was truncated",
        )
    if start.size == 0:
        return (
            None
            if not proof
            else _problem(ProblemKind.MALFORMED, "a proof from the empty tree must be empty")
        )
    if not verify_consistency(start.size, current.size, start.root, current.root, proof):
        return _problem(
            ProblemKind.FORKED,
            f"the tree of size {current.size} does not extend the one of size {start.size}: the log forked",
        )
    return None


# --------------------------------------------------------------------------------------------------------
# Bundle verification


def verify_bundle(  # noqa: PLR0912, PLR0915 - one linear pass over the checks, in the documented order
    data: bytes | str, *, trusted_vkey: str | None = None, previous_checkpoint: str | None = None
) -> VerificationReport:
    """Verify a bundle offline, with no secret: see the module docstring and docs/audit-bundle.md.

    Order: shape; key (against ``trusted_vkey`` when given); the checkpoint's signature and origin; each
    entry's leaf hash and inclusion proof, its leaf's seq, its disclosed record against the commitment;
    order, duplicates and gaps; the bundle's consistency proof; the auditor's ``previous_checkpoint``.
    """
    try:
        bundle = _parse_bundle(data)
    except _Malformed as exc:
        return VerificationReport((_problem(ProblemKind.MALFORMED, f"bundle: {exc}"),))
    problems: list[Problem] = []
    notices: list[str] = []

    try:
        claimed = parse_vkey(bundle.vkey)
    except NoteError as exc:
        return VerificationReport((_problem(ProblemKind.MALFORMED, f"vkey: {exc}"),))
    verifier = claimed
    if trusted_vkey is not None:
        try:
            verifier = parse_vkey(trusted_vkey)
        except NoteError as exc:
            return VerificationReport((_problem(ProblemKind.MALFORMED, f"trusted key: {exc}"),))
        if verifier != claimed:
            problems.append(
                _problem(
                    ProblemKind.UNTRUSTED_KEY,
                    f"the bundle names key {claimed.key_id}, you trust {verifier.key_id}",
                )
            )
    else:
        notices.append(
            f"no trusted key given: verified with the bundle's own key {claimed.key_id}; "
            "compare it with the key the operator published"
        )

    opened = _open_checkpoint(bundle.checkpoint, verifier, bundle.origin, "checkpoint")
    if isinstance(opened, Problem):
        return VerificationReport((*problems, opened), notices=tuple(notices))
    cp = opened
    size, root = cp.size, cp.root

    seen: set[int] = set()
    duplicates: list[int] = []
    modified: list[tuple[int, str]] = []
    misplaced: list[tuple[int, str]] = []
    malformed: list[tuple[int, str]] = []
    pruned: list[int] = []
    disclosed = 0
    order: list[int] = []
    for e in bundle.entries:
        seq = e.seq
        if seq in seen:
            duplicates.append(seq)
            continue
        seen.add(seq)
        order.append(seq)
        if seq >= size:
            modified.append((seq, f"not covered by the checkpoint (size {size})"))
            continue
        lh = leaf_hash(e.leaf)
        if not verify_inclusion(seq, size, lh, e.proof, root):
            claimed_seq = leaf_seq(e.leaf)
            if (
                claimed_seq is not None
                and claimed_seq != seq
                and claimed_seq < size
                and verify_inclusion(claimed_seq, size, lh, e.proof, root)
            ):
                misplaced.append((seq, f"the entry for seq {seq} holds the leaf of seq {claimed_seq}"))
            else:
                modified.append((seq, "the leaf or its proof does not match the signed tree"))
            continue
        try:
            leaf = parse_leaf(e.leaf)
        except LeafError as exc:
            malformed.append((seq, f"the log holds a malformed leaf here: {exc}"))
            continue
        if leaf.seq != seq:
            misplaced.append((seq, f"the leaf at position {seq} claims seq {leaf.seq}"))
            continue
        if e.record is None or e.salt is None:
            pruned.append(seq)
            continue
        disclosed += 1
        try:
            plaintext = canonical_json(e.record)
        except (RecordError, RecursionError):
            modified.append((seq, "the disclosed record is not representable as canonical JSON"))
            continue
        if not check_disclosure(leaf, plaintext, e.salt):
            modified.append((seq, "the disclosed record does not match its commitment"))
        elif e.record.get("seq") != seq or e.record.get("time") != leaf.time:
            modified.append((seq, "the record's seq or time differs from its leaf"))

    for kind, found in (
        (ProblemKind.MALFORMED, malformed),
        (ProblemKind.REORDERED, misplaced),
        (ProblemKind.MODIFIED, modified),
    ):
        problems.extend(_grouped(kind, found))
    if duplicates:
        problems.append(_problem(ProblemKind.DUPLICATE, "appears more than once", sorted(set(duplicates))))
    ascending = sorted(order)
    out_of_place = [s for s, t in zip(order, ascending, strict=True) if s != t]
    if out_of_place:
        problems.append(_problem(ProblemKind.REORDERED, "entries are out of order", sorted(out_of_place)))
    if ascending:
        gaps = _gaps(ascending)
        if gaps:
            problems.append(_problem(ProblemKind.MISSING, "absent from the range", gaps))

    consistency: tuple[Checkpoint, list[bytes]] | None = None
    if bundle.consistency is not None:
        note, proof = bundle.consistency
        start = _open_checkpoint(note, verifier, bundle.origin, "consistency.from_checkpoint")
        if isinstance(start, Problem):
            problems.append(start)
        else:
            consistency = (start, proof)
            found_problem = _check_consistency(start, cp, proof)
            if found_problem is not None:
                problems.append(found_problem)
    if previous_checkpoint is not None:
        prev = _open_checkpoint(previous_checkpoint, verifier, bundle.origin, "your previous checkpoint")
        if isinstance(prev, Problem):
            problems.append(prev)
        else:
            found_problem = _check_previous(prev, cp, consistency)
            if found_problem is not None:
                problems.append(found_problem)

    if ascending:
        if ascending[-1] < size - 1:
            notices.append(f"entries end at seq {ascending[-1]}; the checkpoint covers up to seq {size - 1}")
    else:
        notices.append("the bundle has no entries")
    return VerificationReport(
        tuple(problems),
        checkpoint=cp,
        entries=len(bundle.entries),
        disclosed=disclosed,
        pruned=tuple(sorted(pruned)),
        first_seq=ascending[0] if ascending else None,
        last_seq=ascending[-1] if ascending else None,
        notices=tuple(notices),
    )


def _grouped(kind: ProblemKind, found: list[tuple[int, str]]) -> list[Problem]:
    """One problem per distinct message, with all the seqs that share it."""
    return [
        _problem(kind, message, sorted(s for s, m in found if m == message))
        for message in sorted({m for _, m in found})
    ]


def _displaced(stream: Sequence[int]) -> list[int]:
    """The seqs that are not where ascending order puts them among the seqs present, by position.

    A swap of two leaves names exactly those two, however far apart (the leaves between them are at their
    places); a leaf moved elsewhere names the leaves it displaced as well. Missing leaves displace nothing
    (order is judged among the leaves present), and duplicates are not in ``stream``.
    """
    return sorted(s for s, t in zip(stream, sorted(stream), strict=True) if s != t)


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


def _gaps(ascending: Sequence[int]) -> list[int]:
    """Sequence numbers missing between the smallest and largest present (at most MAX_LISTED_SEQS + 1)."""
    out: list[int] = []
    for a, b in itertools.pairwise(ascending):
        if b > a + 1:
            out.extend(range(a + 1, min(b, a + 2 + MAX_LISTED_SEQS - len(out))))
            if len(out) > MAX_LISTED_SEQS:
                break
    return out


# --------------------------------------------------------------------------------------------------------
# Full-log verification


def verify_log(  # noqa: PLR0912, PLR0915 - the hot loop is inlined on purpose
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
    problems: list[Problem] = []
    notices: list[str] = []
    try:
        verifier = parse_vkey(vkey)
    except NoteError as exc:
        return VerificationReport((_problem(ProblemKind.MALFORMED, f"vkey: {exc}"),))

    targets: dict[int, tuple[bytes, str]] = {}
    newest: Checkpoint | None = None
    all_checkpoints: list[tuple[str, str]] = [(c, f"checkpoint #{i}") for i, c in enumerate(checkpoints)]
    if previous_checkpoint is not None:
        all_checkpoints.append((previous_checkpoint, "your previous checkpoint"))
    for note, what in all_checkpoints:
        opened = _open_checkpoint(note, verifier, origin, what)
        if isinstance(opened, Problem):
            problems.append(opened)
            continue
        known = targets.get(opened.size)
        if known is not None and known[0] != opened.root:
            problems.append(
                _problem(
                    ProblemKind.FORKED, f"{known[1]} and {what} sign different roots for size {opened.size}"
                )
            )
            continue
        targets.setdefault(opened.size, (opened.root, what))
        if what.startswith("checkpoint") and (newest is None or opened.size > newest.size):
            newest = opened
    if not targets:
        problems.append(_problem(ProblemKind.UNPROVEN, "no valid signed checkpoint to verify against"))
    sizes = sorted(targets)
    target_iter = iter(sizes)
    next_target = next(target_iter, None)
    while next_target == 0:
        next_target = next(target_iter, None)

    acc = MerkleAccumulator()
    count = 0
    expected = 0
    gaps: dict[int, int] = {}
    missing_total = 0
    out_of_order = False
    stream = array.array("q")  # the seq of each leaf, first occurrences only: locates reordered leaves
    duplicates: list[int] = []
    malformed: list[int] = []
    modified: list[tuple[int, str]] = []
    pruned: list[int] = []
    last_good = 0
    since_good = _SinceGood()
    disclosed = 0
    sha = hashlib.sha256
    it = iter(leaves)
    while True:
        # Batches end at checkpoint sizes, so the root can be compared there.
        limit = _LOG_BATCH if next_target is None else min(_LOG_BATCH, next_target - count)
        batch = list(itertools.islice(it, limit))
        if not batch:
            break
        # Form and seq first: one regular-expression match per leaf, no JSON parsing.
        seqs = list(map(leaf_seq, batch))
        if seqs == list(range(expected, expected + len(batch))):
            stream.extend(range(expected, expected + len(batch)))
            expected += len(batch)
        else:
            since_good.begin(count, acc.peaks())
            for position, seq in enumerate(seqs, start=count):
                if seq is None:
                    malformed.append(position)
                    since_good.unopened = True
                    continue
                if seq == expected:
                    expected += 1
                elif seq > expected:
                    for s in range(expected, min(seq, expected + MAX_LISTED_SEQS)):
                        gaps[s] = seq
                    missing_total += seq - expected
                    expected = seq + 1
                elif seq in gaps:
                    del gaps[seq]
                    missing_total -= 1
                    out_of_order = True
                else:
                    duplicates.append(seq)
                    continue
                stream.append(seq)
        if opener is not None:
            for text, seq in zip(batch, seqs, strict=True):
                if seq is None:
                    continue
                try:
                    opened_leaf = opener(parse_leaf(text))
                except LeafError as exc:
                    modified.append((seq, f"does not open: {exc}"))
                    since_good.unopened = True
                    continue
                if opened_leaf is None:
                    pruned.append(seq)
                    since_good.unopened = True
                else:
                    disclosed += 1
        elif checker is not None:
            for text, seq in zip(batch, seqs, strict=True):
                if seq is None:
                    continue
                try:
                    opened_ok = checker(text)
                except LeafError as exc:
                    modified.append((seq, f"does not open: {exc}"))
                    since_good.unopened = True
                    continue
                if opened_ok:
                    disclosed += 1
                else:
                    pruned.append(seq)
                    since_good.unopened = True
        else:
            since_good.unopened = True
        # The tree: one SHA-256 per leaf, then aligned subtrees level by level into the compact range.
        hashes = [sha(b"\x00" + text).digest() for text in batch]
        acc.extend_hash_list(hashes)
        since_good.add(seqs, hashes)
        count += len(batch)
        if count == next_target:
            expected_root, what = targets[count]
            if acc.root() == expected_root:
                last_good = count
                since_good = _SinceGood()
            elif (reordered_tree := since_good.in_seq_order(count)) is not None and (
                reordered_tree.root() == expected_root
            ):
                # the leaves since the last good checkpoint are exactly the signed ones, stored out of order
                # (named below, by seq): the tree goes on from them in their signed order
                acc = reordered_tree
                last_good = count
                since_good = _SinceGood()
            elif since_good.irregular and not since_good.unopened and what != "your previous checkpoint":
                # every leaf since the last good checkpoint opened (AES-GCM and commitment: nobody without
                # the key made or changed one), so the root differs because of the missing, reordered or
                # duplicated leaves named below, not a modification
                pass
            else:
                kind = ProblemKind.FORKED if what == "your previous checkpoint" else ProblemKind.MODIFIED
                problems.append(
                    _problem(
                        kind,
                        f"the leaves up to seq {count - 1} do not give the root signed in {what} "
                        f"(size {count}): a leaf in seq {last_good}..{count - 1} was modified, removed, "
                        "inserted or reordered",
                    )
                )
            next_target = next(target_iter, None)

    if malformed:
        problems.append(
            _problem(ProblemKind.MALFORMED, "not a canonical schema-1 leaf text (position)", malformed)
        )
    if gaps or missing_total > 0:
        problems.append(
            _problem(ProblemKind.MISSING, f"absent from the log ({missing_total} in all)", sorted(gaps))
        )
    if out_of_order:
        reordered = _displaced(stream)
        problems.append(
            _problem(ProblemKind.REORDERED, "stored out of order (not at its place in seq order)", reordered)
        )
    if duplicates:
        problems.append(_problem(ProblemKind.DUPLICATE, "stored more than once", sorted(set(duplicates))))
    problems.extend(_grouped(ProblemKind.MODIFIED, modified))
    for size in sizes:
        # the log ends before the checkpoint's size; not a cut tail if its last leaves are there and only
        # leaves inside it are missing (named above)
        if size > count and size > expected:
            _, what = targets[size]
            problems.append(
                _problem(
                    ProblemKind.TRUNCATED,
                    f"{what} covers {size} leaves but the log holds {count}: its tail was truncated",
                )
            )
    if opener is None and checker is None:
        notices.append("records were not opened (no keys): modifications are located to checkpoint intervals")
    if newest is not None and newest.size < count:
        notices.append(f"leaves from seq {newest.size} on are not yet covered by a signed checkpoint")
    return VerificationReport(
        tuple(problems),
        checkpoint=newest,
        entries=count,
        disclosed=disclosed,
        pruned=tuple(pruned),
        first_seq=0 if count else None,
        last_seq=count - 1 if count else None,
        notices=tuple(notices),
    )
