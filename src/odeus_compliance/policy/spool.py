"""An encrypted spool: the engine's transformed batches kept on disk between its two passes, never in clear.

Each chunk (a batch as :class:`~odeus_compliance.policy.gated.SpooledBatch` makes it) is sealed with
AES-256-GCM under a key that exists only in this object's memory (random per run, never written anywhere),
with the chunk number as nonce and associated
data, so chunks cannot be reordered, dropped or swapped without the read failing. The file is anonymous
(``O_TMPFILE``) where the system allows it, so nothing is left behind even if the process is killed; else
it is unlinked as soon as it is open. What is spooled is already pseudonymised, and still encrypted.
"""

from __future__ import annotations

import os
import secrets
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_LENGTH = struct.Struct(">Q")
_AD = b"odeus-compliance/spool/v1"


def anonymous_file(directory: Path | None) -> IO[bytes]:
    """A read-write temporary file without a name (``O_TMPFILE``), or one unlinked right away."""
    folder = str(directory) if directory is not None else tempfile.gettempdir()
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            fd = os.open(folder, flag | os.O_RDWR, 0o600)
        except OSError:
            pass
        else:
            return os.fdopen(fd, "w+b")
    return tempfile.TemporaryFile(dir=folder)


class EncryptedSpool:
    """Append chunks, then read them back in order (once)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._file = anonymous_file(directory)
        self._aead = AESGCM(secrets.token_bytes(32))
        self._written = 0
        self.bytes = 0

    def __enter__(self) -> EncryptedSpool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close (and so delete) the spool file."""
        self._file.close()

    def append(self, chunk: bytes) -> None:
        """Seal and write one chunk."""
        sealed = self._aead.encrypt(self._nonce(self._written), chunk, _AD)
        self._file.write(_LENGTH.pack(len(sealed)))
        self._file.write(sealed)
        self._written += 1
        self.bytes += len(sealed) + _LENGTH.size

    def chunks(self) -> Iterator[bytes]:
        """The chunks in the order written; a tampered or cut spool raises ``InvalidTag``/``EOFError``."""
        self._file.flush()
        self._file.seek(0)
        for number in range(self._written):
            header = self._file.read(_LENGTH.size)
            if len(header) != _LENGTH.size:
                raise EOFError("the spool ended early")
            (length,) = _LENGTH.unpack(header)
            sealed = self._file.read(length)
            if len(sealed) != length:
                raise EOFError("the spool ended early")
            yield self._aead.decrypt(self._nonce(number), sealed, _AD)

    @staticmethod
    def _nonce(number: int) -> bytes:
        return number.to_bytes(12, "big")
