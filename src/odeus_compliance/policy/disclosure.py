"""Disclosure control: small groups in aggregate tables, and k-anonymity of per-person rows.

Pseudonyms do not stop singling out: "the only person in Legal" is identified by the department alone, and a
published total minus the visible departments gives the hidden one away. Two controls, both fail closed:

* :func:`suppress_small_groups`: every grouped figure needs at least ``k`` people behind it (works
  agreements and Viva Insights use 5). A group under ``k`` is suppressed, and further groups are suppressed
  (smallest first) until the suppressed ones together hold at least ``k`` people, so "total minus visible"
  only ever reveals a sum over ``k`` or more people, never one group.
* :func:`enforce_k_anonymity`: every combination of quasi-identifier values in the per-person dataset must
  be shared by ``k`` rows. The gate generalises the quasi-identifiers further along the policy's hierarchy
  (the least total generalisation that works, full-domain), suppresses the remaining rows up to the
  suppression limit, or refuses with a message that names columns and counts, never values.

Cross-tabulations of several dimensions can still leak through overlapping marginals; the report builder
publishes one dimension per table for that reason.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from odeus_compliance.policy.model import DateLevel
from odeus_compliance.policy.operations import SUPPRESSED, generalize_date

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from decimal import Decimal

    from odeus_compliance.policy.operations import Cell

    _ValueAt = Callable[[str, DateLevel | None, Cell], Cell]


class DisclosureError(ValueError):
    """A disclosure rule cannot be met; the run must not publish."""


class KAnonymityError(DisclosureError):
    """The k-anonymity gate cannot be met within the policy's generalisation and suppression limits."""


# --- grouped figures ---------------------------------------------------------------------------------


class Suppression(enum.StrEnum):
    """Why a group is hidden."""

    PRIMARY = "primary"  # fewer than k people
    COMPLEMENTARY = "complementary"  # hidden so that the primary ones cannot be computed from the total
    DIFFERENCE = "difference"  # hidden because it and another published cell differ by 1 to k-1 people
    DOMINANCE = "dominance"  # hidden because one person holds too large a share of one of its figures


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """A group's size in people and its figures (message counts, cost, ...)."""

    people: int
    figures: Mapping[str, Decimal | int]


@dataclass(frozen=True, slots=True)
class GroupedResult:
    """What may be published of a grouped table."""

    visible: Mapping[str, GroupFigures]
    suppressed: Mapping[str, Suppression]
    total_publishable: bool  # the overall total holds at least k people
    suppressed_people: int  # people in the suppressed groups together: 0, or at least k when publishable


def suppress_small_groups(groups: Mapping[str, GroupFigures], *, k: int) -> GroupedResult:
    """Primary suppression of groups under ``k`` people plus complementary suppression (see module doc)."""
    if k < 1:
        msg = "the minimum group size must be at least 1"
        raise DisclosureError(msg)
    for name, group in groups.items():
        if group.people < 0:
            msg = f"group {name!r} has a negative number of people"
            raise DisclosureError(msg)
    suppressed: dict[str, Suppression] = {
        name: Suppression.PRIMARY for name, group in groups.items() if group.people < k
    }
    hidden_people = sum(groups[name].people for name in suppressed)
    candidates = sorted(
        (name for name in groups if name not in suppressed), key=lambda name: (groups[name].people, name)
    )
    while suppressed and hidden_people < k and candidates:
        name = candidates.pop(0)
        suppressed[name] = Suppression.COMPLEMENTARY
        hidden_people += groups[name].people
    total = sum(group.people for group in groups.values())
    visible = {name: group for name, group in groups.items() if name not in suppressed}
    return GroupedResult(
        visible=MappingProxyType(visible),
        suppressed=MappingProxyType(suppressed),
        total_publishable=total >= k,
        suppressed_people=hidden_people,
    )


# --- k-anonymity of per-person rows ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KAnonymityResult:
    """The rows that may leave the engine and what the gate did to get there."""

    rows: tuple[dict[str, Cell], ...]
    levels: Mapping[str, DateLevel | None]  # further generalisation per quasi-identifier (None: as is)
    suppressed_rows: tuple[int, ...]  # indices into the input rows
    min_class_size: int | None  # None when no rows remain


