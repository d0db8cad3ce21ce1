"""Tokens for a whole column at once: HMAC per distinct value, base32 for all of them in Arrow.

The per-value work that cannot be vectorised is the HMAC itself (see
:func:`odeus_compliance.policy.crypto.hmac_sha256_function`). The base32 text of every MAC is then
computed by Arrow kernels over the concatenated MACs, because Python's ``b32encode`` is pure Python
and would cost more than the MACs. The result equals
:func:`odeus_compliance.policy.crypto.format_token` for every MAC; a test checks it.

How, in fixed width (no string kernel until the prefix): the MACs' first 24 bytes as three big-endian
64-bit words per MAC (the standard library's ``array`` swaps the bytes in C); the token's 130 bits as 13
ten-bit numbers; each looked up in a 1,024-entry table of two-character pairs held as ``uint16`` (two bytes
of text each), in token order. The looked-up values' buffer *is* the text of all tokens, 26 bytes each, so
it becomes a string array without a copy.
"""

from __future__ import annotations

import array
import sys
from collections.abc import Sequence
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as _compute

from odeus_compliance.policy.crypto import TOKEN_CHARS

pc: Any = _compute  # the stubs' overloads do not fit mixed Array/Scalar code; checked by tests

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_PAIRS = 13  # ten-bit numbers (two characters each) per token
_WORDS = 3  # the token's 130 bits lie in the MAC's first three 64-bit words
assert TOKEN_CHARS == 2 * _PAIRS


def _u64(value: int) -> Any:
    return pa.scalar(value, pa.uint64())


_MASK = _u64(0x3FF)
# bits [10 k, 10 k + 10) of the MAC: pairs 0-5 in word 0, 7-11 in word 1; 6 and 12 straddle two words
_SHIFTS_0 = tuple(_u64(54 - 10 * k) for k in range(6))
_SHIFTS_1 = tuple(_u64(118 - 10 * k) for k in range(7, 12))


class Base32Tokens:
    """Formats many MACs as tokens at once. Holds the lookup table; build one per run, not per batch."""

    __slots__ = ("_counting", "_table")

    def __init__(self) -> None:
        pairs = b"".join((a + b).encode("ascii") for a in _ALPHABET for b in _ALPHABET)
        self._table = pa.UInt16Array.from_buffers(pa.uint16(), len(pairs) // 2, [None, pa.py_buffer(pairs)])
        self._counting: Any = pa.array([], pa.int32())  # 0, 1, 2, ...: grown to the largest batch

    def _layout(self, count: int) -> tuple[Any, pa.Buffer]:
        """For ``count`` tokens: the order that puts the 13 pair columns row by row, and the offsets."""
        size = _PAIRS * count + 1
        # One read of the shared table: threads formatting at once may each replace it, and a
        # replacement built for a smaller batch must not be sliced for this one.
        counting = self._counting
        if len(counting) < size:
            grown = max(size, 2 * len(counting))
            numbers = pa.py_buffer(array.array("i", range(grown)))
            counting = pa.Int32Array.from_buffers(pa.int32(), grown, [None, numbers])
            self._counting = counting
        positions = counting.slice(0, _PAIRS * count)
        rows = pc.divide(positions, _PAIRS)  # integer division
        order = pc.add(pc.multiply(pc.subtract(positions, pc.multiply(rows, _PAIRS)), count), rows)
        offsets: Any = pc.multiply_checked(counting.slice(0, count + 1), pa.scalar(TOKEN_CHARS, pa.int32()))
        return order, offsets.buffers()[1]

    def tokens(self, macs: Sequence[bytes], *, prefix: str) -> pa.StringArray:
        """``<prefix><first 26 base32 characters of the MAC, lower-case>`` for every MAC."""
        count = len(macs)
        if count == 0:
            empty: Any = pa.array([], pa.string())
            return cast("pa.StringArray", empty)
        data = b"".join(macs)
        width = len(macs[0]) // 8
        if width < _WORDS or len(macs[0]) % 8 or len(data) != count * width * 8:
            msg = "every MAC must have the same length, a multiple of 8 bytes and at least 24"
            raise ValueError(msg)
        words = array.array("Q", data)
        if sys.byteorder == "little":
            words.byteswap()  # the MAC's bits run big-endian
        view = memoryview(words)
        w0, w1, w2 = (
            pa.UInt64Array.from_buffers(pa.uint64(), count, [None, pa.py_buffer(view[i::width].tobytes())])
            for i in range(_WORDS)
        )
        parts: list[Any] = [pc.bit_wise_and(pc.shift_right(w0, shift), _MASK) for shift in _SHIFTS_0]
        parts.append(
            pc.bit_wise_or(
                pc.shift_left(pc.bit_wise_and(w0, _u64(0xF)), _u64(6)), pc.shift_right(w1, _u64(58))
            )
        )
        parts += [pc.bit_wise_and(pc.shift_right(w1, shift), _MASK) for shift in _SHIFTS_1]
        parts.append(
            pc.bit_wise_or(
                pc.shift_left(pc.bit_wise_and(w1, _u64(0xFF)), _u64(2)), pc.shift_right(w2, _u64(62))
            )
        )
        order, offsets = self._layout(count)
        chars: Any = pc.take(self._table, pc.take(pa.concat_arrays(parts), order))
        text: Any = pa.StringArray.from_buffers(count, offsets, chars.buffers()[1])
        if prefix:
            text = pc.binary_join_element_wise(prefix, text, "")
        return cast("pa.StringArray", text)
