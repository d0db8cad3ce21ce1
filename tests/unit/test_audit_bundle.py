"""The export bundle and its offline verifier, and full-log verification: every tamper named correctly,
malformed input failing closed with a clear message and never an unexpected exception."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odeus_compliance.audit.bundle_build import BundleError, build_bundle
from odeus_compliance.audit.bundle_format import BUNDLE_FORMAT
from odeus_compliance.audit.bundle_verify import verify_bundle
from odeus_compliance.audit.checkpoint import Checkpoint, sign_checkpoint
from odeus_compliance.audit.leaf import (
    DataKey,
    Leaf,
    LeafError,
    OpenedLeaf,
    leaf_checker,
    open_leaf,
    seal_record,
)
from odeus_compliance.audit.log_verify import verify_log
from odeus_compliance.audit.merkle import leaf_hash, root_of_leaf_hashes
from odeus_compliance.audit.note import Signer
from odeus_compliance.audit.records import Action, ActorRole, AuditRecord, Outcome
from odeus_compliance.audit.verdict import ProblemKind, VerificationReport

ORIGIN = "odeus-compliance.example/audit/t1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Log:
    """A small log built with the real primitives: two key epochs (seq < 6 and seq >= 6)."""

    signer: Signer
    keys: dict[str, DataKey]
    leaves: list[bytes]
    opened: list[OpenedLeaf]

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey

    def hashes(self) -> list[bytes]:
        return [leaf_hash(x) for x in self.leaves]

    def checkpoint(self, size: int, signer: Signer | None = None) -> str:
        root = root_of_leaf_hashes(self.hashes()[:size])
        return sign_checkpoint(Checkpoint(ORIGIN, size, root), signer or self.signer)

    def bundle(
        self,
        seqs: range | list[int] | None = None,
        *,
        size: int | None = None,
        pruned: frozenset[int] = frozenset(),
        from_size: int | None = None,
    ) -> bytes:
        size = len(self.leaves) if size is None else size
        seqs = range(size) if seqs is None else seqs
        return build_bundle(
            origin=ORIGIN,
            vkey=self.vkey,
            checkpoint=self.checkpoint(size),
            entries=[
                (s, self.leaves[s], None if s in pruned else (self.opened[s].plaintext, self.opened[s].salt))
                for s in seqs
            ],
            hashes=self.hashes(),
            from_checkpoint=None if from_size is None else self.checkpoint(from_size),
        )

    def opener(self, shredded: frozenset[str] = frozenset()) -> Callable[[Leaf], OpenedLeaf | None]:
        def open_(leaf: Leaf) -> OpenedLeaf | None:
            if leaf.key_id in shredded:
                return None
            return open_leaf(leaf, origin=ORIGIN, data_key=self.keys[leaf.key_id])

        return open_


def make_record(seq: int, purpose: str = "quarterly audit sample") -> AuditRecord:
    return AuditRecord(
        seq=seq,
        time=T0 + timedelta(minutes=seq),
        actor_key_id=f"key_{seq % 3}",
        actor_name=f"user {seq % 3}",
        role=ActorRole.OFFICER,
        action=Action.DATASET_DOWNLOADED,
        resource=f"dataset:d{seq}",
        purpose=purpose,
        outcome=Outcome.SUCCESS,
        request_id=f"req-{seq}",
        client_address="203.0.113.5",
        details={"dataset_id": f"d{seq}", "row_count": seq * 10},
    )


def make_log(n: int, *, signer: Signer | None = None, tweak: int | None = None) -> Log:
    signer = signer or Signer.generate(ORIGIN)
    keys = {"dek-1": DataKey("dek-1", bytes(32)), "dek-2": DataKey("dek-2", bytes([7]) * 32)}
    leaves: list[bytes] = []
    opened: list[OpenedLeaf] = []
    for seq in range(n):
        key = keys["dek-1"] if seq < 6 else keys["dek-2"]
        rec = make_record(seq, "forked history" if seq == tweak else "quarterly audit sample")
        leaf = seal_record(rec, origin=ORIGIN, data_key=key)
        leaves.append(leaf.text())
        opened.append(open_leaf(leaf, origin=ORIGIN, data_key=key))
    return Log(signer, keys, leaves, opened)


@pytest.fixture(scope="module")
def log() -> Log:
    return make_log(12)


def edit(bundle: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    obj = json.loads(bundle)
    change(obj)
    return json.dumps(obj).encode()


def only(report: VerificationReport, kind: ProblemKind) -> tuple[int, ...]:
    assert not report.valid
    assert {p.kind for p in report.problems} == {kind}, report.summary()
    return report.seqs(kind)


# ---------------------------------------------------------------- the happy path


def test_valid_bundle(log: Log) -> None:
    data = log.bundle()
    report = verify_bundle(data, trusted_vkey=log.vkey)
    assert report.valid, report.summary()
    assert report.entries == 12
    assert report.disclosed == 12
    assert report.pruned == ()
    assert (report.first_seq, report.last_seq) == (0, 11)
    assert report.checkpoint is not None
    assert report.checkpoint.size == 12
    assert report.summary().startswith("VALID: 12 entries (seq 0..11)")
    obj = json.loads(data)
    assert set(obj) == {"format", "origin", "vkey", "checkpoint", "entries", "consistency"}
    assert obj["format"] == BUNDLE_FORMAT
    assert set(obj["entries"][0]) == {"seq", "leaf", "proof", "record", "salt"}


def test_without_trusted_key_it_says_so(log: Log) -> None:
    report = verify_bundle(log.bundle())
    assert report.valid
    assert any("no trusted key" in n for n in report.notices)


def test_partial_range_and_older_checkpoint(log: Log) -> None:
    report = verify_bundle(log.bundle(range(3, 7), size=9), trusted_vkey=log.vkey)
    assert report.valid, report.summary()
    assert (report.first_seq, report.last_seq) == (3, 6)
    assert any("checkpoint covers up to seq 8" in n for n in report.notices)


def test_pruned_entries_are_valid_and_listed(log: Log) -> None:
    report = verify_bundle(log.bundle(pruned=frozenset({0, 1, 2})), trusted_vkey=log.vkey)
    assert report.valid, report.summary()
    assert report.pruned == (0, 1, 2)
    assert report.disclosed == 9
    assert "pruned by policy: 3 entries (0, 1, 2)" in report.summary()


# ---------------------------------------------------------------- tampering, each named


def test_modified_record_names_its_seq(log: Log) -> None:
    data = edit(log.bundle(), lambda o: o["entries"][5]["record"].update(purpose="nothing to see"))
    assert only(verify_bundle(data, trusted_vkey=log.vkey), ProblemKind.MODIFIED) == (5,)


def test_modified_record_field_types_are_modifications(log: Log) -> None:
    data = edit(log.bundle(), lambda o: o["entries"][4]["record"]["details"].update(row_count=41))
    assert only(verify_bundle(data), ProblemKind.MODIFIED) == (4,)
    data = edit(log.bundle(), lambda o: o["entries"][4]["record"].update(extra=[{"deep": True}]))
    assert only(verify_bundle(data), ProblemKind.MODIFIED) == (4,)


def test_swapped_salt_is_a_modification(log: Log) -> None:
    def swap(o: dict[str, Any]) -> None:
        e = o["entries"]
        e[2]["salt"], e[3]["salt"] = e[3]["salt"], e[2]["salt"]

    assert only(verify_bundle(edit(log.bundle(), swap)), ProblemKind.MODIFIED) == (2, 3)


def test_modified_leaf_names_its_seq(log: Log) -> None:
    def flip(o: dict[str, Any]) -> None:
        leaf = o["entries"][7]["leaf"]
        i = leaf.index('"ciphertext":"') + 20
        o["entries"][7]["leaf"] = leaf[:i] + ("A" if leaf[i] != "A" else "B") + leaf[i + 1 :]

    assert only(verify_bundle(edit(log.bundle(), flip)), ProblemKind.MODIFIED) == (7,)


def test_modified_proof_names_its_seq(log: Log) -> None:
    def flip(o: dict[str, Any]) -> None:
        p = o["entries"][9]["proof"]
        p[0] = ("B" if p[0][0] == "A" else "A") + p[0][1:]

    assert only(verify_bundle(edit(log.bundle(), flip)), ProblemKind.MODIFIED) == (9,)


def test_removed_entry_is_missing(log: Log) -> None:
    data = edit(log.bundle(), lambda o: o["entries"].pop(4))
    report = verify_bundle(data, trusted_vkey=log.vkey)
    assert only(report, ProblemKind.MISSING) == (4,)
    assert "seq 4: absent from the range" in report.summary()


def test_removed_run_is_missing(log: Log) -> None:
    data = edit(log.bundle(), lambda o: o.update(entries=o["entries"][:3] + o["entries"][8:]))
    assert only(verify_bundle(data), ProblemKind.MISSING) == (3, 4, 5, 6, 7)


def test_swapped_entries_are_reordered(log: Log) -> None:
    def swap(o: dict[str, Any]) -> None:
        e = o["entries"]
        e[6], e[7] = e[7], e[6]

    assert only(verify_bundle(edit(log.bundle(), swap), trusted_vkey=log.vkey), ProblemKind.REORDERED) == (
        6,
        7,
    )


def test_swapped_leaves_under_fixed_seqs_are_reordered(log: Log) -> None:
    def swap(o: dict[str, Any]) -> None:
        e = o["entries"]
        for f in ("leaf", "proof", "record", "salt"):
            e[2][f], e[3][f] = e[3][f], e[2][f]

    report = verify_bundle(edit(log.bundle(), swap))
    assert only(report, ProblemKind.REORDERED) == (2, 3)
    assert "holds the leaf of seq 3" in report.summary()


def test_swapped_leaves_with_their_proofs_left_behind_are_modified(log: Log) -> None:
    def swap(o: dict[str, Any]) -> None:
        e = o["entries"]
        e[2]["leaf"], e[3]["leaf"] = e[3]["leaf"], e[2]["leaf"]

    assert only(verify_bundle(edit(log.bundle(), swap)), ProblemKind.MODIFIED) == (2, 3)


def test_duplicate_seq(log: Log) -> None:
    data = edit(log.bundle(), lambda o: o["entries"].insert(3, o["entries"][3]))
    assert only(verify_bundle(data), ProblemKind.DUPLICATE) == (3,)


def test_entry_beyond_the_checkpoint(log: Log) -> None:
    bigger = json.loads(log.bundle())
    data = edit(log.bundle(size=8), lambda o: o["entries"].append(bigger["entries"][8]))
    assert only(verify_bundle(data), ProblemKind.MODIFIED) == (8,)


def test_signed_by_another_key(log: Log) -> None:
    intruder = Signer.generate(ORIGIN)
    forged = edit(
        log.bundle(), lambda o: o.update(vkey=intruder.verifier.vkey, checkpoint=log.checkpoint(12, intruder))
    )
    report = verify_bundle(forged, trusted_vkey=log.vkey)
    assert {p.kind for p in report.problems} == {ProblemKind.UNTRUSTED_KEY, ProblemKind.BAD_SIGNATURE}
    # The forgery is self-consistent: without a trusted key only the notice warns.
    alone = verify_bundle(forged)
    assert alone.valid
    assert any(intruder.verifier.key_id in n for n in alone.notices)
    # Checkpoint re-signed by another key but the bundle still names the real one.
    swapped = edit(log.bundle(), lambda o: o.update(checkpoint=log.checkpoint(12, intruder)))
    only(verify_bundle(swapped), ProblemKind.BAD_SIGNATURE)


def test_tampered_checkpoint_text(log: Log) -> None:
    data = edit(log.bundle(), lambda o: o.update(checkpoint=o["checkpoint"].replace("\n12\n", "\n13\n")))
    only(verify_bundle(data, trusted_vkey=log.vkey), ProblemKind.BAD_SIGNATURE)


def test_checkpoint_of_another_log(log: Log) -> None:
    data = edit(log.bundle(), lambda o: o.update(origin="elsewhere"))
    only(verify_bundle(data, trusted_vkey=log.vkey), ProblemKind.WRONG_LOG)


# ---------------------------------------------------------------- previous checkpoints: truncation and forks


def test_consistency_from_previous_checkpoint(log: Log) -> None:
    data = log.bundle(range(5, 12), from_size=5)
    report = verify_bundle(data, trusted_vkey=log.vkey, previous_checkpoint=log.checkpoint(5))
    assert report.valid, report.summary()
    # The same size or an empty earlier tree needs no proof.
    assert verify_bundle(log.bundle(), previous_checkpoint=log.checkpoint(12)).valid
    assert verify_bundle(log.bundle(), previous_checkpoint=log.checkpoint(0)).valid


def test_truncated_tail(log: Log) -> None:
    report = verify_bundle(log.bundle(size=8), trusted_vkey=log.vkey, previous_checkpoint=log.checkpoint(12))
    assert only(report, ProblemKind.TRUNCATED) == ()
    assert "size 12 but this one only 8" in report.summary()


def test_missing_consistency_proof_is_unproven(log: Log) -> None:
    report = verify_bundle(log.bundle(), previous_checkpoint=log.checkpoint(5))
    only(report, ProblemKind.UNPROVEN)
    report = verify_bundle(log.bundle(from_size=4), previous_checkpoint=log.checkpoint(5))
    only(report, ProblemKind.UNPROVEN)


def test_fork_against_held_checkpoint(log: Log) -> None:
    fork = make_log(12, signer=log.signer, tweak=3)  # same key, same origin, seq 3 rewritten
    # The auditor holds the fork's checkpoint at size 10; the log now shows a different history.
    report = verify_bundle(log.bundle(from_size=10), previous_checkpoint=fork.checkpoint(10))
    only(report, ProblemKind.FORKED)
    report = verify_bundle(log.bundle(), previous_checkpoint=fork.checkpoint(12))
    only(report, ProblemKind.FORKED)
    # A bundle whose consistency proof starts from the fork's checkpoint cannot prove it.
    mixed = edit(
        log.bundle(from_size=10), lambda o: o["consistency"].update(from_checkpoint=fork.checkpoint(10))
    )
    only(verify_bundle(mixed), ProblemKind.FORKED)


def test_tampered_consistency_proof_is_a_fork(log: Log) -> None:
    def flip(o: dict[str, Any]) -> None:
        p = o["consistency"]["proof"]
        p[-1] = ("B" if p[-1][0] == "A" else "A") + p[-1][1:]

    data = edit(log.bundle(from_size=6), flip)
    only(verify_bundle(data, previous_checkpoint=log.checkpoint(6)), ProblemKind.FORKED)


def test_consistency_from_a_larger_checkpoint_is_truncation(log: Log) -> None:
    data = edit(
        log.bundle(size=8),
        lambda o: o.update(consistency={"from_checkpoint": log.checkpoint(12), "proof": []}),
    )
    only(verify_bundle(data), ProblemKind.TRUNCATED)


def test_previous_checkpoint_signed_by_someone_else(log: Log) -> None:
    other = Signer.generate(ORIGIN)
    report = verify_bundle(log.bundle(), previous_checkpoint=log.checkpoint(12, other))
    only(report, ProblemKind.BAD_SIGNATURE)


def test_builder_refuses_inconsistent_input(log: Log) -> None:
    with pytest.raises(BundleError):
        build_bundle(
            origin=ORIGIN,
            vkey=log.vkey,
            checkpoint=log.checkpoint(12),
            entries=[(0, log.leaves[1], None)],
            hashes=log.hashes(),
        )
    with pytest.raises(BundleError):
        build_bundle(
            origin=ORIGIN,
            vkey=log.vkey,
            checkpoint=log.checkpoint(12),
            entries=[(0, log.leaves[0], (log.opened[1].plaintext, log.opened[0].salt))],
            hashes=log.hashes(),
        )
    with pytest.raises(BundleError):
        build_bundle(
            origin="other", vkey=log.vkey, checkpoint=log.checkpoint(12), entries=[], hashes=log.hashes()
        )
    with pytest.raises(BundleError):
        build_bundle(
            origin=ORIGIN,
            vkey=Signer.generate("x").verifier.vkey,
            checkpoint=log.checkpoint(12),
            entries=[],
            hashes=log.hashes(),
        )


# ---------------------------------------------------------------- malformed input fails closed


def _malformed_cases(valid: bytes) -> list[tuple[str, bytes]]:
    o = json.loads(valid)

    def with_(change: Callable[[dict[str, Any]], object]) -> bytes:
        copy = json.loads(valid)
        change(copy)
        return json.dumps(copy).encode()

    text = valid.decode()
    return [
        ("not-json", b"not json"),
        ("empty", b""),
        ("not-utf8", b"\xff\xfe{}"),
        ("array", b"[]"),
        ("null", b"null"),
        ("unknown-format", with_(lambda c: c.update(format="odeus-compliance-audit-bundle/2"))),
        ("extra-field", with_(lambda c: c.update(comment="hi"))),
        ("missing-field", with_(lambda c: c.pop("consistency"))),
        ("entries-not-list", with_(lambda c: c.update(entries={}))),
        ("entry-extra-field", with_(lambda c: c["entries"][0].update(note=1))),
        ("seq-string", with_(lambda c: c["entries"][0].update(seq="0"))),
        ("seq-bool", with_(lambda c: c["entries"][0].update(seq=False))),
        ("seq-negative", with_(lambda c: c["entries"][0].update(seq=-1))),
        ("seq-huge", text.replace('"seq":0', '"seq":' + "9" * 400, 1).encode()),
        ("seq-float", text.replace('"seq":0', '"seq":0.0', 1).encode()),
        ("seq-exp", text.replace('"seq":0', '"seq":1e3', 1).encode()),
        ("nan", text.replace('"seq":0', '"seq":NaN', 1).encode()),
        ("duplicate-key", text.replace('"seq":0', '"seq":0,"seq":1', 1).encode()),
        ("proof-bad-base64", with_(lambda c: c["entries"][1]["proof"].__setitem__(0, "!!!!"))),
        ("proof-short-hash", with_(lambda c: c["entries"][1]["proof"].__setitem__(0, "AAAA"))),
        ("proof-not-list", with_(lambda c: c["entries"][1].update(proof="AAAA"))),
        ("proof-too-long", with_(lambda c: c["entries"][1].update(proof=[o["entries"][1]["proof"][0]] * 65))),
        ("salt-without-record", with_(lambda c: c["entries"][1].update(record=None))),
        ("record-without-salt", with_(lambda c: c["entries"][1].update(salt=None))),
        ("record-array", with_(lambda c: c["entries"][1].update(record=[1]))),
        ("salt-short", with_(lambda c: c["entries"][1].update(salt="AAAA"))),
        ("leaf-empty", with_(lambda c: c["entries"][1].update(leaf=""))),
        ("leaf-number", with_(lambda c: c["entries"][1].update(leaf=5))),
        ("vkey-garbage", with_(lambda c: c.update(vkey="garbage"))),
        ("checkpoint-garbage", with_(lambda c: c.update(checkpoint="garbage"))),
        ("checkpoint-number", with_(lambda c: c.update(checkpoint=1))),
        ("consistency-wrong", with_(lambda c: c.update(consistency={"proof": []}))),
        ("deep-nesting", b"[" * 100_000 + b"]" * 100_000),
        ("lone-surrogate", text.replace('"origin":"', '"origin":"\\ud800', 1).encode()),
    ]


def test_malformed_bundles_fail_closed_with_a_message(log: Log) -> None:
    valid = log.bundle(range(4), size=5)
    assert verify_bundle(valid).valid
    for name, data in _malformed_cases(valid):
        report = verify_bundle(data, trusted_vkey=log.vkey)
        assert not report.valid, name
        kinds = {p.kind for p in report.problems}
        assert kinds & {ProblemKind.MALFORMED, ProblemKind.WRONG_LOG}, (name, report.summary())
        assert all(p.message for p in report.problems)


def test_malformed_trusted_key_and_previous_checkpoint(log: Log) -> None:
    only(verify_bundle(log.bundle(), trusted_vkey="nonsense"), ProblemKind.MALFORMED)
    only(verify_bundle(log.bundle(), previous_checkpoint="nonsense"), ProblemKind.MALFORMED)


def test_empty_bundle_is_valid_but_says_so(log: Log) -> None:
    report = verify_bundle(log.bundle([]))
    assert report.valid
    assert any("no entries" in n for n in report.notices)


@pytest.fixture(scope="module")
def small_bundle(log: Log) -> bytes:
    return log.bundle(range(3), size=4, pruned=frozenset({1}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_byte_flips_never_pass_or_raise(small_bundle: bytes, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(small_bundle) - 1))
    b = data.draw(st.integers(0, 255).filter(lambda x: x != small_bundle[i]))
    mutated = small_bundle[:i] + bytes([b]) + small_bundle[i + 1 :]
    report = verify_bundle(mutated)
    if report.valid:
        # Only a change that leaves the JSON content identical may pass (there is none in compact JSON).
        assert json.loads(mutated) == json.loads(small_bundle), (i, b)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_structural_replacements_never_raise(small_bundle: bytes, data: st.DataObject) -> None:
    obj = json.loads(small_bundle)
    paths: list[tuple[Any, Any]] = [(obj, k) for k in obj]
    for e in obj["entries"]:
        paths += [(e, k) for k in e]
    container, key = data.draw(st.sampled_from(paths))
    value = data.draw(json_values)
    container[key] = value
    report = verify_bundle(json.dumps(obj).encode())
    assert isinstance(report, VerificationReport)
    if report.valid:
        # Dropping all entries or the (optional) consistency proof leaves a smaller, still true bundle.
        dropped = (key == "entries" and value == []) or (key == "consistency" and value is None)
        assert dropped or json.loads(json.dumps(obj)) == json.loads(small_bundle)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_arbitrary_input(data: bytes) -> None:
    report = verify_bundle(data)
    assert not report.valid
    assert report.problems[0].kind is ProblemKind.MALFORMED


# ---------------------------------------------------------------- full-log verification


def test_verify_log_valid(log: Log) -> None:
    cps = [log.checkpoint(n) for n in (0, 4, 8, 12)]
    report = verify_log(log.leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=cps)
    assert report.valid, report.summary()
    assert report.entries == 12
    assert report.checkpoint is not None
    assert report.checkpoint.size == 12
    deep = verify_log(log.leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=cps, opener=log.opener())
    assert deep.valid
    assert deep.disclosed == 12


def test_verify_log_shredded_epoch_is_pruned_not_invalid(log: Log) -> None:
    report = verify_log(
        log.leaves,
        origin=ORIGIN,
        vkey=log.vkey,
        checkpoints=[log.checkpoint(12)],
        opener=log.opener(shredded=frozenset({"dek-1"})),
    )
    assert report.valid, report.summary()
    assert report.pruned == (0, 1, 2, 3, 4, 5)


def test_verify_log_modified_leaf(log: Log) -> None:
    leaves = list(log.leaves)
    t = leaves[5].decode()
    i = t.index('"ciphertext":"') + 30
    leaves[5] = (t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1 :]).encode()
    cps = [log.checkpoint(n) for n in (4, 8, 12)]
    report = verify_log(leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=cps)
    assert {p.kind for p in report.problems} == {ProblemKind.MODIFIED}
    assert "seq 4..7" in report.summary()  # located to the checkpoint interval, without keys
    deep = verify_log(leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=cps, opener=log.opener())
    assert deep.seqs(ProblemKind.MODIFIED) == (5,)  # with keys: the exact seq


def test_verify_log_missing_reordered_duplicate(log: Log) -> None:
    cps = [log.checkpoint(12)]
    missing = verify_log(log.leaves[:4] + log.leaves[5:], origin=ORIGIN, vkey=log.vkey, checkpoints=cps)
    assert missing.seqs(ProblemKind.MISSING) == (4,)
    swapped = [*log.leaves[:6], log.leaves[7], log.leaves[6], *log.leaves[8:]]
    report = verify_log(swapped, origin=ORIGIN, vkey=log.vkey, checkpoints=cps)
    assert report.seqs(ProblemKind.REORDERED) == (6, 7)
    assert not report.seqs(ProblemKind.MISSING)
    dup = verify_log([*log.leaves[:3], log.leaves[2], *log.leaves[3:]], origin=ORIGIN, vkey=log.vkey)
    assert dup.seqs(ProblemKind.DUPLICATE) == (2,)
    assert any(p.kind is ProblemKind.UNPROVEN for p in dup.problems)  # no checkpoint given


def test_verify_log_truncated_and_forked(log: Log) -> None:
    report = verify_log(log.leaves[:9], origin=ORIGIN, vkey=log.vkey, checkpoints=[log.checkpoint(12)])
    only(report, ProblemKind.TRUNCATED)
    fork = make_log(12, signer=log.signer, tweak=3)
    report = verify_log(
        log.leaves,
        origin=ORIGIN,
        vkey=log.vkey,
        checkpoints=[log.checkpoint(12)],
        previous_checkpoint=fork.checkpoint(10),
    )
    only(report, ProblemKind.FORKED)
    report = verify_log(
        log.leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=[log.checkpoint(12), fork.checkpoint(12)]
    )
    assert ProblemKind.FORKED in {p.kind for p in report.problems}


def test_verify_log_bad_checkpoints_and_leaves(log: Log) -> None:
    other = Signer.generate(ORIGIN)
    report = verify_log(log.leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=[log.checkpoint(12, other)])
    assert {p.kind for p in report.problems} == {ProblemKind.BAD_SIGNATURE, ProblemKind.UNPROVEN}
    leaves = [*log.leaves[:3], b"garbage", *log.leaves[4:]]
    report = verify_log(leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=[log.checkpoint(12)])
    kinds = {p.kind for p in report.problems}
    assert ProblemKind.MALFORMED in kinds
    assert ProblemKind.MODIFIED in kinds
    only(verify_log(log.leaves, origin=ORIGIN, vkey="junk"), ProblemKind.MALFORMED)


def test_opener_errors_are_modifications(log: Log) -> None:
    def failing(leaf: Leaf) -> OpenedLeaf | None:
        raise LeafError("does not decrypt")

    report = verify_log(
        log.leaves[:2], origin=ORIGIN, vkey=log.vkey, checkpoints=[log.checkpoint(2)], opener=failing
    )
    assert report.seqs(ProblemKind.MODIFIED) == (0, 1)


def _swap(leaves: list[bytes], a: int, b: int) -> list[bytes]:
    out = list(leaves)
    out[a], out[b] = out[b], out[a]
    return out


def kinds(report: VerificationReport) -> set[ProblemKind]:
    return {p.kind for p in report.problems}


def test_verify_log_names_exactly_the_two_swapped_leaves(log: Log) -> None:
    """A swap of two leaves far apart names those two seqs, not the range between them, and nothing is
    called modified or missing: put back in seq order the leaves give the signed roots, with or without
    keys, and the later checkpoints still match."""
    cps = [log.checkpoint(n) for n in (4, 8, 12)]
    swapped = _swap(log.leaves, 1, 3)
    for opener in (None, log.opener()):
        report = verify_log(swapped, origin=ORIGIN, vkey=log.vkey, checkpoints=cps, opener=opener)
        assert kinds(report) == {ProblemKind.REORDERED}, report.summary()
        assert report.seqs(ProblemKind.REORDERED) == (1, 3)
        assert "reordered: seq 1, 3:" in report.summary()
    wide = verify_log(
        _swap(log.leaves, 0, 11), origin=ORIGIN, vkey=log.vkey, checkpoints=[log.checkpoint(12)]
    )
    assert kinds(wide) == {ProblemKind.REORDERED}, wide.summary()
    assert wide.seqs(ProblemKind.REORDERED) == (0, 11)


def test_verify_log_swap_across_checkpoints(log: Log) -> None:
    """Across a checkpoint the interval's leaves are not the signed ones: without keys the intervals are
    also reported as modified (nothing proves the leaves authentic); with keys every leaf opens, so only the
    swap is named."""
    cps = [log.checkpoint(n) for n in (4, 8, 12)]
    swapped = _swap(log.leaves, 2, 9)
    keyless = verify_log(swapped, origin=ORIGIN, vkey=log.vkey, checkpoints=cps)
    assert keyless.seqs(ProblemKind.REORDERED) == (2, 9)
    assert kinds(keyless) == {ProblemKind.REORDERED, ProblemKind.MODIFIED}
    keyed = verify_log(swapped, origin=ORIGIN, vkey=log.vkey, checkpoints=cps, opener=log.opener())
    assert kinds(keyed) == {ProblemKind.REORDERED}, keyed.summary()
    assert keyed.seqs(ProblemKind.REORDERED) == (2, 9)


def test_verify_log_a_moved_leaf_names_what_it_displaced(log: Log) -> None:
    moved = [*log.leaves[:2], *log.leaves[3:6], log.leaves[2], *log.leaves[6:]]
    report = verify_log(moved, origin=ORIGIN, vkey=log.vkey, checkpoints=[log.checkpoint(12)])
    assert kinds(report) == {ProblemKind.REORDERED}, report.summary()
    assert report.seqs(ProblemKind.REORDERED) == (2, 3, 4, 5)


def test_verify_log_with_keys_a_deletion_is_missing_only(log: Log) -> None:
    cps = [log.checkpoint(n) for n in (4, 8, 12)]
    deleted = log.leaves[:5] + log.leaves[6:]
    keyed = verify_log(deleted, origin=ORIGIN, vkey=log.vkey, checkpoints=cps, opener=log.opener())
    assert kinds(keyed) == {ProblemKind.MISSING}, keyed.summary()
    assert keyed.seqs(ProblemKind.MISSING) == (5,)
    keyless = verify_log(deleted, origin=ORIGIN, vkey=log.vkey, checkpoints=cps)
    assert kinds(keyless) == {ProblemKind.MISSING, ProblemKind.MODIFIED}


def test_verify_log_a_swap_beside_a_modification_still_names_the_modification(log: Log) -> None:
    leaves = _swap(log.leaves, 1, 3)
    t = leaves[6].decode()
    i = t.index('"ciphertext":"') + 30
    leaves[6] = (t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1 :]).encode()
    cps = [log.checkpoint(n) for n in (4, 8, 12)]
    keyless = verify_log(leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=cps)
    assert keyless.seqs(ProblemKind.REORDERED) == (1, 3)
    assert kinds(keyless) == {ProblemKind.REORDERED, ProblemKind.MODIFIED}
    assert "seq 4..7" in keyless.summary()
    keyed = verify_log(leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=cps, opener=log.opener())
    assert keyed.seqs(ProblemKind.MODIFIED) == (6,)
    assert keyed.seqs(ProblemKind.REORDERED) == (1, 3)


def test_verify_log_a_deletion_among_shredded_leaves_is_not_excused(log: Log) -> None:
    """Pruned leaves (their key destroyed) cannot be authenticated: a root mismatch around them stays a
    modification even with keys."""
    leaves = log.leaves[:2] + log.leaves[3:]
    cps = [log.checkpoint(n) for n in (4, 8, 12)]
    opener = log.opener(shredded=frozenset({"dek-1"}))
    report = verify_log(leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=cps, opener=opener)
    assert kinds(report) == {ProblemKind.MISSING, ProblemKind.MODIFIED}, report.summary()
    assert report.seqs(ProblemKind.MISSING) == (2,)


def test_swapped_entries_far_apart_name_exactly_those(log: Log) -> None:
    def swap(o: dict[str, Any]) -> None:
        e = o["entries"]
        e[2], e[9] = e[9], e[2]

    report = verify_bundle(edit(log.bundle(), swap), trusted_vkey=log.vkey)
    assert only(report, ProblemKind.REORDERED) == (2, 9)


def _checker(log: Log, shredded: frozenset[str] = frozenset()) -> Callable[[bytes], bool]:
    return leaf_checker({k: None if k in shredded else v for k, v in log.keys.items()}, origin=ORIGIN)


def test_verify_log_checker_gives_the_openers_verdicts(log: Log) -> None:
    """The fast leaf check (what ``audit verify`` uses) and full opening agree on every kind of tampering."""
    cps = [log.checkpoint(n) for n in (4, 8, 12)]
    t = log.leaves[6].decode()
    i = t.index('"ciphertext":"') + 30
    flipped = [
        *log.leaves[:6],
        (t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1 :]).encode(),
        *log.leaves[7:],
    ]
    cases = {
        "clean": log.leaves,
        "modified": flipped,
        "missing": log.leaves[:5] + log.leaves[6:],
        "swapped": _swap(log.leaves, 1, 9),
        "duplicate": [*log.leaves[:3], log.leaves[2], *log.leaves[3:]],
        "truncated": log.leaves[:9],
    }
    for name, leaves in cases.items():
        for shredded in (frozenset(), frozenset({"dek-1"})):
            by_opener = verify_log(
                leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=cps, opener=log.opener(shredded)
            )
            by_checker = verify_log(
                leaves, origin=ORIGIN, vkey=log.vkey, checkpoints=cps, checker=_checker(log, shredded)
            )
            assert [(p.kind, p.seqs) for p in by_checker.problems] == [
                (p.kind, p.seqs) for p in by_opener.problems
            ], name
            assert (by_checker.pruned, by_checker.disclosed) == (by_opener.pruned, by_opener.disclosed), name
    with pytest.raises(ValueError, match="not both"):
        verify_log(log.leaves, origin=ORIGIN, vkey=log.vkey, opener=log.opener(), checker=_checker(log))
