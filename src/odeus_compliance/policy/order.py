"""Per-person rows leave the engine in a keyed order, never in the order they came in.

An export sorted by e-mail address, written out row for row, lines up with the company's staff list: the
n-th row is the n-th person, pseudonym or not. So the engine orders its per-person output by a MAC of each
line under a key derived from the run's secret keys (``Tokenizer.row_order_key``): an order no one
without the keys can predict, that differs with every key epoch (and every report, for ``per_report``
policies), and that a month's different lines scatter anew, so rows do not align across runs, months or
key rotations; a rerun under the same keys writes the same bytes.

How, without holding every row in memory: pass 1 spools each batch split into 32 buckets by the first
character of the line's MAC (base32, so the buckets are in MAC order), each bucket an
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

    def _macs(self, batch: SpooledBatch) -> Any:
        return hmac_tokens(_lines(batch), key=self._key, token_prefix="", chars=_MAC_CHARS)

    def append(self, batch: SpooledBatch) -> None:
        """Spool one batch's rows into their buckets."""
        rows = len(batch.line_ends)
        if rows == 0:
            return
        macs = self._macs(batch)
        first = ac.utf8_slice_codeunits(macs, 0, 1)
        letters = cast("list[str]", ac.unique(first).to_pylist())  # a MAC is never null
        for letter in sorted(letters):
            bucket = _ALPHABET.index(letter)
            chosen = ac.indices_nonzero_list(ac.equal(first, letter))
            self._spool(bucket).append(_take(batch, pa.array(chosen, pa.int32())).to_bytes())

    def _spool(self, bucket: int) -> EncryptedSpool:
        if bucket not in self._buckets:
            self._buckets[bucket] = EncryptedSpool(self._directory)
        return self._buckets[bucket]

    def batches(self) -> Iterator[SpooledBatch]:
        """Each bucket's rows as one batch, in MAC order; buckets in order."""
        for bucket in sorted(self._buckets):
            parts = [SpooledBatch.from_bytes(chunk) for chunk in self._buckets[bucket].chunks()]
            self._buckets[bucket].close()
            whole = _concat(parts)
            order = ac.sort_indices(self._macs(whole))
            yield _take(whole, order)

    def close(self) -> None:
        """Close (and so delete) every bucket."""
        for spool in self._buckets.values():
            spool.close()


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
