"""Files that appear whole or not at all: written to a hidden sibling, synced, renamed, folder synced.

A crash leaves the old file (or none) and at most a hidden ``.<name>.<random>.partial`` beside it, never a
half-written file under the real name.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

__all__ = ["write_atomically", "write_chunks_atomically"]


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (file mode ``mode``, default owner-only)."""
    write_chunks_atomically(path, [data], mode=mode)


def write_chunks_atomically(path: Path, chunks: Iterable[bytes], *, mode: int = 0o600) -> None:
    """Replace ``path`` with the concatenated ``chunks`` (see the module docstring)."""
    partial = path.parent / f".{path.name}.{secrets.token_hex(6)}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)
