"""The fold of :mod:`.text_fold` for a whole Arrow column at once, in native code (``native/fold_texts.c``).

Identifying values are many (a million names in a large export), and names in other scripts are common, so
folding them one by one in Python dominated the leak scan. The native pass looks each code point up in a
table that Python fills on first sight of the code point (:func:`~.text_fold.fold` decides, so both paths
give the same words); a value holding a code point the table cannot hold (beyond :data:`SLOTS`, or folding
to more than :data:`SLOT` bytes) is folded in Python.

The other spellings of :func:`~.text_fold.other_spellings` are made in Arrow for the values that have
them: each respelt letter is first marked (``ä`` as ``a\\x01e\\x02``), then each spelling keeps or drops
the marked letter of each occurrence in turn.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any

import pyarrow as pa

from odeus_compliance.native.library import native_library, string_buffers
from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.text_fold import (
    GREEK_OU,
    RESPELT,
    RESPELT_VARIED,
    TRANSLITERATED,
    fold,
    fold_keeping_punctuation,
)

__all__ = ["SLOT", "SLOTS", "fold_column", "other_spellings_column"]

SLOTS = 0x20000  # the Basic and Supplementary Multilingual Planes
SLOT = 8  # as in native/fold_texts.c
_UNKNOWN, _TOO_LONG = 255, 254
_MISSING_AT_ONCE = 4096
_FIRST_MARK = "^([^\x01]*)\x01([a-z])\x02"  # the first marked respelling left in a value
_ANY_MARK = "\x01([a-z])\x02"
_ONE_RESPELT = "[" + "".join(RESPELT) + "]"
_RESPELLABLE = _ONE_RESPELT + "|[aouAOU]\u0308|[aA]\u030a"  # NFC or decomposed


class _Table:
    """Per code point its fold (ASCII, at most :data:`SLOT` bytes), filled as code points are first seen.

    Filled under a lock; native readers on other threads see a slot's length byte change from unknown only
    after its bytes are written."""

    def __init__(self) -> None:
        self.lengths = bytearray(b"\xff") * SLOTS
        self.data = bytearray(SLOTS * SLOT)
        self.lengths_address = pa.py_buffer(self.lengths).address
        self.data_address = pa.py_buffer(self.data).address
        self._lock = threading.Lock()

    def fill(self, code_points: list[int]) -> None:
        with self._lock:
            for code_point in code_points:
                if self.lengths[code_point] != _UNKNOWN:
                    continue
                folded = chr(code_point).translate(TRANSLITERATED).encode("ascii")
                if len(folded) > SLOT:
                    self.lengths[code_point] = _TOO_LONG
                    continue
                self.data[code_point * SLOT : code_point * SLOT + len(folded)] = folded
                self.lengths[code_point] = len(folded)


@functools.cache
def _table() -> _Table:
    return _Table()


def fold_column(text: pa.Array[Any], *, keep_punctuation: bool = False) -> pa.Array[Any]:
    """Each value folded to lower-case ASCII letters, digits and spaces (as :func:`~.text_fold.fold`, though
    separators may come as several spaces; with ``keep_punctuation`` as
    :func:`~.text_fold.fold_keeping_punctuation`); nulls stay null."""
    table = _table()
    count = len(text)
    cells = string_buffers(text)
    while True:
        out_data = pa.allocate_buffer(max(4 * cells.data_size, 1), None, resizable=True)
        out_offsets = pa.allocate_buffer(4 * (count + 1))
        unresolved = pa.allocate_buffer(max(count, 1))
        missing = pa.allocate_buffer(4 * _MISSING_AT_ONCE)
        missing_count = pa.allocate_buffer(8)
        seen = pa.py_buffer(bytearray(SLOTS // 8))  # zeroed: which unknown code points were reported
        flagged = native_library().odeus_fold_texts(
            cells.offsets, cells.data, cells.validity, cells.bit_offset, count,
            table.lengths_address, table.data_address, SLOTS, int(keep_punctuation),
            out_data.address, out_offsets.address, unresolved.address,
            missing.address, _MISSING_AT_ONCE, missing_count.address, seen.address,
        )  # fmt: skip
        found = int.from_bytes(missing_count.to_pybytes(), sys.byteorder)
        if not found:
            break
        raw = missing.to_pybytes()[: 4 * found]
        table.fill([int.from_bytes(raw[i : i + 4], sys.byteorder) for i in range(0, len(raw), 4)])
    used = int.from_bytes(out_offsets.slice(4 * count, 4).to_pybytes(), sys.byteorder)
    out_data.resize(max(used, 1), shrink_to_fit=True)
    validity = text.buffers()[0] if text.null_count and text.offset == 0 else None
    folded: Any = pa.StringArray.from_buffers(count, out_offsets, out_data, validity)
    if text.null_count and validity is None:
        folded = ac.if_else(ac.is_null(text), pa.scalar(None, pa.string()), folded)
    if flagged:
        flags: Any = ac.cast(pa.UInt8Array.from_buffers(pa.uint8(), count, [None, unresolved]), pa.bool_())
        originals: list[str | None] = ac.filter(text, flags).to_pylist()
        slow_fold = fold_keeping_punctuation if keep_punctuation else fold
        slow = pa.array([None if v is None else slow_fold(v) for v in originals], pa.string())
        folded = ac.replace_with_mask(folded, flags, slow)
    result: pa.Array[Any] = folded
    return result


def other_spellings_column(text: pa.Array[Any]) -> pa.Array[Any]:
    """The folds (keeping punctuation) of :func:`~.text_fold.other_spellings` of every value that has one, in
    Arrow (any order).

    Only the values that can have one are respelt (and brought to NFC first): most have no letter of
    :data:`~.text_fold.RESPELT`, decomposed or not, and no Greek omicron-upsilon. Each such value is respelt
    in full; only the few with two letters or more are also respelt letter by letter."""
    respellable = ac.utf8_normalize(_having(text, _RESPELLABLE), "NFC")
    everywhere = respellable
    for letter, spelt in RESPELT.items():
        everywhere = ac.replace_substring(everywhere, letter, spelt)
    spellings = [everywhere]
    several = _having(respellable, f"(?s){_ONE_RESPELT}.*{_ONE_RESPELT}")
    if len(several):
        marked = several
        for letter, spelt in RESPELT.items():
            marked = ac.replace_substring(marked, letter, f"{spelt[0]}\x01{spelt[1:]}\x02")
        at_least_three = ac.fill_null(ac.match_substring_regex(marked, "(?s)\x01.*\x01.*\x01"), False)
        two = ac.filter(marked, ac.invert(at_least_three))
        three = ac.filter(marked, at_least_three)
        all_spelt = 2**RESPELT_VARIED - 1
        for mask in range(1, all_spelt):  # all spelt is `everywhere`
            spellings.append(_respelt(three, mask))
            if mask < 3:  # with two letters, 3 spells both
                spellings.append(_respelt(two, mask))
    greek = ac.utf8_normalize(_having(text, "[οΟόΌ]\\p{M}*[υΥύΎ]"), "NFD")
    spellings.append(ac.replace_substring_regex(greek, GREEK_OU, r"\1u"))
    return fold_column(pa.concat_arrays(spellings), keep_punctuation=True)


def _respelt(marked: pa.Array[Any], mask: int) -> pa.Array[Any]:
    """``marked`` with the marked letters respelt where ``mask`` says (bit i: occurrence i, the last bit: the
    rest), the others transliterated."""
    for occurrence in range(RESPELT_VARIED):
        keep = mask >> occurrence & 1
        if occurrence < RESPELT_VARIED - 1:
            marked = ac.replace_substring_regex(marked, _FIRST_MARK, r"\1\2" if keep else r"\1")
        else:
            marked = ac.replace_substring_regex(marked, _ANY_MARK, r"\1" if keep else "")
    return marked


def _having(text: pa.Array[Any], pattern: str) -> pa.Array[Any]:
    return ac.filter(text, ac.fill_null(ac.match_substring_regex(text, pattern), False))
