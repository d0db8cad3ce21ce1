"""The artifact store: a report's files (``report.pdf``, ``report-full.pdf``, ``data.csv``, ``figures.json``),
encrypted at rest.

Encryption: AES-256-GCM under the current ``report-data`` key of the key ring (one epoch at a time), in
chunks of :data:`CHUNK_BYTES`. Each chunk is ``nonce (12) || ciphertext || tag`` with the report id, the
artifact name, the chunk's position and whether it is the last one as associated data, so a chunk moved to
another artifact or position, a dropped last chunk, or a flipped byte fails to open
(:class:`ArtifactCorrupt`). Destroying the ``report-data`` key of an epoch shreds every artifact stored
under it (:class:`ArtifactShredded`); that is how retention deletes reports for good.

Where the ciphertext lives (see docs/architecture.md, deployment modes):

- embedded default (SQLite): files ``<data dir>/reports/<report id>/<name>.enc``, written atomically
  (a hidden temporary file in the same folder, fsync, rename, fsync of the folder): a crash leaves the old
  file or none, never half of one.
- PostgreSQL (several replicas): rows of ``report_artifact_chunks``, all chunks of one artifact inserted in
  one transaction, so every replica reads what any replica stored.

File format: the line ``OCRA1 <key id>\\n``, then per chunk a 4-byte big-endian length and the chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from odeus_compliance.core.files import write_chunks_atomically
from odeus_compliance.db.models import ReportArtifactChunk
from odeus_compliance.errors import OdeusComplianceError
from odeus_compliance.keys.ring import KeyKind, KeyRing

__all__ = [
    "ARTIFACT_NAMES",
    "CHUNK_BYTES",
    "ArtifactCorrupt",
    "ArtifactMissing",
    "ArtifactShredded",
    "ArtifactStore",
    "ArtifactStoreError",
    "DatabaseChunks",
    "FileChunks",
    "StoredArtifact",
]

CHUNK_BYTES: Final = 1 << 20
ARTIFACT_NAMES: Final = frozenset({"report.pdf", "report-full.pdf", "data.csv", "figures.json"})
REPORT_ID: Final = re.compile(r"^rpt_[0-9a-f]{24}$")
_MAGIC: Final = b"OCRA1 "
_NONCE: Final = 12
_LENGTH: Final = 4
_AD_PREFIX: Final = b"odeus-compliance/report-artifact/v1\n"


class ArtifactStoreError(OdeusComplianceError):
    """An artifact cannot be stored or read; the message names the report and artifact, never content."""


class ArtifactMissing(ArtifactStoreError):
    """No such artifact."""


class ArtifactCorrupt(ArtifactStoreError):
    """The stored ciphertext fails its integrity check (altered, truncated or moved)."""


class ArtifactShredded(ArtifactStoreError):
    """The key the artifact was encrypted under was destroyed: the artifact is gone for good."""


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """What was stored: the key it is encrypted under, the plaintext's SHA-256 (hex) and size."""

    key_id: str
    sha256: str
    size: int


def _check_names(report_id: str, name: str) -> None:
    # both end up in a file path: only the shapes we make are accepted
    if not REPORT_ID.match(report_id):
        msg = "not a report id"
        raise ArtifactMissing(msg)
    if name not in ARTIFACT_NAMES:
        msg = f"unknown artifact name (one of {', '.join(sorted(ARTIFACT_NAMES))})"
        raise ArtifactMissing(msg)


def _ad(report_id: str, name: str, seq: int, *, last: bool, key_id: str) -> bytes:
    return _AD_PREFIX + f"{report_id}\n{name}\n{seq}\n{'last' if last else 'more'}\n{key_id}".encode()


def seal_chunks(data: bytes, *, key: bytes, key_id: str, report_id: str, name: str) -> list[bytes]:
    """``data`` as encrypted chunks (an empty artifact is one empty chunk, so "last" is always present)."""
    aead = AESGCM(key)
    pieces = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    sealed = []
    for seq, piece in enumerate(pieces):
        nonce = secrets.token_bytes(_NONCE)
        ad = _ad(report_id, name, seq, last=seq == len(pieces) - 1, key_id=key_id)
        sealed.append(nonce + aead.encrypt(nonce, piece, ad))
    return sealed