def generalize_quasi_identifier(value: Cell, level: DateLevel | None, *, column: str) -> Cell:
    """One quasi-identifier value at one hierarchy level (``*`` suppresses any kind of value)."""
    if isinstance(value, Mapping):
        msg = f"quasi-identifier {column!r} must be a single value, not a map"
        raise KAnonymityError(msg)
    if level is None or value is None:
        return value
    if level is DateLevel.SUPPRESSED:
        return SUPPRESSED
    return generalize_date(value, level, column=column)


def enforce_k_anonymity(
    rows: Sequence[Mapping[str, Cell]],
    *,
    quasi_identifiers: Sequence[str],
    k: int,
    suppression_limit: Decimal,
    hierarchy: Mapping[str, Sequence[DateLevel]],
) -> KAnonymityResult:
    """Make every quasi-identifier class hold at least ``k`` rows, or raise :class:`KAnonymityError`.

    Searches the generalisation lattice (each quasi-identifier as is, or at one of its hierarchy steps)
    from the least total generalisation up; at the first level where some choice needs no more than
    ``floor(suppression_limit * len(rows))`` rows suppressed, takes the choice that suppresses fewest.
    """
    if k < 1:
        msg = "k must be at least 1"
        raise KAnonymityError(msg)
    qis = tuple(quasi_identifiers)
    present = tuple(q for q in qis if any(q in row for row in rows))
    options: list[tuple[DateLevel | None, ...]] = [(None, *hierarchy.get(q, ())) for q in present]
    allowed = math.floor(suppression_limit * len(rows))
    cache: dict[tuple[str, DateLevel | None, Cell], Cell] = {}

    def value_at(q: str, level: DateLevel | None, value: Cell) -> Cell:
        key = (q, level, value)
        if key not in cache:
            cache[key] = generalize_quasi_identifier(value, level, column=q)
        return cache[key]

    def classes(vector: tuple[int, ...]) -> dict[tuple[Cell, ...], list[int]]:
        found: dict[tuple[Cell, ...], list[int]] = {}
        for index, row in enumerate(rows):
            key = tuple(value_at(q, options[i][vector[i]], row.get(q)) for i, q in enumerate(present))
            found.setdefault(key, []).append(index)
        return found

    vectors = sorted(itertools.product(*(range(len(o)) for o in options)), key=lambda v: (sum(v), v))
    best_overall: int | None = None
    for _height, group in itertools.groupby(vectors, key=sum):
        best: tuple[int, tuple[int, ...], dict[tuple[Cell, ...], list[int]]] | None = None
        for vector in group:
            found = classes(vector)
            small = sum(len(members) for members in found.values() if len(members) < k)
            best_overall = small if best_overall is None else min(best_overall, small)
            if small <= allowed and (best is None or small < best[0]):
                best = (small, vector, found)
        if best is not None:
            return _result(rows, present, options, best[1], best[2], k=k, value_at=value_at)
    worst = best_overall if best_overall is not None else 0
    msg = (
        f"k-anonymity with k={k} cannot be reached on quasi-identifiers {', '.join(qis) or '(none)'}: "
        f"the best allowed generalisation still leaves {worst} of {len(rows)} rows in groups smaller than "
        f"{k}, and the suppression limit ({suppression_limit}) allows {allowed}; widen the generalisation "
        "hierarchy, raise the suppression limit, or publish aggregates only (per_person_rows = false)"
    )
    raise KAnonymityError(msg)


def _result(
    rows: Sequence[Mapping[str, Cell]],
    present: tuple[str, ...],
    options: list[tuple[DateLevel | None, ...]],
    vector: tuple[int, ...],
    found: dict[tuple[Cell, ...], list[int]],
    *,
    k: int,
    value_at: _ValueAt,
) -> KAnonymityResult:
    suppressed = sorted(i for members in found.values() if len(members) < k for i in members)
    dropped = set(suppressed)
    levels = {q: options[i][vector[i]] for i, q in enumerate(present)}
    out: list[dict[str, Cell]] = []
    for index, row in enumerate(rows):
        if index in dropped:
            continue
        new = dict(row)
        for q in present:
            if q in new:
                new[q] = value_at(q, levels[q], new[q])
        out.append(new)
    sizes = [len(members) for members in found.values() if len(members) >= k]
    return KAnonymityResult(
        rows=tuple(out),
        levels=MappingProxyType(levels),
        suppressed_rows=tuple(suppressed),
        min_class_size=min(sizes) if sizes else None,
    )


