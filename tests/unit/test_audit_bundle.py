"""The export bundle and its offline verifier, and full-log verification: every tamper named correctly,
malformed input failing closed with a clear message and never an unexpected exception."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odeus_compliance.audit.bundle_build import BundleError, build_bundle
from odeus_compliance.audit.bundle_format import BUNDLE_FORMAT
from odeus_compliance.audit.bundle_range import RangeError, parse_range_body
from odeus_compliance.audit.bundle_verify import verify_bundle
from odeus_compliance.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    parse_checkpoint_body,
    sign_checkpoint,
)
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
PERIOD = (T0, T0 + timedelta(days=1))


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
        signer: Signer | None = None,
    ) -> bytes:
        size = len(self.leaves) if size is None else size
        seqs = range(size) if seqs is None else seqs
        return build_bundle(
            origin=ORIGIN,
            signer=signer or self.signer,
            checkpoint=self.checkpoint(size, signer),
            period=PERIOD,
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
    assert set(obj) == {"format", "origin", "vkey", "checkpoint", "range", "entries", "consistency"}
    assert obj["format"] == BUNDLE_FORMAT == "odeus-compliance-audit-bundle/2"
    assert report.stated_range is not None
    assert (report.stated_range.first, report.stated_range.last) == (0, 11)
    assert "range (signed): entries from 2026-01-01T00:00:00.000000Z to 2026-01-02T00:00:00.000000Z" in (
        report.summary()
    )
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
    forged = log.bundle(signer=intruder)
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


# ---------------------------------------------------------------- the signed range: head, tail, downgrade


def _range_of(bundle: bytes) -> str:
    note = json.loads(bundle)["range"]
    assert isinstance(note, str)
    return note


def test_cut_off_tail_is_truncated(log: Log) -> None:
    """The attack of the review: the last entry removed. Every remaining proof holds; the range does not."""
    data = edit(log.bundle(), lambda o: o["entries"].pop())
    report = verify_bundle(data, trusted_vkey=log.vkey)
    assert only(report, ProblemKind.TRUNCATED) == (11,)
    assert "truncated: seq 11: 1 entries cut off at the tail: the range the bundle states ends at seq 11" in (
        report.summary()
    )
    three = edit(log.bundle(), lambda o: o.update(entries=o["entries"][:9]))
    assert only(verify_bundle(three), ProblemKind.TRUNCATED) == (9, 10, 11)


def test_cut_off_head_is_truncated(log: Log) -> None:
    data = edit(log.bundle(range(3, 9), size=10), lambda o: o["entries"].pop(0))
    report = verify_bundle(data, trusted_vkey=log.vkey)
    assert only(report, ProblemKind.TRUNCATED) == (3,)
    assert "cut off at the head: the range the bundle states starts at seq 3" in report.summary()


def test_head_tail_and_gap_are_each_named(log: Log) -> None:
    data = edit(log.bundle(), lambda o: o.update(entries=o["entries"][2:5] + o["entries"][6:10]))
    report = verify_bundle(data, trusted_vkey=log.vkey)
    assert {p.kind for p in report.problems} == {ProblemKind.TRUNCATED, ProblemKind.MISSING}
    assert report.seqs(ProblemKind.TRUNCATED) == (0, 1, 10, 11)
    assert report.seqs(ProblemKind.MISSING) == (5,)
    assert "cut off at the head" in report.summary()
    assert "cut off at the tail" in report.summary()


def test_every_entry_removed_is_truncated(log: Log) -> None:
    data = edit(log.bundle(range(4, 7), size=8), lambda o: o.update(entries=[]))
    report = verify_bundle(data, trusted_vkey=log.vkey)
    assert only(report, ProblemKind.TRUNCATED) == (4, 5, 6)
    assert "holds none of the 3 entries of the range it states (seq 4..6)" in report.summary()


def test_a_changed_range_statement_does_not_verify(log: Log) -> None:
    """Cutting the tail and editing the statement to match breaks the statement's signature."""

    def shorten(o: dict[str, Any]) -> None:
        o["entries"].pop()
        assert "\nlast 11\n" in o["range"]
        o["range"] = o["range"].replace("\nlast 11\n", "\nlast 10\n")

    report = verify_bundle(edit(log.bundle(), shorten), trusted_vkey=log.vkey)
    assert only(report, ProblemKind.BAD_SIGNATURE) == ()
    assert "the range statement is not signed by" in report.summary()
    assert report.stated_range is None


