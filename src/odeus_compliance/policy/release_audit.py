"""The disclosure audit of grouped figures before release: one population, every difference checked.

Input: one row per *distinct person* (subjects canonicalised and merged before), with the person's group in
each published dimension and their figures. Output: which groups each table shows, which are pooled into
its ``(suppressed)`` row, and which figures are withheld, such that:

- every published cell (a visible group, a pooled row, the total) holds at least ``k`` people;
- no difference of two published cells over nested populations isolates 1 to k-1 people. The cells of one
  table are disjoint, so nesting comes from the total, the pooled rows, "total minus pooled" (a sum an
  attacker can form) and cells of *other* tables: "Engineering (12)" minus "developers (11)" is one
  person when every developer is in Engineering. Nor does a sum of two cells minus the total ("Engineering"
  plus "admins" minus everyone is the one admin engineer when the two cover everyone). Sizes of
  intersections come from cross-tabulations of the dimensions, so this is exact, not sampled. Every
  combination of three cells (``A + B - C``, ``A - B - C``) is checked too, exactly, over the atoms of the
  full cross-tabulation (:mod:`.release_triples`); combinations of four or more are not searched;
- no published sum is dominated by one person (the (1, p) dominance rule), nor made up by fewer than k
  people with a value (each would learn the others' part): such a cell is pooled; a dominated total
  withholds that figure from every table (every table's cells add up to it);
- active-user counts are sub-populations too: they are shown only where both the active and the inactive
  people of every published cell number 0 or at least k ("11 of 12 active" names one inactive person).

Suppression only grows (a group once pooled stays pooled), so the loop ends; what cannot be made safe is not
published (a table whose pool would not hold k people, or a total under k). Fail closed throughout.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.disclosure import DisclosureError, Suppression
from odeus_compliance.policy.release_triples import MaskedCell, isolating_triple

__all__ = ["Cell", "ReleasePlan", "TableRelease", "audit_release"]

TOTAL: Final = "total"


@dataclass(frozen=True, slots=True)
class Cell:
    """A published population: a group of a table, a table's pool, the total, or a derived difference."""

    table: str
    name: str
    kind: str  # group, pool, total, rest (total minus a table's pool)


@dataclass(slots=True)
class TableRelease:
    """What one dimension's table publishes."""

    dimension: str
    groups: dict[str, int]  # distinct people per group (all groups, visible or not)
    suppressed: dict[str, Suppression] = field(default_factory=dict)
    published: bool = True  # False: the whole table is withheld

    @property
    def visible(self) -> list[str]:
        """Groups shown with their own figures."""
        return sorted(g for g in self.groups if g not in self.suppressed) if self.published else []


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    """The audit's decision for the whole report."""

    people: int
    total_published: bool
    tables: Mapping[str, TableRelease]
    withheld_figures: frozenset[str]  # figures dominated in the total: published nowhere
    pooled_people: Mapping[str, int]  # distinct people in each table's pool
    smallest_cell: int | None  # the fewest people behind any published cell
    largest_share: float | None  # the largest single contribution to any published sum, as a share
    rounds: int
    active_in_total: bool = True  # the total's active-user count may be shown
    active_in_tables: bool = True  # the tables' active-user counts may be shown


@dataclass(frozen=True, slots=True)
class _Facts:
    """Sizes and figure statistics the audit needs, from the people table."""

    people: int
    sizes: Mapping[tuple[str, str], int]  # (dimension, group) -> people
    pairs: Mapping[tuple[str, str, str, str], int]  # (dim a, group a, dim b, group b) -> people in both
    sums: Mapping[tuple[str, str, str], float]  # (dimension, group, figure) -> sum
    tops: Mapping[tuple[str, str, str], float]  # (dimension, group, figure) -> largest single contribution
    total_sums: Mapping[str, float]
    total_tops: Mapping[str, float]
    contributors: Mapping[tuple[str, str, str], int]  # (dimension, group, figure) -> people with a value
    total_contributors: Mapping[str, int]
    atoms: Mapping[tuple[str, str], int]  # (dimension, group) -> its atoms (see release_triples) as bits


