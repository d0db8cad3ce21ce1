"""Per-person rows leave the engine in a keyed order, never in the order they came in.

An export sorted by e-mail address, written out row for row, lines up with the company's staff list: the
n-th row is the n-th person, pseudonym or not. So the engine orders its per-person output by a MAC of each
row's subject token (of the whole line where the output has no token) under a key derived from the run's
secret keys (``Tokenizer.row_order_key``): an order no one without the keys can predict, that differs with
every key epoch (and every report, for ``per_report`` policies), so rows do not align across runs, months
or key rotations; a rerun under the same keys writes the same bytes.

How, without holding every row in memory: pass 1 spools each batch split into 32 buckets by the first
character of the row's MAC (base32, so the buckets are in MAC order; the MACs are spooled beside the lines),
each bucket an
:class:`~odeus_compliance.policy.spool.EncryptedSpool`; pass 2 reads one bucket at a time, sorts its rows by
MAC and hands them on as one :class:`~odeus_compliance.policy.gated.SpooledBatch` (lines, line ends, class
numbers), so the k gate and the writer see ordered batches and memory holds one bucket (a 32nd of the rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, cast

import pyarrow as pa

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.bulktokens import hmac_tokens
from odeus_compliance.policy.gated import SpooledBatch
from odeus_compliance.policy.spool import EncryptedSpool

__all__ = ["ShuffledSpool"]

_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
_MAC_CHARS: Final = 16  # 80 bits: ties only between identical lines, whose order does not matter


class ShuffledSpool:
    """Append spooled batches in any order; read them back as batches in keyed-MAC order (once)."""

    def __init__(self, key: bytes, directory: Path | None = None) -> None:
        self._key = key
        self._directory = directory
        self._buckets: dict[int, EncryptedSpool] = {}

    def append(self, batch: SpooledBatch, keys: Any | None = None) -> None:
        """Spool one batch's rows into their buckets, ordered by a MAC of ``keys`` (one string per row: the
        subject tokens) or, without them, of each whole line."""
        rows = len(batch.line_ends)
        if rows == 0:
            return
        source = _lines(batch) if keys is None else keys
        macs = hmac_tokens(source, key=self._key, token_prefix="", chars=_MAC_CHARS)
        first = ac.utf8_slice_codeunits(macs, 0, 1)
        letters = cast("list[str]", ac.unique(first).to_pylist())  # a MAC is never null
        for letter in sorted(letters):
            bucket = _ALPHABET.index(letter)
            chosen = pa.array(ac.indices_nonzero_list(ac.equal(first, letter)), pa.int32())
            part = _take(batch, chosen)
            self._spool(bucket).append(_fixed(ac.take(macs, chosen)) + part.to_bytes())

    def _spool(self, bucket: int) -> EncryptedSpool:
        if bucket not in self._buckets:
            self._buckets[bucket] = EncryptedSpool(self._directory)
        return self._buckets[bucket]

    def batches(self) -> Iterator[SpooledBatch]:
        """Each bucket's rows as one batch, in MAC order; buckets in order."""
        for bucket in sorted(self._buckets):
            parts: list[SpooledBatch] = []
            macs: list[Any] = []
            for chunk in self._buckets[bucket].chunks():
                rows = int.from_bytes(chunk[:4], "little")
                body = pa.py_buffer(chunk)
                macs.append(_fixed_width(rows, body.slice(4, _MAC_CHARS * rows)))
                parts.append(SpooledBatch.from_bytes(chunk[4 + _MAC_CHARS * rows :]))
            self._buckets[bucket].close()
            order = ac.sort_indices(pa.concat_arrays(macs))
            yield _take(_concat(parts), order)

    def close(self) -> None:
        """Close (and so delete) every bucket."""
        for spool in self._buckets.values():
            spool.close()


def _fixed(macs: Any) -> bytes:
    """The MACs (each exactly _MAC_CHARS ASCII characters) as one block, prefixed with their count."""
    _validity, offsets, data = macs.buffers()
    begin = int.from_bytes(offsets.to_pybytes()[4 * macs.offset : 4 * macs.offset + 4], "little", signed=True)
    block: bytes = data.slice(begin, _MAC_CHARS * len(macs)).to_pybytes()
    return len(macs).to_bytes(4, "little") + block


def _fixed_width(rows: int, block: pa.Buffer) -> Any:
    """Back from :func:`_fixed`: the MACs as a string array over the block (no copy)."""
    offsets = pa.py_buffer(
        b"".join(i.to_bytes(4, "little") for i in range(0, _MAC_CHARS * rows + 1, _MAC_CHARS))
    )
    return pa.StringArray.from_buffers(rows, offsets, block)


def _lines(batch: SpooledBatch) -> Any:
    """The batch's lines as a string array (one per row)."""
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), batch.line_ends])
    return pa.StringArray.from_buffers(len(batch.line_ends), offsets.buffers()[1], batch.lines)


def _from_lines(lines: Any, classes: Any) -> SpooledBatch:
    """A batch from a string array of whole lines (one per row)."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    validity, offsets, data = lines.buffers()
    del validity  # lines are never null
    ends = pa.Int32Array.from_buffers(pa.int32(), len(lines), [None, offsets], offset=lines.offset + 1)
    start = pa.Int32Array.from_buffers(pa.int32(), 1, [None, offsets], offset=lines.offset)[0].as_py()
    end = ends[len(lines) - 1].as_py() if len(lines) else start
    body = data.slice(start, end - start) if data is not None else pa.py_buffer(b"")
    if start:
        ends = ac.subtract(ends, start)
    return SpooledBatch(body, ends, classes)


def _take(batch: SpooledBatch, rows: Any) -> SpooledBatch:
    return _from_lines(ac.take(_lines(batch), rows), ac.take(batch.classes, rows))


def _concat(parts: list[SpooledBatch]) -> SpooledBatch:
    if len(parts) == 1:
        return parts[0]
    lines = pa.concat_arrays([_lines(p) for p in parts])
    classes = pa.concat_arrays([p.classes for p in parts])
    return _from_lines(lines, classes)
