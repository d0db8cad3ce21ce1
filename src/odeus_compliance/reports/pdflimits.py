"""Caps on what pyHanko's parser may build from an untrusted PDF: objects read, and how deep they nest.

A 16 MiB file whose catalog holds one huge array makes the parser build millions of Python objects (gigabytes,
minutes); arrays nested a million deep exhaust the stack. A report is small in both respects (a few thousand
objects, nesting under 16), so the verifier's process (:mod:`.verifier`, never the service itself) counts
every object pyHanko reads and refuses the file past generous caps.

How: every object the parser reads, from the file or from an object stream, goes through pyHanko's one
module-level ``read_object`` (arrays and dictionaries read their items through it too); :func:`install`
wraps it in the verifier process. Once a cap is passed every further read fails, so a caller inside pyHanko
that catches the first error and carries on cannot get past it, and :func:`exceeded` tells the verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pyhanko.pdf_utils import generic

__all__ = ["LIMITS", "MAX_NESTING", "MAX_OBJECTS", "ParseBudget", "PdfTooComplex", "exceeded", "install"]

MAX_OBJECTS: Final = 250_000
"""The most objects (numbers, names, strings, arrays, dictionaries, ...) one verification may parse."""
MAX_NESTING: Final = 64
"""The deepest arrays and dictionaries may nest."""
LIMITS: Final = {
    "objects": f"it holds more than {MAX_OBJECTS:,} PDF objects",
    "nesting": f"it nests arrays or dictionaries deeper than {MAX_NESTING} levels",
}
"""What each cap means, by the name :func:`exceeded` gives."""


class PdfTooComplex(Exception):
    """The file passes a cap; the message is the cap's name (a key of :data:`LIMITS`)."""


@dataclass
class ParseBudget:
    """What is left of the caps in this process."""

    objects: int = 0
    depth: int = 0
    reason: str | None = None
    """The first cap passed (``objects`` or ``nesting``)."""

    def refuse(self, reason: str) -> PdfTooComplex:
        self.reason = self.reason or reason
        return PdfTooComplex(self.reason)


_budget: ParseBudget | None = None


def _counting(read: Callable[..., Any], budget: ParseBudget) -> Callable[..., Any]:
    def read_object(*args: Any, **kwargs: Any) -> Any:
        if budget.reason is not None:
            raise PdfTooComplex(budget.reason)
        budget.objects += 1
        if budget.objects > MAX_OBJECTS:
            raise budget.refuse("objects")
        budget.depth += 1
        try:
            if budget.depth > MAX_NESTING:
                raise budget.refuse("nesting")
            return read(*args, **kwargs)
        finally:
            budget.depth -= 1

    return read_object


def install() -> ParseBudget:
    """Count pyHanko's reads in this process from now on (once per process: the verifier's, which parses
    one file)."""
    global _budget  # noqa: PLW0603 - one parser per process, one budget for it
    if _budget is None:
        _budget = ParseBudget()
        generic.read_object = _counting(generic.read_object, _budget)
    return _budget


def exceeded() -> str | None:
    """The cap passed in this process (a key of :data:`LIMITS`), if any."""
    return None if _budget is None else _budget.reason