def _facts(people: pa.Table, dimensions: Sequence[str], figures: Sequence[str]) -> _Facts:
    # shares are of magnitudes: a refund of -500 in a sum of -496 dominates it as much as +500 of +496
    for figure in figures:
        index = people.schema.get_field_index(figure)
        people = people.set_column(index, figure, ac.absolute(people.column(figure)))
    for figure in figures:
        people = people.append_column(
            f"{figure}__n", ac.cast(ac.greater(people.column(figure), 0), pa.int64())
        )
    sizes: dict[tuple[str, str], int] = {}
    sums: dict[tuple[str, str, str], float] = {}
    tops: dict[tuple[str, str, str], float] = {}
    contributors: dict[tuple[str, str, str], int] = {}
    for dimension in dimensions:
        aggregations: list[Any] = [([], "count_all")]
        aggregations += [(f, "sum") for f in figures] + [(f, "max") for f in figures]
        aggregations += [(f"{f}__n", "sum") for f in figures]
        for row in people.group_by(dimension).aggregate(aggregations).to_pylist():
            group = row[dimension]
            sizes[(dimension, group)] = int(row["count_all"])
            for figure in figures:
                sums[(dimension, group, figure)] = float(row[f"{figure}_sum"] or 0)
                tops[(dimension, group, figure)] = float(row[f"{figure}_max"] or 0)
                contributors[(dimension, group, figure)] = int(row[f"{figure}__n_sum"] or 0)
    pairs: dict[tuple[str, str, str, str], int] = {}
    for first, second in itertools.combinations(dimensions, 2):
        for row in people.group_by([first, second]).aggregate([([], "count_all")]).to_pylist():
            count = int(row["count_all"])
            pairs[(first, row[first], second, row[second])] = count
            pairs[(second, row[second], first, row[first])] = count
    total_sums = {f: float(ac.sum(people.column(f)).as_py() or 0) for f in figures}
    total_tops = {
        f: float(ac.max(people.column(f)).as_py() or 0) if people.num_rows else 0.0 for f in figures
    }
    total_contributors = {f: int(ac.sum(people.column(f"{f}__n")).as_py() or 0) for f in figures}
    atoms: dict[tuple[str, str], int] = {}
    if dimensions:
        combined = people.group_by(list(dimensions)).aggregate([([], "count_all")]).to_pylist()
        for bit, row in enumerate(combined):
            for dimension in dimensions:
                key = (dimension, row[dimension])
                atoms[key] = atoms.get(key, 0) | (1 << bit)
    return _Facts(
        people.num_rows,
        sizes,
        pairs,
        sums,
        tops,
        total_sums,
        total_tops,
        contributors,
        total_contributors,
        atoms,
    )


def _members(release: TableRelease, cell: Cell) -> list[str]:
    """The groups of ``release`` a cell of that table covers."""
    if cell.kind == "group":
        return [cell.name]
    pooled = [g for g in release.groups if g in release.suppressed]
    if cell.kind == "pool":
        return pooled
    return [g for g in release.groups if g not in release.suppressed]  # rest: total minus the pool


def _cells(tables: Mapping[str, TableRelease]) -> list[Cell]:
    cells = [Cell(TOTAL, TOTAL, "total")]
    for dimension, release in tables.items():
        if not release.published:
            continue
        cells += [Cell(dimension, name, "group") for name in release.visible]
        if release.suppressed:
            cells += [Cell(dimension, "(suppressed)", "pool"), Cell(dimension, "(rest)", "rest")]
    return cells


class _Sizes:
    """Sizes of cells and of intersections of two cells, from the cross-tabulations."""

    def __init__(self, facts: _Facts, tables: Mapping[str, TableRelease]) -> None:
        self.facts = facts
        self.tables = tables

    def size(self, cell: Cell) -> int:
        if cell.kind == "total":
            return self.facts.people
        return sum(self.facts.sizes[(cell.table, g)] for g in _members(self.tables[cell.table], cell))

    def masked(self, cell: Cell) -> MaskedCell:
        if cell.kind == "total":
            everything = 0
            for bits in self.facts.atoms.values():
                everything |= bits
            return MaskedCell(self.facts.people, everything)
        bits = 0
        for group in _members(self.tables[cell.table], cell):
            bits |= self.facts.atoms.get((cell.table, group), 0)
        return MaskedCell(self.size(cell), bits)

    def both(self, a: Cell, b: Cell) -> int:
        if a.kind == "total":
            return self.size(b)
        if b.kind == "total":
            return self.size(a)
        mine, theirs = _members(self.tables[a.table], a), _members(self.tables[b.table], b)
        if a.table == b.table:  # one group per person per table: cells of a table meet in shared groups
            return sum(self.facts.sizes[(a.table, g)] for g in set(mine) & set(theirs))
        return sum(self.facts.pairs.get((a.table, x, b.table, y), 0) for x in mine for y in theirs)


