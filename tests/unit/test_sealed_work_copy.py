"""Sealed work copies (:mod:`odeus_compliance.policy.sealed`) and the CSV sink writing them: nothing in clear
on disk, the plain bytes back under the job's key, and a changed, cut or foreign file refused."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import pyarrow as pa
import pytest

from odeus_compliance.policy.csvout import CsvSink
from odeus_compliance.policy.sealed import (
    CHUNK_BYTES,
    SealedFileError,
    SealedWriter,
    new_work_key,
    read_sealed,
)


def sealed(path: Path, data: bytes, key: bytes) -> None:
    with path.open("wb") as raw:
        writer = SealedWriter(raw, key, label=path.name)
        writer.write(data[: len(data) // 3])
        writer.write(memoryview(data)[len(data) // 3 :])
        writer.finish()


@pytest.mark.parametrize("size", [0, 10, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 7])
def test_round_trip(tmp_path: Path, size: int) -> None:
    key = new_work_key()
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "dataset.csv"
    sealed(path, data, key)
    assert read_sealed(path, key) == data
    if size:
        assert data[:64] not in path.read_bytes()


def test_changed_cut_renamed_or_foreign_files_are_refused(tmp_path: Path) -> None:
    key = new_work_key()
    data = b"user,department\n" * (CHUNK_BYTES // 4)  # four chunks
    path = tmp_path / "dataset.csv"
    sealed(path, data, key)
    raw = path.read_bytes()
    with pytest.raises(SealedFileError):
        read_sealed(path, new_work_key())
    flipped = bytearray(raw)
    flipped[100] ^= 1
    path.write_bytes(bytes(flipped))
    with pytest.raises(SealedFileError):
        read_sealed(path, key)
    first_chunk = 4 + 12 + CHUNK_BYTES + 16
    path.write_bytes(raw[: 2 * first_chunk])  # the last chunk dropped: the one now last is not marked so
    with pytest.raises(SealedFileError):
        read_sealed(path, key)
    path.write_bytes(raw[:-5])
    with pytest.raises(SealedFileError):
        read_sealed(path, key)
    other = tmp_path / "dataset.csv.deflate"
    other.write_bytes(raw)  # the label is the name: a work copy does not open as another one
    with pytest.raises(SealedFileError):
        read_sealed(other, key)


def test_a_keyed_sink_writes_no_plain_text(tmp_path: Path) -> None:
    key = new_work_key()
    target, packed = tmp_path / "dataset.csv", tmp_path / "dataset.csv.deflate"
    sink = CsvSink(target, deflated=packed, key=key)
    sink.write_header(["user", "department"])
    batch = pa.RecordBatch.from_pydict({"user": ["u1_abc", "u1_def"], "department": ["Sales", "Legal"]})
    sink.write(batch, text_columns=frozenset({"user", "department"}))
    sink.commit()
    plain = read_sealed(target, key)
    assert plain == b"user,department\nu1_abc,Sales\nu1_def,Legal\n"
    assert (sink.bytes, sink.sha256) == (len(plain), hashlib.sha256(plain).hexdigest())
    for path in (target, packed):
        assert b"department" not in path.read_bytes()
    assert zlib.decompress(read_sealed(packed, key)) == plain
