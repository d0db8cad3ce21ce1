"""Combinations of two to four published cells: the populations a reader forms by adding and subtracting.

Populations are sets of *atoms* (the people sharing one group in every published dimension), each cell a
bit mask over the atoms. A combination of cells with coefficients +1 and -1 *forms a population* when it
counts every non-empty atom 0 or 1 times: it is then the set of people counted once, and every figure the
combination yields is exactly theirs. Such a population must pass the rules a published cell passes (the
caller's ``discloses``: at least k people, not dominated by one person, at least k contributors).

The patterns searched are ``A - B``; ``A + B - C``, ``A - B - C``; ``A + B - C - D``, ``A + B + C - D`` and
``A - B - C - D``. A sum of cells only is never needed: it is no smaller, and no more dominated, than its
largest part. Every measure of a formed population (its people, a figure's contributors, a figure's sum of
magnitudes) is the same combination of the cells' measures, and a disclosive population puts one measure
into a narrow :class:`Window` (1 to k-1 people or contributors; a sum no larger than the largest single
contribution over the dominance share). So the search is a meet in the middle: single cells, sums of two
and differences of two are sorted by the measure, and for each left part the right parts that complete a
value inside the window are found by bisection; only those are checked on the atoms. The cost is about
quadratic in the number of cells per window (the number of two-cell parts, each bisected once), not
quartic.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["MaskedCell", "Term", "Window", "disclosing_combination", "formed_population"]

Term = tuple[int, int]  # (index of a cell, +1 or -1)
_Part = tuple[Term, ...]

# (left part, right part): the combination is left minus right; by the number of cells
_JOINS: Final[dict[int, tuple[tuple[str, str], ...]]] = {
    3: (("sum", "one"), ("nested", "one")),  # A + B - C, A - B - C
    4: (("sum", "sum"), ("sum", "difference"), ("nested", "disjoint")),  # ++--, +++-, +---
}


@dataclass(frozen=True, slots=True)
class MaskedCell:
    """A published population: its atoms as a bit mask and its measures (each a sum over its atoms)."""

    atoms: int
    measures: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Window:
    """Where one measure of a disclosive population lies (both ends included)."""

    measure: int
    low: float
    high: float


def formed_population(positive: Sequence[int], negative: Sequence[int]) -> int | None:
    """The atoms counted once by ``sum(positive) - sum(negative)`` (bit masks), or None when some atom is
    counted other than 0 or 1 times."""
    if len(positive) == 1:
        return _subtracted(positive[0], negative)
    special = _SHAPES.get((len(positive), len(negative)))
    return special(positive, negative) if special is not None else _formed(positive, negative)


def _subtracted(whole: int, negative: Sequence[int]) -> int | None:
    """``A - B - C ...``: the subtracted cells disjoint, inside A."""
    taken = 0
    for mask in negative:
        if mask & taken:
            return None
        taken |= mask
    return None if taken & ~whole else whole & ~taken


def _two_minus_one(positive: Sequence[int], negative: Sequence[int]) -> int | None:
    """``A + B - C``: C inside A or B, and A and B overlapping only inside C."""
    a, b, c = positive[0], positive[1], negative[0]
    if a & b & ~c or c & ~(a | b):
        return None
    return ((a ^ b) & ~c) | (a & b)


def _two_minus_two(positive: Sequence[int], negative: Sequence[int]) -> int | None:
    """``A + B - C - D``: C and D inside A or B, overlapping only where A and B do, which C or D covers."""
    a, b, c, d = positive[0], positive[1], negative[0], negative[1]
    if c & d & ~(a & b) or (c | d) & ~(a | b) or a & b & ~(c | d):
        return None
    return ((a | b) & ~(c | d)) | (a & b & (c ^ d))


def _three_minus_one(positive: Sequence[int], negative: Sequence[int]) -> int | None:
    """``A + B + C - D``: D inside the three, which overlap only inside D and never all three."""
    a, b, c, d = positive[0], positive[1], positive[2], negative[0]
    twice = (a & b) | (a & c) | (b & c)
    if a & b & c or twice & ~d or d & ~(a | b | c):
        return None
    return ((a ^ b ^ c) & ~d) | twice


_SHAPES: Final[dict[tuple[int, int], Callable[[Sequence[int], Sequence[int]], int | None]]] = {
    (2, 1): _two_minus_one,
    (2, 2): _two_minus_two,
    (3, 1): _three_minus_one,
}


def _formed(positive: Sequence[int], negative: Sequence[int]) -> int | None:
    """:func:`formed_population` for any number of cells. With ``p`` and ``n`` an atom's positive and
    negative counts, ``p - n`` is 0 or 1 exactly when, for every ``t >= 1``, ``n >= t`` implies ``p >= t``
    and ``p >= t + 1`` implies ``n >= t``."""
    depth = max(len(positive), len(negative)) + 1
    at_least_p = [_at_least(positive, t) for t in range(1, depth + 1)]
    at_least_n = [_at_least(negative, t) for t in range(1, depth + 1)]
    for t in range(depth - 1):
        if at_least_n[t] & ~at_least_p[t] or at_least_p[t + 1] & ~at_least_n[t]:
            return None
    once = 0
    for p, n in zip(at_least_p, at_least_n, strict=True):
        once |= p & ~n
    return once


def _at_least(masks: Sequence[int], times: int) -> int:
    """Atoms in at least ``times`` of ``masks``."""
    found = 0
    for chosen in itertools.combinations(masks, times):
        common = chosen[0]
        for mask in chosen[1:]:
            common &= mask
        found |= common
    return found


def disclosing_combination(
    cells: Sequence[MaskedCell],
    windows: Sequence[Window],
    discloses: Callable[[int], bool],
    *,
    people: int = 0,
    most: int = 4,
    four_cell_windows: int | None = None,
) -> tuple[Term, ...] | None:
    """Terms (cell index, sign) of a combination of 2 to ``most`` cells that forms a population with a
    measure in one of ``windows`` and for which ``discloses(atoms)`` holds, if any; fewer cells first.
    ``people`` is the measure that counts people (at least 1 in every non-empty atom); combinations of four
    cells are searched in the first ``four_cell_windows`` windows only (all by default)."""
    search = _Search(cells, discloses, people)
    for width in range(2, min(most, 4) + 1):
        searched = windows[:four_cell_windows] if width == 4 else windows
        for window in searched:
            found = search.run(window, width)
            if found is not None:
                return found
    return None


class _Search:
    """One search over a fixed set of cells: parts sorted per measure, each combination checked once."""

    def __init__(self, cells: Sequence[MaskedCell], discloses: Callable[[int], bool], people: int) -> None:
        self.cells = cells
        self.discloses = discloses
        self.people = [cell.measures[people] for cell in cells]
        self._pairs: dict[str, list[_Part]] = {}
        self._sorted: dict[tuple[int, str], tuple[list[float], list[_Part]]] = {}
        self._tried: set[frozenset[Term]] = set()

    def pairs(self, kind: str) -> list[_Part]:
        """Parts of a kind: single cells (``one``), sums of two (``sum``), sums of two disjoint cells
        (``disjoint``), differences of two (``difference``) and of two nested cells (``nested``, ``A - B``
        with B inside A: only these can start ``A - B - ...``)."""
        cached = self._pairs.get(kind)
        if cached is not None:
            return cached
        count, atoms = len(self.cells), [cell.atoms for cell in self.cells]
        found: list[_Part]
        if kind == "one":
            found = [((i, 1),) for i in range(count)]
        elif kind == "sum":
            found = [((i, 1), (j, 1)) for i, j in itertools.combinations(range(count), 2)]
        elif kind == "disjoint":
            found = [
                ((i, 1), (j, 1))
                for i, j in itertools.combinations(range(count), 2)
                if not atoms[i] & atoms[j]
            ]
        elif kind == "difference":
            found = [((i, 1), (j, -1)) for i, j in itertools.permutations(range(count), 2)]
        else:
            found = [
                ((i, 1), (j, -1))
                for i, j in itertools.permutations(range(count), 2)
                if not atoms[j] & ~atoms[i]
            ]
        self._pairs[kind] = found
        return found

    def parts(self, measure: int, kind: str) -> tuple[list[float], list[_Part]]:
        """:meth:`pairs` of a kind sorted by a measure, with their values."""
        key = (measure, kind)
        cached = self._sorted.get(key)
        if cached is None:
            values = [cell.measures[measure] for cell in self.cells]
            found = sorted(
                ((_value(values, part), part) for part in self.pairs(kind)), key=lambda item: item[0]
            )
            cached = ([value for value, _ in found], [part for _, part in found])
            self._sorted[key] = cached
        return cached

    def run(self, window: Window, width: int) -> tuple[Term, ...] | None:
        if width == 2:  # A - B: the nested differences inside the window
            values, parts = self.parts(window.measure, "nested")
            start, stop = bisect.bisect_left(values, window.low), bisect.bisect_right(values, window.high)
            for position in range(start, stop):
                found = self._check(parts[position], ())
                if found is not None:
                    return found
            return None
        people = self.people
        for left_kind, right_kind in _JOINS[width]:
            left_values, left_parts = self.parts(window.measure, left_kind)
            right_values, right_parts = self.parts(window.measure, right_kind)
            right_people = [_value(people, part) for part in right_parts]
            for value, left in zip(left_values, left_parts, strict=True):
                # left - right within [low, high]: right within [value - high, value - low]
                start = bisect.bisect_left(right_values, value - window.high)
                stop = bisect.bisect_right(right_values, value - window.low)
                if start == stop:
                    continue
                most_people = _value(people, left) - 1  # at least one person is counted once
                indices = {index for index, _ in left}
                for position in range(start, stop):
                    if right_people[position] > most_people:
                        continue
                    right = right_parts[position]
                    if any(index in indices for index, _ in right):
                        continue
                    found = self._check(left, right)
                    if found is not None:
                        return found
        return None

    def _check(self, left: _Part, right: _Part) -> tuple[Term, ...] | None:
        terms = (*left, *((index, -sign) for index, sign in right))
        formed = formed_population(
            [self.cells[i].atoms for i, sign in terms if sign > 0],
            [self.cells[i].atoms for i, sign in terms if sign < 0],
        )
        if not formed:
            return None
        key = frozenset(terms)
        if key in self._tried:
            return None
        self._tried.add(key)
        return tuple(sorted(terms)) if self.discloses(formed) else None


def _value(values: Sequence[float], part: _Part) -> float:
    if len(part) == 2:  # most parts; the same float as the sum below (0 + a + b)
        (first, first_sign), (second, second_sign) = part
        return values[first] * first_sign + values[second] * second_sign
    return sum(values[index] * sign for index, sign in part)
