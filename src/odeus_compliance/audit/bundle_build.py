"""Building an export bundle (``audit export``, ``POST /api/v1/audit/export``).

:func:`build_bundle` takes the leaves of a range, what each one discloses (the record's plaintext and salt,
or nothing when retention shredded it), the tree and a signed checkpoint, and writes the JSON of
:mod:`~odeus_compliance.audit.bundle_format` with an inclusion proof per entry, the range statement
(:mod:`~odeus_compliance.audit.bundle_range`: the time range asked for, the first and last seq, the tree),
signed with the checkpoint key so a cut-off head or tail shows, and, when asked, a consistency proof from an
earlier checkpoint. It checks every proof and disclosure before returning, and raises
:class:`BundleError` instead: an export must fail rather than ship a bundle the auditor's verifier
(:mod:`~odeus_compliance.audit.bundle_verify`) would reject. Reading the log is the caller's part
(:mod:`~odeus_compliance.audit.service`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from odeus_compliance.audit.bundle_format import BUNDLE_FORMAT, b64
from odeus_compliance.audit.bundle_range import BundleRange, RangeError, sign_range
from odeus_compliance.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint_body
from odeus_compliance.audit.leaf import check_disclosure, parse_leaf
from odeus_compliance.audit.merkle import (
    HashSource,
    MerkleError,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from odeus_compliance.audit.note import NoteError, Signer, Verifier, open_note, parse_vkey
from odeus_compliance.audit.records import canonical_json

__all__ = ["BundleError", "Disclosure", "build_bundle"]

Disclosure = tuple[bytes, bytes]
"""``(plaintext, salt)`` of a record: what a bundle discloses next to its leaf."""


class BundleError(ValueError):
    """A bundle cannot be built from the given parts (the export must fail rather than ship a bad bundle)."""


def _fast_source(hashes: HashSource, size: int) -> HashSource:
    """A list of leaf hashes becomes a :class:`MerkleTree` (O(log n) per proof instead of O(n))."""
    if callable(hashes):
        return hashes
    try:
        return MerkleTree(hashes[:size]).subtree_hash
    except MerkleError as exc:
        raise BundleError(f"hashes: {exc}") from exc


def _entry(
    seq: int, leaf: bytes, disclosure: Disclosure | None, cp: Checkpoint, hashes: HashSource
) -> dict[str, Any]:
    """One entry with its inclusion proof, checked against the checkpoint (and the disclosure against the
    leaf's commitment)."""
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
        salt = b64(raw_salt)
    return {
        "leaf": leaf.decode("utf-8"),
        "proof": [b64(h) for h in proof],
        "record": record,
        "salt": salt,
        "seq": seq,
    }


def _consistency(
    from_checkpoint: str, verifier: Verifier, origin: str, cp: Checkpoint, hashes: HashSource
) -> dict[str, Any]:
    """The consistency proof from ``from_checkpoint`` (a signed note) to ``cp``, checked."""
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
    return {"from_checkpoint": from_checkpoint, "proof": [b64(h) for h in proof]}


def _range_note(
    signer: Signer, cp: Checkpoint, period: tuple[dt.datetime, dt.datetime], seqs: list[int]
) -> str:
    """The signed range statement of entries ``seqs`` (ascending, contiguous) of ``period``."""
    if seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
        raise BundleError("the entries must be one contiguous, ascending range of sequence numbers")
    try:
        statement = BundleRange(
            origin=cp.origin,
            start=period[0],
            end=period[1],
            first=seqs[0] if seqs else None,
            last=seqs[-1] if seqs else None,
            size=cp.size,
            root=cp.root,
        )
    except RangeError as exc:
        raise BundleError(f"range: {exc}") from exc
    return sign_range(statement, signer)


def build_bundle(
    *,
    origin: str,
    signer: Signer,
    checkpoint: str,
    period: tuple[dt.datetime, dt.datetime],
    entries: Iterable[tuple[int, bytes, Disclosure | None]],
    hashes: HashSource,
    from_checkpoint: str | None = None,
) -> bytes:
    """Assemble a bundle: ``entries`` are ``(seq, leaf text, disclosure or None if pruned)`` in seq order,
    every entry of the log whose time is in ``period`` (``(from, to)``, inclusive) within the checkpoint.

    ``signer`` is the log's checkpoint key: it signed ``checkpoint`` (the note the proofs are made against)
    and signs the bundle's range statement; ``hashes`` gives the tree (all leaf hashes or a
    ``subtree_hash(start, end)`` callable, see :mod:`~odeus_compliance.audit.merkle`); ``from_checkpoint``,
    a signed note of an earlier checkpoint, adds a consistency proof from it. Every proof is verified before
    the bundle is returned, so a bundle that would not verify is never produced.
    """
    vkey = signer.verifier.vkey
    try:
        verifier = parse_vkey(vkey)
        note, _ = open_note(checkpoint, [verifier])
        cp = parse_checkpoint_body(note.text)
    except (NoteError, CheckpointError) as exc:
        raise BundleError(f"checkpoint: {exc}") from exc
    if cp.origin != origin:
        raise BundleError("the checkpoint is for another origin")
    hashes = _fast_source(hashes, cp.size)
    out_entries = [_entry(seq, leaf, disclosure, cp, hashes) for seq, leaf, disclosure in entries]
    consistency = (
        None if from_checkpoint is None else _consistency(from_checkpoint, verifier, origin, cp, hashes)
    )
    bundle = {
        "checkpoint": checkpoint,
        "consistency": consistency,
        "entries": out_entries,
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "range": _range_note(signer, cp, period, [e["seq"] for e in out_entries]),
        "vkey": vkey,
    }
    return json.dumps(bundle, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
