"""Where a CSV text cell could start a spreadsheet formula, and the apostrophe that stops it (OWASP).

A spreadsheet reads a cell as a formula when its first visible character is ``=``, ``+``, ``-`` or ``@``
(or their full-width and small forms), and some also after a leading tab or carriage return. Invisible
characters in front do not help: white space, control and format characters (NBSP, U+FEFF, U+200B,
U+2060, bidi marks) are skipped by people and by some spreadsheets alike. A cell also need not stay whole:
a German-locale spreadsheet splits lines at ``;``, others at tabs or at line breaks a quoted cell holds, so
the text after such a separator starts a cell of its own there. Hence two guards, both an apostrophe:

* at the start of the cell, when it starts with a tab or carriage return, or, after any invisible
  characters (and quotes, which a reader may strip), with a formula character;
* right after every separator inside the cell that is followed, after invisible characters other than
  separators, by a formula character.

A guarded cell is always quoted by the writers: they quote every text cell holding an apostrophe, so text
read back and written again gives the same bytes (the rule is idempotent: a guarded cell needs no more
guards), which the engine relies on when it formats lines read back. ``native/csv_lines.c`` holds the same
tables; tests compare both over every code point.
"""

from __future__ import annotations

import re

# Unicode White_Space, Cc, Cf and Default_Ignorable_Code_Point (with the quote), as closed ranges
INVISIBLE: tuple[tuple[int, int], ...] = (
    (0x0000, 0x0020),
    (0x0022, 0x0022),  # '"': a reader may take it for quoting
    (0x007F, 0x00A0),
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),
    (0x1680, 0x1680),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x206F),
    (0x2800, 0x2800),
    (0x3000, 0x3000),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
SEPARATORS: frozenset[int] = frozenset(
    # ; tab, line ends (those str.splitlines knows too): where a reader may start a new cell
    {0x3B, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029}
)
FORMULA_STARTS: frozenset[int] = frozenset(
    # = + - @, the minus sign, their small (U+FE6x) and full-width (U+FFxx) forms
    {0x3D, 0x2B, 0x2D, 0x40, 0x2212, 0xFE62, 0xFE63, 0xFE66, 0xFE6B, 0xFF0B, 0xFF0D, 0xFF1D, 0xFF20}
)
QUOTE_CHARACTERS = '",;\t\r\n'
"""A cell holding one of these is quoted (RFC 4180's, plus ``;`` and tab for readers splitting there)."""
TEXT_QUOTE_CHARACTERS = QUOTE_CHARACTERS + "'"
"""A text cell holding one of these is quoted (the apostrophe: it may be a guard)."""


def _ranges(ranges: list[tuple[int, int]]) -> str:
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)


def _without(ranges: tuple[tuple[int, int], ...], removed: frozenset[int]) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    for first, last in ranges:
        start = first
        for code in range(first, last + 1):
            if code in removed:
                if start < code:
                    kept.append((start, code - 1))
                start = code + 1
        if start <= last:
            kept.append((start, last))
    return kept


_SKIP = _ranges(list(INVISIBLE))
_MID_SKIP = _ranges(_without(INVISIBLE, SEPARATORS))
_FORMULA = _ranges([(c, c) for c in sorted(FORMULA_STARTS)])
_SEPARATOR = _ranges([(c, c) for c in sorted(SEPARATORS)])

# RE2 (Arrow) and Python re read these the same way
START_PATTERN = rf"^(?:[\t\r]|[{_SKIP}]*[{_FORMULA}])"
"""A cell that needs the apostrophe in front."""
SEGMENT_PATTERN = rf"([{_SEPARATOR}])([{_MID_SKIP}]*[{_FORMULA}])"
"""A separator inside a cell that needs the apostrophe after it (group 1: the separator, 2: what follows)."""
SEGMENT_REPLACEMENT = r"\1'\2"


def _python(pattern: str) -> str:
    return re.sub(r"\\x\{([0-9a-f]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", pattern)


_START = re.compile(_python(START_PATTERN))
_SEGMENT = re.compile(_python(SEGMENT_PATTERN))


def guard_text(text: str) -> str:
    """``text`` with both guards (for one string; columns take the Arrow kernels with the same patterns)."""
    guarded = _SEGMENT.sub(SEGMENT_REPLACEMENT, text)
    return "'" + guarded if _START.match(text) else guarded


def guard_inner(text: str) -> str:
    """``text`` with the guards after separators only (for a part of a cell, such as a count map's key)."""
    return _SEGMENT.sub(SEGMENT_REPLACEMENT, text)