# --- the same gate over class counts (the streaming engine) --------------------------------------------


@dataclass(frozen=True, slots=True)
class KAnonymityPlan:
    """What the gate decided from the class counts of a whole dataset, to be applied row by row."""

    quasi_identifiers: tuple[str, ...]
    levels: Mapping[str, DateLevel | None]
    suppressed_classes: frozenset[tuple[Cell, ...]]  # generalised classes whose rows are suppressed
    rows: int
    suppressed_rows: int
    min_class_size: int | None
    classes: int


def plan_k_anonymity(
    counts: Mapping[tuple[Cell, ...], int],
    *,
    quasi_identifiers: Sequence[str],
    k: int,
    suppression_limit: Decimal,
    hierarchy: Mapping[str, Sequence[DateLevel]],
    search: bool = True,
) -> KAnonymityPlan:
    """:func:`enforce_k_anonymity`'s search over ``counts`` (class values -> rows), for data too large to
    hold: the engine counts classes in one pass and applies the plan in the next. Without ``search`` the
    levels are the ones the rows come with (the policy fixed them) and the gate only suppresses rows."""
    if k < 1:
        msg = "k must be at least 1"
        raise KAnonymityError(msg)
    qis = tuple(quasi_identifiers)
    options: list[tuple[DateLevel | None, ...]] = [
        (None, *hierarchy.get(q, ())) if search else (None,) for q in qis
    ]
    total = sum(counts.values())
    allowed = math.floor(suppression_limit * total)
    cache: dict[tuple[str, DateLevel | None, Cell], Cell] = {}

    def value_at(q: str, level: DateLevel | None, value: Cell) -> Cell:
        key = (q, level, value)
        if key not in cache:
            cache[key] = generalize_quasi_identifier(value, level, column=q)
        return cache[key]

    def classes(vector: tuple[int, ...]) -> dict[tuple[Cell, ...], int]:
        found: dict[tuple[Cell, ...], int] = {}
        for values, rows in counts.items():
            key = tuple(value_at(q, options[i][vector[i]], values[i]) for i, q in enumerate(qis))
            found[key] = found.get(key, 0) + rows
        return found

    vectors = sorted(itertools.product(*(range(len(o)) for o in options)), key=lambda v: (sum(v), v))
    best_overall: int | None = None
    for _height, group in itertools.groupby(vectors, key=sum):
        best: tuple[int, tuple[int, ...], dict[tuple[Cell, ...], int]] | None = None
        for vector in group:
            found = classes(vector)
            small = sum(rows for rows in found.values() if rows < k)
            best_overall = small if best_overall is None else min(best_overall, small)
            if small <= allowed and (best is None or small < best[0]):
                best = (small, vector, found)
        if best is not None:
            small, vector, found = best
            sizes = [rows for rows in found.values() if rows >= k]
            return KAnonymityPlan(
                quasi_identifiers=qis,
                levels=MappingProxyType({q: options[i][vector[i]] for i, q in enumerate(qis)}),
                suppressed_classes=frozenset(key for key, rows in found.items() if rows < k),
                rows=total,
                suppressed_rows=small,
                min_class_size=min(sizes) if sizes else None,
                classes=len(sizes),
            )
    worst = best_overall if best_overall is not None else 0
    msg = (
        f"k-anonymity with k={k} cannot be reached on quasi-identifiers {', '.join(qis) or '(none)'}: "
        f"the best allowed generalisation still leaves {worst} of {total} rows in groups smaller than "
        f"{k}, and the suppression limit ({suppression_limit}) allows {allowed}; "
        + (
            "widen the generalisation hierarchy"
            if search
            else "generalise the quasi-identifiers' column rules (with stable tokens the policy fixes them)"
        )
        + ", raise the suppression limit, or publish aggregates only (per_person_rows = false)"
    )
    raise KAnonymityError(msg)
