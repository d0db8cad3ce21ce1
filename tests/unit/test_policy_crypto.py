"""Known-answer tests (RFC 4231, RFC 5297) and the behaviour of the policy's keyed primitives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from odeus_compliance.policy.crypto import (
    CryptoError,
    KeyContext,
    ReidentificationError,
    Tokenizer,
    derive_key,
    format_token,
    hmac_sha256,
    new_report_salt,
    reidentify,
)

ROOT = bytes(range(32))

# RFC 4231 section 4: (key, data, HMAC-SHA-256). Cross-checked against the research note's recomputation.
RFC4231 = [
    pytest.param(
        b"\x0b" * 20,
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        id="tc1",
    ),
    pytest.param(
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        id="tc2",
    ),
    pytest.param(
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        id="tc3",
    ),
    pytest.param(
        bytes.fromhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        id="tc4",
    ),
    pytest.param(
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        id="tc6",
    ),
    pytest.param(
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. "
        b"The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        id="tc7",
    ),
]


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231)
def test_hmac_sha256_rfc4231(key: bytes, data: bytes, expected: str) -> None:
    assert hmac_sha256(key, data).hex() == expected


def test_hmac_sha256_rfc4231_tc5_truncated() -> None:
    assert hmac_sha256(b"\x0c" * 20, b"Test With Truncation")[:16].hex() == "a3b6167473100ee06e0c796c2955552b"


def test_aes_siv_rfc5297_a1_deterministic() -> None:
    key = bytes.fromhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    ad = bytes.fromhex("101112131415161718191a1b1c1d1e1f2021222324252627")
    plaintext = bytes.fromhex("112233445566778899aabbccddee")
    out = AESSIV(key).encrypt(plaintext, [ad])
    assert out.hex() == "85632d07c6e8f37f950acd320a2ecc93" + "40c02b9690c4dc04daef7f6afe5c"
    assert AESSIV(key).decrypt(out, [ad]) == plaintext


def test_aes_siv_rfc5297_a2_nonce_as_last_ad() -> None:
    key = bytes.fromhex("7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f")
    ad1 = bytes.fromhex("00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100")
    ad2 = bytes.fromhex("102030405060708090a0")
    nonce = bytes.fromhex("09f911029d74e35bd84156c5635688c0")
    plaintext = b"this is some plaintext to encrypt using SIV-AES"
    out = AESSIV(key).encrypt(plaintext, [ad1, ad2, nonce])
    assert out.hex() == (
        "7bdb6e3b432667eb06f4d14bff2fbd0f"
        "cb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d"
    )


def test_aes_siv_rejects_a_flipped_bit() -> None:
    key = bytes.fromhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    out = bytearray(AESSIV(key).encrypt(b"x", [b"ad"]))
    out[0] ^= 1
    with pytest.raises(InvalidTag):
        AESSIV(key).decrypt(bytes(out), [b"ad"])


# --- our construction ----------------------------------------------------------------------------------


def context(**overrides: object) -> KeyContext:
    values: dict[str, object] = {"root_key": ROOT, "epoch": 1, "policy_domain": "usage-reports"}
    values.update(overrides)
    return KeyContext(**values)  # type: ignore[arg-type]


def test_token_format_carries_prefix_and_epoch() -> None:
    token = Tokenizer(context(epoch=7)).token(prefix="u", label="subject", message=b"id\x00u-1")
    assert re.fullmatch(r"u7_[a-z2-7]{26}", token)


def test_format_token_is_lowercase_base32_of_the_mac() -> None:
    assert format_token("a", 3, b"\x00" * 32) == "a3_" + "a" * 26


def _hkdf_sha256(ikm: bytes, info: bytes, salt: bytes = b"\x00" * 32) -> bytes:
    """RFC 5869 written out with the stdlib, independent of the code under test (one block of output)."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_derivation_matches_the_documented_construction() -> None:
    """Stable tokens must stay stable across releases: this pins the HKDF info layout and the token."""
    info = b"odeus-compliance/policy/v1\x00pseudonymize\x00usage-reports\x00subject\x001"
    key = _hkdf_sha256(ROOT, info)
    assert derive_key(context(), purpose="pseudonymize", label="subject") == key
    token = Tokenizer(context()).token(prefix="u", label="subject", message=b"id\x00user-1")
    mac = hmac.new(key, b"id\x00user-1", hashlib.sha256).digest()
    assert token == "u1_" + base64.b32encode(mac).decode().lower()[:26]
    assert token == "u1_qpo3ugno4h6bgk7biigp7wzul2"


