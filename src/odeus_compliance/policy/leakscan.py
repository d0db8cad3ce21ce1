"""The leak scan: no original identifying value may occur anywhere in the output, however it is spelt.

What is looked for: the values of the export's identifying input columns (user ids, names, e-mails, owner
ids and e-mails) that the policy does not openly keep. Where: every output cell that can hold free text,
i.e. kept text columns, masked e-mails and the kept keys of JSON count maps (token-shaped ones included: an
upstream may name an agent anything). Cells the engine writes by construction (its own tokens, numbers
validated on input, generalised dates and buckets) cannot hold a name and are not read.

How an attacker could respell a value, and how the scan undoes it:

- other code points that read the same (decomposed accents, Cyrillic or Greek look-alikes, full-width
  letters, soft hyphens and zero-width joiners inside a word, upper-case Greek and Turkish, transliteration
  to ASCII): both sides are folded to ASCII letters and digits (:mod:`.text_fold`);
- other separators (``.``, ``-``, ``_``, none, camel case, "name at domain"): a value is compared as its
  words joined with nothing between them; output text is cut into words (camel case too) and every run of
  up to :data:`MAX_WORDS` consecutive words is joined the same way;
- parts of a value (``native/leak_keys.c``): an e-mail's local part with and without its ``+tag``, a name's
  (or a local part's) surname, its last word if at least :data:`MIN_SURNAME` characters, alone and put
  first ("Meier, Anna");
- a reversed name in a right-to-left override, which a PDF shows readable: kept text holding a bidi control
  is refused outright.

Which values count (so that short or common values do not fail every run): keys of at least
:data:`MIN_CHARS` characters, and keys made only of digits at least :data:`MIN_DIGITS`; upstream
placeholders (``Anonymous``, ...) never count.

Scale: identifying values are many, output texts few and repetitive. Each distinct output text is read
once; the identifying values' keys are made in native passes per batch (values outside ASCII are folded
first, :mod:`.fold_native`) and looked up in the set of output keys with Arrow's hash lookup.

A hit fails the run, naming the output column and the data row, never the value.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from odeus_compliance.native.library import native_library, string_buffers
from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.fold_native import fold_column, other_spellings_column
from odeus_compliance.policy.text_fold import (
    OUTPUT_FOLDS,
    camel_case_split,
    fold,
    has_bidi_control,
)
from odeus_compliance.upstream.anonymisation import PLACEHOLDERS

EARLY_CHECK_LIMIT = 50_000  # output keys up to which identifying values are compared as they arrive
MAX_WORDS = 8
MIN_CHARS = 4
MIN_DIGITS = 6
MIN_SURNAME = 5  # as in native/leak_keys.c
_PLACEHOLDER_KEYS = pa.array(sorted({"".join(fold(p).split()) for p in PLACEHOLDERS} - {""}), pa.string())


class LeakFound(ValueError):
    """An identifying input value occurs in the output."""

    def __init__(self, column: str, row: int, *, reason: str | None = None) -> None:
        super().__init__(
            reason
            or f"leak scan: an identifying value of the input occurs in output column {column!r} "
            f"(data row {row}); nothing was written"
        )
        self.column = column
        self.row = row


class BidiControlFound(LeakFound):
    """Kept text holds a character that reorders how it is shown."""

    def __init__(self, column: str, row: int) -> None:
        super().__init__(
            column,
            row,
            reason=(
                f"leak scan: output column {column!r} (data row {row}) holds a bidirectional control "
                "character, which can show reversed text as a readable name; nothing was written"
            ),
        )


def identifying_keys(values: pa.Array[Any]) -> pa.Array[Any]:
    """The lookup keys of identifying values (see the module doc and ``native/leak_keys.c``)."""
    text: Any = values if values.type == pa.string() else ac.cast(values, pa.string())
    ascii_only = ac.fill_null(ac.string_is_ascii(text), True)
    extra: Any = None
    if not ac.all(ascii_only).as_py():
        others = ac.invert(ascii_only)
        outside_ascii = ac.filter(text, others)
        text = ac.replace_with_mask(text, others, fold_column(outside_ascii))
        extra = other_spellings_column(outside_ascii)
    keys = _native_keys(text)
    return pa.concat_arrays([keys, _native_keys(extra)]) if extra is not None and len(extra) else keys


def _native_keys(text: pa.Array[Any]) -> pa.Array[Any]:
    count = len(text)
    cells = string_buffers(text)
    placeholders = string_buffers(_PLACEHOLDER_KEYS)
    out_data = pa.allocate_buffer(max(5 * cells.data_size, 1), None, resizable=True)
    out_offsets = pa.allocate_buffer(4 * (5 * count + 1), None, resizable=True)
    keys = native_library().odeus_leak_keys(
        cells.offsets, cells.data, cells.validity, cells.bit_offset, count, MIN_CHARS, MIN_DIGITS,
        placeholders.offsets, placeholders.data, len(_PLACEHOLDER_KEYS),
        out_data.address, out_offsets.address,
    )  # fmt: skip
    used = int.from_bytes(out_offsets.slice(4 * keys, 4).to_pybytes(), sys.byteorder)
    out_data.resize(max(used, 1), shrink_to_fit=True)  # the keys are kept to the end of the run
    out_offsets.resize(4 * (keys + 1), shrink_to_fit=True)
    return pa.StringArray.from_buffers(keys, out_offsets, out_data)


def output_keys(text: str) -> set[str]:
    """The keys an output text could hold a value as: every run of up to :data:`MAX_WORDS` words, joined."""
    spelled = camel_case_split(text)
    keys: set[str] = set()
    for table in OUTPUT_FOLDS:
        words = fold(spelled, table).split()
        for size in range(1, min(MAX_WORDS, len(words)) + 1):
            for start in range(len(words) - size + 1):
                keys.add("".join(words[start : start + size]))
    return keys


@dataclass(slots=True)
class LeakScanner:
    """Collects identifying keys and output keys during a run; :meth:`verify` compares them.

    Output texts repeat, so their keys are usually few and mostly known after the first batches. Each batch
    of identifying keys is therefore compared with the output keys known when it arrives (on the engine's
    worker threads, during the run), and :meth:`verify` only with those that came later. With many output
    keys (:data:`EARLY_CHECK_LIMIT`) the comparison waits for :meth:`verify`, where it is made once. Methods
    may be called from several threads at once.
    """

    _identifying: list[tuple[Any, int]] = field(default_factory=list)  # (keys, output keys checked with)
    _candidates: dict[str, tuple[str, int]] = field(default_factory=dict)  # output key -> (column, row)
    _grams: list[str] = field(default_factory=list)  # the output keys in the order they became known
    _early: tuple[int, Any] = (0, None)  # the output keys as Arrow text, and how many
    _hits: set[str] = field(default_factory=set)
    _bidi: tuple[int, str] | None = None  # the first (row, column) holding a bidi control
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: dict[str, set[str]] = field(default_factory=dict)
    texts_read: int = 0
    _values: int = 0

    @property
    def values_registered(self) -> int:
        """Identifying values compared (none when the output holds no text to compare them with)."""
        return self._values if self._candidates and self._identifying else 0

    def add_identifying(self, values: pa.Array[Any]) -> None:
        """Remember the keys of one batch's identifying input values (on a worker thread of the engine)."""
        keys = identifying_keys(values)
        checked, known = self._known_grams()
        hits: list[str] = []
        if checked and known is not None and len(keys):
            found = ac.filter(keys, ac.is_in(keys, value_set=known))
            hits = [v for v in found.to_pylist() if v is not None]
        with self._lock:
            self._values += len(values) - values.null_count
            if len(keys):
                self._identifying.append((keys, checked))
            self._hits.update(hits)

    def _known_grams(self) -> tuple[int, Any]:
        """The output keys known now, as Arrow text (built once per count), or none past the early limit."""
        with self._lock:
            count = len(self._grams)
            if count > EARLY_CHECK_LIMIT:
                return 0, None
            if self._early[0] != count:
                self._early = (count, pa.array(self._grams[:count], pa.string()))
            return self._early

    def observe_column(self, column: str, values: pa.Array[Any], *, row_offset: int) -> None:
        """Read one output text column of a batch (rows numbered from ``row_offset``)."""
        encoded = ac.dictionary_encode(values)
        distinct: list[str | None] = encoded.dictionary.to_pylist()
        seen = self._seen.setdefault(column, set())
        new = [i for i, value in enumerate(distinct) if value is not None and value not in seen]
        if not new:
            return
        firsts = (
            pa.table({"value": encoded.indices, "row": pa.array(range(len(values)), pa.int64())})
            .group_by("value")
            .aggregate([("row", "min")])
        )
        first_row: dict[Any, Any] = dict(
            zip(firsts.column("value").to_pylist(), firsts.column("row_min").to_pylist(), strict=True)
        )
        texts = [distinct[i] for i in new]
        rows = [row_offset + first_row[i] + 1 for i in new]
        seen.update(t for t in texts if t is not None)
        self._add_texts(column, [t for t in texts if t is not None], rows)

    def observe_keys(self, column: str, keys: dict[str, int], *, row_offset: int) -> None:
        """Read the kept keys of a count-map column (key -> first row within the batch)."""
        seen = self._seen.setdefault(column, set())
        fresh = {key: row for key, row in keys.items() if key not in seen}
        if not fresh:
            return
        seen.update(fresh)
        self._add_texts(column, list(fresh), [row_offset + row + 1 for row in fresh.values()])

    def _add_texts(self, column: str, texts: list[str], rows: list[int]) -> None:
        if not texts:
            return
        self.texts_read += len(texts)
        for text, row in zip(texts, rows, strict=True):
            if has_bidi_control(text):
                with self._lock:
                    if self._bidi is None or (row, column) < self._bidi:
                        self._bidi = (row, column)
            for key in output_keys(text):
                with self._lock:
                    known = self._candidates.get(key)
                    if known is None:
                        self._grams.append(key)
                    if known is None or row < known[1]:
                        self._candidates[key] = (column, row)

    def verify(self) -> None:
        """Raise :class:`LeakFound` (the earliest row) if an identifying value is among the output keys, and
        :class:`BidiControlFound` if kept text holds a bidi control."""
        if self._bidi is not None:
            row, column = self._bidi
            raise BidiControlFound(column, row)
        if not self._candidates or not self._identifying:
            return
        hits = set(self._hits)
        later: dict[int, Any] = {}  # per count checked early: the output keys that came after
        for keys, checked in self._identifying:
            if checked == len(self._grams):
                continue
            if checked not in later:
                later[checked] = pa.array(self._grams[checked:], pa.string())
            found = ac.filter(keys, ac.is_in(keys, value_set=later[checked]))
            hits.update(v for v in found.to_pylist() if v is not None)
        if hits:
            column, row = min((self._candidates[h] for h in hits), key=lambda hit: (hit[1], hit[0]))
            raise LeakFound(column, row)
