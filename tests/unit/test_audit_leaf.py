"""Leaf texts: AES-256-GCM round trip, associated-data binding, salted commitments, strict parsing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from odeus_compliance.audit.leaf import (
    DataKey,
    Leaf,
    LeafError,
    associated_data,
    check_disclosure,
    commitment,
    leaf_checker,
    leaf_seq,
    open_leaf,
    parse_leaf,
    seal_record,
    seal_records,
)
from odeus_compliance.audit.records import Action, ActorRole, AuditRecord, Outcome
from odeus_compliance.keys.datakey import DataKeyError

ORIGIN = "odeus-compliance.example/audit/test"
KEY = DataKey("audit-dek-1", bytes(range(32)))


def record(seq: int = 3) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        time=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        actor_key_id="key_a",
        actor_name="auditor one",
        role=ActorRole.AUDITOR,
        action=Action.AUDIT_READ,
        resource="audit:entries",
        purpose="SOC 2 sample",
        outcome=Outcome.SUCCESS,
        request_id="r1",
        client_address="198.51.100.7",
        details={"count": 50},
    )


def test_round_trip_and_leaf_text_shape() -> None:
    leaf = seal_record(record(), origin=ORIGIN, data_key=KEY)
    text = leaf.text()
    obj = json.loads(text)
    assert list(obj) == ["ciphertext", "commitment", "key_id", "nonce", "schema", "seq", "time"]
    assert obj["schema"] == 1
    assert obj["seq"] == 3
    assert obj["key_id"] == "audit-dek-1"
    assert obj["time"] == "2026-03-01T09:30:00.000Z"
    assert text == json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    assert len(base64.b64decode(obj["nonce"])) == 12
    assert parse_leaf(text) == leaf
    assert parse_leaf(text.decode()) == leaf
    assert leaf_seq(text) == 3
    opened = open_leaf(parse_leaf(text), origin=ORIGIN, data_key=KEY)
    assert opened.record == record()
    assert opened.plaintext == record().plaintext()
    assert "salt" not in repr(opened) or opened.salt.hex() not in repr(opened)


def test_exact_definitions_of_ad_envelope_and_commitment() -> None:
    """What docs/audit-bundle.md states, recomputed with the primitives alone."""
    leaf = seal_record(record(), origin=ORIGIN, data_key=KEY)
    ad = (
        b'{"key_id":"audit-dek-1","origin":"odeus-compliance.example/audit/test","schema":1,"seq":3,'
        b'"time":"2026-03-01T09:30:00.000Z"}'
    )
    assert associated_data(origin=ORIGIN, seq=3, key_id="audit-dek-1", time="2026-03-01T09:30:00.000Z") == ad
    envelope = AESGCM(KEY.key).decrypt(leaf.nonce, leaf.ciphertext, ad)
    salt, plaintext = envelope[:32], envelope[32:]
    assert plaintext == record().plaintext()
    assert leaf.commitment == hashlib.sha256(salt + plaintext).digest() == commitment(salt, plaintext)
    assert check_disclosure(leaf, plaintext, salt)


def test_fresh_salt_and_nonce_each_time() -> None:
    a = seal_record(record(), origin=ORIGIN, data_key=KEY)
    b = seal_record(record(), origin=ORIGIN, data_key=KEY)
    assert a.nonce != b.nonce
    assert a.commitment != b.commitment
    assert a.ciphertext != b.ciphertext


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"seq": 4}, id="seq"),
        pytest.param({"key_id": "audit-dek-2"}, id="key_id"),
        pytest.param({"time": "2026-03-01T09:30:00.001Z"}, id="time"),
    ],
)
def test_ad_binds_position_key_and_time(change: dict[str, object]) -> None:
    leaf = seal_record(record(), origin=ORIGIN, data_key=KEY)
    fields = {
        "seq": leaf.seq,
        "time": leaf.time,
        "key_id": leaf.key_id,
        "nonce": leaf.nonce,
        "ciphertext": leaf.ciphertext,
        "commitment": leaf.commitment,
    }
    fields.update(change)
    moved = Leaf(**fields)  # type: ignore[arg-type]
    key = DataKey(moved.key_id, KEY.key)  # same key bytes: only the AD differs
    with pytest.raises(LeafError, match="does not decrypt"):
        open_leaf(moved, origin=ORIGIN, data_key=key)


def test_ad_binds_origin_and_key() -> None:
    leaf = seal_record(record(), origin=ORIGIN, data_key=KEY)
    with pytest.raises(LeafError, match="does not decrypt"):
        open_leaf(leaf, origin=ORIGIN + "2", data_key=KEY)
    with pytest.raises(LeafError, match="does not decrypt"):
        open_leaf(leaf, origin=ORIGIN, data_key=DataKey(KEY.key_id, os.urandom(32)))
    with pytest.raises(LeafError, match="another data key"):
        open_leaf(leaf, origin=ORIGIN, data_key=DataKey("audit-dek-9", KEY.key))
    # The schema number is bound too.
    ad2 = associated_data(origin=ORIGIN, seq=3, key_id=KEY.key_id, time=leaf.time, schema=2)
    with pytest.raises(InvalidTag):
        AESGCM(KEY.key).decrypt(leaf.nonce, leaf.ciphertext, ad2)


def test_flipped_ciphertext_or_commitment_is_caught() -> None:
    leaf = seal_record(record(), origin=ORIGIN, data_key=KEY)
    bad = bytearray(leaf.ciphertext)
    bad[40] ^= 1
    with pytest.raises(LeafError):
        open_leaf(
            Leaf(leaf.seq, leaf.time, leaf.key_id, leaf.nonce, bytes(bad), leaf.commitment),
            origin=ORIGIN,
            data_key=KEY,
        )
    with pytest.raises(LeafError, match="commitment"):
        open_leaf(
            Leaf(leaf.seq, leaf.time, leaf.key_id, leaf.nonce, leaf.ciphertext, b"\x00" * 32),
            origin=ORIGIN,
            data_key=KEY,
        )


def test_a_record_sealed_under_the_wrong_seq_is_refused() -> None:
    """A leaf whose own fields agree but whose record claims another seq is inconsistent: refused."""
    r = record(seq=5)
    plaintext, salt, nonce = r.plaintext(), os.urandom(32), os.urandom(12)
    ad = associated_data(origin=ORIGIN, seq=6, key_id=KEY.key_id, time=r.time_text)
    leaf = Leaf(
        6,
        r.time_text,
        KEY.key_id,
        nonce,
        AESGCM(KEY.key).encrypt(nonce, salt + plaintext, ad),
        commitment(salt, plaintext),
    )
    with pytest.raises(LeafError, match="seq or time"):
        open_leaf(leaf, origin=ORIGIN, data_key=KEY)


def test_commitment_checks_without_a_key() -> None:
    leaf = seal_record(record(), origin=ORIGIN, data_key=KEY)
    opened = open_leaf(leaf, origin=ORIGIN, data_key=KEY)
    assert check_disclosure(leaf, opened.plaintext, opened.salt)
    assert not check_disclosure(leaf, opened.plaintext.replace(b"SOC 2", b"SOC 3"), opened.salt)
    assert not check_disclosure(leaf, opened.plaintext, os.urandom(32))
    assert not check_disclosure(leaf, opened.plaintext, opened.salt[:31])


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: t.replace(b'"schema":1', b'"schema":2'), id="schema-2"),
        pytest.param(lambda t: t.replace(b",", b", ", 1), id="whitespace"),
        pytest.param(lambda t: t.replace(b'"seq":3', b'"seq":03'), id="leading-zero"),
        pytest.param(lambda t: t.replace(b'"seq":3', b'"seq":"3"'), id="string-seq"),
        pytest.param(lambda t: t.replace(b'"seq":3', b'"seq":99999999999999999'), id="huge-seq"),
        pytest.param(lambda t: t[:-1] + b',"x":1}', id="extra-field"),
        pytest.param(lambda t: t.replace(b'Z"}', b'+00:00"}'), id="offset-time"),
        pytest.param(lambda t: t.replace(b"2026-03-01T", b"2026-02-30T"), id="impossible-date"),
        pytest.param(lambda t: t.replace(b'"nonce":"', b'"nonce":"AA'), id="long-nonce"),
        pytest.param(lambda t: b" " + t, id="leading-space"),
        pytest.param(lambda t: t + b"\n", id="trailing-newline"),
        pytest.param(lambda _t: b"", id="empty"),
        pytest.param(lambda _t: b"\xff\xfe", id="binary"),
    ],
)
def test_malformed_leaves_are_refused(mutate: object) -> None:
    text = seal_record(record(), origin=ORIGIN, data_key=KEY).text()
    bad = mutate(text)  # type: ignore[operator]
    with pytest.raises(LeafError):
        parse_leaf(bad)


def test_non_canonical_base64_is_refused() -> None:
    text = seal_record(record(), origin=ORIGIN, data_key=KEY).text()
    obj = json.loads(text)
    c = obj["commitment"]
    # The last character before '=' carries 2 unused bits: set one, same bytes, other spelling.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    obj["commitment"] = c[:-2] + alphabet[alphabet.index(c[-2]) ^ 1] + "="
    bad = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(LeafError, match="non-canonical"):
        parse_leaf(bad)


def test_data_key_rules() -> None:
    with pytest.raises(DataKeyError):
        DataKey("k", b"short")
    with pytest.raises(DataKeyError):
        DataKey("bad key", bytes(32))
    assert KEY.key.hex() not in repr(KEY)


@given(st.binary(max_size=400))
def test_parse_leaf_raises_only_its_error(data: bytes) -> None:
    with contextlib.suppress(LeafError):
        parse_leaf(data)
    assert leaf_seq(data) is None or isinstance(leaf_seq(data), int)


@given(data=st.data())
def test_fast_seq_scan_accepts_exactly_the_leaf_grammar(data: st.DataObject) -> None:
    """``leaf_seq`` (the fast path) and the full grammar agree on mutated leaf texts."""
    from odeus_compliance.audit import leaf as leaf_module  # noqa: PLC0415 - the private grammar, on purpose

    text = bytearray(seal_record(record(), origin=ORIGIN, data_key=KEY).text())
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        i = data.draw(st.integers(0, len(text) - 1))
        ch = data.draw(st.sampled_from(list(b'A=+/"{},:0Z.-_ \\x\xc3')))
        if op == "set":
            text[i] = ch
        elif op == "insert":
            text.insert(i, ch)
        else:
            del text[i]
    raw = bytes(text)
    full = leaf_module._LEAF.fullmatch(raw)
    assert (leaf_seq(raw) is not None) == (full is not None)
    if full is not None:
        assert leaf_seq(raw) == int(full["seq"])


def _slow_canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_B64_RAW = st.binary(min_size=0, max_size=80)
_KEY_IDS = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
_TIMES = st.datetimes().map(
    lambda d: d.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
)


@given(
    seq=st.integers(min_value=-(2**60), max_value=2**60),
    key_id=st.one_of(_KEY_IDS, st.text(max_size=8)),
    time=st.one_of(_TIMES, st.text(max_size=30)),
    origin=st.text(max_size=40),
    blobs=st.tuples(_B64_RAW, _B64_RAW, _B64_RAW),
)
def test_fast_leaf_text_and_ad_are_the_canonical_json(
    seq: int, key_id: str, time: str, origin: str, blobs: tuple[bytes, bytes, bytes]
) -> None:
    ciphertext, commit, nonce = blobs
    leaf = Leaf(seq, time, key_id, nonce, ciphertext, commit)
    assert leaf.text() == _slow_canonical(
        {
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "commitment": base64.b64encode(commit).decode(),
            "key_id": key_id,
            "nonce": base64.b64encode(nonce).decode(),
            "schema": 1,
            "seq": seq,
            "time": time,
        }
    )
    with contextlib.suppress(UnicodeEncodeError):  # lone surrogates are not representable either way
        _slow_canonical(origin)
        assert associated_data(origin=origin, seq=seq, key_id=key_id, time=time) == _slow_canonical(
            {"key_id": key_id, "origin": origin, "schema": 1, "seq": seq, "time": time}
        )


def test_cached_aead_matches_the_key() -> None:
    leaf = seal_record(record(), origin=ORIGIN, data_key=KEY)
    ad = associated_data(origin=ORIGIN, seq=leaf.seq, key_id=KEY.key_id, time=leaf.time)
    assert AESGCM(KEY.key).decrypt(leaf.nonce, leaf.ciphertext, ad)[32:] == record().plaintext()
    assert DataKey(KEY.key_id, KEY.key) == KEY


def test_sealed_batches_open_like_single_seals() -> None:
    """``seal_records`` (the append path) makes canonical leaves that open to their records under their own
    seq, each with its own salt and nonce."""
    records = [record(seq) for seq in range(5, 40)]
    texts = seal_records(records, origin=ORIGIN, data_key=KEY)
    assert len(texts) == len(records)
    leaves = [parse_leaf(text) for text in texts]
    assert [leaf.text() for leaf in leaves] == texts
    for r, leaf in zip(records, leaves, strict=True):
        opened = open_leaf(leaf, origin=ORIGIN, data_key=KEY)
        assert opened.record == r
        assert opened.plaintext == r.plaintext()
        single = seal_record(r, origin=ORIGIN, data_key=KEY)
        assert (single.seq, single.time, single.key_id) == (leaf.seq, leaf.time, leaf.key_id)
        assert len(single.ciphertext) == len(leaf.ciphertext)
    assert len({leaf.nonce for leaf in leaves}) == len(leaves)
    assert len({open_leaf(leaf, origin=ORIGIN, data_key=KEY).salt for leaf in leaves}) == len(leaves)
    with pytest.raises(LeafError):  # bound to its origin like any leaf
        open_leaf(leaves[0], origin=ORIGIN + "/other", data_key=KEY)


def _check_or_error(check: Callable[[bytes], bool], text: bytes) -> bool | None:
    try:
        return check(text)
    except LeafError:
        return None


def _open_or_error(text: bytes) -> bool | None:
    try:
        open_leaf(parse_leaf(text), origin=ORIGIN, data_key=KEY)
    except LeafError:
        return None
    return True


def test_leaf_checker_opens_prunes_and_refuses() -> None:
    texts = seal_records([record(seq) for seq in range(3)], origin=ORIGIN, data_key=KEY)
    check = leaf_checker({KEY.key_id: KEY}, origin=ORIGIN)
    assert all(check(t) for t in texts)
    assert leaf_checker({KEY.key_id: None}, origin=ORIGIN)(texts[0]) is False  # shredded: pruned
    with pytest.raises(LeafError, match="does not hold"):
        leaf_checker({}, origin=ORIGIN)(texts[0])
    with pytest.raises(LeafError, match="does not decrypt"):
        leaf_checker({KEY.key_id: KEY}, origin=ORIGIN + "x")(texts[0])
    moved = texts[1].replace(b'"seq":1,', b'"seq":2,')
    with pytest.raises(LeafError, match="does not decrypt"):
        check(moved)
    with pytest.raises(LeafError, match="malformed"):
        check(texts[0][:-2])


def test_leaf_checker_refuses_a_record_whose_seq_differs_from_its_leaf() -> None:
    """Sealed by the key holder with the wrong seq inside: the tag verifies, the seq check refuses it."""
    inner = record(seq=9)
    leaf = seal_record(inner, origin=ORIGIN, data_key=KEY)
    salt = os.urandom(32)
    envelope = salt + inner.plaintext()
    ad = associated_data(origin=ORIGIN, seq=4, key_id=KEY.key_id, time=leaf.time)
    forged = Leaf(
        4,
        leaf.time,
        KEY.key_id,
        leaf.nonce,
        KEY.aead.encrypt(leaf.nonce, envelope, ad),
        commitment(salt, inner.plaintext()),
    )
    check = leaf_checker({KEY.key_id: KEY}, origin=ORIGIN)
    with pytest.raises(LeafError, match="seq or time"):
        check(forged.text())
    assert _open_or_error(forged.text()) is None


@given(data=st.data())
def test_leaf_checker_agrees_with_open_leaf(data: st.DataObject) -> None:
    """On tampered leaves (a byte changed anywhere) the fast check and the full opening give one verdict."""
    text = bytearray(seal_record(record(), origin=ORIGIN, data_key=KEY).text())
    position = data.draw(st.integers(0, len(text) - 1))
    text[position] = data.draw(st.integers(0x20, 0x7E))
    raw = bytes(text)
    if leaf_seq(raw) is None:
        return  # verify_log reports such a leaf as malformed before any check
    check = leaf_checker({KEY.key_id: KEY}, origin=ORIGIN)
    assert _check_or_error(check, raw) == _open_or_error(raw)
