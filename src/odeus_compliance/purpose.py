"""The one rule for a ``purpose``: why personal data or the audit log is read, recorded in the audit log.

Every route and command that takes a purpose (report requests, downloads and cancellations, every audit
read and export, the CLI's ``--purpose``) checks it here, so all accept the same text: at most
:data:`MAX_PURPOSE_LENGTH` characters, not blank, and none of the characters that could hide or disguise
what a reader of the log sees: control characters (C0, DEL, C1, line and paragraph separators), format
characters (bidi embeddings, overrides and isolates, zero-width characters, U+FEFF, soft hyphen) and lone
surrogates, plus the default-ignorable and blank-looking letters (Hangul fillers, the blank Braille cell)
and U+FFFD (what undecodable bytes in a query string become: the text was not what the client sent); and
at least one letter or digit must remain visible. A refusal names the field and the rule, never the
text.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from odeus_compliance.errors import ValidationFailed

__all__ = ["MAX_PURPOSE_LENGTH", "check_purpose", "purpose_problem"]

MAX_PURPOSE_LENGTH: Final = 500
"""The longest purpose accepted (it is stored in every audit record of the access)."""
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_INVISIBLE: Final = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u2800\u3164\uffa0"
)  # default-ignorable or blank-looking characters outside the format category (Hangul fillers, the
# combining grapheme joiner, Mongolian variation selectors, the blank Braille pattern)
_UNDECODABLE: Final = "\ufffd"


def purpose_problem(value: str | None) -> str | None:
    """What is wrong with ``value`` as a purpose (a rule, never the text), or ``None`` if it is fine."""
    text = (value or "").strip()
    if not text:
        return "required and not blank"
    if len(value or "") > MAX_PURPOSE_LENGTH:
        return f"at most {MAX_PURPOSE_LENGTH} characters"
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES or c in _INVISIBLE for c in value or ""):
        return "no control, format, bidi or invisible characters"
    if _UNDECODABLE in (value or ""):  # bytes that were not UTF-8, decoded as replacement characters
        return "valid UTF-8 text (no U+FFFD replacement character)"
    if not any(c.isalnum() for c in text):  # blank-looking letters alone would read as no purpose
        return "at least one visible letter or digit"
    return None


def check_purpose(
    value: str | None, *, required_for: str, source: str = "query", default: str | None = None
) -> str:
    """The purpose, stripped; a blank one is ``default`` where the caller has one, else refused (400 naming
    ``purpose`` and ``source``)."""
    if default is not None and not (value or "").strip():
        return default
    problem = purpose_problem(value)
    if problem is None:
        return (value or "").strip()
    detail = (
        f"A purpose is required to {required_for}: say why (it is recorded in the audit log)."
        if problem.startswith("required")
        else f"The purpose is not accepted ({problem})."
    )
    raise ValidationFailed(
        detail, extra={"errors": [{"key": "purpose", "source": source, "message": problem}]}
    )