def test_a_range_statement_signed_by_another_key(log: Log) -> None:
    intruder = Signer.generate(ORIGIN)
    other = _range_of(log.bundle(range(11), signer=intruder))
    data = edit(log.bundle(), lambda o: (o["entries"].pop(), o.update(range=other)))
    only(verify_bundle(data, trusted_vkey=log.vkey), ProblemKind.BAD_SIGNATURE)


def test_a_range_statement_from_another_export(log: Log) -> None:
    """Statements are signed, but bound to their checkpoint and their entries: one taken from another
    export (another tree, or a narrower range of the same tree) does not fit."""
    older = _range_of(log.bundle(range(7), size=8))
    report = verify_bundle(edit(log.bundle(), lambda o: o.update(range=older)), trusted_vkey=log.vkey)
    assert only(report, ProblemKind.MODIFIED) == ()
    assert "the range statement is for the tree of size 8, the checkpoint for the one of size 12" in (
        report.summary()
    )
    narrower = _range_of(log.bundle(range(3, 7)))
    report = verify_bundle(edit(log.bundle(), lambda o: o.update(range=narrower)), trusted_vkey=log.vkey)
    assert only(report, ProblemKind.MODIFIED) == (0, 1, 2, 7, 8, 9, 10, 11)
    assert "outside the range the bundle states (seq 3..6)" in report.summary()
    empty = _range_of(log.bundle([]))
    report = verify_bundle(edit(log.bundle(range(2, 4)), lambda o: o.update(range=empty)))
    assert only(report, ProblemKind.MODIFIED) == (2, 3)


def test_a_bundle_of_format_1_says_its_range_is_not_stated(log: Log) -> None:
    """A bundle exported before range statements (or one downgraded to that format) is not passed as
    complete: its entries are checked, and the verdict says the range is not stated."""

    def downgrade(o: dict[str, Any]) -> None:
        o.pop("range")
        o["format"] = "odeus-compliance-audit-bundle/1"

    report = verify_bundle(edit(log.bundle(), downgrade), trusted_vkey=log.vkey)
    only(report, ProblemKind.UNPROVEN)
    assert "does not state the range it covers" in report.summary()
    assert report.entries == 12
    assert report.disclosed == 12
    cut = verify_bundle(edit(log.bundle(), lambda o: (downgrade(o), o["entries"].pop())))
    only(cut, ProblemKind.UNPROVEN)  # the cut tail cannot be seen: said, not hidden
    tampered = edit(log.bundle(), lambda o: (downgrade(o), o["entries"][3]["record"].update(purpose="x")))
    report = verify_bundle(tampered)
    assert {p.kind for p in report.problems} == {ProblemKind.UNPROVEN, ProblemKind.MODIFIED}


def test_range_statement_bytes_as_documented(log: Log) -> None:
    """docs/audit-bundle.md: Ed25519 (C2SP signed note) over exactly these lines, checkable by hand."""
    note = _range_of(log.bundle(range(3, 7), size=9))
    body, signatures = note.split("\n\n")
    root = root_of_leaf_hashes(log.hashes()[:9])
    assert body + "\n" == (
        "odeus-compliance-audit-bundle-range/1\n"
        f"origin {ORIGIN}\n"
        "from 2026-01-01T00:00:00.000000Z\n"
        "to 2026-01-02T00:00:00.000000Z\n"
        "first 3\n"
        "last 6\n"
        "size 9\n"
        f"root {base64.b64encode(root).decode()}\n"
    )
    dash, name, sig_b64 = signatures.strip("\n").split(" ")
    sig = base64.b64decode(sig_b64)
    assert (dash, name, sig[:4]) == ("\u2014", ORIGIN, log.signer.verifier.key_hash)
    Ed25519PublicKey.from_public_bytes(log.signer.verifier.public_key).verify(sig[4:], (body + "\n").encode())
    empty = parse_range_body(_range_of(log.bundle([])).split("\n\n")[0] + "\n")
    assert (empty.first, empty.last, empty.seqs) == (None, None, range(0))