def _differencing(sizes: _Sizes, cells: Sequence[Cell], k: int) -> tuple[Cell, Cell] | None:
    """A pair of cells from which a reader isolates 1 to k-1 people, if any: nested cells whose difference
    is that small, or two cells whose sum minus the total is (A + B - total is their overlap when together
    they cover everyone, and minus the people outside both when they do not overlap)."""
    everyone = sizes.facts.people
    measured = [(cell, sizes.size(cell)) for cell in cells]
    for (a, size_a), (b, size_b) in itertools.combinations(measured, 2):
        small, large, small_size, large_size = (
            (a, b, size_a, size_b) if size_a <= size_b else (b, a, size_b, size_a)
        )
        both = sizes.both(small, large)
        if 0 < large_size - small_size < k and both == small_size:
            return small, large
        outside = everyone - size_a - size_b + both
        if (outside == 0 and 0 < both < k) or (both == 0 and 0 < outside < k):
            return small, large
    return None


def _triple(sizes: _Sizes, cells: Sequence[Cell], k: int) -> tuple[Cell, ...] | None:
    """Three cells a reader combines into 1 to k-1 people, if any (see :mod:`.release_triples`)."""
    found = isolating_triple([sizes.masked(cell) for cell in cells], k)
    return None if found is None else tuple(cells[i] for i in found)


def _pool(
    release: TableRelease, group: str, why: Suppression, sizes: Mapping[tuple[str, str], int], k: int
) -> None:
    """Pool ``group``, then complementary groups as :func:`_complete` does."""
    release.suppressed.setdefault(group, why)
    _complete(release, sizes, k)


def _complete(release: TableRelease, sizes: Mapping[tuple[str, str], int], k: int) -> None:
    """Complementary groups (smallest first) until the pool holds at least k people; withhold the table
    when it cannot."""
    if not release.suppressed:
        return
    pooled = sum(sizes[(release.dimension, g)] for g in release.suppressed)
    candidates = sorted(
        (g for g in release.groups if g not in release.suppressed),
        key=lambda g: (sizes[(release.dimension, g)], g),
    )
    while pooled < k and candidates:
        name = candidates.pop(0)
        release.suppressed[name] = Suppression.COMPLEMENTARY
        pooled += sizes[(release.dimension, name)]
    if pooled < k:
        release.published = False


def _dominated(total: float, top: float, share: float, contributors: int, k: int) -> bool:
    """One person holds more than ``share`` of the sum, or fewer than k people make it up (each of them
    would learn the others' part)."""
    return total > 0 and (top > share * total or contributors < k)


def _fix_dominance(
    facts: _Facts, tables: Mapping[str, TableRelease], figures: Sequence[str], share: float, k: int
) -> bool:
    """Pool one dominated visible group (True), or find none (False)."""
    for dimension, release in tables.items():
        for group in release.visible:
            if any(
                _dominated(
                    facts.sums[(dimension, group, f)],
                    facts.tops[(dimension, group, f)],
                    share,
                    facts.contributors[(dimension, group, f)],
                    k,
                )
                for f in figures
            ):
                _pool(release, group, Suppression.DOMINANCE, facts.sizes, k)
                return True
    return False


def _pool_dominated(
    facts: _Facts, release: TableRelease, figures: Sequence[str], share: float, k: int
) -> bool:
    """A pool dominated by one person takes in further groups (smallest first); True if it changed."""
    if not release.published or not release.suppressed:
        return False
    pooled = [g for g in release.groups if g in release.suppressed]
    for figure in figures:
        total = sum(facts.sums[(release.dimension, g, figure)] for g in pooled)
        top = max(facts.tops[(release.dimension, g, figure)] for g in pooled)
        count = sum(facts.contributors[(release.dimension, g, figure)] for g in pooled)
        if _dominated(total, top, share, count, k):
            rest = sorted(release.visible, key=lambda g: (facts.sizes[(release.dimension, g)], g))
            if not rest:
                release.published = False
                return True
            _pool(release, rest[0], Suppression.COMPLEMENTARY, facts.sizes, k)
            return True
    return False


