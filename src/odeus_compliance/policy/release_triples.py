"""Differences of three published cells that isolate fewer than k people.

A reader may add and subtract any published populations. For two cells the release audit checks every
nesting and overlap directly; this module checks every combination of three, ``A + B - C`` and
``A - B - C``, exactly: populations are sets of *atoms* (the people sharing one group in every published
dimension), each cell a bit mask over the atoms. A combination isolates people when it counts every
non-empty atom 0 or 1 times (then it is the set of people counted once, and the figures it yields are
exactly theirs) and that set holds 1 to k-1 people. The size of such a set is the same combination of the
cells' sizes, which filters most combinations before any mask is looked at.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MaskedCell", "isolating_triple"]


@dataclass(frozen=True, slots=True)
class MaskedCell:
    """A published population: its number of people and its atoms as a bit mask."""

    size: int
    atoms: int


def isolating_triple(cells: Sequence[MaskedCell], k: int) -> tuple[int, int, int] | None:
    """Indices of three cells whose combination isolates 1 to k-1 people, if any.

    For each pair, only cells of a fitting size can complete it (``A + B - C`` needs ``|A| + |B| - k <
    |C| < |A| + |B|``, ``C - A - B`` needs ``|A| + |B| < |C| < |A| + |B| + k``): found by bisection in
    the cells sorted by size, so the search is about quadratic, not cubic.
    """
    order = sorted(range(len(cells)), key=lambda index: cells[index].size)
    sizes = [cells[index].size for index in order]
    for i, j in itertools.combinations(range(len(cells)), 2):
        first, second = cells[i], cells[j]
        together = first.size + second.size
        for position in range(bisect.bisect_right(sizes, together - k), bisect.bisect_left(sizes, together)):
            other = order[position]
            if other not in (i, j) and _two_minus_one(first, second, cells[other]):
                return _sorted(i, j, other)
        upper = bisect.bisect_left(sizes, together + k)
        for position in range(bisect.bisect_right(sizes, together), upper):
            other = order[position]
            if other not in (i, j) and _one_minus_two(cells[other], first, second):
                return _sorted(i, j, other)
    return None


def _sorted(i: int, j: int, m: int) -> tuple[int, int, int]:
    first, second, third = sorted((i, j, m))
    return first, second, third


def _two_minus_one(first: MaskedCell, second: MaskedCell, minus: MaskedCell) -> bool:
    """``first + second - minus`` counts every atom 0 or 1 times."""
    counted_twice = first.atoms & second.atoms & ~minus.atoms
    counted_negative = minus.atoms & ~(first.atoms | second.atoms)
    return counted_twice == 0 and counted_negative == 0


def _one_minus_two(positive: MaskedCell, first: MaskedCell, second: MaskedCell) -> bool:
    """``positive - first - second`` counts every atom 0 or 1 times."""
    return first.atoms & second.atoms == 0 and (first.atoms | second.atoms) & ~positive.atoms == 0
