"""Versions of one period: a re-run may not single out the people it adds or loses.

A re-run of a closed period (a corrected export, a person who left since) is a new version beside the old
one. If a published cell (the total, a group, a pool) of the new version holds 1 to k-1 people more or fewer
than the same cell of an earlier version, subtracting the two isolates those people, with their figures.
Such a version is refused; the earlier one stays the current report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["published_cells", "small_changes"]


def published_cells(figures: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """People behind each published cell of a report's figures (``figures.json``): the total and every
    breakdown row that shows a count."""
    cells: dict[tuple[str, str], int] = {}
    if figures.get("summary_publishable") and isinstance(figures.get("people"), int):
        cells[("total", "total")] = int(figures["people"])
    for breakdown in figures.get("breakdowns", []):
        for row in breakdown.get("rows", []):
            people = row.get("people")
            if isinstance(people, int):
                cells[(str(breakdown.get("dimension")), str(row.get("name")))] = people
    return cells


def small_changes(new: Mapping[str, Any], earlier: Iterable[Mapping[str, Any]], k: int) -> list[str]:
    """The tables where ``new`` differs from an earlier version by 1 to k-1 people (no group names: they
    may be departments of a handful of people)."""
    mine = published_cells(new)
    tables: set[str] = set()
    for old in earlier:
        theirs = published_cells(old)
        for cell in mine.keys() & theirs.keys():
            if 0 < abs(mine[cell] - theirs[cell]) < k:
                tables.add(cell[0])
    return sorted(tables)
