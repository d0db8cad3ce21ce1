"""Aggregates only (``per_person_rows = false``): grouped figures, each safe to publish together.

For each grouping dimension present in the output (department, company, role, licence), the engine sums
every numeric output column per group and counts the *distinct people* behind it: rows are merged by the
person's subject token (canonical id), so one person written five times, or with blanks around the id,
counts once. Before anything is written, :func:`~odeus_compliance.policy.release_audit.audit_release`
checks every table together: groups under k, differences of nested cells across tables, and dominance
(one person holding most of a sum) are pooled into the table's ``(suppressed)`` row or withheld; the
total is published only when it holds k people.

What it keeps per row until then: the subject token, the dimensions and each figure as a 32-bit float (for the
audit's shares); the published sums themselves are exact decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.disclosure import DisclosureError, Suppression
from odeus_compliance.policy.operations import format_number
from odeus_compliance.policy.release_audit import ReleasePlan, audit_release
from odeus_compliance.upstream.batches import DECIMAL_TYPE

DIMENSIONS = ("department", "company_name", "role", "license_type")
# figures that add up to another for every person (a total and its parts, as upstream computes them): the
# audit withholds them together, or the published ones would rebuild a withheld one
LINKED_FIGURES: Mapping[str, tuple[str, ...]] = {
    "messages_total": ("messages_chat", "messages_assistants", "messages_projects"),
    "total_input_tokens": ("cached_prompt_tokens", "cache_creation_tokens", "no_cache_tokens"),
}
SUPPRESSED_GROUP = "(suppressed)"
EMPTY_GROUP = "(none)"
TOTAL = "total"
_PERSON = "__person"
_ACTIVE = "__active"


RESERVED_SUFFIX = " (as named in the export)"


def _unreserved(column: Any) -> Any:
    """A group the export names like one of our labels ("(suppressed)", "(none)") is shown with
    :data:`RESERVED_SUFFIX`, so it can neither pass for the pooled row nor merge with people of no group."""
    for label in (SUPPRESSED_GROUP, EMPTY_GROUP):
        named = ac.fill_null(ac.equal(column, label), False)
        if ac.any(named).as_py():
            column = ac.if_else(named, pa.scalar(label + RESERVED_SUFFIX, pa.string()), column)
    return column


@dataclass(slots=True)
class _Group:
    sums: dict[str, Decimal] = field(default_factory=dict)


class Aggregator:
    """Accumulates grouped sums and the per-person facts over batches; :meth:`table` applies the audit."""

    def __init__(
        self,
        *,
        dimensions: tuple[str, ...],
        figures: tuple[str, ...],
        person: str | None,
        active: str | None = None,
    ) -> None:
        self.dimensions = dimensions
        self.figures = figures
        self._person = person
        self._active = active if active in figures else None
        self._groups: dict[str, dict[str, _Group]] = {d: {} for d in dimensions}
        self._total = _Group()
        self._rows: list[pa.RecordBatch] = []
        self._row_count = 0
        self.plan: ReleasePlan | None = None

    def observe(self, data: pa.RecordBatch) -> None:
        """Add one transformed batch."""
        numbers: dict[str, Any] = {f: ac.cast(data.column(f), DECIMAL_TYPE) for f in self.figures}
        self._add(self._total, numbers)
        columns: dict[str, Any] = {}
        for dimension in self.dimensions:
            column = ac.fill_null(_unreserved(data.column(dimension)), EMPTY_GROUP)
            columns[dimension] = column
            table = pa.table({"g": column, **numbers})
            summed = table.group_by("g").aggregate([(f, "sum") for f in self.figures])
            groups = self._groups[dimension]
            for row in summed.to_pylist():
                group = groups.setdefault(row["g"], _Group())
                for figure in self.figures:
                    value = row[f"{figure}_sum"]
                    if value is not None:
                        group.sums[figure] = group.sums.get(figure, Decimal(0)) + value
        subjects = self._subjects(data)
        kept = {
            _PERSON: subjects,
            **columns,
            **{f: ac.fill_null(ac.cast(numbers[f], pa.float32()), 0.0) for f in self.figures},
        }
        self._rows.append(pa.RecordBatch.from_pydict(kept))
        self._row_count += data.num_rows

    def _subjects(self, data: pa.RecordBatch) -> Any:
        """Who each row is: the subject token, or the row's own number where the row names nobody."""
        column = data.column(self._person) if self._person is not None else None
        if column is not None and column.null_count == 0:
            return column
        numbered = pa.array([f"#{self._row_count + i}" for i in range(data.num_rows)], pa.string())
        return numbered if column is None else ac.if_else(ac.is_null(column), numbered, column)

    def _add(self, group: _Group, numbers: dict[str, Any]) -> None:
        for figure, values in numbers.items():
            total = ac.sum(values).as_py()
            if total is not None:
                group.sums[figure] = group.sums.get(figure, Decimal(0)) + total

    def people_table(self) -> pa.Table:
        """One row per distinct person: their first group in each dimension, their figures summed."""
        rows = pa.Table.from_batches(self._rows) if self._rows else pa.table(
            {_PERSON: pa.array([], pa.string()), **{d: pa.array([], pa.string()) for d in self.dimensions},
             **{f: pa.array([], pa.float32()) for f in self.figures}}
        )  # fmt: skip
        if ac.count_distinct(rows.column(_PERSON)).as_py() == rows.num_rows:
            return rows  # one row per person (the usual export): nothing to merge
        merged = rows.group_by(_PERSON).aggregate(
            [
                *((d, "min") for d in self.dimensions),
                *((d, "count_distinct") for d in self.dimensions),
                *((f, "sum") for f in self.figures),
            ]
        )
        for dimension in self.dimensions:
            if merged.num_rows and ac.max(merged.column(f"{dimension}_count_distinct")).as_py() > 1:
                # one person in two departments: which group's figures would be theirs? refuse, naming no one
                msg = f"the export names one person in more than one {dimension} group; nothing is published"
                raise DisclosureError(msg)
        kept = [_PERSON, *(f"{d}_min" for d in self.dimensions), *(f"{f}_sum" for f in self.figures)]
        return merged.select(kept).rename_columns([_PERSON, *self.dimensions, *self.figures])

    def table(self, *, k: int, dominance: float = 1.0) -> tuple[list[list[str]], dict[str, Any]]:
        """The publishable rows (dimension, group, people, figures...) and what was suppressed."""
        people = self.people_table()
        active = None
        if self._active is not None:
            flags = ac.cast(ac.greater(people.column(self._active), 0), pa.float64())
            people = people.append_column(_ACTIVE, flags)
            active = _ACTIVE
        plan = audit_release(
            people,
            dimensions=self.dimensions,
            figures=self.figures,
            k=k,
            dominance=dominance,
            linked=LINKED_FIGURES,
            active=active,
        )
        self.plan = plan
        self._rows = []  # released: the per-person facts are no longer needed
        rows: list[list[str]] = []
        report: dict[str, Any] = {}
        withheld = plan.withheld_figures
        for dimension in self.dimensions:
            release = plan.tables[dimension]
            sizes = release.groups
            counts = {why.value: 0 for why in Suppression}
            for why in release.suppressed.values():
                counts[why.value] += 1
            report[dimension] = {
                "groups": len(sizes),
                "visible": len(release.visible),
                "suppressed_primary": counts["primary"],
                "suppressed_complementary": counts["complementary"],
                "suppressed_difference": counts["difference"],
                "suppressed_dominance": counts["dominance"],
                "published": release.published and plan.total_published,
            }
            if not (plan.total_published and release.published):
                continue
            groups = self._groups[dimension]
            rows += [self._row(dimension, n, sizes[n], groups[n].sums, withheld) for n in release.visible]
            if release.suppressed:
                pooled: dict[str, Decimal] = {}
                for name in release.suppressed:
                    for figure, value in groups[name].sums.items():
                        pooled[figure] = pooled.get(figure, Decimal(0)) + value
                hidden = plan.pooled_people[dimension]
                rows.append(self._row(dimension, SUPPRESSED_GROUP, hidden, pooled, withheld))
        if plan.total_published:
            rows.append(self._row(TOTAL, TOTAL, plan.people, self._total.sums, withheld))
        report["audit"] = {
            "people": plan.people,
            "rows": self._row_count,  # more rows than people: a person was named more than once
            "smallest_published_cell": plan.smallest_cell,
            "largest_share": None if plan.largest_share is None else round(plan.largest_share, 4),
            "dominance_limit": dominance,
            "figures_withheld_for_dominance": sorted(withheld),
            "rounds": plan.rounds,
        }
        return rows, report

    def _row(
        self, dimension: str, name: str, people: int, sums: Mapping[str, Any], withheld: frozenset[str]
    ) -> list[str]:
        values = [
            format_number(Decimal(sums[f])) if f in sums and f not in withheld else "" for f in self.figures
        ]
        return [dimension, name, str(people), *values]
