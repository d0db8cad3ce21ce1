"""Tokens for a whole column at once: HMAC per distinct value, base32 for all of them in Arrow.

The per-value work that cannot be vectorised is the HMAC itself (see
:func:`odeus_compliance.policy.crypto.hmac_sha256_function`). The base32 text of every MAC is then
computed by Arrow kernels over the concatenated MACs, because Python's ``b32encode`` is pure Python
and would cost more than the MACs. The result equals
:func:`odeus_compliance.policy.crypto.format_token` for every MAC; a test checks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as _compute

from odeus_compliance.policy.crypto import TOKEN_CHARS

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code; checked by tests

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_WORDS = 5  # the token's 130 bits lie in the MAC's first five 32-bit words
_CHUNK_BITS = 20  # one lookup gives four characters
assert TOKEN_CHARS == 26


class Base32Tokens:
    """Formats many MACs as tokens at once. Holds two lookup tables; build one per run, not per batch."""

    __slots__ = ("_pairs", "_quads")

    def __init__(self) -> None:
        self._pairs = pa.array([a + b for a in _ALPHABET for b in _ALPHABET], pa.string())
        index = pa.array(range(1 << _CHUNK_BITS), pa.uint32())
        high = pc.take(self._pairs, pc.shift_right(index, 10))
        low = pc.take(self._pairs, pc.bit_wise_and(index, 0x3FF))
        self._quads = pc.binary_join_element_wise(high, low, "")

    def tokens(self, macs: Sequence[bytes], *, prefix: str) -> pa.StringArray:
        """``<prefix><first 26 base32 characters of the MAC, lower-case>`` for every MAC."""
        count = len(macs)
        if count == 0:
            empty: Any = pa.array([], pa.string())
            return cast("pa.StringArray", empty)
        data = b"".join(macs)
        width = len(macs[0]) // 4
        if width < _WORDS or len(data) != count * width * 4:
            msg = "every MAC must have the same length, at least 20 bytes"
            raise ValueError(msg)
        flat: Any = pa.UInt32Array.from_buffers(pa.uint32(), count * width, [None, pa.py_buffer(data)])
        rows = pa.FixedSizeListArray.from_arrays(flat, width)
        words = [pc.cast(_byte_swapped(pc.list_element(rows, i)), pa.uint64()) for i in range(_WORDS)]
        # words[i] holds bits [32 i, 32 i + 32) of the MAC; a pair covers 64 bits from 32 i.
        pairs = [pc.bit_wise_or(pc.shift_left(words[i], 32), words[i + 1]) for i in range(_WORDS - 1)]
        pieces: list[Any] = [pa.scalar(prefix, pa.string())] if prefix else []
        for start, bits, table in (
            (0, 20, self._quads),
            (20, 20, self._quads),
            (40, 20, self._quads),
            (60, 20, self._quads),
            (80, 20, self._quads),
            (100, 20, self._quads),
            (120, 10, self._pairs),
        ):
            word = min(start // 32, _WORDS - 2)
            shift = 64 - (start - 32 * word) - bits
            index = pc.bit_wise_and(pc.shift_right(pairs[word], shift), (1 << bits) - 1)
            pieces.append(pc.take(table, index))
        return cast("pa.StringArray", pc.binary_join_element_wise(*pieces, ""))


def _byte_swapped(word: Any) -> Any:
    """A little-endian 32-bit word read as big-endian (the MAC's byte order)."""
    return pc.bit_wise_or(
        pc.bit_wise_or(
            pc.shift_left(pc.bit_wise_and(word, 0xFF), 24), pc.shift_left(pc.bit_wise_and(word, 0xFF00), 8)
        ),
        pc.bit_wise_or(pc.bit_wise_and(pc.shift_right(word, 8), 0xFF00), pc.shift_right(word, 24)),
    )