def test_range_statement_parser_is_strict(log: Log) -> None:
    good = _range_of(log.bundle(range(3, 7), size=9)).split("\n\n")[0] + "\n"
    assert parse_range_body(good).body() == good
    bad = [
        good.replace("bundle-range/1", "bundle-range/2"),
        good.replace("first 3", "first 03"),
        good.replace("first 3", "first -3"),
        good.replace("first 3", "first none"),
        good.replace("last 6", "last 9"),  # beyond the tree
        good.replace("first 3", "first 7"),  # after last
        good.replace("from 2026-01-01T00:00:00.000000Z", "from 2026-01-01T00:00:00.000Z"),
        good.replace("from 2026-01-01T00:00:00.000000Z", "from 2026-01-03T00:00:00.000000Z"),  # after to
        good.replace("to 2026-01-02T00:00:00.000000Z", "to 2026-02-30T00:00:00.000000Z"),
        good.replace("size 9", "size 9 "),
        good.replace("\nroot ", "\nroot  "),
        good.replace("root ", "root A"),
        good[:-1],
        good + "extra\n",
        "\n".join(reversed(good.split("\n"))),
    ]
    for text in bad:
        with pytest.raises(RangeError):
            parse_range_body(text)
    # a different origin parses (it is a line like any other) and is then a statement for another log
    assert parse_range_body(good.replace("origin ", "origin x")).origin == "x" + ORIGIN
    # never mistaken for a checkpoint, nor a checkpoint for a range statement
    with pytest.raises(CheckpointError):
        parse_checkpoint_body(good)
    with pytest.raises(RangeError):
        parse_range_body(Checkpoint(ORIGIN, 9, root_of_leaf_hashes(log.hashes()[:9])).body())


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
    def build(**changes: Any) -> bytes:
        parts: dict[str, Any] = {
            "origin": ORIGIN,
            "signer": log.signer,
            "checkpoint": log.checkpoint(12),
            "period": PERIOD,
            "entries": [],
            "hashes": log.hashes(),
        }
        return build_bundle(**(parts | changes))

    with pytest.raises(BundleError):
        build(entries=[(0, log.leaves[1], None)])
    with pytest.raises(BundleError):
        build(entries=[(0, log.leaves[0], (log.opened[1].plaintext, log.opened[0].salt))])
    with pytest.raises(BundleError):
        build(origin="other")
    with pytest.raises(BundleError):
        build(signer=Signer.generate("x"))
    with pytest.raises(BundleError, match="contiguous"):  # a range statement would not be true
        build(entries=[(s, log.leaves[s], None) for s in (2, 3, 5)])
    with pytest.raises(BundleError, match="range"):
        build(period=(PERIOD[1], PERIOD[0]))


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
        ("unknown-format", with_(lambda c: c.update(format="odeus-compliance-audit-bundle/3"))),
        ("format-not-text", with_(lambda c: c.update(format=["odeus-compliance-audit-bundle/2"]))),
        ("range-missing", with_(lambda c: c.pop("range"))),
        ("range-in-format-1", with_(lambda c: c.update(format="odeus-compliance-audit-bundle/1"))),
        ("range-garbage", with_(lambda c: c.update(range="garbage"))),
        ("range-number", with_(lambda c: c.update(range=7))),
        ("range-null", with_(lambda c: c.update(range=None))),
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
