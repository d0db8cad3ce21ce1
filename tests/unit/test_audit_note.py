"""C2SP signed notes and checkpoints: the Go sumdb/note Ed25519 vector byte for byte (research note §3.9),
multi-signature notes, the rejection cases, vkeys, and tlog-checkpoint bodies."""

from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odeus_compliance.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointSchedule,
    open_checkpoint,
    parse_checkpoint_body,
    sign_checkpoint,
)
from odeus_compliance.audit.merkle import EMPTY_ROOT
from odeus_compliance.audit.note import (
    NoteError,
    Signer,
    Verifier,
    compute_key_hash,
    open_note,
    parse_note,
    parse_skey,
    parse_vkey,
    sign_note,
)

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


def test_signed_note_vector_byte_for_byte() -> None:
    signer = parse_skey(PETER_SKEY)
    assert signer.verifier.vkey == PETER_VKEY
    assert sign_note(TEXT, signer) == TEXT + "\n" + PETER_SIG
    note, verified = open_note(TEXT + "\n" + PETER_SIG, [parse_vkey(PETER_VKEY)])
    assert note.text == TEXT
    assert [v.vkey for v in verified] == [PETER_VKEY]


def test_key_hash_definition() -> None:
    v = parse_vkey(PETER_VKEY)
    raw = base64.b64decode(PETER_VKEY.split("+", 2)[2])
    assert raw[0] == 1
    assert raw[1:] == v.public_key
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + v.public_key).digest()[:4]
    assert expected.hex() == "c74f20a3" == compute_key_hash("PeterNeumann", v.public_key).hex()
    assert parse_vkey(ENOCH_VKEY).key_hash.hex() == "af0cfe78"


def test_signer_repr_hides_the_seed() -> None:
    signer = parse_skey(PETER_SKEY)
    assert "AYEK" not in repr(signer)
    assert signer.seed.hex() not in repr(signer)
    assert parse_skey(signer.to_skey()) == signer
    assert signer.to_skey() == PETER_SKEY


def test_two_signatures_and_unknown_ones_ignored() -> None:
    msg = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    peter, enoch = parse_vkey(PETER_VKEY), parse_vkey(ENOCH_VKEY)
    _, both = open_note(msg, [peter, enoch])
    assert {v.name for v in both} == {"PeterNeumann", "EnochRoot"}
    _, only_peter = open_note(msg, [peter])
    assert [v.name for v in only_peter] == ["PeterNeumann"]
    _, only_enoch = open_note(msg, [enoch])
    assert [v.name for v in only_enoch] == ["EnochRoot"]
    with pytest.raises(NoteError, match="no known key"):
        open_note(msg, [Signer.generate("Other").verifier])


def test_mangled_signature_is_rejected_by_name() -> None:
    mangled = PETER_SIG.replace("pRZb6KE6", "pRZb6KE7")  # inside the signature, not the key hash
    assert mangled != PETER_SIG
    with pytest.raises(NoteError, match=r"invalid signature for key PeterNeumann\+c74f20a3"):
        open_note(TEXT + "\n" + mangled, [parse_vkey(PETER_VKEY)])


def test_other_text_same_signature_fails() -> None:
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(TEXT.replace("answer", "Answer") + "\n" + PETER_SIG, [parse_vkey(PETER_VKEY)])


def test_ambiguous_verifiers() -> None:
    enoch = parse_vkey(ENOCH_VKEY)
    with pytest.raises(NoteError, match=r"ambiguous key EnochRoot\+af0cfe78"):
        open_note(TEXT + "\n" + ENOCH_SIG, [enoch, parse_vkey(ENOCH_VKEY)])


