"""Sealed work copies: a file written in AES-256-GCM chunks under a key that is never written anywhere.

A report job's dataset (and its deflated copy) must sit in the data dir between the policy engine and the
renderer. Written in clear, a ``kill -9`` would leave per-person rows on disk until the next start; sealed,
what is left is ciphertext under a key that died with the process (the job holds it in memory and hands it
to its worker process through the pool's private pipe).

Format: a sequence of chunks ``<4-byte big-endian length><12-byte random nonce><ciphertext and tag>``; the
associated data binds each chunk to the file's label, its number and whether it is the last one, so chunks
cannot be reordered, dropped, swapped between files, or the file cut short without the read failing. With a
random nonce per chunk a key may seal several files (far below the 2^32 chunks one key allows).
"""

from __future__ import annotations

import secrets
import struct
from pathlib import Path
from typing import IO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["WORK_KEY_BYTES", "SealedFileError", "SealedWriter", "new_work_key", "read_sealed"]

WORK_KEY_BYTES: Final = 32
CHUNK_BYTES: Final = 1 << 20
_LENGTH: Final = struct.Struct(">I")
_NONCE_BYTES: Final = 12
_AD: Final = b"odeus-compliance/work-copy/v1"


class SealedFileError(Exception):
    """A sealed file does not open under its key: changed, cut short, or sealed under another key."""


def new_work_key() -> bytes:
    """A fresh random key for one job's work copies (keep it in memory only)."""
    return secrets.token_bytes(WORK_KEY_BYTES)


def _associated(label: bytes, number: int, *, last: bool) -> bytes:
    return b"%s\0%s\0%d\0%d" % (_AD, label, number, int(last))


class SealedWriter:
    """Buffers what is written and seals it in chunks into ``raw``; :meth:`finish` seals the last one."""

    def __init__(self, raw: IO[bytes], key: bytes, *, label: str) -> None:
        self._raw = raw
        self._aead = AESGCM(key)
        self._label = label.encode("utf-8")
        self._pending = bytearray()
        self._number = 0
        self._finished = False

    def write(self, data: bytes | memoryview) -> None:
        """Add ``data``; full chunks are sealed and written at once."""
        self._pending += data
        while len(self._pending) > CHUNK_BYTES:  # the last chunk is sealed by finish(), flagged as last
            self._seal(bytes(self._pending[:CHUNK_BYTES]), last=False)
            del self._pending[:CHUNK_BYTES]

    def finish(self) -> None:
        """Seal what is left as the last chunk (an empty file has one empty last chunk)."""
        if not self._finished:
            self._finished = True
            self._seal(bytes(self._pending), last=True)
            self._pending.clear()

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, chunk, _associated(self._label, self._number, last=last))
        self._raw.write(_LENGTH.pack(len(sealed)) + nonce)
        self._raw.write(sealed)
        self._number += 1


def read_sealed(path: Path, key: bytes) -> bytes:
    """The plain content of a file :class:`SealedWriter` wrote to ``path`` (its label is its name)."""
    aead = AESGCM(key)
    label = path.name.encode("utf-8")
    out = bytearray()
    with path.open("rb") as handle:
        number = 0
        while True:
            head = handle.read(_LENGTH.size + _NONCE_BYTES)
            if len(head) != _LENGTH.size + _NONCE_BYTES:
                raise SealedFileError("the sealed work copy ends early")
            (length,) = _LENGTH.unpack(head[: _LENGTH.size])
            sealed = handle.read(length)
            if len(sealed) != length:
                raise SealedFileError("the sealed work copy ends early")
            last = not handle.peek(1)  # the last chunk is the one the file ends with
            try:
                out += aead.decrypt(head[_LENGTH.size :], sealed, _associated(label, number, last=last))
            except InvalidTag:
                raise SealedFileError("the sealed work copy does not open under its key") from None
            if last:
                return bytes(out)
            number += 1
