"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519, and verifier keys in ``vkey`` form.

Why this format: transparency logs sign their checkpoints with it (Go's ``golang.org/x/mod/sumdb/note``,
Sigstore, the witness network), so an auditor can check our checkpoints with off-the-shelf tools, and it lets
one note carry several signatures (key rotation, witness co-signatures) while verifiers ignore the ones they
do not know.

A note is ``<text>\\n<signature lines>``; ``<text>`` is non-empty UTF-8 ending in a newline, without ASCII
control characters other than newline. Each signature line is ``— <key name> <base64(key hash || signature)>``
(the dash is U+2014 EM DASH). For Ed25519 the key hash is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``
and the signature is Ed25519 over the text bytes. A verifier key is written
``<name>+<8 lowercase hex digits of the key hash>+<base64(0x01 || public key)>``; a signer key
``PRIVATE+KEY+<name>+<hash>+<base64(0x01 || 32-byte seed)>``.

Keys never appear in a ``repr`` or a message: :class:`Signer` hides its seed, messages name keys by
``name+hash`` only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Note",
    "NoteError",
    "NoteSignature",
    "Signer",
    "Verifier",
    "compute_key_hash",
    "open_note",
    "parse_note",
    "parse_skey",
    "parse_vkey",
    "sign_note",
]

ALG_ED25519: Final = 0x01
"""Signature algorithm byte for Ed25519 in key hashes and key encodings."""

MAX_SIGNATURES: Final = 100
"""More signature lines than this make a note malformed (as in Go's implementation)."""

MAX_NOTE_BYTES: Final = 1 << 16
"""Notes are small (a checkpoint is about 100 bytes); anything longer is refused before parsing."""

SIG_PREFIX: Final = "\u2014 "
_HEX8 = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """A note or key is malformed, unsigned by any known key, or carries a bad signature."""


def _is_valid_name(name: str) -> bool:
    """Key names: non-empty, no '+', no Unicode white space (so they fit in a signature line and a vkey)."""
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name) and _no_controls(name)


def _no_controls(text: str) -> bool:
    return not any(unicodedata.category(ch) == "Cc" for ch in text if ch != "\n")


def compute_key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte Ed25519 key hash: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _b64decode(text: str) -> bytes:
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
        if not _is_valid_name(self.name):
            raise NoteError("invalid key name")
        if len(self.public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")
        if self.key_hash != compute_key_hash(self.name, self.public_key):
            raise NoteError("the key hash does not match the key name and public key")

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> Verifier:
        """A verifier for ``public_key`` under ``name`` (the key hash is computed)."""
        if not _is_valid_name(name):
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
    if not _is_valid_name(name) or not _HEX8.fullmatch(hash_hex):
        raise NoteError("malformed verifier key: bad name or key hash")
    try:
        raw = _b64decode(key_b64)
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
        if not _is_valid_name(self.name):
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
    if not _is_valid_name(name) or not _HEX8.fullmatch(hash_hex):
        raise NoteError("malformed signer key")
    try:
        raw = _b64decode(key_b64)
    except NoteError as exc:
        raise NoteError("malformed signer key") from exc
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("unsupported signer key: want Ed25519")
    signer = Signer(name, raw[1:])
    if signer.verifier.key_hash.hex() != hash_hex:
        raise NoteError("malformed signer key: the key hash does not match")
    return signer


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the key name, the 4-byte key hash, the signature bytes (unverified)."""

    name: str
    key_hash: bytes
    signature: bytes

    @property
    def key_id(self) -> str:
        """``<name>+<hex key hash>``."""
        return f"{self.name}+{self.key_hash.hex()}"

    def line(self) -> str:
        """The signature line, with its trailing newline."""
        encoded = base64.b64encode(self.key_hash + self.signature).decode("ascii")
        return f"{SIG_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed note: its text and signature lines. :func:`parse_note` checks form only, not signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def message(self) -> str:
        """The note as sent: text, blank line, signature lines."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def _check_text(text: str) -> None:
    if not text or not text.endswith("\n"):
        raise NoteError("malformed note: the text must be non-empty and end with a newline")
    if not _no_controls(text):
        raise NoteError("malformed note: control characters in the text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("malformed note: the text is not valid UTF-8") from exc


def sign_note(text: str, *signers: Signer) -> str:
    """The signed note: ``text`` followed by a blank line and one signature line per signer."""
    _check_text(text)
    if not signers or len(signers) > MAX_SIGNATURES:
        raise NoteError("a note needs between 1 and 100 signers")
    message = text.encode("utf-8")
    sigs = tuple(NoteSignature(s.name, s.verifier.key_hash, s.sign(message)) for s in signers)
    return Note(text, sigs).message()


def parse_note(message: str | bytes) -> Note:  # noqa: PLR0912 - one rule per branch
    """Split a note into text and signature lines, checking the form strictly; signatures are not verified."""
    if isinstance(message, bytes):
        if len(message) > MAX_NOTE_BYTES:
            raise NoteError("malformed note: too long")
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("malformed note: not valid UTF-8") from exc
    if not isinstance(message, str) or len(message) > MAX_NOTE_BYTES:
        raise NoteError("malformed note")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("malformed note: not valid UTF-8") from exc
    if not _no_controls(message):
        raise NoteError("malformed note: control characters")
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no signature block")
    text, block = message[: split + 1], message[split + 2 :]
    _check_text(text)
    if not block or not block.endswith("\n"):
        raise NoteError("malformed note: the signature block must be non-empty and end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("malformed note: too many signatures")
    sigs: list[NoteSignature] = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise NoteError("malformed note: a signature line must start with an em dash and a space")
        name, sep, encoded = line[len(SIG_PREFIX) :].partition(" ")
        if not sep or not _is_valid_name(name) or not encoded:
            raise NoteError("malformed note: bad signature line")
        try:
            raw = _b64decode(encoded)
        except NoteError as exc:
            raise NoteError("malformed note: bad signature encoding") from exc
        if len(raw) < 5:
            raise NoteError("malformed note: signature too short")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    return Note(text, tuple(sigs))


def open_note(message: str | bytes, verifiers: Iterable[Verifier]) -> tuple[Note, tuple[Verifier, ...]]:
    """Parse ``message`` and verify it: returns the note and the known keys whose signature verified.

    Signatures by unknown keys are ignored (they may be witnesses or a rotated key). A signature by a known
    key that does not verify is an error, as is a note no known key signed, and a verifier list holding one
    name and hash twice ("ambiguous key", as in Go's VerifierList).
    """
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        slot = (v.name, v.key_hash)
        if slot in known:
            raise NoteError(f"ambiguous key {v.key_id}")
        known[slot] = v
    note = parse_note(message)
    text = note.text.encode("utf-8")
    verified: dict[tuple[str, bytes], Verifier] = {}
    for sig in note.signatures:
        found = known.get((sig.name, sig.key_hash))
        if found is None:
            continue
        if not found.verify(text, sig.signature):
            raise NoteError(f"invalid signature for key {found.key_id}")
        verified[(sig.name, sig.key_hash)] = found
    if not verified:
        raise NoteError("no known key signed the note")
    return note, tuple(verified.values())
