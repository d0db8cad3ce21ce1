"""Text folded to lower-case ASCII letters and digits, the way an attacker could respell it.

The leak scan compares identifying values with the output in this form, so that a name written with other
code points that read the same still matches. Every code point is folded on its own (the fold of a text is
the fold of its code points, joined), which keeps it one table lookup per character:

- format characters (soft hyphen, zero-width joiners, bidi controls, byte order marks) and combining marks
  vanish, so ``Me\\u00adier`` and ``Mu\\u0308ller`` read as ``meier`` and ``muller``; except the tag
  characters U+E0020 to U+E007E, which spell ASCII invisibly: they read as the ASCII character they tag;
- compatibility forms (full-width letters, ligatures, mathematical alphabets) become what they stand for
  (NFKC), then full case folding (``ß`` as ``ss``, Greek final sigma, Turkish dotted ``İ``);
- what is left outside ASCII is either *transliterated* (:data:`TRANSLITERATED`: ``Анна`` as ``anna``,
  ``Γιώργος`` as ``giorgos``) or replaced by the ASCII letter it is confusable with according to Unicode
  TR39's confusables data (:data:`OUTPUT_FOLDS`: Cyrillic ``р`` as ``p``, not ``r``), falling back to the
  transliteration;
- anything else that is not a letter or digit becomes a space.

Identifying values are folded by transliteration (their natural ASCII spelling); output text by both, since
an attacker may write either way. German umlauts also have the ``ae``/``oe``/``ue`` spelling, Nordic ``ø``
and ``å`` the ``oe`` and ``aa`` one, South Slavic ``đ`` the ``dj`` one, and Greek ``ου`` is often written
``ou`` (:func:`other_spellings`): identifying values are looked for in those spellings too.

Within ASCII, letters and digits that look alike (``MElER`` for ``MEIER``, ``O`` for ``0``, ``rn`` for
``m``) are read alike by comparing :func:`skeleton` forms too.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from typing import Final

from anyascii import anyascii

_MARKS = frozenset({"Mn", "Me", "Mc"})
_INVISIBLE = frozenset({"Cf", "Mn", "Me"})
_NOT_WORD = re.compile(r"[^a-z0-9]+")
GREEK_OU: Final = "([οΟ]\\p{M}*)[υΥ]"  # ου, marks between (decomposed text): also written ou
_GREEK_OU = re.compile("([οΟ][\u0300-\u036f]*)[υΥ]")
RESPELT: Final = {
    "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "ae", "Ö": "oe", "Ü": "ue",  # German
    "ø": "oe", "Ø": "oe", "å": "aa", "Å": "aa",  # Danish, Norwegian, Swedish
    "đ": "dj", "Đ": "dj",  # South Slavic
}  # fmt: skip
"""Letters with a second common ASCII spelling (each is its transliteration followed by one more letter)."""
RESPELT_VARIED: Final = 3
"""Of a value's letters in :data:`RESPELT`, the first two are respelt independently and the rest together
(at most 8 spellings of a value, its transliteration included)."""
KEPT_PUNCTUATION: Final = ",@+'"
"""What :func:`fold_keeping_punctuation` keeps: what tells the parts of a name or an address apart."""
APOSTROPHES: Final = "\u2019\u2018\u02bc"
"""Read as ``'`` by :func:`fold_keeping_punctuation` (inside a word, an apostrophe joins)."""
_TAGS = range(0xE0020, 0xE007F)  # tag characters spelling printable ASCII
_SKELETON_CHARS = str.maketrans("i10", "llo")
_SKELETON_PAIRS = re.compile("rn|vv|cl")
_SKELETON_PAIR = {"rn": "m", "vv": "w", "cl": "d"}
_LETTER_DIGIT = re.compile("(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])")
BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)  # the characters that reorder what a reader sees (Unicode Bidi_Control)


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table filled on first use of each code point (most texts use few of them)."""

    def __init__(self, lookalike: Lookalike) -> None:
        super().__init__()
        self._lookalike = lookalike

    def __missing__(self, code_point: int) -> str:
        folded = _fold_code_point(chr(code_point), self._lookalike)
        self[code_point] = folded
        return folded


class Lookalike(enum.Enum):
    """Whether a code point outside ASCII becomes its TR39 look-alike, and which case of it is compared."""

    NO = enum.auto()  # transliterated
    AS_WRITTEN = enum.auto()  # Greek capital Eta reads as "h"
    CASE_FOLDED = enum.auto()  # Cyrillic capital "І" reads as "i" (as written it is confusable with "l")


def _fold_code_point(char: str, lookalike: Lookalike) -> str:
    if ord(char) in _TAGS:
        return _NOT_WORD.sub(" ", chr(ord(char) - 0xE0000).lower())
    category = unicodedata.category(char)
    if category in _INVISIBLE:
        return ""
    if lookalike is Lookalike.AS_WRITTEN and (twin := ascii_lookalike(char)) is not None:
        return twin  # also a spacing mark that looks like a letter
    if category == "Mc":
        return ""
    parts: list[str] = []
    for compatible in unicodedata.normalize("NFKC", char):
        if compatible.isascii():
            parts.append(compatible.lower())
            continue
        twin = None
        if lookalike is Lookalike.AS_WRITTEN:
            twin = ascii_lookalike(compatible)
        elif lookalike is Lookalike.CASE_FOLDED:
            twin = ascii_lookalike(compatible.casefold()) or ascii_lookalike(compatible)
        if twin is not None:
            parts.append(twin)
            continue
        for base in unicodedata.normalize("NFD", compatible.casefold()):
            if unicodedata.category(base) in _MARKS:
                continue
            base_twin = ascii_lookalike(base) if lookalike is not Lookalike.NO else None
            parts.append(base_twin if base_twin is not None else anyascii(base).lower())
    return _NOT_WORD.sub(" ", "".join(parts))


@functools.cache
def _lookalikes() -> dict[str, str]:
    """Per code point the ASCII letter or digit it is confusable with (TR39), letters preferred."""
    from confusable_homoglyphs.confusables import confusables_data  # noqa: PLC0415 - 1 MB, loaded on use

    twins: dict[str, str] = {}
    for char, entries in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        candidates = [e["c"] for e in entries if len(e["c"]) == 1 and e["c"].isascii() and e["c"].isalnum()]
        if candidates:
            twins[char] = min(candidates, key=lambda c: (not c.isalpha(), c)).lower()
    return twins


def ascii_lookalike(char: str) -> str | None:
    """The ASCII letter or digit (lower case) ``char`` is confusable with (TR39), if any."""
    return _lookalikes().get(char)


TRANSLITERATED: Final = _FoldTable(Lookalike.NO)
OUTPUT_FOLDS: Final = (TRANSLITERATED, _FoldTable(Lookalike.AS_WRITTEN), _FoldTable(Lookalike.CASE_FOLDED))
"""The folds output text is read in: an attacker may transliterate or pick look-alikes."""


def fold(text: str, table: _FoldTable = TRANSLITERATED) -> str:
    """``text`` folded (see the module doc): lower-case ASCII letters, digits and single spaces."""
    return " ".join(text.translate(table).split())


def fold_keeping_punctuation(text: str) -> str:
    """:func:`fold` (transliterated) keeping the characters of :data:`KEPT_PUNCTUATION` as they are, and
    reading :data:`APOSTROPHES` as ``'``."""
    kept = "".join(
        c if c in KEPT_PUNCTUATION else "'" if c in APOSTROPHES else c.translate(TRANSLITERATED) for c in text
    )
    return " ".join(kept.split())