def test_keys_differ_by_purpose_label_domain_epoch_and_salt() -> None:
    base = derive_key(context(), purpose="pseudonymize", label="subject")
    assert base != derive_key(context(), purpose="encrypt", label="subject")
    assert base != derive_key(context(), purpose="pseudonymize", label="agent")
    assert base != derive_key(context(policy_domain="other"), purpose="pseudonymize", label="subject")
    assert base != derive_key(context(epoch=2), purpose="pseudonymize", label="subject")
    assert base != derive_key(context(report_salt=b"s" * 32), purpose="pseudonymize", label="subject")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"root_key": b"short"}, "at least 32"),
        ({"epoch": -1}, "epoch"),
        ({"policy_domain": "Has Spaces"}, "policy domain"),
        ({"report_salt": b"x"}, "salt"),
    ],
)
def test_key_context_refuses_weak_material(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(CryptoError, match=message):
        context(**overrides)


def test_keys_never_show_in_repr() -> None:
    ctx = context(report_salt=b"\x01" * 32)
    text = repr(ctx) + repr(Tokenizer(ctx))
    assert ROOT.hex() not in text
    assert "root_key" not in text
    assert "report_salt" not in text


def test_report_salts_are_fresh() -> None:
    assert new_report_salt() != new_report_salt()
    assert len(new_report_salt()) == 32


def test_encrypt_is_deterministic_and_reversible() -> None:
    tokenizer = Tokenizer(context())
    token = tokenizer.encrypt(label="cells", column="email", plaintext="anna@example.com")
    assert token == tokenizer.encrypt(label="cells", column="email", plaintext="anna@example.com")
    assert re.fullmatch(r"e1_[a-z2-7]+", token)
    assert reidentify(context(), label="cells", column="email", token=token) == "anna@example.com"


def test_encrypted_values_reveal_only_a_length_bucket() -> None:
    tokenizer = Tokenizer(context())
    values = ["", "a", "ab", "anna@example.com", "x" * 30, "ü" * 15]  # up to 31 bytes: one bucket
    tokens = [tokenizer.encrypt(label="cells", column="email", plaintext=v) for v in values]
    assert len({len(t) for t in tokens}) == 1
    longer = tokenizer.encrypt(label="cells", column="email", plaintext="y" * 40)
    assert len(longer) > len(tokens[0])
    for value, token in zip(values, tokens, strict=True):
        assert reidentify(context(), label="cells", column="email", token=token) == value


@pytest.mark.parametrize(
    ("ctx_overrides", "column"),
    [
        ({}, "name"),  # replayed into another column
        ({"policy_domain": "other"}, "email"),  # another domain
        ({"epoch": 2}, "email"),  # another epoch
        ({"report_salt": b"r" * 32}, "email"),  # another report
        ({"root_key": bytes(32)}, "email"),  # another key
    ],
)
def test_reidentify_refuses_tokens_out_of_their_binding(
    ctx_overrides: dict[str, object], column: str
) -> None:
    token = Tokenizer(context()).encrypt(label="cells", column="email", plaintext="anna@example.com")
    with pytest.raises(ReidentificationError) as info:
        reidentify(context(**ctx_overrides), label="cells", column=column, token=token)
    assert "anna" not in str(info.value)


def test_reidentify_refuses_tampered_and_malformed_tokens() -> None:
    token = Tokenizer(context()).encrypt(label="cells", column="email", plaintext="anna@example.com")
    flipped = token[:-3] + ("a" if token[-3] != "a" else "b") + token[-2:]
    for bad in (flipped, "u1_abc", "e1_", "e1_!!!", token.upper()):
        with pytest.raises(ReidentificationError):
            reidentify(context(), label="cells", column="email", token=bad)
