"""The RFC 9162 §2.1 (RFC 6962) Merkle tree over leaf texts: hashes, roots, proofs, strict verification.

Why this standard tree: auditors verify the log with their own tools, and every transparency-log tool
(transparency-dev/merkle, certificate-transparency-go, Sigstore, Go's sumdb) speaks exactly this tree. The
0x00/0x01 prefixes keep leaf and interior hashes apart, so an interior node can never be presented as a leaf
(second preimage). The split point of a tree of ``n`` leaves is the largest power of two below ``n``.

Why written this way:

- Speed. Full verification of a 1,000,000-record log must fit in seconds, so roots are computed with an
  iterative stack (the "compact range": one peak per set bit of the size), one ``hashlib.sha256`` call per
  hash, O(n) time and O(log n) memory, and no per-leaf objects beyond the ``bytes`` of the hash.
- Fail closed. Verifiers never raise on bad input: :func:`verify_inclusion` and :func:`verify_consistency`
  return ``False`` for any malformed or wrong proof (wrong hash lengths, ``index >= size``, proofs too short
  or too long, empty non-trivial proofs, a consistency proof from the empty tree). Functions that *compute*
  something (:func:`inclusion_proof`, :func:`root_from_inclusion_proof`, ...) raise :class:`MerkleError`, and
  nothing else, on bad arguments.
- Proof generation takes either the list of all leaf hashes or a callable ``subtree_hash(start, end)`` that
  returns the hash of the leaves ``[start, end)``, so the service can answer from stored or cached subtree
  hashes without reading the whole log.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HashSource",
    "MerkleAccumulator",
    "MerkleError",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proof_length",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_of_leaf_hashes",
    "root_of_leaves",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
"""SHA-256 output size; every leaf hash, node hash, root and proof element has exactly this length."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1)."""

