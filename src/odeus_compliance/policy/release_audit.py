"""The disclosure audit of grouped figures before release: one population, every difference checked.

Input: one row per *distinct person* (subjects canonicalised and merged before), with the person's group in
each published dimension and their figures. Output: which groups each table shows, which are pooled into
its ``(suppressed)`` row, and which figures are withheld, such that:

- every published cell (a visible group, a pooled row, the total) holds at least ``k`` people;
- no published sum is dominated by one person (the (1, p) dominance rule), nor made up by fewer than k
  people with a value (each would learn the others' part): such a cell is pooled; a dominated total
  withholds that figure from every table (every table's cells add up to it), and with it the figures it
  can be rebuilt from or rebuilds (``linked``: a total and its parts);
- every population a reader forms from two to four cells (``A - B``, ``A + B - C``, ``A - B - C``,
  ``A + B - C - D``, ``A + B + C - D``, ``A - B - C - D``) that counts each person 0 or 1 times passes the
  same rules: 0 or at least k people, not dominated, at least k contributors for every figure. The cells
  are the visible groups, the pooled rows, the total and "total minus a pool"; nesting and overlaps come
  from *other* tables too ("Engineering (12)" minus "developers (11)" is one person when every developer
  is in Engineering; "Engineering" plus "admins" minus everyone is the admin engineer when the two cover
  everyone). This is exact, not sampled: populations are sets of atoms of the full cross-tabulation and
  the search is pruned by measures (:mod:`.release_combinations`); five or more cells are not searched;
- active-user counts are sub-populations too: they are shown only where both the active and the inactive
  people of every published cell number 0 or at least k ("11 of 12 active" names one inactive person).

Suppression only grows (a group once pooled stays pooled), so the loop ends; what cannot be made safe is not
published (a table whose pool would not hold k people, or a total under k). Fail closed throughout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.disclosure import DisclosureError, Suppression
from odeus_compliance.policy.release_combinations import MaskedCell, Window, disclosing_combination

__all__ = [
    "Cell",
    "ReleasePlan",
    "TableRelease",
    "atom_table",
    "audit_atoms",
    "audit_release",
    "merge_atom_tables",
]

TOTAL: Final = "total"
# above this many cells, combinations of four are searched for too few people only, not for dominated
# figures or too few contributors: that search grows with the fourth power of the cells
FOUR_CELL_FIGURES_UP_TO: Final = 40


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
class _Atoms:
    """People and figure statistics per atom (the people sharing one group in every dimension); atom ``b``
    is bit ``b`` of every mask."""

    sizes: list[int]
    sums: Mapping[str, list[float]]  # figure -> sum of magnitudes per atom
    tops: Mapping[str, list[float]]  # figure -> largest single magnitude per atom
    contributors: Mapping[str, list[int]]  # figure -> people with a value per atom
    masks: Mapping[tuple[str, str], int]  # (dimension, group) -> its atoms as bits
    everything: int  # every atom
    smallest: Mapping[str, float]  # figure -> the smallest non-zero magnitude of one person (0 if none)


@dataclass(frozen=True, slots=True)
class _Facts:
    """Sizes and figure statistics the audit needs, from the people table."""

    people: int
    sizes: Mapping[tuple[str, str], int]  # (dimension, group) -> people
    sums: Mapping[tuple[str, str, str], float]  # (dimension, group, figure) -> sum
    tops: Mapping[tuple[str, str, str], float]  # (dimension, group, figure) -> largest single contribution
    total_sums: Mapping[str, float]
    total_tops: Mapping[str, float]
    contributors: Mapping[tuple[str, str, str], int]  # (dimension, group, figure) -> people with a value
    total_contributors: Mapping[str, int]
    atoms: _Atoms


def atom_table(
    people: pa.Table, dimensions: Sequence[str], figures: Sequence[str], *, also: Sequence[str] = ()
) -> pa.Table:
    """Per atom of ``people`` (one row per distinct person; without dimensions, everyone): its dimensions,
    ``count_all`` (people), and per figure the sum (``F_sum``) and largest (``F_max``) magnitude, the
    people with a value (``F__n_sum``) and the smallest non-zero magnitude (``F__positive_min``); each
    column of ``also`` summed as it is (``C_sum``). Atoms come in the order people first name them. Tables
    of parts of the people combine with :func:`merge_atom_tables`."""
    # shares are of magnitudes: a refund of -500 in a sum of -496 dominates it as much as +500 of +496
    for figure in figures:
        index = people.schema.get_field_index(figure)
        magnitude = ac.absolute(people.column(figure))
        people = people.set_column(index, figure, magnitude)
        # zeros as nulls: the minimum is then the smallest non-zero value, the count the people with one
        positive = ac.if_else(ac.greater(magnitude, 0), magnitude, pa.scalar(None, magnitude.type))
        people = people.append_column(f"{figure}__positive", positive)
    statistics: list[Any] = [
        ([], "count_all"),
        *((f, "sum") for f in figures),
        *((f, "max") for f in figures),
        *((f"{f}__positive", "count") for f in figures),
        *((f"{f}__positive", "min") for f in figures),
        *((c, "sum") for c in also),
    ]
    atoms = people.group_by(list(dimensions), use_threads=False).aggregate(statistics)
    named = {f"{f}__positive_count": f"{f}__n_sum" for f in figures}
    return atoms.rename_columns([named.get(name, name) for name in atoms.column_names])


def merge_atom_tables(
    parts: Sequence[pa.Table], dimensions: Sequence[str], figures: Sequence[str], *, also: Sequence[str] = ()
) -> pa.Table:
    """One :func:`atom_table` of the people of all ``parts`` (each an atom table of other people), atoms in
    the order the parts first name them."""
    combined = pa.concat_tables(parts)
    how: list[Any] = [
        ("count_all", "sum"),
        *((f"{f}_sum", "sum") for f in figures),
        *((f"{f}_max", "max") for f in figures),
        *((f"{f}__n_sum", "sum") for f in figures),
        *((f"{f}__positive_min", "min") for f in figures),
        *((f"{c}_sum", "sum") for c in also),
    ]
    merged = combined.group_by(list(dimensions), use_threads=False).aggregate(how)
    original = {f"{column}_{op}": column for column, op in how}
    return merged.rename_columns([original.get(name, name) for name in merged.column_names])


def _facts_of_atoms(atoms: pa.Table, dimensions: Sequence[str], figures: Sequence[str]) -> _Facts:
    """The audit's facts from an :func:`atom_table` (without dimensions: its one row is everyone, and there
    are no atoms to combine)."""
    sizes: dict[tuple[str, str], int] = {}
    sums: dict[tuple[str, str, str], float] = {}
    tops: dict[tuple[str, str, str], float] = {}
    contributors: dict[tuple[str, str, str], int] = {}
    per_group: list[Any] = [
        ("count_all", "sum"),
        *((f"{f}_sum", "sum") for f in figures),
        *((f"{f}_max", "max") for f in figures),
        *((f"{f}__n_sum", "sum") for f in figures),
    ]
    for dimension in dimensions:
        for row in atoms.group_by(dimension, use_threads=False).aggregate(per_group).to_pylist():
            group = row[dimension]
            sizes[(dimension, group)] = int(row["count_all_sum"])
            for figure in figures:
                sums[(dimension, group, figure)] = float(row[f"{figure}_sum_sum"] or 0)
                tops[(dimension, group, figure)] = float(row[f"{figure}_max_max"] or 0)
                contributors[(dimension, group, figure)] = int(row[f"{figure}__n_sum_sum"] or 0)
    whole = atoms
    people = int(ac.sum(whole.column("count_all")).as_py() or 0)
    total_sums = {f: float(ac.sum(whole.column(f"{f}_sum")).as_py() or 0) for f in figures}
    total_tops = {f: float(ac.max(whole.column(f"{f}_max")).as_py() or 0) if people else 0.0 for f in figures}
    total_contributors = {f: int(ac.sum(whole.column(f"{f}__n_sum")).as_py() or 0) for f in figures}
    return _Facts(
        people,
        sizes,
        sums,
        tops,
        total_sums,
        total_tops,
        contributors,
        total_contributors,
        _atoms(atoms.to_pylist() if dimensions else [], dimensions, figures),
    )


def _atoms(rows: list[dict[str, Any]], dimensions: Sequence[str], figures: Sequence[str]) -> _Atoms:
    masks: dict[tuple[str, str], int] = {}
    for bit, row in enumerate(rows):
        for dimension in dimensions:
            key = (dimension, row[dimension])
            masks[key] = masks.get(key, 0) | (1 << bit)
    return _Atoms(
        sizes=[int(row["count_all"]) for row in rows],
        sums={f: [float(row[f"{f}_sum"] or 0) for row in rows] for f in figures},
        tops={f: [float(row[f"{f}_max"] or 0) for row in rows] for f in figures},
        contributors={f: [int(row[f"{f}__n_sum"] or 0) for row in rows] for f in figures},
        masks=masks,
        everything=(1 << len(rows)) - 1,
        smallest={
            f: min((float(v) for row in rows if (v := row[f"{f}__positive_min"]) is not None), default=0.0)
            for f in figures
        },
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


def _size(facts: _Facts, tables: Mapping[str, TableRelease], cell: Cell) -> int:
    if cell.kind == "total":
        return facts.people
    return sum(facts.sizes[(cell.table, g)] for g in _members(tables[cell.table], cell))


def _masked(
    facts: _Facts, tables: Mapping[str, TableRelease], cell: Cell, figures: Sequence[str]
) -> MaskedCell:
    """A cell's atoms and measures: people, then each figure's contributors and sum (see :func:`_windows`)."""
    if cell.kind == "total":
        measures = [float(facts.people)]
        for figure in figures:
            measures += [float(facts.total_contributors[figure]), facts.total_sums[figure]]
        return MaskedCell(facts.atoms.everything, tuple(measures))
    groups = _members(tables[cell.table], cell)
    bits = 0
    for group in groups:
        bits |= facts.atoms.masks.get((cell.table, group), 0)
    measures = [float(sum(facts.sizes[(cell.table, g)] for g in groups))]
    for figure in figures:
        measures.append(float(sum(facts.contributors[(cell.table, g, figure)] for g in groups)))
        measures.append(sum(facts.sums[(cell.table, g, figure)] for g in groups))
    return MaskedCell(bits, tuple(measures))


def _windows(facts: _Facts, figures: Sequence[str], share: float, k: int) -> list[Window]:
    """Where a disclosive population's measures lie: 1 to k-1 people, 1 to k-1 contributors, or a sum of
    one figure no larger than the largest single contribution over ``share`` (one person's part of a
    population is at most that). Sums are floats: the windows are widened by far more than their rounding,
    and every candidate is checked exactly on the atoms."""
    windows = [Window(0, 1, k - 1)]
    for index, figure in enumerate(figures):
        windows.append(Window(1 + 2 * index, 1, k - 1))
        if facts.total_tops[figure] > 0:
            slack = 1e-9 * facts.total_sums[figure]
            high = facts.total_tops[figure] / share + slack
            windows.append(Window(2 + 2 * index, facts.atoms.smallest[figure] / 2, high))
    return windows


def _bits(mask: int) -> list[int]:
    return [bit for bit, digit in enumerate(reversed(f"{mask:b}")) if digit == "1"]


def _discloses(atoms: _Atoms, mask: int, figures: Sequence[str], share: float, k: int) -> bool:
    """The population of these atoms holds 1 to k-1 people, or one of its figures is dominated."""
    bits = _bits(mask)
    if not bits:
        return False
    if sum(atoms.sizes[b] for b in bits) < k:
        return True
    for figure in figures:
        sums, tops, counts = atoms.sums[figure], atoms.tops[figure], atoms.contributors[figure]
        total = sum(sums[b] for b in bits)
        top = max(tops[b] for b in bits)
        if _dominated(total, top, share, sum(counts[b] for b in bits), k):
            return True
    return False


def _combination(
    facts: _Facts,
    tables: Mapping[str, TableRelease],
    cells: Sequence[Cell],
    *,
    figures: Sequence[str],
    share: float,
    k: int,
) -> tuple[Cell, ...] | None:
    """Two to four cells a reader combines into a population that is too small, dominated or made up by too
    few contributors, if any (see :mod:`.release_combinations`)."""
    masked = [_masked(facts, tables, cell, figures) for cell in cells]
    unique: dict[tuple[tuple[float, ...], float, float], Window] = {}
    for window in _windows(facts, figures, share, k):  # figures with the same measures need one search
        measures = tuple(cell.measures[window.measure] for cell in masked)
        unique.setdefault((measures, window.low, window.high), window)
    found = disclosing_combination(
        masked,
        list(unique.values()),  # the people window first
        lambda mask: _discloses(facts.atoms, mask, figures, share, k),
        four_cell_windows=None if len(cells) <= FOUR_CELL_FIGURES_UP_TO else 1,
    )
    return None if found is None else tuple(cells[index] for index, _ in found)


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
    linked: Mapping[str, Sequence[str]],
    active: str | None = None,
    max_rounds: int = 10_000,
) -> ReleasePlan:
    """Decide what the grouped tables of ``people`` (one row per distinct person: a string column per
    dimension, a float column per figure) may publish; see the module docstring. ``linked`` maps a figure
    to the figures that add up to it for every person (``messages_total`` to its channels)."""
    if k < 1 or not 0 < dominance <= 1:
        msg = "the minimum group size must be at least 1 and the dominance share in (0, 1]"
        raise DisclosureError(msg)
    counted = [*figures, active] if active is not None else list(figures)
    atoms = atom_table(people, dimensions, counted)
    return audit_atoms(
        atoms, dimensions=dimensions, figures=figures, k=k, dominance=dominance, linked=linked, active=active,
        max_rounds=max_rounds,
    )  # fmt: skip


def audit_atoms(
    atoms: pa.Table,
    *,
    dimensions: Sequence[str],
    figures: Sequence[str],
    k: int,
    dominance: float,
    linked: Mapping[str, Sequence[str]],
    active: str | None = None,
    max_rounds: int = 10_000,
) -> ReleasePlan:
    """:func:`audit_release` from the people's :func:`atom_table` (of ``figures`` and ``active``), which
    can be built batch by batch where every row is a distinct person."""
    if k < 1 or not 0 < dominance <= 1:
        msg = "the minimum group size must be at least 1 and the dominance share in (0, 1]"
        raise DisclosureError(msg)
    counted = [*figures, active] if active is not None else list(figures)
    facts = _facts_of_atoms(atoms, dimensions, counted)
    tables: dict[str, TableRelease] = {}
    for dimension in dimensions:
        groups = {g: n for (d, g), n in facts.sizes.items() if d == dimension}
        release = TableRelease(dimension, groups)
        release.suppressed.update({g: Suppression.PRIMARY for g, size in sorted(groups.items()) if size < k})
        _complete(release, facts.sizes, k)
        tables[dimension] = release
    total_published = facts.people >= k
    dominated = {
        f
        for f in figures
        if _dominated(facts.total_sums[f], facts.total_tops[f], dominance, facts.total_contributors[f], k)
    }
    withheld = _with_linked(dominated, linked, figures, facts.total_sums)
    checked = [f for f in figures if f not in withheld]
    rounds = 0
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
        found = _combination(facts, tables, cells, figures=checked, share=dominance, k=k)
        if found is None:
            break
        _resolve(found, tables, facts, k)
    plan = _plan(
        facts, tables, total_published=total_published, withheld=withheld, checked=checked, rounds=rounds
    )
    if active is None:
        return plan
    return _with_active_rule(plan, facts, tables, active, k)


def _with_linked(
    withheld: set[str], linked: Mapping[str, Sequence[str]], figures: Sequence[str], sums: Mapping[str, float]
) -> frozenset[str]:
    """Withheld figures closed over sums: a total minus its published parts rebuilds a withheld part, and
    published parts add up to a withheld total. So a withheld part withholds its total, and a withheld total
    withholds its largest part as well."""
    closed = set(withheld)
    changed = True
    while changed:
        changed = False
        for total, parts in linked.items():
            present = [p for p in parts if p in figures]
            if total not in figures or not present:
                continue
            if total not in closed and any(p in closed for p in present):
                closed.add(total)
                changed = True
            if total in closed and not any(p in closed for p in present):
                closed.add(max(present, key=lambda p: (sums[p], p)))
                changed = True
    return frozenset(closed)


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
    """Break a disclosive combination: pool the smallest visible group involved, else widen the pool of a
    table involved, else withhold that table."""
    groups = sorted(
        (c for c in found if c.kind == "group"),
        key=lambda c: (facts.sizes[(c.table, c.name)], c.table, c.name),
    )
    if groups:
        _pool(tables[groups[0].table], groups[0].name, Suppression.DIFFERENCE, facts.sizes, k)
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
    msg = "only totals combine here: the report's figures do not come from one population"
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
    cells = _cells(tables) if total_published else []
    published = [c for c in cells if c.kind != "rest"]
    smallest = min((_size(facts, tables, c) for c in published), default=None)
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