def other_spellings(text: str) -> list[str]:
    """Common ASCII spellings of ``text`` that its transliteration does not give (NFC first): the letters of
    :data:`RESPELT` in their second spelling, each independently (see :data:`RESPELT_VARIED`), and Greek
    ``ου`` as ``ou`` (transliterated: ``oy``)."""
    composed = unicodedata.normalize("NFC", text)
    at = [i for i, char in enumerate(composed) if char in RESPELT]
    spellings: list[str] = []
    for mask in range(1, 2 ** min(len(at), RESPELT_VARIED)):
        chars = list(composed)
        for occurrence, i in enumerate(at):
            if mask >> min(occurrence, RESPELT_VARIED - 1) & 1:
                chars[i] = RESPELT[composed[i]]
        spellings.append("".join(chars))
    decomposed = unicodedata.normalize("NFD", composed)
    greek = _GREEK_OU.sub(r"\1u", decomposed)
    if greek != decomposed:
        spellings.append(greek)
    return spellings


def skeleton(key: str) -> str:
    """``key`` (folded) with ASCII look-alikes read alike, as ``native/leak_keys.c`` does: ``i``, ``l`` and
    ``1`` as ``l``, ``0`` as ``o``, then ``rn``, ``vv`` and ``cl`` as ``m``, ``w`` and ``d``, left to right.
    ``skeleton(skeleton(key)) == skeleton(key)``."""
    return _SKELETON_PAIRS.sub(lambda pair: _SKELETON_PAIR[pair.group()], key.translate(_SKELETON_CHARS))


def skeleton_positions(text: str) -> tuple[str, list[int]]:
    """The skeleton of ``text`` and, per position of ``text`` (and its end), where it starts in the
    skeleton, or -1 inside a pair read as one letter: a substring from one starting position to another has
    the skeleton's slice between them as its skeleton."""
    mapped = text.translate(_SKELETON_CHARS)
    shape: list[str] = []
    starts = [-1] * (len(text) + 1)
    at = 0
    while at < len(mapped):
        starts[at] = len(shape)
        pair = _SKELETON_PAIR.get(mapped[at : at + 2])
        shape.append(pair or mapped[at])
        at += 2 if pair else 1
    starts[len(text)] = len(shape)
    return "".join(shape), starts


def letter_digit_split(folded: str) -> str:
    """A space where a letter meets a digit (``meier2024``: ``meier 2024``)."""
    return _LETTER_DIGIT.sub(" ", folded)


def camel_case_split(text: str) -> str:
    """A space between a lower-case letter and the upper-case one after it (``AnnaMeier``: ``Anna Meier``)."""
    out: list[str] = []
    previous_lower = False
    for char in text:
        if previous_lower and char.isupper():
            out.append(" ")
        out.append(char)
        previous_lower = char.islower()
    return "".join(out)


def has_bidi_control(text: str) -> bool:
    """Whether ``text`` holds a character that reorders how it is shown (a reversed name reads forwards)."""
    return not BIDI_CONTROLS.isdisjoint(text)