def test_more_than_100_signatures_is_malformed() -> None:
    with pytest.raises(NoteError, match="malformed note"):
        parse_note(TEXT + "\n" + ENOCH_SIG * 101)
    assert len(parse_note(TEXT + "\n" + ENOCH_SIG * 100).signatures) == 100


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(TEXT + PETER_SIG, id="no-blank-line"),
        pytest.param(TEXT + "\n", id="no-signatures"),
        pytest.param(TEXT + "\n" + PETER_SIG[:-1], id="no-final-newline"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("\u2014", "-"), id="hyphen-not-em-dash"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("\u2014 ", "\u2014"), id="no-space"),
        pytest.param(TEXT + "\n" + "\u2014 PeterNeumann AAAA\n", id="sig-too-short"),
        pytest.param(TEXT + "\n" + "\u2014 PeterNeumann !!!!\n", id="bad-base64"),
        pytest.param(TEXT + "\n" + "\u2014 Peter+Neumann " + PETER_SIG.split(" ")[2], id="plus-in-name"),
        pytest.param("\n" + PETER_SIG, id="empty-text"),
        pytest.param("a\x01b\n\n" + PETER_SIG, id="control-char"),
        pytest.param(b"\xff\n\n" + PETER_SIG.encode(), id="not-utf8"),
        pytest.param("x" * 70000, id="too-long"),
    ],
)
def test_malformed_notes(message: str | bytes) -> None:
    with pytest.raises(NoteError, match="malformed"):
        parse_note(message)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case hex
        "PeterNeumann+c74f20a3+AhpcNmQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # algorithm 0x02
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # short key
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",  # non-canonical base64
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_bad_vkeys(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_vkey(vkey)


def test_bad_skeys_and_signers() -> None:
    for bad in ["", "PRIVATE+KEY+x", PETER_SKEY.replace("c74f20a3", "c74f20a4"), PETER_SKEY[:-4]]:
        with pytest.raises(NoteError):
            parse_skey(bad)
    with pytest.raises(NoteError):
        Signer("a b", b"\x00" * 32)
    with pytest.raises(NoteError):
        Signer("name", b"\x00" * 31)
    with pytest.raises(NoteError):
        Verifier("PeterNeumann", b"\x00" * 4, parse_vkey(PETER_VKEY).public_key)
    with pytest.raises(NoteError):
        sign_note("no newline", parse_skey(PETER_SKEY))


# ---------------------------------------------------------------- checkpoints

ORIGIN = "odeus-compliance.example/audit/test"


def test_checkpoint_round_trip() -> None:
    signer = Signer.generate(ORIGIN)
    cp = Checkpoint(
        ORIGIN, 8, bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
    )
    body = cp.body()
    assert body == f"{ORIGIN}\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    assert parse_checkpoint_body(body) == cp
    note = sign_checkpoint(cp, signer)
    assert note.startswith(body + "\n\u2014 " + ORIGIN + " ")
    assert open_checkpoint(note, signer.verifier, origin=ORIGIN) == cp
    with pytest.raises(CheckpointError, match="another log"):
        open_checkpoint(note, signer.verifier, origin="other")
    with pytest.raises(CheckpointError, match="signature"):
        open_checkpoint(note, Signer.generate(ORIGIN).verifier)
    ext = Checkpoint(ORIGIN, 0, EMPTY_ROOT, ("ext line",))
    assert parse_checkpoint_body(ext.body()) == ext


@pytest.mark.parametrize(
    "body",
    [
        "",
        "origin\n1\n",
        "origin\n01\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "origin\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "origin\n+1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "origin\n99999999999999999999\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "origin\n1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQy=\n",
        "origin\n1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n",
        "origin\n1\nAAAA\n",
        "\n1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "origin\n1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n",
        "origin\n1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
    ],
)
def test_malformed_checkpoint_bodies(body: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint_body(body)


@given(st.text(max_size=200))
def test_checkpoint_parser_raises_only_its_error(body: str) -> None:
    with contextlib.suppress(CheckpointError):
        parse_checkpoint_body(body)


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_note_parser_raises_only_its_error(message: bytes | str) -> None:
    with contextlib.suppress(NoteError):
        parse_note(message)


def test_checkpoint_schedule() -> None:
    s = CheckpointSchedule(every_records=100, every_seconds=30)
    assert not s.due(size=10, last_size=10, seconds_since_last=999)  # nothing new
    assert s.due(size=110, last_size=10, seconds_since_last=0)
    assert not s.due(size=50, last_size=10, seconds_since_last=29.9)
    assert s.due(size=11, last_size=10, seconds_since_last=30)
    with pytest.raises(CheckpointError):
        CheckpointSchedule(every_records=0)
