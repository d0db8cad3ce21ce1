"""The leak scan's keys as 64-bit hashes (``native/leak_keys.c``): fixed width, so a million names' keys fit
in a few dozen megabytes and are compared with Arrow's integer hash lookup instead of as text.

The hash is not cryptographic and need not be: it only tests set membership inside one process. Equal keys
always have equal hashes, so a key that occurs in the output is always found; two different keys with the
same hash can only make the scan report a leak that is not there (a false alarm that fails the run, never
a missed leak). The seed is drawn per process, so no one can choose texts that collide on purpose, and with
n identifying keys and m output keys a false alarm has a chance of about n * m / 2^64 (10^-9 for ten
million keys against a thousand output keys).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pyarrow as pa

from odeus_compliance.native.library import native_library, string_buffers
from odeus_compliance.policy import arrow_compute as ac

__all__ = ["KEY_BYTES_PER_BYTE", "SEED", "identifying_key_hashes", "text_hashes"]

SEED = int.from_bytes(os.urandom(8), sys.byteorder)
"""The hashes' seed, one per process (hashes are never kept beyond it)."""
KEY_BYTES_PER_BYTE = 16  # as in native/leak_keys.c: the most room one value's keys take per byte of it
_HASHES_PER_VALUE_GUESS = 8  # what to make room for at first (about 3 to 5 keys per value)
_RECENT_SLOTS = 1 << 14  # hashes remembered to give each at most once per call (most repeats are names')


def text_hashes(strings: pa.Array[Any]) -> pa.Array[Any]:
    """Each string's hash (``uint64``; a null gives 0, so pass none where 0 could matter)."""
    cells = string_buffers(strings)
    out = pa.allocate_buffer(max(8 * len(strings), 8))
    native_library().odeus_text_hashes(
        cells.offsets, cells.data, cells.validity, cells.bit_offset, len(strings), SEED, out.address
    )
    return pa.UInt64Array.from_buffers(pa.uint64(), len(strings), [None, out])


def identifying_key_hashes(
    text: pa.Array[Any], *, min_chars: int, min_digits: int, skeletons: bool, placeholders: pa.Array[Any]
) -> pa.Array[Any]:
    """The hashes of the keys ``odeus_leak_keys`` makes of ``text`` (folded values, punctuation kept), with
    the same parameters; made one value at a time, so only the hashes take memory. Most repeats are left
    out (a key's hash recently given again), none of the distinct ones."""
    count = len(text)
    if not count:
        return pa.array([], pa.uint64())
    longest = max(int(ac.max(ac.binary_length(text)).as_py() or 0), 1)
    scratch_capacity = KEY_BYTES_PER_BYTE * longest + 16
    scratch = pa.allocate_buffer(scratch_capacity)
    scratch_offsets = pa.allocate_buffer(4 * (scratch_capacity // max(min_chars, 1) + 2))
    cells = string_buffers(text)
    kept = string_buffers(placeholders)
    most_per_value = KEY_BYTES_PER_BYTE * longest // max(min_chars, 1) + 1
    parts: list[pa.Array[Any]] = []
    done = 0
    done_buffer = pa.allocate_buffer(8)
    recent = pa.py_buffer(bytearray(8 * _RECENT_SLOTS))  # zeroed
    while done < count:
        rest = count - done
        capacity = max(_HASHES_PER_VALUE_GUESS * rest, most_per_value)
        out = pa.allocate_buffer(8 * capacity, None, resizable=True)
        made = native_library().odeus_leak_key_hashes(
            cells.offsets + 4 * done, cells.data, cells.validity, cells.bit_offset + done, rest,
            min_chars, min_digits, int(skeletons), kept.offsets, kept.data, len(placeholders), SEED,
            scratch.address, scratch_capacity, scratch_offsets.address, out.address, capacity,
            recent.address, _RECENT_SLOTS, done_buffer.address,
        )  # fmt: skip
        read = int.from_bytes(done_buffer.to_pybytes(), sys.byteorder)
        out.resize(max(8 * made, 8), shrink_to_fit=True)
        parts.append(pa.UInt64Array.from_buffers(pa.uint64(), made, [None, out]))
        done += read
    return parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
