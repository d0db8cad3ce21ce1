"""The leak scan: no original identifying value may occur anywhere in the output, however it is spelt.

What is looked for: the values of the export's identifying input columns (user ids, names, e-mails, owner
ids and e-mails) that the policy does not openly keep. Where: every output cell that can hold free text,
i.e. kept text columns, masked e-mails and the kept keys of JSON count maps (token-shaped ones included: an
upstream may name an agent anything). Cells the engine writes by construction (its own tokens, numbers
validated on input, generalised dates and buckets) cannot hold a name and are not read.

How an attacker could respell a value, and how the scan undoes it:

- other code points that read the same (decomposed accents, Cyrillic or Greek look-alikes, full-width
  letters, soft hyphens and zero-width joiners inside a word, tag characters, upper-case Greek and Turkish,
  transliteration to ASCII, other common spellings such as ``ue`` for ``ü``): both sides are folded to
  ASCII letters and digits (:mod:`.text_fold`);
- ASCII look-alikes (``MElER``, ``ME|ER``, ``O`` for ``0``, ``rn`` for ``m``): both sides are compared in
  their :func:`~.text_fold.skeleton` (which reads look-alikes as one; a value and all its look-alikes have
  the same skeleton, so the plain keys are not needed beside it), and in output text ``|`` also reads as
  ``l``;
- other separators (``.``, ``-``, ``_``, none, camel case, digits attached, "name at domain"): a value is
  compared as its words joined with nothing between them; output text is cut into words (camel case too,
  and, as a second reading, where letters meet digits) and every run of up to :data:`MAX_WORDS` consecutive
  words is joined the same way;
- run-together and spelt-out words (``teamannameier``, ``M.a.r.i.a.B.e.r.g``): in output text of at most
  :data:`SUBSTRING_TEXT` characters (its words joined), every substring of :data:`MIN_SUBSTRING` to
  :data:`MAX_SUBSTRING` characters is a key too, so a key of 6 or more characters is found inside words;
  shorter keys only as whole words (longer texts: word runs only);
- parts and orders of a value (``native/leak_keys.c``): an e-mail's local part with and without its
  ``+tag``; a name's (or a local part's, split at camel case too) surnames of at least
  :data:`MIN_SURNAME` characters (with a comma the words before it, otherwise every word after the first;
  also without trailing digits; trailing ``Jr.``, ``PhD`` and such dropped first); every rotation of its
  words ("Meier Anna", "van der Berg, Anna");
- a reversed name in a right-to-left override, which a PDF shows readable: kept text holding a bidi control
  is refused outright.

Which values count (so that short or common values do not fail every run): keys of at least
:data:`MIN_CHARS` characters, and keys made only of digits at least :data:`MIN_DIGITS`; upstream
placeholders (``Anonymous``, ...) never count.

Scale: identifying values are many, output texts few and repetitive. Each distinct output text is read
once, in Python; the identifying values' keys are made in native passes per batch (values outside ASCII are
folded first, :mod:`.fold_native`; names that repeat, only the first time), and both sides are held and
compared as 64-bit hashes (:mod:`.key_hashes`) with Arrow's hash lookup.

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
from odeus_compliance.policy.key_hashes import KEY_BYTES_PER_BYTE, identifying_key_hashes, text_hashes
from odeus_compliance.policy.text_fold import (
    OUTPUT_FOLDS,
    camel_case_split,
    fold,
    has_bidi_control,
    letter_digit_split,
    skeleton,
    skeleton_positions,
)
from odeus_compliance.upstream.anonymisation import PLACEHOLDERS

EARLY_CHECK_LIMIT = 50_000  # output keys up to which identifying values are compared as they arrive
MAX_WORDS = 8
MIN_CHARS = 4
MIN_DIGITS = 6
MIN_SURNAME = 5  # as in native/leak_keys.c
MIN_SUBSTRING = 6
MAX_SUBSTRING = 64
SUBSTRING_TEXT = 512
_KEY_BYTES_GUESS = 8  # what to make room for at first (keys take about 3 to 6 times the values' bytes)
_TEXT_KEYS_AT_ONCE = 1 << 20  # output keys gathered in Python before they move to Arrow
_REPEATING = 0.8  # an identifying column's values repeat if a batch has fewer distinct ones than this share
_VALUES_REMEMBERED = 1 << 18  # per column of repeating values: values whose keys are not made again
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


def identifying_keys(values: pa.Array[Any], *, skeletons: bool = False) -> pa.Array[Any]:
    """The lookup keys of identifying values (see the module doc and ``native/leak_keys.c``); with
    ``skeletons``, each as its :func:`~.text_fold.skeleton` (what the scan compares)."""
    parts = _identifying_key_parts(values, skeletons=skeletons)
    return parts[0] if len(parts) == 1 else pa.concat_arrays(parts)


def _identifying_key_parts(
    values: pa.Array[Any], *, skeletons: bool, hashed: bool = False
) -> list[pa.Array[Any]]:
    text: Any = values if values.type == pa.string() else ac.cast(values, pa.string())
    ascii_only = ac.fill_null(ac.string_is_ascii(text), True)
    extra: Any = None
    if not ac.all(ascii_only).as_py():
        others = ac.invert(ascii_only)
        outside_ascii = ac.filter(text, others)
        text = ac.replace_with_mask(text, others, fold_column(outside_ascii, keep_punctuation=True))
        extra = other_spellings_column(outside_ascii)
    make = _native_key_hashes if hashed else _native_keys
    parts = make(text, skeletons=skeletons)
    if extra is not None and len(extra):
        parts += make(extra, skeletons=skeletons)
    return parts


def _native_key_hashes(text: pa.Array[Any], *, skeletons: bool) -> list[pa.Array[Any]]:
    hashes = identifying_key_hashes(
        text, min_chars=MIN_CHARS, min_digits=MIN_DIGITS, skeletons=skeletons, placeholders=_PLACEHOLDER_KEYS
    )
    return [hashes]


def _native_keys(text: pa.Array[Any], *, skeletons: bool) -> list[pa.Array[Any]]:
    parts: list[pa.Array[Any]] = []
    done = 0
    while not parts or done < len(text):  # one round unless the keys outgrow the first guess of their size
        rest = text.slice(done)
        keys, read = _native_keys_of(rest, skeletons=skeletons, bytes_per_byte=_KEY_BYTES_GUESS)
        if not read and len(rest):  # the next value alone needs more: room for its worst case
            keys, read = _native_keys_of(
                rest.slice(0, 1), skeletons=skeletons, bytes_per_byte=KEY_BYTES_PER_BYTE
            )
        parts.append(keys)
        done += read
    return parts


def _native_keys_of(text: Any, *, skeletons: bool, bytes_per_byte: int) -> tuple[pa.Array[Any], int]:
    """The keys of the first values of ``text`` that fit a buffer of ``bytes_per_byte`` times its bytes,
    and how many values that is."""
    count = len(text)
    offsets = text.buffers()[1]
    first, last = (
        int.from_bytes(offsets.slice(4 * (text.offset + at), 4).to_pybytes(), sys.byteorder)
        for at in (0, count)
    )
    capacity = min(bytes_per_byte * (last - first) + 1, 2**31 - 1)
    cells = string_buffers(text)
    placeholders = string_buffers(_PLACEHOLDER_KEYS)
    out_data = pa.allocate_buffer(capacity, None, resizable=True)
    out_offsets = pa.allocate_buffer(4 * (capacity // MIN_CHARS + 2), None, resizable=True)
    done = pa.allocate_buffer(8)
    keys = native_library().odeus_leak_keys(
        cells.offsets, cells.data, cells.validity, cells.bit_offset, count, MIN_CHARS, MIN_DIGITS,
        int(skeletons), placeholders.offsets, placeholders.data, len(_PLACEHOLDER_KEYS),
        out_data.address, capacity, out_offsets.address, done.address,
    )  # fmt: skip
    read = int.from_bytes(done.to_pybytes(), sys.byteorder)
    if count and not read and bytes_per_byte >= KEY_BYTES_PER_BYTE:
        msg = "leak scan: an identifying value is too long to read"  # 2 GiB of room: about 130 MB
        raise ValueError(msg)
    used = int.from_bytes(out_offsets.slice(4 * keys, 4).to_pybytes(), sys.byteorder)
    out_data.resize(max(used, 1), shrink_to_fit=True)  # the keys are kept to the end of the run
    out_offsets.resize(4 * (keys + 1), shrink_to_fit=True)
    return pa.StringArray.from_buffers(keys, out_offsets, out_data), read


def output_keys(text: str) -> set[str]:
    """The keys an output text could hold a value as, in :func:`~.text_fold.skeleton` form: every run of
    up to :data:`MAX_WORDS` words, joined (words also cut where letters meet digits), in every fold; and, for
    a text of at most :data:`SUBSTRING_TEXT` characters (its words joined), every substring of its words
    joined of :data:`MIN_SUBSTRING` to :data:`MAX_SUBSTRING` characters (whose skeleton keeps at least
    :data:`MIN_SUBSTRING`)."""
    spelled = camel_case_split(text)
    folds = {fold(spelled, table) for table in OUTPUT_FOLDS}
    if "|" in spelled:  # a vertical line reads as l (capital I)
        folds.add(fold(spelled.replace("|", "l"), OUTPUT_FOLDS[1]))
    words_read: set[tuple[str, ...]] = set()
    for folded in folds:
        words_read.add(tuple(folded.split()))
        words_read.add(tuple(letter_digit_split(folded).split()))
    keys: set[str] = set()
    for words in words_read:
        for size in range(1, min(MAX_WORDS, len(words)) + 1):
            for start in range(len(words) - size + 1):
                keys.add(skeleton("".join(words[start : start + size])))
    for joined in {"".join(words) for words in words_read}:
        if len(joined) <= SUBSTRING_TEXT:
            keys |= _substring_skeletons(joined)
    return keys


def _substring_skeletons(text: str) -> set[str]:
    shape, starts = skeleton_positions(text)
    found: set[str] = set()
    for size in range(MIN_SUBSTRING, min(MAX_SUBSTRING, len(text)) + 1):
        for start in range(len(text) - size + 1):
            begin, end = starts[start], starts[start + size]
            key = shape[begin:end] if begin >= 0 and end >= 0 else skeleton(text[start : start + size])
            if len(key) >= MIN_SUBSTRING:
                found.add(key)
    return found


@dataclass(slots=True)
class LeakScanner:
    """Collects identifying keys and output keys during a run; :meth:`verify` compares them.

    Output texts repeat, so their keys are usually few and mostly known after the first batches. Each batch
    of identifying keys is therefore compared with the output keys known when it arrives (on the engine's
    worker threads, during the run), and :meth:`verify` only with those that came later. With many output
    keys (:data:`EARLY_CHECK_LIMIT`) the comparison waits for :meth:`verify`, where it is made once. Keys on
    both sides are held as 64-bit hashes (:mod:`.key_hashes`: a collision can only raise a false alarm,
    never hide a leak), identifying ones mostly once each; output keys with the text each came from.
    Methods may be called from several threads at once.
    """

    _identifying: list[tuple[Any, int]] = field(default_factory=list)  # (key hashes, output keys checked)
    _grams: list[Any] = field(default_factory=list)  # chunks of output key hashes, in the order they came
    _gram_texts: list[Any] = field(default_factory=list)  # per chunk, each key's text (in _texts), int32
    _gram_count: int = 0
    _texts: list[tuple[int, str]] = field(default_factory=list)  # (row, column) of each distinct text read
    _early: tuple[int, Any] = (0, None)  # the output key hashes as one array, and how many
    _hits: set[int] = field(default_factory=set)  # hashes of identifying keys found among output keys
    _bidi: tuple[int, str] | None = None  # the first (row, column) holding a bidi control
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: dict[str, set[str]] = field(default_factory=dict)
    _repeating: dict[str, bool] = field(default_factory=dict)  # per identifying column: values repeat
    _read_values: dict[str, set[str]] = field(default_factory=dict)  # per such column: values read
    texts_read: int = 0
    _values: int = 0

    @property
    def values_registered(self) -> int:
        """Identifying values compared (none when the output holds no text to compare them with)."""
        return self._values if self._gram_count and self._identifying else 0

    def add_identifying(self, values: pa.Array[Any], *, column: str | None = None) -> None:
        """Remember the keys of one batch's identifying input values (on a worker thread of the engine).

        Names repeat (a batch holds far fewer distinct names than rows, and a run few more than a batch),
        so the keys are made of each distinct value once, and for a ``column`` of repeating values once
        per run (up to :data:`_VALUES_REMEMBERED` values; their keys are kept, and compared with every
        output key in the end); for a ``column`` whose values turned out all but distinct (ids, e-mail
        addresses), later batches skip looking for repeats."""
        distinct = values
        if column is None or self._repeating.get(column, True):
            distinct = ac.unique(values)
            if column is not None:
                self._repeating[column] = len(distinct) < _REPEATING * len(values)
        if column is not None and self._repeating[column]:
            distinct = self._unread(column, distinct)
        parts = [keys for keys in _identifying_key_parts(distinct, skeletons=True, hashed=True) if len(keys)]
        keys: Any = None
        if parts:
            keys = parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
        checked, known = self._known_grams()
        hits: list[int] = []
        if keys is not None and checked and known is not None:
            hits = [v for v in ac.filter(keys, ac.is_in(keys, value_set=known)).to_pylist() if v is not None]
        with self._lock:
            self._values += len(values) - values.null_count
            if keys is not None:
                self._identifying.append((keys, checked))
            self._hits.update(hits)

    def _unread(self, column: str, distinct: pa.Array[Any]) -> pa.Array[Any]:
        """The values of a column of repeating values whose keys no earlier batch gave (the values
        themselves are compared, never hashes: a value wrongly taken for read would go unchecked)."""
        text: Any = distinct if distinct.type == pa.string() else ac.cast(distinct, pa.string())
        listed: list[str | None] = text.to_pylist()
        with self._lock:
            read = self._read_values.setdefault(column, set())
            fresh = [value for value in listed if value is not None and value not in read]
            read.update(fresh[: max(_VALUES_REMEMBERED - len(read), 0)])
        return pa.array(fresh, pa.string())

    def _known_grams(self) -> tuple[int, Any]:
        """The output key hashes known now (concatenated once per count), or none past the early limit."""
        with self._lock:
            count = self._gram_count
            if count > EARLY_CHECK_LIMIT:
                return 0, None
            if self._early[0] != count:
                self._early = (count, pa.concat_arrays(self._grams) if self._grams else None)
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
        with self._lock:
            first_text = len(self._texts)
            self._texts.extend((row, column) for row in rows)
        gathered: dict[str, int] = {}  # output key -> its text with the lowest row (index in texts)
        for index, (text, row) in enumerate(zip(texts, rows, strict=True)):
            if has_bidi_control(text):
                with self._lock:
                    if self._bidi is None or (row, column) < self._bidi:
                        self._bidi = (row, column)
            for key in output_keys(text):
                known = gathered.get(key)
                if known is None or row < rows[known]:
                    gathered[key] = index
            if len(gathered) >= _TEXT_KEYS_AT_ONCE:
                self._add_grams(gathered, first_text)
                gathered = {}
        self._add_grams(gathered, first_text)

    def _add_grams(self, gathered: dict[str, int], first_text: int) -> None:
        if not gathered:
            return
        grams = text_hashes(pa.array(list(gathered), pa.string()))
        texts = ac.add(pa.array(list(gathered.values()), pa.int32()), first_text)
        with self._lock:
            self._grams.append(grams)
            self._gram_texts.append(texts)
            self._gram_count += len(grams)

    def verify(self) -> None:
        """Raise :class:`LeakFound` (the earliest row) if an identifying value is among the output keys, and
        :class:`BidiControlFound` if kept text holds a bidi control."""
        if self._bidi is not None:
            row, column = self._bidi
            raise BidiControlFound(column, row)
        if not self._gram_count or not self._identifying:
            return
        grams = pa.concat_arrays(self._grams)
        hits = set(self._hits)
        later: dict[int, list[Any]] = {}  # per count checked early: the keys to compare with those after it
        for keys, checked in self._identifying:
            if checked != len(grams):
                later.setdefault(checked, []).append(keys)
        for checked, key_arrays in later.items():
            keys = pa.chunked_array(key_arrays, pa.uint64())
            found = ac.filter(keys, ac.is_in(keys, value_set=grams.slice(checked)))
            hits.update(v for v in found.to_pylist() if v is not None)
        if hits:
            holding = ac.is_in(grams, value_set=pa.array(sorted(hits), pa.uint64()))
            texts = ac.filter(pa.concat_arrays(self._gram_texts), holding).to_pylist()
            row, column = min(self._texts[i] for i in texts if i is not None)
            raise LeakFound(column, row)
