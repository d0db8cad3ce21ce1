"""Ed25519 keys in the C2SP note formats: a signer (seed hidden) and its verifier key (``vkey``).

The key ring stores the audit log's checkpoint-signing key as a :class:`Signer`; the signed-note code in
:mod:`odeus_compliance.audit.note` signs and verifies with these. Formats: a verifier key is
``<name>+<8 lowercase hex digits of the key hash>+<base64(0x01 || public key)>``, a signer key
``PRIVATE+KEY+<name>+<hash>+<base64(0x01 || 32-byte seed)>``, the key hash
``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` (https://c2sp.org/signed-note).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

__all__ = [
    "ALG_ED25519",
    "NoteError",
    "Signer",
    "Verifier",
    "b64decode_strict",
    "compute_key_hash",
    "is_valid_name",
    "no_controls",
    "parse_skey",
    "parse_vkey",
]

_HEX8 = re.compile(r"[0-9a-f]{8}")

ALG_ED25519: Final = 0x01
"""Signature algorithm byte for Ed25519 in key hashes and key encodings."""


class NoteError(ValueError):
    """A note or key is malformed, unsigned by any known key, or carries a bad signature."""


def is_valid_name(name: str) -> bool:
    """Key names: non-empty, no '+', no Unicode white space (so they fit in a signature line and a vkey)."""
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name) and no_controls(name)


def no_controls(text: str) -> bool:
    return not any(unicodedata.category(ch) == "Cc" for ch in text if ch != "\n")


def compute_key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte Ed25519 key hash: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def b64decode_strict(text: str) -> bytes:
    """Strict standard base64 with padding; only the canonical encoding of the bytes is accepted."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError("not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError("not canonical base64")
    return raw


@dataclass(frozen=True, slots=True)
class Verifier:
    """An Ed25519 verifier key: a name, its 4-byte key hash and the 32-byte public key."""

    name: str
    key_hash: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise NoteError("invalid key name")
        if len(self.public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")
        if self.key_hash != compute_key_hash(self.name, self.public_key):
            raise NoteError("the key hash does not match the key name and public key")

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> Verifier:
        """A verifier for ``public_key`` under ``name`` (the key hash is computed)."""
        if not is_valid_name(name):
            raise NoteError("invalid key name")
        if len(public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")
        return cls(name, compute_key_hash(name, public_key), public_key)

    @property
    def key_id(self) -> str:
        """``<name>+<hex key hash>``: how messages refer to the key."""
        return f"{self.name}+{self.key_hash.hex()}"

    @property
    def vkey(self) -> str:
        """The C2SP verifier key string ``<name>+<hex hash>+<base64(0x01 || public key)>``."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is a valid Ed25519 signature of ``message`` under this key."""
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_vkey(vkey: str) -> Verifier:
    """Parse ``<name>+<hex hash>+<base64(0x01 || key)>``; the base64 part may itself contain '+'."""
    if not isinstance(vkey, str) or len(vkey) > 1024:
        raise NoteError("malformed verifier key")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError("malformed verifier key: want <name>+<hash>+<key>")
    name, hash_hex, key_b64 = parts
    if not is_valid_name(name) or not _HEX8.fullmatch(hash_hex):
        raise NoteError("malformed verifier key: bad name or key hash")
    try:
        raw = b64decode_strict(key_b64)
    except NoteError as exc:
        raise NoteError("malformed verifier key: bad key encoding") from exc
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("unsupported verifier key: want an Ed25519 key (algorithm 0x01, 32 bytes)")
    try:
        return Verifier(name, bytes.fromhex(hash_hex), raw[1:])
    except NoteError as exc:
        raise NoteError("malformed verifier key: the key hash does not match") from exc


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 signer key. The seed never shows in ``repr``; :meth:`to_skey` is for the key ring only."""

    name: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise NoteError("invalid key name")
        if len(self.seed) != 32:
            raise NoteError("an Ed25519 seed is 32 bytes")

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A fresh random key."""
        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def verifier(self) -> Verifier:
        """The matching verifier key (publish its :attr:`Verifier.vkey`)."""
        return Verifier.from_public_key(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._private().sign(message)

    def to_skey(self) -> str:
        """``PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>``: secret; for storage in the key ring only."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_hash.hex()}+{encoded}"


def parse_skey(skey: str) -> Signer:
    """Parse a signer key ``PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>`` (split on at most 4 '+')."""
    parts = skey.split("+", 4) if isinstance(skey, str) else []
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("malformed signer key")
    name, hash_hex, key_b64 = parts[2], parts[3], parts[4]
    if not is_valid_name(name) or not _HEX8.fullmatch(hash_hex):
        raise NoteError("malformed signer key")
    try:
        raw = b64decode_strict(key_b64)
    except NoteError as exc:
        raise NoteError("malformed signer key") from exc
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("unsupported signer key: want Ed25519")
    signer = Signer(name, raw[1:])
    if signer.verifier.key_hash.hex() != hash_hex:
        raise NoteError("malformed signer key: the key hash does not match")
    return signer
