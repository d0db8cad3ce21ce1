"""The leak scan: no original identifying value may occur anywhere in the output.

What is looked for: the values of the export's identifying input columns (user ids, names, e-mails, owner
ids and e-mails) that the policy does not openly keep. Where: every output cell that can hold free text,
i.e. kept text columns, masked e-mails and the keys of JSON count maps. Cells the engine writes by
construction as tokens (``u1_...``, ``e1_...``), numbers (validated on input) or generalised dates and
buckets cannot hold a name and are not read.

How, so that it scales with the export: not a substring search for every identifying value. Both sides are
brought to one *word form* (lower case, ``ß`` as ``ss``, split at every character that cannot be part of a
name, an e-mail or an id, each word trimmed of ``.'-+_@`` at its ends, words joined by one space). Each
distinct output text is cut into its word n-grams (up to :data:`MAX_WORDS` words: a multi-word name matches
only as a whole, in order); the identifying values are then looked up in that set of n-grams with one
Arrow hash lookup at the end of the run. Output texts repeat a lot (departments, roles, model names), so
the set stays small; each distinct text is processed once.

Which values count (so that short or common values do not fail every run): after the word form, at least
:data:`MIN_CHARS` characters, and a value made only of digits at least :data:`MIN_DIGITS` of them; upstream
placeholders (``Anonymous``, ...) never count. A value shorter than that (a one-letter name, a user id
``7``) is not identifying on its own in any output we write.

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
from odeus_compliance.upstream.anonymisation import PLACEHOLDERS

EARLY_CHECK_LIMIT = 50_000  # n-grams up to which identifying values are compared as they arrive
GENERAL_BATCH = 65_536  # identifying values that wait for the general word-form path together
MAX_WORDS = 8
MIN_CHARS = 4
MIN_DIGITS = 6
# Characters that are part of a word: letters, marks, digits and what e-mails and ids are made of.
_SEPARATORS = r"[^\p{L}\p{M}\p{N}_'.@+\-]+"
_EDGE = "_'.@+-"
_WORD = r"[\p{L}\p{M}\p{N}](?:[\p{L}\p{M}\p{N}_'.@+\-]*[\p{L}\p{M}\p{N}])?"
_SIMPLE = rf"^{_WORD}(?: {_WORD})*$"
_ASCII_WORD = r"[a-z0-9](?:[a-z0-9_'.@+\-]*[a-z0-9])?"  # _WORD for lower-case ASCII text
_ASCII_SIMPLE = rf"^{_ASCII_WORD}(?: {_ASCII_WORD})*$"
TOKEN_SHAPE = r"^[a-z][0-9]+_[a-z2-7]+$"  # noqa: S105 - the shape of a pseudonym, not a secret
_PLACEHOLDERS = pa.array(sorted(PLACEHOLDERS), pa.string())
_GENERAL = pa.scalar(2, pa.uint8())  # a flag of _plain_counted_forms


class LeakFound(ValueError):
    """An identifying input value occurs in the output."""

    def __init__(self, column: str, row: int) -> None:
        super().__init__(
            f"leak scan: an identifying value of the input occurs in output column {column!r} "
            f"(data row {row}); nothing was written"
        )
        self.column = column
        self.row = row


def word_form(values: pa.Array[Any]) -> pa.Array[Any]:
    """The comparison form of a string array (see the module doc), null for values with no word."""
    return _form_of_lower_case(ac.utf8_lower(values))


def _form_of_lower_case(lower_case: pa.Array[Any]) -> pa.Array[Any]:
    lowered = ac.replace_substring(lower_case, "ß", "ss")
    simple = _simple(lowered)
    if ac.all(simple).as_py():
        return lowered  # already words of word characters separated by single spaces
    rest = ac.invert(simple)
    return ac.replace_with_mask(lowered, rest, _split_form(ac.filter(lowered, rest)))


def _simple(lowered: pa.Array[Any]) -> pa.Array[Any]:
    """Whether each lower-cased value matches ``_SIMPLE`` (null counts as simple).

    The ASCII pattern first (cheaper than the Unicode classes; an ASCII match is a ``_SIMPLE`` match), the
    Unicode one only for the values it did not match.
    """
    simple = ac.fill_null(ac.match_substring_regex(lowered, _ASCII_SIMPLE), True)
    if ac.all(simple).as_py():
        return simple
    rest = ac.invert(simple)
    return ac.replace_with_mask(simple, rest, ac.match_substring_regex(ac.filter(lowered, rest), _SIMPLE))


def _split_form(lowered: pa.Array[Any]) -> pa.Array[Any]:
    words = ac.split_pattern_regex(lowered, _SEPARATORS)
    trimmed = ac.utf8_trim(ac.list_flatten(words), _EDGE)
    rebuilt: Any = pa.ListArray.from_arrays(words.offsets, trimmed, mask=ac.is_null(words))
    joined = ac.utf8_trim(ac.replace_substring_regex(ac.binary_join(rebuilt, " "), "  +", " "), " ")
    return ac.if_else(ac.equal(joined, ""), pa.scalar(None, pa.string()), joined)


def counted_forms_of(values: pa.Array[Any]) -> pa.Array[Any]:
    """The word forms of identifying values that count (see the module doc), in Arrow: the general path."""
    chunk = ac.drop_null(values)
    lower_case = ac.utf8_lower(chunk)  # lower-casing neither makes nor removes white space
    forms: Any = _form_of_lower_case(lower_case)
    length = ac.utf8_length(forms)
    counted = ac.and_(
        ac.and_(
            ac.greater_equal(length, MIN_CHARS),
            ac.invert(ac.is_in(ac.utf8_trim_whitespace(lower_case), value_set=_PLACEHOLDERS)),
        ),
        ac.or_(ac.invert(ac.ascii_is_decimal(forms)), ac.greater_equal(length, MIN_DIGITS)),
    )
    return ac.filter(forms, ac.fill_null(counted, False))


def _plain_counted_forms(values: pa.Array[Any]) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """Per value a flag (1: it is plain words, so its form is its lower case, and the form counts; 0: null
    or a form that does not count; :data:`_GENERAL`: the general path decides) and the counted forms of the
    flag-1 values. Lower-cased by Arrow, the rest in one native pass (``native/word_forms.c``): most
    identifying values are plain words."""
    count = len(values)
    lowered = ac.utf8_lower(values)
    cells = string_buffers(lowered)
    placeholders = string_buffers(_PLACEHOLDERS)
    flags = pa.allocate_buffer(max(count, 1))
    out_data = pa.allocate_buffer(max(2 * cells.data_size, 1), None, resizable=True)  # ß becomes ss
    out_offsets = pa.allocate_buffer(4 * (count + 1), None, resizable=True)
    counted = native_library().odeus_word_forms(
        cells.offsets, cells.data, cells.validity, cells.bit_offset, count, MIN_CHARS, MIN_DIGITS,
        placeholders.offsets, placeholders.data, len(_PLACEHOLDERS),
        flags.address, out_data.address, out_offsets.address,
    )  # fmt: skip
    flag_array = pa.UInt8Array.from_buffers(pa.uint8(), count, [None, flags])
    used = int.from_bytes(out_offsets.slice(4 * counted, 4).to_pybytes(), sys.byteorder)
    out_data.resize(max(used, 1), shrink_to_fit=True)  # the forms are kept to the end of the run
    out_offsets.resize(4 * (counted + 1), shrink_to_fit=True)
    forms = pa.StringArray.from_buffers(counted, out_offsets, out_data)
    return flag_array, forms


@dataclass(slots=True)
class LeakScanner:
    """Collects identifying values and output n-grams during a run; :meth:`verify` compares them.

    Output texts repeat, so their n-grams are usually few and mostly known after the first batches. Each
    batch of identifying values is therefore compared with the n-grams known when it arrives (on the
    engine's worker threads, during the run), and :meth:`verify` only with those that came later. With many
    n-grams (:data:`EARLY_CHECK_LIMIT`) the comparison waits for :meth:`verify`, where it is made once.
    Methods may be called from several threads at once.
    """

    _identifying: list[tuple[Any, int]] = field(
        default_factory=list
    )  # (forms, n-grams they were checked with)
    _candidates: dict[str, tuple[str, int]] = field(default_factory=dict)
    _grams: list[str] = field(default_factory=list)  # the n-grams in the order they became known
    _early: tuple[int, Any] = (0, None)  # the n-grams as Arrow text, and how many
    _hits: set[str] = field(default_factory=set)
    _general: list[Any] = field(default_factory=list)  # values waiting for the general path
    _general_values: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: dict[str, set[str]] = field(default_factory=dict)
    texts_read: int = 0
    _counted: int = 0

    @property
    def values_registered(self) -> int:
        """Identifying values compared (none when the output holds no text to compare them with)."""
        self._flush_general()
        return self._counted if self._candidates and self._identifying else 0

    def add_identifying(self, values: pa.Array[Any]) -> None:
        """Remember the word forms of one batch's identifying input values that count (as Arrow text).

        Computed batch by batch (on a worker thread of the engine) rather than all at the end.
        """
        text: Any = values if values.type == pa.string() else ac.cast(values, pa.string())
        flags, plain = _plain_counted_forms(text)
        general = ac.filter(text, ac.equal(flags, _GENERAL))
        if len(general):
            # the general path has a fixed cost per call whatever the size (Arrow compiles its patterns
            # per call): its values wait until there are enough of them, or for verify()
            with self._lock:
                self._general.append(general)
                self._general_values += len(general)
                due = self._general_values >= GENERAL_BATCH
                if due:
                    waiting, self._general, self._general_values = self._general, [], 0
            if due:
                self._register(counted_forms_of(pa.concat_arrays(waiting)), early_check=False)
        self._register(plain, early_check=True)

    def _flush_general(self) -> None:
        with self._lock:
            waiting, self._general, self._general_values = self._general, [], 0
        if waiting:
            self._register(counted_forms_of(pa.concat_arrays(waiting)), early_check=False)

    def _register(self, counted_forms: pa.Array[Any], *, early_check: bool) -> None:
        if not len(counted_forms):
            return
        checked, grams = self._known_grams() if early_check else (0, None)
        hits: list[str] = []
        if checked and grams is not None:  # grams are known whenever some were checked
            found = ac.filter(counted_forms, ac.is_in(counted_forms, value_set=grams))
            hits = [v for v in found.to_pylist() if v is not None]
        with self._lock:
            self._counted += len(counted_forms)
            self._identifying.append((counted_forms, checked))
            if checked:
                self._hits.update(hits)

    def _known_grams(self) -> tuple[int, Any]:
        """The n-grams known now, as Arrow text (built once per count), or none past the early limit."""
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
        """Read the output keys of a count-map column (key -> first row within the batch)."""
        seen = self._seen.setdefault(column, set())
        fresh = {key: row for key, row in keys.items() if key not in seen}
        if not fresh:
            return
        seen.update(fresh)
        shaped = ac.match_substring_regex(pa.array(list(fresh), pa.string()), TOKEN_SHAPE).to_pylist()
        texts = [key for key, token in zip(fresh, shaped, strict=True) if not token]
        self._add_texts(column, texts, [row_offset + fresh[key] + 1 for key in texts])

    def _add_texts(self, column: str, texts: list[str], rows: list[int]) -> None:
        if not texts:
            return
        self.texts_read += len(texts)
        forms = word_form(pa.array(texts, pa.string())).to_pylist()
        for form, row in zip(forms, rows, strict=True):
            if form is None:
                continue
            words = form.split(" ")
            for size in range(1, min(MAX_WORDS, len(words)) + 1):
                for start in range(len(words) - size + 1):
                    gram = " ".join(words[start : start + size])
                    with self._lock:
                        known = self._candidates.get(gram)
                        if known is None:
                            self._grams.append(gram)
                        if known is None or row < known[1]:
                            self._candidates[gram] = (column, row)

    def verify(self) -> None:
        """Raise :class:`LeakFound` (the earliest row) if an identifying value is among the n-grams."""
        self._flush_general()
        if not self._candidates or not self._identifying:
            return
        hits = set(self._hits)
        later: dict[int, Any] = {}  # per count checked early: the n-grams that came after
        for counted_forms, checked in self._identifying:
            if checked == len(self._grams):
                continue
            if checked not in later:
                later[checked] = pa.array(self._grams[checked:], pa.string())
            found = ac.filter(counted_forms, ac.is_in(counted_forms, value_set=later[checked]))
            hits.update(v for v in found.to_pylist() if v is not None)
        if hits:
            column, row = min((self._candidates[h] for h in hits), key=lambda hit: (hit[1], hit[0]))
            raise LeakFound(column, row)