MAX_TREE_SIZE: Final = (1 << 63) - 1
"""Largest size accepted anywhere; larger values are refused as malformed, not computed with."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_MAX_CHUNK_HEIGHT: Final = 16
_BATCH: Final = 1 << 16
_sha256: Final = hashlib.sha256

HashSource = Sequence[bytes] | Callable[[int, int], bytes]
"""Where proof generation reads hashes: all leaf hashes in order, or ``subtree_hash(start, end)`` giving the
Merkle tree hash of leaves ``[start, end)`` (for ``end - start == 1`` the leaf hash itself)."""


class MerkleError(ValueError):
    """Bad arguments to a tree computation (sizes, indices, hash lengths). The message names the rule."""


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``: the hash of one leaf text."""
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The split point ``k`` of RFC 9162 §2.1.1: the largest power of two with ``k < n`` (needs ``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleAccumulator:
    """An append-only compact range: the peaks of the perfect subtrees that make up the tree so far.

    Keeping only the peaks (one per set bit of the size, at most 64) gives the root at any size without
    re-reading the log: the service persists :attr:`size` and :meth:`peaks` next to its latest leaf and
    resumes with :meth:`from_peaks`. Appending costs one node hash on average.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self) -> None:
        self._peaks: list[bytes] = []
        self._size = 0

    @classmethod
    def from_peaks(cls, size: int, peaks: Sequence[bytes]) -> MerkleAccumulator:
        """Resume from a stored state; ``peaks`` are the subtree roots, largest (leftmost) first."""
        if not 0 <= size <= MAX_TREE_SIZE:
            raise MerkleError("tree size out of range")
        if len(peaks) != size.bit_count():
            raise MerkleError("the number of peaks must equal the number of set bits of the size")
        if any(len(p) != HASH_SIZE for p in peaks):
            raise MerkleError("every peak must be a 32-byte hash")
        acc = cls()
        acc._peaks = list(peaks)
        acc._size = size
        return acc

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def peaks(self) -> tuple[bytes, ...]:
        """The compact range, largest subtree first: store this to resume later."""
        return tuple(self._peaks)

    def append(self, leaf_hash_: bytes) -> None:
        """Append one leaf *hash* (not the leaf text; see :func:`leaf_hash`)."""
        if not isinstance(leaf_hash_, bytes) or len(leaf_hash_) != HASH_SIZE:
            raise MerkleError("a leaf hash must be 32 bytes")
        self._push(leaf_hash_, 0)

    def _push(self, h: bytes, height: int) -> None:
        """Push the root of a perfect subtree of ``2**height`` leaves; needs ``size % 2**height == 0``."""
        peaks = self._peaks
        n = self._size >> height
        while n & 1:
            h = _sha256(_NODE_PREFIX + peaks.pop() + h).digest()
            n >>= 1
        peaks.append(h)
        self._size += 1 << height

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes, in batches (see :meth:`extend_hash_list`)."""
        it = iter(leaf_hashes)
        while batch := list(itertools.islice(it, _BATCH)):
            self.extend_hash_list(batch)

    def extend_hash_list(self, hashes: list[bytes]) -> None:
        """Append a list of leaf hashes: the fast path.

        The list is cut into aligned perfect subtrees (as large as the current size's alignment and the
        remaining count allow, up to ``2**16`` leaves) whose roots are computed level by level with one list
        comprehension per level, so the per-leaf cost is two ``hashlib`` calls and no Python loop body.
        """
        if not all(type(h) is bytes for h in hashes) or set(map(len, hashes)) - {HASH_SIZE}:
            raise MerkleError("a leaf hash must be 32 bytes")
        i, m = 0, len(hashes)
        while i < m:
            size = self._size
            align = (size & -size).bit_length() - 1 if size else _MAX_CHUNK_HEIGHT
            height = min(align, (m - i).bit_length() - 1, _MAX_CHUNK_HEIGHT)
            chunk = 1 << height
            self._push(hashes[i] if chunk == 1 else _perfect_root(hashes[i : i + chunk]), height)
            i += chunk

    def extend_leaves(self, leaves: Iterable[bytes]) -> None:
        """Hash and append many leaf *texts*: one SHA-256 per leaf plus about one per node."""
        it = iter(leaves)
        while batch := list(itertools.islice(it, _BATCH)):
            self.extend_hash_list([_sha256(_LEAF_PREFIX + leaf).digest() for leaf in batch])

    def root(self) -> bytes:
        """The RFC 9162 root of the leaves so far (:data:`EMPTY_ROOT` when empty)."""
        peaks = self._peaks
        if not peaks:
            return EMPTY_ROOT
        r = peaks[-1]
        for p in reversed(peaks[:-1]):
            r = _sha256(_NODE_PREFIX + p + r).digest()
        return r


def _perfect_root(hashes: list[bytes]) -> bytes:
    """Root of a power-of-two number of hashes, level by level (the loop is in the comprehension)."""
    level = hashes
    while len(level) > 1:
        level = [
            _sha256(_NODE_PREFIX + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=True)
        ]
    return level[0]


def root_of_leaf_hashes(leaf_hashes: Iterable[bytes]) -> bytes:
    """The root over leaf hashes given in order: O(n) time, O(log n) memory."""
    acc = MerkleAccumulator()
    acc.extend(leaf_hashes)
    return acc.root()


def root_of_leaves(leaves: Iterable[bytes]) -> bytes:
    """The root over leaf *texts* given in order (each hashed with :func:`leaf_hash`)."""
    acc = MerkleAccumulator()
    acc.extend_leaves(leaves)
    return acc.root()


class MerkleTree:
    """Every level of a tree held in memory, for proofs in O(log n) hash look-ups each.

    Proof generation from a bare hash list recomputes subtrees (O(n) per proof); exporting thousands of
    entries from a large log needs this instead: build it once (about 2n hashes), then pass
    :meth:`subtree_hash` as the hash source. The service can later store the same levels as tiles.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        level = list(leaf_hashes)
        if not all(type(h) is bytes for h in level) or set(map(len, level)) - {HASH_SIZE}:
            raise MerkleError("a leaf hash must be 32 bytes")
        self._levels = [level]
        while len(level) > 1:
            level = [
                _sha256(_NODE_PREFIX + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)
            ]
            self._levels.append(level)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def root(self) -> bytes:
        """The root of the whole tree."""
        return self.subtree_hash(0, self.size) if self.size else EMPTY_ROOT

    def subtree_hash(self, start: int, end: int) -> bytes:
        """The Merkle tree hash of leaves ``[start, end)``: stored perfect subtrees, folded from the right."""
        if not 0 <= start < end <= self.size:
            raise MerkleError("subtree range out of bounds")
        pieces: list[bytes] = []
        while start < end:
            n = end - start
            height = (n.bit_length() - 1) if n & (n - 1) == 0 else ((n - 1).bit_length() - 1)
            size = 1 << height
            if start % size:
                # Not aligned (never the case for ranges RFC 9162 proofs ask for): compute it directly.
                pieces.append(root_of_leaf_hashes(self._levels[0][start:end]))
                break
            pieces.append(self._levels[height][start >> height])
            start += size
        r = pieces[-1]
        for p in reversed(pieces[:-1]):
            r = _sha256(_NODE_PREFIX + p + r).digest()
        return r


def _range_hasher(source: HashSource, size: int) -> Callable[[int, int], bytes]:
    """A ``subtree_hash(start, end)`` over ``source``; for a list, checks its length and computes ranges."""
    if callable(source):
        fetch = source

        def checked(start: int, end: int) -> bytes:
            h = fetch(start, end)
            if not isinstance(h, bytes) or len(h) != HASH_SIZE:
                raise MerkleError("the hash source returned something that is not a 32-byte hash")
            return h

        return checked
    if len(source) < size:
        raise MerkleError("the hash list is shorter than the tree size")

    def from_list(start: int, end: int) -> bytes:
        if end - start == 1:
            h = source[start]
            if len(h) != HASH_SIZE:
                raise MerkleError("a leaf hash must be 32 bytes")
            return h
        return root_of_leaf_hashes(source[start:end])

    return from_list


def inclusion_proof(index: int, size: int, source: HashSource) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves, leaf to root (RFC 9162 §2.1.3.1).

    Iterative form of ``PATH(m, D[n])``: walk down from the root, at each level recording the sibling
    subtree, then reverse so the list runs from the leaf upwards.
    """
    if not 0 <= index < size <= MAX_TREE_SIZE:
        raise MerkleError("an inclusion proof needs 0 <= index < size")
    subtree = _range_hasher(source, size)
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if m < k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
            m -= k
    path.reverse()
    return path


def consistency_proof(size1: int, size2: int, source: HashSource) -> list[bytes]:
    """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2`` (RFC 9162 §2.1.4.1).

    Iterative form of ``SUBPROOF(m, D[n], b)``; ``size1 == size2`` gives the empty proof. ``size1 == 0`` is
    refused: every tree extends the empty one, there is nothing to prove.
    """
    if not 0 < size1 <= size2 <= MAX_TREE_SIZE:
        raise MerkleError("a consistency proof needs 0 < size1 <= size2")
    if size1 == size2:
        return []
    subtree = _range_hasher(source, size2)
    proof: list[bytes] = []
    lo, hi, m, complete = 0, size2, size1, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(subtree(lo, hi))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
            m -= k
            complete = False
    proof.reverse()
    return proof


def inclusion_proof_length(index: int, size: int) -> int:
    """The exact number of hashes in the inclusion proof of ``index < size`` in a tree of ``size``."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _valid_hashes(hashes: Sequence[bytes]) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def root_from_inclusion_proof(index: int, size: int, leaf_hash_: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof implies (RFC 9162 §2.1.3.2); raises :class:`MerkleError` on bad input.

    The RFC's loop, with its two phases written out (as transparency-dev/merkle does): below level
    ``inner`` (where the paths to ``index`` and to the last leaf part) ``fn != sn`` and the bit of ``index``
    says on which side the sibling is; from there on ``fn == sn`` and the remaining elements are left
    siblings on the right border, one per set bit of ``index >> inner``. The exact proof length follows,
    so too-short and too-long proofs are refused before any hashing.
    """
    if not (type(index) is int and type(size) is int and 0 <= index < size <= MAX_TREE_SIZE):
        raise MerkleError("an inclusion proof needs 0 <= index < size")
    if type(leaf_hash_) is not bytes or len(leaf_hash_) != HASH_SIZE:
        raise MerkleError("the leaf hash must be 32 bytes")
    if not isinstance(proof, list | tuple):
        raise MerkleError("the proof must be a list of hashes")
    inner = (index ^ (size - 1)).bit_length()
    if len(proof) != inner + (index >> inner).bit_count():
        raise MerkleError("the inclusion proof has the wrong number of hashes")
    r, fn = leaf_hash_, index
    try:
        if proof and set(map(len, proof)) != {HASH_SIZE}:
            raise MerkleError("every proof element must be a 32-byte hash")
        for p in proof[:inner]:
            r = _sha256(_NODE_PREFIX + p + r if fn & 1 else _NODE_PREFIX + r + p).digest()
            fn >>= 1
        for p in proof[inner:]:
            r = _sha256(_NODE_PREFIX + p + r).digest()
    except TypeError as exc:  # an element that is not bytes-like (or has no length)
        raise MerkleError("every proof element must be a 32-byte hash") from exc
    return r


def verify_inclusion(index: int, size: int, leaf_hash_: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True iff ``proof`` shows leaf hash ``leaf_hash_`` at ``index`` in the tree of ``size`` with ``root``.

    Never raises on malformed input: anything wrong is ``False``.
    """
    if type(root) is not bytes or len(root) != HASH_SIZE:
        return False
    try:
        return root_from_inclusion_proof(index, size, leaf_hash_, proof) == root
    except MerkleError:
        return False


def verify_consistency(  # noqa: PLR0911, PLR0912 - the RFC algorithm, step by step
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff ``proof`` shows ``(size1, root1)`` is a prefix of ``(size2, root2)`` (RFC 9162 §2.1.4.2).

    Rules beyond the RFC text, as in transparency-dev/merkle: ``size1 == size2`` needs an empty proof and
    equal roots; ``size1 == 0`` is refused (a proof from the empty tree is meaningless); every hash is 32
    bytes; the proof has exactly the expected length. Never raises on malformed input.
    """
    if not (isinstance(size1, int) and isinstance(size2, int) and 0 <= size1 <= size2 <= MAX_TREE_SIZE):
        return False
    if not (isinstance(root1, bytes) and isinstance(root2, bytes) and isinstance(proof, list | tuple)):
        return False
    if len(root1) != HASH_SIZE or len(root2) != HASH_SIZE or not _valid_hashes(proof):
        return False
    if size1 == size2:
        return len(proof) == 0 and root1 == root2
    if size1 == 0 or len(proof) == 0:
        return False
    # Expected length: the inclusion proof of leaf size1-1 in size2, minus the levels below the lowest set
    # bit of size1, plus the seed hash unless size1 is itself a power of two.
    shift = (size1 & -size1).bit_length() - 1
    expected = inclusion_proof_length(size1 - 1, size2) - shift + (0 if size1 == 1 << shift else 1)
    if len(proof) != expected:
        return False
    path = list(proof)
    if size1 == 1 << shift:  # step 2: a power-of-two first tree is its own seed
        path.insert(0, root1)
    sha = hashlib.sha256
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = sha(_NODE_PREFIX + c + fr).digest()
            sr = sha(_NODE_PREFIX + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2
