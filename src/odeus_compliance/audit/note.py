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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from odeus_compliance.keys.note_keys import (
    ALG_ED25519,
    NoteError,
    Signer,
    Verifier,
    b64decode_strict,
    compute_key_hash,
    is_valid_name,
    no_controls,
    parse_skey,
    parse_vkey,
)

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

MAX_SIGNATURES: Final = 100
"""More signature lines than this make a note malformed (as in Go's implementation)."""

MAX_NOTE_BYTES: Final = 1 << 16
"""Notes are small (a checkpoint is about 100 bytes); anything longer is refused before parsing."""

SIG_PREFIX: Final = "\u2014 "


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
    if not no_controls(text):
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
    if not no_controls(message):
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
        if not sep or not is_valid_name(name) or not encoded:
            raise NoteError("malformed note: bad signature line")
        try:
            raw = b64decode_strict(encoded)
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
