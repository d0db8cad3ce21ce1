"""The RFC 9162 Merkle tree: the published transparency-dev / RFC 6962 vectors exactly, mutation probes in the
style of transparency-dev/merkle's testdata, and properties against a naive recursive reference tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odeus_compliance.audit.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    MerkleError,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    inclusion_proof_length,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_of_leaf_hashes,
    root_of_leaves,
    verify_consistency,
    verify_inclusion,
)

# Research note §3.1: transparency-dev/merkle testonly/constants.go leaf inputs.
LEAVES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
HASHES = [leaf_hash(x) for x in LEAVES]


def h(hex_: str) -> bytes:
    return bytes.fromhex(hex_)


# §3.3
LEAF_HASHES = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]
SUBTREES = {
    (0, 2): "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    (2, 4): "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    (4, 6): "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    (6, 8): "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    (0, 4): "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    (4, 8): "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    (0, 8): "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# §3.4
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# §3.5 (index, size, proof leaf to root)
INCLUSION = [
    (0, 1, []),
    (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# §3.6 (size1, size2, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


# ---------------------------------------------------------------- single hashes and roots (§3.2-3.4)


def test_single_hash_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert (
        node_hash(b"N123", b"N456").hex()
        == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_leaf_hashes_and_subtrees() -> None:
    assert [x.hex() for x in HASHES] == LEAF_HASHES
    for (start, end), expected in SUBTREES.items():
        assert root_of_leaf_hashes(HASHES[start:end]).hex() == expected


@pytest.mark.parametrize("n", range(9))
def test_roots_for_first_n_leaves(n: int) -> None:
    assert root_of_leaves(LEAVES[:n]).hex() == ROOTS[n]
    assert root_of_leaf_hashes(HASHES[:n]).hex() == ROOTS[n]
    acc = MerkleAccumulator()
    for x in HASHES[:n]:
        acc.append(x)
    assert acc.size == n
    assert acc.root().hex() == ROOTS[n]


def test_accumulator_gives_every_intermediate_root_and_resumes_from_peaks() -> None:
    acc = MerkleAccumulator()
    for n, x in enumerate(HASHES, start=1):
        acc.append(x)
        assert acc.root().hex() == ROOTS[n]
        resumed = MerkleAccumulator.from_peaks(acc.size, acc.peaks())
        assert resumed.root() == acc.root()
    resumed = MerkleAccumulator.from_peaks(5, MerkleAccumulator.from_peaks(0, []).peaks() or _peaks(5))
    resumed.extend(HASHES[5:])
    assert resumed.root().hex() == ROOTS[8]


def _peaks(n: int) -> tuple[bytes, ...]:
    acc = MerkleAccumulator()
    acc.extend(HASHES[:n])
    return acc.peaks()


def test_accumulator_rejects_bad_state() -> None:
    with pytest.raises(MerkleError):
        MerkleAccumulator.from_peaks(5, [HASHES[0]])  # 5 has two set bits
    with pytest.raises(MerkleError):
        MerkleAccumulator.from_peaks(1, [b"short"])
    with pytest.raises(MerkleError):
        MerkleAccumulator.from_peaks(-1, [])
    with pytest.raises(MerkleError):
        MerkleAccumulator().append(b"\x00" * 31)
    acc = MerkleAccumulator()
    with pytest.raises(MerkleError):
        acc.extend([HASHES[0], b"x"])
    assert acc.size == 0  # the bad batch is refused whole; the state stays consistent


# ---------------------------------------------------------------- proofs (§3.5-3.7)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    root = h(ROOTS[size])
    assert [p.hex() for p in inclusion_proof(index, size, HASHES)] == proof
    assert verify_inclusion(index, size, HASHES[index], [h(p) for p in proof], root)
    assert inclusion_proof_length(index, size) == len(proof)


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_vectors(size1: int, size2: int, proof: list[str]) -> None:
    assert [p.hex() for p in consistency_proof(size1, size2, HASHES)] == proof
    assert verify_consistency(size1, size2, h(ROOTS[size1]), h(ROOTS[size2]), [h(p) for p in proof])


def test_rfc6962_seven_leaf_example() -> None:
    """RFC 6962 §2.1.3 paths and proofs in the RFC's own letters, filled with the standard leaves (§3.7).

    Leaves a..f are d0..d5 and j is d6; g = (a, b), h = (c, d), i = (e, f), k = (g, h), l = (i, j).
    """
    a, b, c, d, e, f, j = HASHES[:7]
    g, h_, i = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, l_ = node_hash(g, h_), node_hash(i, j)
    assert l_.hex() == "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"
    assert node_hash(k, l_).hex() == ROOTS[7]
    assert inclusion_proof(0, 7, HASHES) == [b, h_, l_]
    assert inclusion_proof(3, 7, HASHES) == [c, g, l_]
    assert inclusion_proof(4, 7, HASHES) == [f, j, k]
    assert inclusion_proof(6, 7, HASHES) == [i, k]
    assert consistency_proof(3, 7, HASHES) == [c, d, g, l_]
    assert [x.hex()[:8] for x in consistency_proof(3, 7, HASHES)] == [
        "0298d122",
        "07506a85",
        "fac54203",
        "837dbb15",
    ]
    assert consistency_proof(4, 7, HASHES) == [l_]
    assert consistency_proof(6, 7, HASHES) == [i, j, k]
    for m in range(1, 8):
        assert verify_consistency(m, 7, h(ROOTS[m]), h(ROOTS[7]), consistency_proof(m, 7, HASHES))


def test_proof_from_a_subtree_callable_matches_the_list() -> None:
    calls: list[tuple[int, int]] = []

    def subtree(start: int, end: int) -> bytes:
        calls.append((start, end))
        return root_of_leaf_hashes(HASHES[start:end])

    assert inclusion_proof(5, 8, subtree) == inclusion_proof(5, 8, HASHES)
    assert consistency_proof(6, 8, subtree) == consistency_proof(6, 8, HASHES)
    assert calls
    with pytest.raises(MerkleError):
        inclusion_proof(0, 8, lambda _s, _e: b"short")


@pytest.mark.parametrize(
    ("index", "size"), [(-1, 4), (4, 4), (0, 0), (9, 8)], ids=["negative", "index=size", "empty", "beyond"]
)
def test_inclusion_proof_generation_rejects_bad_arguments(index: int, size: int) -> None:
    with pytest.raises(MerkleError):
        inclusion_proof(index, size, HASHES)


@pytest.mark.parametrize(("size1", "size2"), [(0, 4), (5, 4), (-1, 2)])
def test_consistency_proof_generation_rejects_bad_arguments(size1: int, size2: int) -> None:
    with pytest.raises(MerkleError):
        consistency_proof(size1, size2, HASHES)


def test_hash_list_shorter_than_size_is_refused() -> None:
    with pytest.raises(MerkleError):
        inclusion_proof(0, 9, HASHES)


# ---------------------------------------------------------------- negative probes (§3.8)


def _inclusion_mutations(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes):  # type: ignore[no-untyped-def]
    """transparency-dev's mutation families for an inclusion proof: each must be rejected."""
    for i in range(len(proof)):
        for bit in (0, 7, 255):
            flipped = bytearray(proof[i])
            flipped[bit // 8] ^= 1 << (bit % 8)
            yield f"flip-{i}-{bit}", index, size, leaf, [*proof[:i], bytes(flipped), *proof[i + 1 :]], root
    for d in (-1, 1):
        yield f"index{d:+}", index + d, size, leaf, proof, root
    yield "index^2", index ^ 2, size, leaf, proof, root
    yield "size*2", index, size * 2, leaf, proof, root
    yield "size/2", index, size // 2, leaf, proof, root
    # Not size+1: the same path can also be valid for n+1 leaves and the *same* root (its last sibling then
    # stands for a two-leaf subtree), so it proves nothing false; transparency-dev's families are x2 and /2.
    if proof:
        yield "truncated", index, size, leaf, proof[:-1], root
        yield "removed-first", index, size, leaf, proof[1:], root
    yield "extra-root-after", index, size, leaf, [*proof, root], root
    yield "extra-root-before", index, size, leaf, [root, *proof], root
    yield "inserted", index, size, leaf, [*proof[:1], HASHES[3], *proof[1:]], root
    yield "garbage-before", index, size, leaf, [b"\x00" * 32, *proof], root
    yield "garbage-after", index, size, leaf, [*proof, b"\xff" * 32], root
    yield "empty-root", index, size, leaf, proof, b""
    yield "random-root", index, size, leaf, proof, hashlib.sha256(b"random").digest()
    yield "wrong-leaf-WrongLeaf", index, size, b"WrongLeaf", proof, root
    yield "wrong-leaf-hash", index, size, leaf_hash(b"WrongLeaf"), proof, root
    yield "short-element", index, size, leaf, [p[:31] for p in proof] or [b"x"], root
    yield "long-element", index, size, leaf, [p + b"\x00" for p in proof] or [b"x" * 33], root


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_probes_are_rejected(index: int, size: int, proof: list[str]) -> None:
    raw = [h(p) for p in proof]
    rejected = 0
    for name, i, n, leaf, p, root in _inclusion_mutations(index, size, HASHES[index], raw, h(ROOTS[size])):
        # A mutated index can coincide with a real position whose proof happens to be identical (size 1 or
        # 2): only count rejections where the mutation truly changes the claim.
        if (
            0 <= i < n <= 8
            and leaf == HASHES[i]
            and p == inclusion_proof(i, n, HASHES)
            and root == h(ROOTS[n])
        ):
            continue
        assert not verify_inclusion(i, n, leaf, p, root), name
        rejected += 1
    assert rejected > 10


def test_named_research_probes() -> None:
    # inclusion/1/wrong-leaf.json: 9-byte leaf "hash" with a correct proof for index 0 of 8.
    proof0 = inclusion_proof(0, 8, HASHES)
    assert not verify_inclusion(0, 8, b"WrongLeaf", proof0, h(ROOTS[8]))
    # inclusion/2/leafIdx-plus-@1.json: leaf 5's proof claimed for index 6.
    assert not verify_inclusion(6, 8, HASHES[5], inclusion_proof(5, 8, HASHES), h(ROOTS[8]))
    # consistency/2/swapped-roots.json
    p68 = consistency_proof(6, 8, HASHES)
    assert not verify_consistency(6, 8, h(ROOTS[8]), h(ROOTS[6]), p68)
    # consistency/4/truncated-proof.json
    assert not verify_consistency(6, 7, h(ROOTS[6]), h(ROOTS[7]), consistency_proof(6, 7, HASHES)[:2])
    # consistency/1/size2-mul-@2.json: the 1 -> 8 proof claimed for 1 -> 16.
    assert not verify_consistency(1, 16, h(ROOTS[1]), h(ROOTS[8]), consistency_proof(1, 8, HASHES))


@pytest.mark.parametrize(("size1", "size2", "proof"), [c for c in CONSISTENCY if c[0] != c[1]])
def test_consistency_probes_are_rejected(size1: int, size2: int, proof: list[str]) -> None:
    raw = [h(p) for p in proof]
    r1, r2 = h(ROOTS[size1]), h(ROOTS[size2])
    cases: list[tuple[str, int, int, bytes, bytes, list[bytes]]] = []
    for i in range(len(raw)):
        flipped = bytearray(raw[i])
        flipped[0] ^= 1
        cases.append((f"flip-{i}", size1, size2, r1, r2, [*raw[:i], bytes(flipped), *raw[i + 1 :]]))
    cases += [
        ("size1+1", size1 + 1, size2, r1, r2, raw),
        ("size1-1", size1 - 1, size2, r1, r2, raw),
        ("size2*2", size1, size2 * 2, r1, r2, raw),
        ("swapped-roots", size1, size2, r2, r1, raw),
        ("truncated", size1, size2, r1, r2, raw[:-1]),
        ("empty", size1, size2, r1, r2, []),
        ("extra-root-after", size1, size2, r1, r2, [*raw, r2]),
        ("extra-root-before", size1, size2, r1, r2, [r1, *raw]),
        ("garbage-after", size1, size2, r1, r2, [*raw, b"\x00" * 32]),
        ("empty-root1", size1, size2, b"", r2, raw),
        ("empty-root2", size1, size2, r1, b"", raw),
        ("random-root", size1, size2, r1, hashlib.sha256(b"x").digest(), raw),
        ("short-element", size1, size2, r1, r2, [x[:31] for x in raw]),
        ("from-empty-tree", 0, size2, EMPTY_ROOT, r2, raw),
        ("size1>size2", size2, size1, r2, r1, raw),
    ]
    for name, s1, s2, a, b, p in cases:
        assert not verify_consistency(s1, s2, a, b, p), name


def test_edge_cases_of_consistency() -> None:
    r = h(ROOTS[5])
    assert verify_consistency(5, 5, r, r, [])
    assert not verify_consistency(5, 5, r, r, [r])  # same size needs an empty proof
    assert not verify_consistency(5, 5, r, h(ROOTS[4]), [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 3, EMPTY_ROOT, h(ROOTS[3]), [])  # meaningless, refused


def test_root_from_inclusion_proof_raises_only_its_own_error() -> None:
    assert root_from_inclusion_proof(2, 3, HASHES[2], inclusion_proof(2, 3, HASHES)).hex() == ROOTS[3]
    cases: list[tuple[int, int, bytes, list[bytes]]] = [
        (3, 3, HASHES[2], []),
        (0, 3, b"x", []),
        (2, 3, HASHES[2], [b"x" * 32] * 5),
    ]
    for index, size, leaf, proof in cases:
        with pytest.raises(MerkleError):
            root_from_inclusion_proof(index, size, leaf, proof)


def test_verifiers_never_raise_on_wrong_types() -> None:
    junk: list[object] = [None, "abc", 1.5, [1], b"\x00" * 32, True]
    for x in junk:
        assert not verify_inclusion(0, 2, x, [HASHES[1]], h(ROOTS[2]))  # type: ignore[arg-type]
        assert not verify_inclusion(0, 2, HASHES[0], [x], h(ROOTS[2]))  # type: ignore[list-item]
        assert not verify_inclusion(x, 2, HASHES[0], [HASHES[1]], h(ROOTS[2]))  # type: ignore[arg-type]
        assert not verify_consistency(x, 8, h(ROOTS[1]), h(ROOTS[8]), [])  # type: ignore[arg-type]
        assert not verify_consistency(1, 8, x, h(ROOTS[8]), [HASHES[1]])  # type: ignore[arg-type]
    assert not verify_inclusion(0, 1 << 70, HASHES[0], [], h(ROOTS[1]))


# ---------------------------------------------------------------- properties against a reference tree


def _ref_root(hashes: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, recursive, straight from the definition."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(_ref_root(hashes[:k]), _ref_root(hashes[k:]))


def _ref_path(m: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), recursive."""
    n = len(hashes)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_ref_path(m, hashes[:k]), _ref_root(hashes[k:])]
    return [*_ref_path(m - k, hashes[k:]), _ref_root(hashes[:k])]


def _ref_subproof(m: int, hashes: list[bytes], complete: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b), recursive."""
    n = len(hashes)
    if m == n:
        return [] if complete else [_ref_root(hashes)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_ref_subproof(m, hashes[:k], complete), _ref_root(hashes[k:])]
    return [*_ref_subproof(m - k, hashes[k:], False), _ref_root(hashes[:k])]


def _tree(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


sizes = st.integers(min_value=1, max_value=200)


@settings(max_examples=150, deadline=None)
@given(n=sizes, data=st.data())
def test_inclusion_property(n: int, data: st.DataObject) -> None:
    hashes = _tree(n)
    root = _ref_root(hashes)
    assert root_of_leaf_hashes(hashes) == root
    m = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(m, n, hashes)
    assert proof == _ref_path(m, hashes)
    assert verify_inclusion(m, n, hashes[m], proof, root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(proof[i])
        bad[bit // 8] ^= 1 << (bit % 8)
        assert not verify_inclusion(m, n, hashes[m], [*proof[:i], bytes(bad), *proof[i + 1 :]], root)
    bit = data.draw(st.integers(0, 255))
    bad_leaf = bytearray(hashes[m])
    bad_leaf[bit // 8] ^= 1 << (bit % 8)
    assert not verify_inclusion(m, n, bytes(bad_leaf), proof, root)
    other = data.draw(st.integers(0, n))
    if other != m:
        assert not verify_inclusion(other, n, hashes[m], proof, root) or hashes[other] == hashes[m]


@settings(max_examples=150, deadline=None)
@given(n=sizes, data=st.data())
def test_consistency_property(n: int, data: st.DataObject) -> None:
    hashes = _tree(n)
    m = data.draw(st.integers(1, n))
    proof = consistency_proof(m, n, hashes)
    assert proof == (_ref_subproof(m, hashes, True) if m < n else [])
    r1, r2 = _ref_root(hashes[:m]), _ref_root(hashes)
    assert verify_consistency(m, n, r1, r2, proof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(proof[i])
        bad[bit // 8] ^= 1 << (bit % 8)
        assert not verify_consistency(m, n, r1, r2, [*proof[:i], bytes(bad), *proof[i + 1 :]])
        assert not verify_consistency(m, n, r1, r2, proof[:-1])
        assert not verify_consistency(m, n, r1, r2, [*proof, proof[0]])
    bit = data.draw(st.integers(0, 255))
    for which in (0, 1):
        roots = [bytearray(r1), bytearray(r2)]
        roots[which][bit // 8] ^= 1 << (bit % 8)
        assert not verify_consistency(m, n, bytes(roots[0]), bytes(roots[1]), proof)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 300))
def test_accumulator_matches_reference_at_every_size(n: int) -> None:
    hashes = _tree(n)
    acc = MerkleAccumulator()
    acc.extend(hashes)
    assert acc.root() == _ref_root(hashes)
    assert len(acc.peaks()) == n.bit_count()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 150), data=st.data())
def test_merkle_tree_levels_give_the_same_hashes_and_proofs(n: int, data: st.DataObject) -> None:
    hashes = _tree(n)
    tree = MerkleTree(hashes)
    assert tree.size == n
    assert tree.root() == _ref_root(hashes)
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, n))
    assert tree.subtree_hash(start, end) == _ref_root(hashes[start:end])  # aligned or not
    m = data.draw(st.integers(0, n - 1))
    assert inclusion_proof(m, n, tree.subtree_hash) == inclusion_proof(m, n, hashes)
    k = data.draw(st.integers(1, n))
    assert consistency_proof(k, n, tree.subtree_hash) == consistency_proof(k, n, hashes)


def test_merkle_tree_rejects_bad_input() -> None:
    assert MerkleTree([]).root() == EMPTY_ROOT
    with pytest.raises(MerkleError):
        MerkleTree([b"short"])
    with pytest.raises(MerkleError):
        MerkleTree(HASHES).subtree_hash(3, 9)
