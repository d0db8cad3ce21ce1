"""Aggregates only (``per_person_rows = false``): grouped figures, each of at least k people.

For each grouping dimension present in the output (department, company, role, licence), the engine sums
every numeric output column per group and counts the people behind it, then
:func:`~odeus_compliance.policy.disclosure.suppress_small_groups` hides groups under k and, complementarily,
enough further groups that "total minus visible" never reveals one. The suppressed groups are published
only as their sum (``(suppressed)``, which holds at least k people), the total only when it holds k.

People are rows, since an export has one row per person, unless a ``group_by`` column (``model``) repeats
a person: then people are distinct subject tokens per group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.disclosure import GroupFigures, suppress_small_groups
from odeus_compliance.policy.operations import format_number
from odeus_compliance.upstream.batches import DECIMAL_TYPE

DIMENSIONS = ("department", "company_name", "role", "license_type")
SUPPRESSED_GROUP = "(suppressed)"
EMPTY_GROUP = "(none)"
TOTAL = "total"


@dataclass(slots=True)
class _Group:
    rows: int = 0
    people: set[str] = field(default_factory=set)
    sums: dict[str, Decimal] = field(default_factory=dict)


class Aggregator:
    """Accumulates grouped sums over batches; :meth:`table` applies the small-group rules."""

    def __init__(self, *, dimensions: tuple[str, ...], figures: tuple[str, ...], person: str | None) -> None:
        self.dimensions = dimensions
        self.figures = figures
        self._person = person
        self._groups: dict[str, dict[str, _Group]] = {d: {} for d in dimensions}
        self._total = _Group()

    def observe(self, data: pa.RecordBatch) -> None:
        """Add one transformed batch."""
        numbers: dict[str, Any] = {f: ac.cast(data.column(f), DECIMAL_TYPE) for f in self.figures}
        self._add(self._total, None, data, numbers)
        for dimension in self.dimensions:
            column = ac.fill_null(data.column(dimension), EMPTY_GROUP)
            table = pa.table({"g": column, **numbers})
            summed = table.group_by("g").aggregate([([], "count_all"), *((f, "sum") for f in self.figures)])
            groups = self._groups[dimension]
            for row in summed.to_pylist():
                group = groups.setdefault(row["g"], _Group())
                group.rows += row["count_all"]
                for figure in self.figures:
                    value = row[f"{figure}_sum"]
                    if value is not None:
                        group.sums[figure] = group.sums.get(figure, Decimal(0)) + value
            if self._person is not None:
                people = pa.table({"g": column, "p": data.column(self._person)})
                for row in people.group_by(["g", "p"]).aggregate([]).to_pylist():
                    if row["p"] is not None:
                        groups[row["g"]].people.add(row["p"])

    def _add(self, group: _Group, _name: None, data: pa.RecordBatch, numbers: dict[str, Any]) -> None:
        group.rows += data.num_rows
        for figure, values in numbers.items():
            total = ac.sum(values).as_py()
            if total is not None:
                group.sums[figure] = group.sums.get(figure, Decimal(0)) + total
        if self._person is not None:
            group.people.update(v for v in ac.unique(data.column(self._person)).to_pylist() if v is not None)

    def _people(self, group: _Group) -> int:
        return len(group.people) if self._person is not None else group.rows

    def table(self, *, k: int) -> tuple[list[list[str]], dict[str, Any]]:
        """The publishable rows (dimension, group, people, figures...) and what was suppressed."""
        rows: list[list[str]] = []
        report: dict[str, Any] = {}
        total_people = self._people(self._total)
        for dimension in self.dimensions:
            groups = self._groups[dimension]
            figures = {
                name: GroupFigures(self._people(g), dict(g.sums)) for name, g in sorted(groups.items())
            }
            result = suppress_small_groups(figures, k=k)
            primary = sum(1 for why in result.suppressed.values() if why == "primary")
            report[dimension] = {
                "groups": len(groups),
                "visible": len(result.visible),
                "suppressed_primary": primary,
                "suppressed_complementary": len(result.suppressed) - primary,
            }
            if not result.total_publishable:
                continue
            for name, group in result.visible.items():
                rows.append(self._row(dimension, name, group.people, group.figures))
            if result.suppressed:
                sums: dict[str, Decimal | int] = {}
                for name in result.suppressed:
                    for figure, value in figures[name].figures.items():
                        sums[figure] = sums.get(figure, 0) + value
                rows.append(self._row(dimension, SUPPRESSED_GROUP, result.suppressed_people, sums))
        if total_people >= k:
            rows.append(self._row(TOTAL, TOTAL, total_people, self._total.sums))
        return rows, report

    def _row(self, dimension: str, name: str, people: int, sums: Mapping[str, Any]) -> list[str]:
        values = [format_number(Decimal(sums[f])) if f in sums else "" for f in self.figures]
        return [dimension, name, str(people), *values]