def audit_release(
    people: pa.Table,
    *,
    dimensions: Sequence[str],
    figures: Sequence[str],
    k: int,
    dominance: float,
    active: str | None = None,
    max_rounds: int = 10_000,
) -> ReleasePlan:
    """Decide what the grouped tables of ``people`` (one row per distinct person: a string column per
    dimension, a float column per figure) may publish; see the module docstring."""
    if k < 1 or not 0 < dominance <= 1:
        msg = "the minimum group size must be at least 1 and the dominance share in (0, 1]"
        raise DisclosureError(msg)
    counted = [*figures, active] if active is not None else list(figures)
    facts = _facts(people, dimensions, counted)
    tables: dict[str, TableRelease] = {}
    for dimension in dimensions:
        groups = {g: n for (d, g), n in facts.sizes.items() if d == dimension}
        release = TableRelease(dimension, groups)
        release.suppressed.update({g: Suppression.PRIMARY for g, size in sorted(groups.items()) if size < k})
        _complete(release, facts.sizes, k)
        tables[dimension] = release
    total_published = facts.people >= k
    withheld = frozenset(
        f
        for f in figures
        if _dominated(facts.total_sums[f], facts.total_tops[f], dominance, facts.total_contributors[f], k)
    )
    checked = [f for f in figures if f not in withheld]
    rounds = 0
    sizes = _Sizes(facts, tables)
    while total_published:
        rounds += 1
        if rounds > max_rounds:  # pragma: no cover - suppression only grows, so this cannot happen
            msg = "the disclosure audit did not settle; nothing is published"
            raise DisclosureError(msg)
        if _fix_dominance(facts, tables, checked, dominance, k):
            continue
        if any(_pool_dominated(facts, release, checked, dominance, k) for release in tables.values()):
            continue
        cells = _cells(tables)
        found = _differencing(sizes, cells, k) or _triple(sizes, cells, k)
        if found is None:
            break
        _resolve(found, tables, facts, k)
    plan = _plan(
        facts, tables, total_published=total_published, withheld=withheld, checked=checked, rounds=rounds
    )
    if active is None:
        return plan
    return _with_active_rule(plan, facts, tables, active, k)


def _safe_split(size: int, active: int, k: int) -> bool:
    return all(part == 0 or part >= k for part in (active, size - active))


def _with_active_rule(
    plan: ReleasePlan, facts: _Facts, tables: Mapping[str, TableRelease], active: str, k: int
) -> ReleasePlan:
    in_total = _safe_split(facts.people, round(facts.total_sums[active]), k)
    in_tables = in_total
    for dimension, release in tables.items():
        if not release.published:
            continue
        parts = [[g] for g in release.visible]
        if release.suppressed:
            parts.append(list(release.suppressed))
        for groups in parts:
            size = sum(facts.sizes[(dimension, g)] for g in groups)
            count = round(sum(facts.sums[(dimension, g, active)] for g in groups))
            in_tables = in_tables and _safe_split(size, count, k)
    return dataclasses.replace(plan, active_in_total=in_total, active_in_tables=in_tables)


def _resolve(found: tuple[Cell, ...], tables: Mapping[str, TableRelease], facts: _Facts, k: int) -> None:
    """Break a differencing pair: pool the visible group involved (the smaller cell's if it is one), else
    widen the pool of a table involved, else withhold that table."""
    for cell in found:
        if cell.kind == "group":
            _pool(tables[cell.table], cell.name, Suppression.DIFFERENCE, facts.sizes, k)
            return
    for cell in found:
        if cell.kind in {"pool", "rest"}:
            release = tables[cell.table]
            rest = sorted(release.visible, key=lambda g: (facts.sizes[(release.dimension, g)], g))
            if rest:
                _pool(release, rest[0], Suppression.DIFFERENCE, facts.sizes, k)
            else:
                release.published = False
            return
    msg = "two totals differ: the report's figures do not come from one population"
    raise DisclosureError(msg)  # pragma: no cover - every table covers the same people


def _plan(
    facts: _Facts,
    tables: Mapping[str, TableRelease],
    *,
    total_published: bool,
    withheld: frozenset[str],
    checked: Sequence[str],
    rounds: int,
) -> ReleasePlan:
    sizes = _Sizes(facts, tables)
    cells = _cells(tables) if total_published else []
    published = [c for c in cells if c.kind != "rest"]
    smallest = min((sizes.size(c) for c in published), default=None)
    shares = [
        facts.total_tops[f] / facts.total_sums[f]
        for f in checked
        if total_published and facts.total_sums[f] > 0
    ]
    for dimension, release in tables.items():
        for group in release.visible:
            shares += [
                facts.tops[(dimension, group, f)] / facts.sums[(dimension, group, f)]
                for f in checked
                if facts.sums[(dimension, group, f)] > 0
            ]
    pooled = {
        d: sum(facts.sizes[(d, g)] for g in r.suppressed)
        for d, r in tables.items()
        if r.published and r.suppressed
    }
    return ReleasePlan(
        people=facts.people,
        total_published=total_published,
        tables=tables,
        withheld_figures=withheld,
        pooled_people=pooled,
        smallest_cell=smallest,
        largest_share=max(shares, default=None),
        rounds=rounds,
    )