def open_chunk(
    blob: bytes, *, aead: AESGCM, key_id: str, report_id: str, name: str, seq: int, last: bool
) -> bytes:
    """One chunk's plaintext, or :class:`ArtifactCorrupt`."""
    try:
        return aead.decrypt(blob[:_NONCE], blob[_NONCE:], _ad(report_id, name, seq, last=last, key_id=key_id))
    except (InvalidTag, ValueError):
        msg = f"the stored {name} of report {report_id} failed its integrity check (altered or truncated)"
        raise ArtifactCorrupt(msg) from None


class ChunkBackend(Protocol):
    """Where the encrypted chunks live."""

    async def write(self, report_id: str, name: str, key_id: str, chunks: Sequence[bytes]) -> None:
        """Store all chunks of one artifact at once (replacing an earlier one), or nothing."""

    def read(self, report_id: str, name: str) -> AsyncGenerator[tuple[str, bytes, bool], None]:
        """``(key id, chunk, is last)`` in order; :class:`ArtifactMissing` if there is no such artifact."""

    async def exists(self, report_id: str, name: str) -> bool:
        """Whether the artifact is stored."""

    async def delete(self, report_id: str) -> None:
        """Remove every artifact of a report."""


class FileChunks:
    """Chunks in files under ``root`` (``root/<report id>/<name>.enc``), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, report_id: str, name: str) -> Path:
        """The file of one artifact."""
        return self.root / report_id / f"{name}.enc"

    async def write(self, report_id: str, name: str, key_id: str, chunks: Sequence[bytes]) -> None:
        await asyncio.to_thread(self._write, self.path(report_id, name), key_id, chunks)

    @staticmethod
    def _write(target: Path, key_id: str, chunks: Sequence[bytes]) -> None:
        target.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        framed = (part for chunk in chunks for part in (len(chunk).to_bytes(_LENGTH, "big"), chunk))
        write_chunks_atomically(target, itertools.chain([_MAGIC + key_id.encode("ascii") + b"\n"], framed))

    async def read(self, report_id: str, name: str) -> AsyncGenerator[tuple[str, bytes, bool], None]:
        path = self.path(report_id, name)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            msg = f"report {report_id} has no stored {name}"
            raise ArtifactMissing(msg) from None
        corrupt = f"the stored {name} of report {report_id} failed its integrity check (altered or truncated)"
        try:
            header = handle.readline(200)
            if not header.startswith(_MAGIC) or not header.endswith(b"\n"):
                raise ArtifactCorrupt(corrupt)
            key_id = header[len(_MAGIC) : -1].decode("ascii", "replace")
            pending = await asyncio.to_thread(self._next, handle, corrupt)
            while pending is not None:
                following = await asyncio.to_thread(self._next, handle, corrupt)
                yield key_id, pending, following is None
                pending = following
        finally:
            handle.close()

    @staticmethod
    def _next(handle: BinaryIO, corrupt: str) -> bytes | None:
        prefix = handle.read(_LENGTH)
        if not prefix:
            return None
        if len(prefix) != _LENGTH:
            raise ArtifactCorrupt(corrupt)
        size = int.from_bytes(prefix, "big")
        if size > CHUNK_BYTES + _NONCE + 16:
            raise ArtifactCorrupt(corrupt)
        blob = handle.read(size)
        if len(blob) != size:
            raise ArtifactCorrupt(corrupt)
        return blob

    async def exists(self, report_id: str, name: str) -> bool:
        return await asyncio.to_thread(self.path(report_id, name).is_file)

    async def delete(self, report_id: str) -> None:
        def remove() -> None:
            folder = self.root / report_id
            if folder.is_dir():
                for child in folder.iterdir():
                    child.unlink(missing_ok=True)
                folder.rmdir()

        await asyncio.to_thread(remove)


class DatabaseChunks:
    """Chunks as rows of ``report_artifact_chunks``: the store every replica shares (PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def write(self, report_id: str, name: str, key_id: str, chunks: Sequence[bytes]) -> None:
        table = ReportArtifactChunk
        async with self.sessions() as session, session.begin():
            await session.execute(delete(table).where(table.report_id == report_id, table.name == name))
            for seq, chunk in enumerate(chunks):  # one row at a time: a chunk may be a megabyte
                await session.execute(
                    insert(table).values(report_id=report_id, name=name, seq=seq, key_id=key_id, data=chunk)
                )

    async def read(self, report_id: str, name: str) -> AsyncGenerator[tuple[str, bytes, bool], None]:
        table = ReportArtifactChunk
        async with self.sessions() as session:
            count = len(
                (
                    await session.execute(
                        select(table.seq).where(table.report_id == report_id, table.name == name)
                    )
                ).all()
            )
            if count == 0:
                msg = f"report {report_id} has no stored {name}"
                raise ArtifactMissing(msg)
            for seq in range(count):  # chunk by chunk: memory holds one chunk, not the artifact
                row = (
                    await session.execute(
                        select(table.key_id, table.data).where(
                            table.report_id == report_id, table.name == name, table.seq == seq
                        )
                    )
                ).first()
                if row is None:
                    msg = f"the stored {name} of report {report_id} is missing a part"
                    raise ArtifactCorrupt(msg)
                yield row[0], row[1], seq == count - 1

    async def exists(self, report_id: str, name: str) -> bool:
        table = ReportArtifactChunk
        async with self.sessions() as session:
            found = await session.scalar(
                select(table.seq).where(table.report_id == report_id, table.name == name).limit(1)
            )
        return found is not None

    async def delete(self, report_id: str) -> None:
        table = ReportArtifactChunk
        async with self.sessions() as session, session.begin():
            await session.execute(delete(table).where(table.report_id == report_id))


class ArtifactStore:
    """Encrypted artifacts of reports over a :class:`ChunkBackend` (see the module docstring)."""

    def __init__(self, *, ring: KeyRing, backend: ChunkBackend) -> None:
        self.ring = ring
        self.backend = backend

    @classmethod
    def for_database(
        cls, *, ring: KeyRing, sessions: async_sessionmaker[AsyncSession], data_dir: Path, dialect: str
    ) -> ArtifactStore:
        """Rows in the database on PostgreSQL (shared by replicas), files in the data dir on SQLite."""
        backend: ChunkBackend = (
            DatabaseChunks(sessions) if dialect == "postgresql" else FileChunks(data_dir / "reports")
        )
        return cls(ring=ring, backend=backend)

    async def put(self, report_id: str, name: str, data: bytes) -> StoredArtifact:
        """Encrypt and store ``data`` as ``name`` of the report (all or nothing)."""
        _check_names(report_id, name)
        key = await self.ring.current_data_key(KeyKind.REPORT_DATA)
        chunks = await asyncio.to_thread(
            seal_chunks, data, key=key.key, key_id=key.key_id, report_id=report_id, name=name
        )
        await self.backend.write(report_id, name, key.key_id, chunks)
        return StoredArtifact(key.key_id, hashlib.sha256(data).hexdigest(), len(data))

    async def open(self, report_id: str, name: str) -> AsyncIterator[bytes]:
        """The artifact's plaintext in chunks; raises (at the first chunk) if missing, shredded or altered.

        A consumer that streams it out must treat it like an export stream: only the end of the iteration
        proves the whole artifact was intact (a later chunk can still fail).
        """
        _check_names(report_id, name)
        aead: AESGCM | None = None
        opened_key: str | None = None
        seq = 0
        # closed explicitly: the database backend holds a connection until its generator ends, and a chunk
        # that fails to open must not leave that to the garbage collector
        async with contextlib.aclosing(self.backend.read(report_id, name)) as chunks:
            async for key_id, blob, last in chunks:
                if aead is None or key_id != opened_key:
                    key = await self.ring.data_key(key_id)
                    if key is None:
                        msg = f"the {name} of report {report_id} was shredded (its key was destroyed)"
                        raise ArtifactShredded(msg)
                    aead, opened_key = AESGCM(key.key), key_id
                yield open_chunk(
                    blob, aead=aead, key_id=key_id, report_id=report_id, name=name, seq=seq, last=last
                )
                seq += 1

    async def read(self, report_id: str, name: str) -> bytes:
        """The whole artifact in memory (for small ones, and tests)."""
        return b"".join([chunk async for chunk in self.open(report_id, name)])

    async def exists(self, report_id: str, name: str) -> bool:
        """Whether the artifact is stored (it may still be shredded or corrupt: :meth:`open` says)."""
        _check_names(report_id, name)
        return await self.backend.exists(report_id, name)

    async def delete(self, report_id: str) -> None:
        """Remove every artifact of the report (a failed job's leftovers)."""
        if REPORT_ID.match(report_id):
            await self.backend.delete(report_id)
